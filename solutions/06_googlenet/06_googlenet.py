# %% [markdown]
# # 06 · GoogLeNet: the Inception module
#
# The winner of ILSVRC 2014 came from Google: GoogLeNet (Szegedy et al., *Going deeper
# with convolutions*, CVPR 2015; the name is a bow to LeNet). It has 22 weight layers,
# more than VGG-16's 16, and a top-5 error of 6.7%, less than VGG's 7.3%. Yet it has
# about a twentieth of VGG-16's parameters and needs about a tenth of its arithmetic.
# Its authors set themselves a budget (about 1.5 billion multiply-adds per image) and
# asked how to spend it well. Their answer is the *Inception module*: several filter
# sizes side by side in one layer, kept cheap by 1×1 convolutions.
#
# **In this notebook you will**
# - see where GoogLeNet stands among the ILSVRC winners, and why it has no big dense
#   layers;
# - work out the output shapes of the naive Inception module (the lecture's
#   28×28×256 example) with a general function;
# - count its cost in multiply-accumulates, and answer the lecture's question "What is
#   the problem with this?";
# - add the 1×1 "bottleneck" layers, count again, and find the slip in the lecture's
#   total;
# - build both modules in PyTorch, check them against the reference by copied weights,
#   and time them on this CPU;
# - count GoogLeNet's parameters from the paper's Table 1 and check the claim "only 5
#   million parameters (12× less than AlexNet and 27× less than VGG-16)";
# - meet the auxiliary classifiers, write their loss, and see why later networks dropped
#   them;
# - train a small GoogLeNet.
#
# | section | what happens | points |
# |---|---|---|
# | 1 | GoogLeNet among the winners; no more big dense layers | |
# | 2 | the naive Inception module: its picture, exercise `inception_shapes` | 4 |
# | 3 | what it costs: exercise `naive_inception_macs`; what is the problem? | 4 |
# | 4 | bottleneck layers: exercise `inception_macs`; the lecture's 358M; stacking modules | 5 |
# | 5 | both modules in PyTorch (`NaiveInception`, `Inception`), then timed | 5 + 4 + 8 |
# | 6 | the parameters: exercise `inception_params`; "only 5 million"?; cost against error | 4 |
# | 7 | the auxiliary classifiers: exercise `googlenet_loss` | 3 |
# | 8 | training a small GoogLeNet | |
#
# **The lecture's points, and where they are answered:** "Only 5 million parameters!
# (12x less than AlexNet and 27x less than VGG-16)": section 6. "No longer multiple
# expensive FC layers": sections 1 and 6. "Efficient Inception module": sections 3 to 5.
# "Apply parallel filter operations on the input from previous layer", "Multiple
# receptive field sizes for convolution (1×1, 3×3, 5×5)", "Pooling operation (3×3)",
# "Concatenate all filter outputs together channel-wise", "What are the output sizes of
# all different filter operations?", "What is output size after filter concatenation?":
# section 2. "What is the problem with this?" and the conv ops, "Total: 854M ops":
# section 3. "Any solution?", "bottleneck layers that use 1×1 convolutions to reduce
# feature channel size", the six conv ops of the module with bottlenecks, "Total: 358M
# ops" (the six terms add up to less: section 4) and "Bottleneck can also reduce depth
# after pooling layer": section 4. The auxiliary classifiers, which the lecture's
# figure of the network shows but does not discuss: section 7.

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
import statistics
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnncourse
from cnncourse import data, grading, models, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)

# %% [markdown]
# ## 1. GoogLeNet among the ImageNet winners
#
# GoogLeNet won the classification task of ILSVRC 2014, just ahead of VGG (notebook 04).

# %%
plot.ilsvrc_chart(highlight="GoogLeNet")
plt.show()

# %% [markdown]
# The lecture lists three things about it: only 5 million parameters, an efficient
# "Inception" module, and no more expensive dense (FC) layers. The third is the easiest
# to see. AlexNet and VGG end with three dense layers of 4096, 4096 and 1000 units.
# GoogLeNet averages each of its last 1024 feature maps (7×7 at 224×224 input) to one
# number, the global average pooling of Network in Network (notebook 05), and has one
# dense layer, 1024 → 1000. Here are the three networks' parameters, and how many of them
# sit in dense layers (the models are built on PyTorch's `meta` device: shapes, but no
# memory for the weights).

# %%
with torch.device("meta"):
    big_three = {
        "AlexNet": models.alexnet(),
        "VGG-16": models.vgg16(),
        "GoogLeNet": models.googlenet(),
    }
for name, net in big_three.items():
    total = shapes.count_params(net)
    dense = sum(shapes.count_params(m) for m in net.modules() if isinstance(m, nn.Linear))
    print(
        f"{name:<10} {total:>12,} parameters, {dense:>12,} of them in dense layers "
        f"({dense / total:.0%})"
    )

# %% [markdown]
# Most of AlexNet's and VGG's parameters are in their dense layers; GoogLeNet's one dense
# layer holds 1,025,000, and the rest, about 6 million, sit in its convolutions. Where
# do they go, and what do they compute? That is the Inception module.
#
# ## 2. The naive Inception module
#
# What size should a convolution's filters be? Small filters see fine detail, large ones
# see larger structures, and a network does not know in advance which it needs where.
# The Inception module does not choose: it applies several operations *in parallel* to
# the same input, and stacks their outputs along the channels, so that the next layer
# can use any of them. The naive version (the paper's figure 2a) has four branches:
#
# - a 1×1 convolution, a 3×3 convolution and a 5×5 convolution (three receptive field
#   sizes), each followed by a ReLU;
# - a 3×3 max pool (pooling worked well in every network so far, so it gets a branch
#   too).
#
# "Concatenate channel-wise" means `torch.cat(..., dim=1)`: the four outputs become one
# tensor whose channels are the channels of all four. That only works if the four have
# the same height and width. So every branch runs at stride 1 and pads its input by
# $(k-1)/2$ pixels on each side, which keeps the size
# ($\lfloor (n + 2 \cdot \tfrac{k-1}{2} - k)/1 \rfloor + 1 = n$): padding 1 for the 3×3
# convolution and the pool, 2 for the 5×5. A max pool works on each channel separately.
#
# The picture is drawn from `models.NaiveInception` with the lecture's widths: 128, 192
# and 96 filters, on an input of 28×28×256. (The lecture, like the paper, writes shapes
# as H×W×C; PyTorch's tensors are (N, C, H, W).)

# %%
COLOURS = {1: "#9ecae1", 3: "#fdd0a2", 5: "#fdae6b", "pool": "#a1d99b"}


def branch_layers(branch: nn.Module) -> list[tuple[str, object]]:
    """(label, colour key) for each convolution and max pool of one branch, input first."""
    after = (
        "+ BN + ReLU" if any(isinstance(m, nn.BatchNorm2d) for m in branch.modules()) else "+ ReLU"
    )
    layers = []
    for m in branch.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0]
            layers.append((f"{k}×{k} conv, {m.out_channels}\n{after}", k))
        elif isinstance(m, nn.MaxPool2d):
            layers.append(("3×3 max pool\nstride 1, pad 1", "pool"))
    return layers


def draw_inception(module: nn.Module, input_shape, title: str, show_shapes: bool = True):
    """The four branches (module.branch1 ... branch4) side by side, input at the bottom;
    with show_shapes, the shapes of the input, of each branch's output and of the
    concatenation, measured by running the module on the meta device."""
    c, h, w = input_shape
    branches = [module.branch1, module.branch2, module.branch3, module.branch4]
    with torch.device("meta"):
        x = torch.empty(1, c, h, w)
        outs = [tuple(b(x).shape[1:]) for b in branches]
    rows = max(len(branch_layers(b)) for b in branches)
    top = 1.3 + 1.25 * rows + (0.5 if show_shapes else 0.2)
    fig, ax = plt.subplots(figsize=(9, 1.7 + 1.05 * rows), facecolor="white")
    ax.set_facecolor("white")  # opaque: the same picture in light and dark themes
    text = {"ha": "center", "va": "center", "fontsize": 9, "color": "black"}
    arrow = {"arrowstyle": "->", "color": "0.3", "lw": 1.2}

    def box(x0, y0, width, label, colour):
        ax.add_patch(plt.Rectangle((x0, y0), width, 0.85, fc=colour, ec="black", lw=1))
        ax.text(x0 + width / 2, y0 + 0.42, label, **text)

    concat = f": {h}×{w}×{sum(o[0] for o in outs)}" if show_shapes else ""
    box(0, 0, 10.1, f"input: {h}×{w}×{c}" if show_shapes else "input", "0.88")
    box(0, top, 10.1, f"filter concatenation{concat}", "0.88")
    for i, (branch, out) in enumerate(zip(branches, outs, strict=True)):
        x0, mid, below = i * 2.6, i * 2.6 + 1.15, 0.85
        for j, (label, kind) in enumerate(branch_layers(branch)):
            y = 1.3 + 1.25 * j
            box(x0, y, 2.3, label, COLOURS[kind])
            ax.annotate("", xy=(mid, y), xytext=(mid, below), arrowprops=arrow)
            below = y + 0.85
        ax.annotate("", xy=(mid, top), xytext=(mid, below), arrowprops=arrow)
        if show_shapes:
            ax.text(
                mid,
                top - 0.25,
                f"{out[1]}×{out[2]}×{out[0]}",
                fontsize=8,
                ha="center",
                va="center",
                color="black",
                bbox={"fc": "white", "ec": "none", "pad": 1},
            )
    ax.set(xlim=(-0.2, 10.3), ylim=(-0.2, top + 1.0))
    ax.set_title(title, color="black")
    ax.axis("off")
    fig.tight_layout()
    return fig


draw_inception(
    models.NaiveInception(256, 128, 192, 96),
    (256, 28, 28),
    "naive Inception module: four branches on the same input",
    show_shapes=False,
)
plt.show()


# %% [markdown]
# The lecture asks: what are the output sizes of all the different filter operations,
# and what is the output size after the concatenation? Work it out for the lecture's
# example first, on paper, then write the general function.
#
# ## Exercise: `inception_shapes` (4 points)
#
# Write `inception_shapes(in_channels, height, width, ch1x1, ch3x3, ch5x5,
# pool_proj=None)`. It returns a dict with the output shape `(C, H, W)` (a tuple of ints,
# no batch dimension) of each branch, under the keys `"1x1"`, `"3x3"`, `"5x5"` and
# `"pool"`, and of the concatenated output under `"concat"`, for an input of
# `in_channels` × `height` × `width`. `ch1x1`, `ch3x3`, `ch5x5` are the numbers of filters
# of the three convolutions. Leave `pool_proj` at `None` for the naive module. Section 4
# adds a 1×1 convolution with `pool_proj` filters after the pool: then the pool branch
# has `pool_proj` channels. (The 1×1 convolutions that section 4 puts *before* the 3×3
# and 5×5 convolutions do not change those branches' outputs.)
#
# If any argument is below 1 (`pool_proj` only when it is given), raise a `ValueError`
# whose message names it. It is graded against the shapes that the reference modules
# produce, on inputs you have not seen, square or not, down to 1×1 maps.

# %% nbgrader={"grade_id": "inception_shapes", "solution": true}
def inception_shapes(
    in_channels: int,
    height: int,
    width: int,
    ch1x1: int,
    ch3x3: int,
    ch5x5: int,
    pool_proj: int | None = None,
) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of each branch of an Inception module and of its concatenated output.

    Input: in_channels × height × width. Branches: 1×1 conv (ch1x1 filters), 3×3 conv
    (ch3x3, padding 1), 5×5 conv (ch5x5, padding 2), 3×3 max pool (stride 1, padding 1),
    followed by a 1×1 conv with pool_proj filters if pool_proj is not None.
    Keys: "1x1", "3x3", "5x5", "pool", "concat".

    Raises:
        ValueError: if an argument is below 1; the message names it.
    """
    ### BEGIN SOLUTION
    arguments = {
        "in_channels": in_channels,
        "height": height,
        "width": width,
        "ch1x1": ch1x1,
        "ch3x3": ch3x3,
        "ch5x5": ch5x5,
    }
    if pool_proj is not None:
        arguments["pool_proj"] = pool_proj
    for name, value in arguments.items():
        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")
    pool = in_channels if pool_proj is None else pool_proj  # a max pool keeps the channels
    out = {  # stride 1 and "same" padding everywhere: every branch keeps height × width
        "1x1": (ch1x1, height, width),
        "3x3": (ch3x3, height, width),
        "5x5": (ch5x5, height, width),
        "pool": (pool, height, width),
    }
    out["concat"] = (sum(c for c, _, _ in out.values()), height, width)
    return out
    ### END SOLUTION


# %%
for key, shape in inception_shapes(16, 12, 12, 8, 8, 4).items():
    print(f"{key:<7} {shape}")

# %% nbgrader={"grade": true, "grade_id": "test_inception_shapes", "locked": true, "points": 4}
# Tests for inception_shapes (4 points).
import torch

from cnncourse.grading import check_raises, fail, run_exercise
from cnncourse.models.googlenet import Inception as _RefInception
from cnncourse.models.googlenet import NaiveInception as _RefNaive

if "inception_shapes" not in globals():
    fail("inception_shapes", "not defined yet", hint="write the function and run its cell")
_KEYS = ("1x1", "3x3", "5x5", "pool", "concat")


def _measured_shapes(c_in, h, w, c1, c3, c5, proj):
    """The shapes the reference module produces (on the meta device: no arithmetic)."""
    with torch.device("meta"):
        if proj is None:
            module = _RefNaive(c_in, c1, c3, c5)
        else:  # the widths of the 1×1 reductions do not change any output shape
            module = _RefInception(c_in, c1, 3, c3, 2, c5, proj)
        x = torch.empty(1, c_in, h, w)
        outs = [module.branch1(x), module.branch2(x), module.branch3(x), module.branch4(x)]
        outs.append(module(x))
    return {key: tuple(o.shape[1:]) for key, o in zip(_KEYS, outs, strict=True)}


def _shape_hint(key, got, want, c_in, proj):
    c, h, w = want
    if got == (c, w, h):
        return "write (C, H, W): the height before the width"
    if key in ("3x3", "5x5"):
        k = int(key[0])
        if got[1:] == (h - k + 1, w - k + 1):
            return (
                f"pad the {key} convolution by {(k - 1) // 2} on each side, so that it keeps H "
                "and W (the four outputs must have the same H × W to be concatenated)"
            )
    if key == "pool" and got[1:] != (h, w):
        return "the pool runs at stride 1 with padding 1: it keeps H and W"
    if key == "pool" and proj is None:
        return "a max pool works on each channel separately: it keeps all in_channels"
    if key == "pool":
        return "with pool_proj, the 1×1 convolution after the pool sets the channels to pool_proj"
    if key == "concat" and got[1:] != (h, w):
        return "concatenating along the channels keeps H and W"
    if key == "concat":
        return "the output has the channels of all four branches, the pool branch's too"
    return "a convolution's output has one channel per filter, and stride 1 with padding keeps H, W"


def _check_shapes(c_in, h, w, c1, c3, c5, proj=None):
    call = f"inception_shapes({c_in}, {h}, {w}, {c1}, {c3}, {c5}, pool_proj={proj})"
    out = run_exercise(inception_shapes, c_in, h, w, c1, c3, c5, pool_proj=proj, name=call)
    if not isinstance(out, dict):
        fail(call, f"expected a dict, got {type(out).__name__}")
    want = _measured_shapes(c_in, h, w, c1, c3, c5, proj)
    for key in _KEYS:
        if key not in out:
            fail(call, f"no key {key!r} (yours: {list(out)})", hint=f"use the keys {list(_KEYS)}")
        got = out[key]
        if not (
            isinstance(got, tuple)
            and len(got) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in got)
        ):
            fail(f"{call}[{key!r}]", f"expected a (C, H, W) tuple of ints, got {got!r}")
        if got != want[key]:
            fail(
                f"{call}[{key!r}]",
                f"expected {want[key]}, got {got}",
                hint=_shape_hint(key, got, want[key], c_in, proj),
            )


_check_shapes(3, 8, 8, 2, 4, 1)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _args in [
    (192, 28, 28, 64, 128, 32),  # module 3a's input, no reductions
    (7, 9, 5, 3, 4, 2),  # non-square, odd
    (5, 1, 1, 1, 2, 3),  # a 1×1 map
    (1, 3, 2, 1, 1, 1),
    (4096, 56, 40, 1024, 2048, 512),
    (11, 2, 13, 6, 4, 8),
]:
    _check_shapes(*_args)
for _args in [
    (480, 14, 14, 192, 208, 48, 64),  # module 4a
    (832, 7, 7, 384, 384, 128, 128),  # module 5b
    (5, 1, 1, 1, 2, 3, 4),
    (10, 2, 13, 4, 6, 8, 1),
    (3, 17, 6, 2, 2, 2, 9),  # a projection wider than the input
]:
    _check_shapes(*_args)
_good = {
    "in_channels": 4,
    "height": 6,
    "width": 5,
    "ch1x1": 2,
    "ch3x3": 3,
    "ch5x5": 1,
    "pool_proj": 2,
}
for _name, _bad in (
    ("in_channels", 0),
    ("height", 0),
    ("width", -1),
    ("ch1x1", 0),
    ("ch3x3", -4),
    ("ch5x5", 0),
    ("pool_proj", 0),
):
    check_raises(
        inception_shapes, **{**_good, _name: _bad}, argument=_name, why=f"{_name}={_bad} is below 1"
    )
### END HIDDEN TESTS

# %% [markdown]
# The lecture's example, with your function:

# %%
naive_example = inception_shapes(256, 28, 28, 128, 192, 96)
for key, (c, h, w) in naive_example.items():
    print(f"{key:<7} {h}×{w}×{c}")


# %% [markdown]
# Every branch keeps the 28×28 grid, so the concatenation is
# $28 \times 28 \times (128 + 192 + 96 + 256) = 28 \times 28 \times 672$: the pool branch
# passes all 256 input channels on, and the three convolutions add their 416 filters to
# them.
#
# ## 3. What it costs, and what is the problem with this?
#
# The cost of a convolution is counted in multiply-accumulates (MACs; the lecture calls
# them "ops"). Each output value of a $k \times k$ convolution is a dot product of its
# filter, $k \cdot k \cdot C_\text{in}$ weights, with a window through all $C_\text{in}$
# input channels: $k^2 C_\text{in}$ MACs. A layer with $C_\text{out}$ filters has
# $H \cdot W \cdot C_\text{out}$ output values, so it costs
#
# $$H \cdot W \cdot C_\text{out} \cdot k^2 \cdot C_\text{in} \ \text{MACs}.$$
#
# As in the lecture, the bias additions are not counted (one per output value, a
# fraction $1/(k^2 C_\text{in})$ of the total), and neither is the max pool: it compares
# numbers (8 comparisons per output value of a 3×3 window) but multiplies nothing. One
# MAC is two floating-point operations (FLOPs), a multiplication and an addition.
#
# ## Exercise: `naive_inception_macs` (4 points)
#
# Write `naive_inception_macs(in_channels, size, ch1x1, ch3x3, ch5x5)`: the
# multiply-accumulates of one naive Inception module on one image of `in_channels`
# channels. `size` is an int (a `size` × `size` map) or a `(height, width)` pair. Return
# an exact int (for large channel counts a float loses digits). If an argument is below
# 1 (either side of `size`), raise a `ValueError` whose message names it. Write the
# formula yourself: `shapes.conv_macs` and `shapes.summary` are the references it is
# graded against.

# %% nbgrader={"grade_id": "naive_inception_macs", "solution": true}
def naive_inception_macs(
    in_channels: int, size: int | tuple[int, int], ch1x1: int, ch3x3: int, ch5x5: int
) -> int:
    """Multiply-accumulates of the naive Inception module on one image (an int).

    The 1×1, 3×3 and 5×5 convolutions each cost H * W * C_out * k * k * in_channels
    (every branch keeps H × W); bias additions and the max pool cost none.
    size: an int, or a (height, width) pair.

    Raises:
        ValueError: if an argument (or a side of size) is below 1; the message names it.
    """
    ### BEGIN SOLUTION
    height, width = (size, size) if isinstance(size, int) else size
    for name, value in (
        ("in_channels", in_channels),
        ("size", height),
        ("size", width),
        ("ch1x1", ch1x1),
        ("ch3x3", ch3x3),
        ("ch5x5", ch5x5),
    ):
        if value < 1:
            raise ValueError(f"{name}: {value} is below 1")
    per_position = in_channels * (1 * 1 * ch1x1 + 3 * 3 * ch3x3 + 5 * 5 * ch5x5)
    return height * width * per_position  # the max pool compares, it does not multiply
    ### END SOLUTION


# %%
print(f"{naive_inception_macs(16, 12, 8, 8, 4):,} MACs for 16 channels of 12×12")

# %% nbgrader={"grade": true, "grade_id": "test_naive_inception_macs", "locked": true, "points": 4}
# Tests for naive_inception_macs (4 points).
import torch

import cnncourse.shapes as _shapes_module
from cnncourse import shapes
from cnncourse.grading import banned, check_number, check_raises, fail, run_exercise
from cnncourse.models.googlenet import NaiveInception as _RefNaive

if "naive_inception_macs" not in globals():
    fail("naive_inception_macs", "not defined yet", hint="write the function and run its cell")
_summary, _conv_macs = _shapes_module.summary, _shapes_module.conv_macs


def _naive_reference(c_in, h, w, c1, c3, c5):
    """MACs measured by shapes.summary on the reference module, built on the meta device."""
    with torch.device("meta"):
        module = _RefNaive(c_in, c1, c3, c5)
    return _summary(module, (c_in, h, w), verbose=False).total_macs


def _naive_hint(out, expected, c_in, h, w, c1, c3, c5):
    """What a wrong count most likely left out or added, from the reference's pieces."""
    if c_in > 1 and out * c_in == expected:
        return "each output value is a dot product over all in_channels · k · k inputs"
    if out - expected == _conv_macs(c_in, c_in, 3, (h, w), groups=c_in):
        return "the max pool compares numbers but multiplies nothing: count the convolutions only"
    if out - expected == h * w * (c1 + c3 + c5):
        return "leave out the bias additions, as the lecture does"
    return "sum H · W · C_out · k · k · in_channels over the three convolutions"


def _check_naive(c_in, size, c1, c3, c5, expected=None):
    call = f"naive_inception_macs({c_in}, {size!r}, {c1}, {c3}, {c5})"
    h, w = (size, size) if isinstance(size, int) else size
    try:
        out = run_exercise(naive_inception_macs, c_in, size, c1, c3, c5, name=call)
    except (TypeError, ValueError) as err:
        fail(
            call,
            f"raised {type(err).__name__}: {err}",
            hint="size may be an int or a (height, width) pair",
        )
    if isinstance(out, bool) or not isinstance(out, int):
        fail(
            call,
            f"expected an int, got {type(out).__name__} ({out!r})",
            hint="keep the arithmetic in ints (no /, math.pow or float)",
        )
    if expected is None:
        expected = _naive_reference(c_in, h, w, c1, c3, c5)
    check_number(out, expected, call, hint=_naive_hint(out, expected, c_in, h, w, c1, c3, c5))


_check_naive(3, 4, 2, 2, 2)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_shapes_module.summary = banned("shapes.summary", "naive_inception_macs", "Write the formula")
_shapes_module.conv_macs = banned("shapes.conv_macs", "naive_inception_macs", "Write the formula")
try:
    for _args in [
        (192, 28, 64, 128, 32),
        (480, 14, 192, 208, 48),
        (832, 7, 384, 384, 128),
        (7, (9, 5), 3, 4, 2),  # non-square
        (5, 13, 1, 2, 3),  # odd
        (6, 1, 2, 3, 4),  # 1×1 map
        (6, (1, 1), 2, 3, 4),
        (1, (2, 17), 1, 1, 1),
        (12, (30, 7), 9, 1, 5),
    ]:
        _check_naive(*_args)
    # exact on huge counts (the reference formula, from shapes.conv_macs)
    _huge = 2**40 + 1
    _check_naive(
        _huge,
        (28, 27),
        3,
        5,
        7,
        expected=sum(_conv_macs(_huge, c, k, (28, 27)) for c, k in ((3, 1), (5, 3), (7, 5))),
    )
    _good = {"in_channels": 4, "size": 6, "ch1x1": 2, "ch3x3": 3, "ch5x5": 1}
    for _name, _bad in (
        ("in_channels", 0),
        ("size", 0),
        ("size", (4, 0)),
        ("size", (-1, 3)),
        ("ch1x1", 0),
        ("ch3x3", -1),
        ("ch5x5", 0),
    ):
        check_raises(
            naive_inception_macs,
            **{**_good, _name: _bad},
            argument=_name,
            why=f"{_name}={_bad!r} is below 1",
        )
finally:
    _shapes_module.summary, _shapes_module.conv_macs = _summary, _conv_macs
### END HIDDEN TESTS

# %% [markdown]
# The lecture's three convolutions on the 28×28×256 input:

# %%
naive_terms = {
    "[1×1 conv, 128]  28·28·128·1·1·256": shapes.conv_macs(256, 128, 1, 28),
    "[3×3 conv, 192]  28·28·192·3·3·256": shapes.conv_macs(256, 192, 3, 28),
    "[5×5 conv, 96]   28·28·96·5·5·256": shapes.conv_macs(256, 96, 5, 28),
}
for label, macs in naive_terms.items():
    print(f"{label:<50} {macs:>13,}")
print(f"{'sum of the three terms':<50} {sum(naive_terms.values()):>13,}")
print(
    f"{'naive_inception_macs(256, 28, 128, 192, 96)':<50} "
    f"{naive_inception_macs(256, 28, 128, 192, 96):>13,}"
)

# %% [markdown]
# 854,196,224 multiply-accumulates, the lecture's "854M ops", for one module on one image.
# The 5×5 convolution alone takes more than half (482M), though it has the fewest filters:
# each of its outputs reads 25·256 = 6,400 inputs.
#
# **What is the problem with this?** Two things, and the second makes the first worse.
#
# - It is expensive. 854M MACs is more than a whole AlexNet needs (0.71 billion per
#   image for `models.alexnet()`), for *one* module, and GoogLeNet has nine.
# - The output is deeper than the input, and always will be. The pool branch passes every
#   input channel on, so a naive module's output has all of its input's channels *plus*
#   its filters: 256 in, 672 out. Stack a second module with the same filters on top and
#   its input has 672 channels, so every one of its convolutions costs 672/256 = 2.6
#   times as much, and its output has 1,088 channels. The depth grows with every module,
#   and the cost of each module grows with it.
#
# Your two functions, five naive modules in a row on the 28×28 grid:

# %%
channels = 256
for i in range(1, 6):
    cost = naive_inception_macs(channels, 28, 128, 192, 96)
    out = inception_shapes(channels, 28, 28, 128, 192, 96)["concat"][0]
    print(f"module {i}: {channels:>5} -> {out:>5} channels, {cost / 1e9:5.2f} billion MACs")
    channels = out

# %% [markdown]
# ## 4. Any solution? Bottleneck layers
#
# The fix is the 1×1 convolution of notebook 05. A 1×1 convolution is a dense layer
# applied at every pixel, across the channels: with $C'$ filters it turns $C$ channels
# into $C'$ at the cost of $H \cdot W \cdot C \cdot C'$ MACs, without looking at any
# neighbour. GoogLeNet puts one in front of each expensive convolution, to *reduce* the
# channels it reads (a "bottleneck"), and one after the pool, to reduce the channels the
# pool branch passes on (a "projection"). Each is followed by a ReLU, which adds a
# non-linearity, as in Network in Network. The picture shows the lecture's example:
# reductions to 64 channels before the 3×3 and 5×5 convolutions, and a projection to 64
# after the pool.

# %%
draw_inception(
    models.Inception(256, 128, 64, 192, 64, 96, 64),
    (256, 28, 28),
    "Inception module with dimension reductions",
    show_shapes=False,
)
plt.show()


# %% [markdown]
# Is reducing 256 channels to 64 before a 3×3 convolution not throwing information
# away? The reduction is learned: its 64 filters are trained to keep what the 3×3
# convolution needs. The paper's argument is that even a low-dimensional embedding can
# hold much of the information about an image patch; the evidence is the network's
# accuracy.
#
# The arguments are named as in the paper's Table 1 (and torchvision): `ch3x3red` and
# `ch5x5red` are the filters of the 1×1 reductions in front of the 3×3 and 5×5
# convolutions, `pool_proj` those of the 1×1 projection after the pool.
#
# ## Exercise: `inception_macs` (5 points)
#
# Write `inception_macs(in_channels, size, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
# pool_proj)`: the multiply-accumulates of one Inception module with reductions, on one
# image. Count all six convolutions (the same conventions as before: no biases, no cost
# for the pool), return an exact int, accept `size` as an int or a `(height, width)` pair,
# and raise a `ValueError` naming any argument below 1. Do not call `shapes.conv_macs` or
# `shapes.summary`. It is graded against `shapes.summary` on the reference
# `models.Inception`, for configurations you have not seen (and for GoogLeNet's own
# modules).

# %% nbgrader={"grade_id": "inception_macs", "solution": true}
def inception_macs(
    in_channels: int,
    size: int | tuple[int, int],
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    ch5x5red: int,
    ch5x5: int,
    pool_proj: int,
) -> int:
    """Multiply-accumulates of an Inception module with 1×1 reductions on one image.

    Convolutions (each H * W * C_out * k * k * C_in; every one keeps H × W):
    1×1 in_channels -> ch1x1; 1×1 in_channels -> ch3x3red, 3×3 ch3x3red -> ch3x3;
    1×1 in_channels -> ch5x5red, 5×5 ch5x5red -> ch5x5; (max pool: none)
    1×1 in_channels -> pool_proj. Bias additions are not counted. size: int or (h, w).

    Raises:
        ValueError: if an argument (or a side of size) is below 1; the message names it.
    """
    ### BEGIN SOLUTION
    height, width = (size, size) if isinstance(size, int) else size
    arguments = {
        "in_channels": in_channels,
        "ch1x1": ch1x1,
        "ch3x3red": ch3x3red,
        "ch3x3": ch3x3,
        "ch5x5red": ch5x5red,
        "ch5x5": ch5x5,
        "pool_proj": pool_proj,
    }
    for name, value in [("size", height), ("size", width), *arguments.items()]:
        if value < 1:
            raise ValueError(f"{name}: {value} is below 1")
    per_position = (
        in_channels * ch1x1  # 1×1 branch
        + in_channels * ch3x3red  # 1×1 reduction ...
        + 3 * 3 * ch3x3red * ch3x3  # ... then the 3×3 reads only the reduced channels
        + in_channels * ch5x5red
        + 5 * 5 * ch5x5red * ch5x5
        + in_channels * pool_proj  # the max pool is free; its 1×1 projection is not
    )
    return height * width * per_position
    ### END SOLUTION


# %%
print(f"{inception_macs(16, 12, 8, 4, 8, 2, 4, 4):,} MACs for 16 channels of 12×12")

# %% nbgrader={"grade": true, "grade_id": "test_inception_macs", "locked": true, "points": 5}
# Tests for inception_macs (5 points).
import torch

import cnncourse.shapes as _shapes_module
from cnncourse import shapes
from cnncourse.grading import banned, check_number, check_raises, fail, run_exercise
from cnncourse.models.googlenet import INCEPTION_CONFIGS as _TABLE_1
from cnncourse.models.googlenet import Inception as _RefInception

if "inception_macs" not in globals():
    fail("inception_macs", "not defined yet", hint="write the function and run its cell")
_summary, _conv_macs = _shapes_module.summary, _shapes_module.conv_macs


def _module_reference(c_in, h, w, *widths):
    with torch.device("meta"):
        module = _RefInception(c_in, *widths)
    return _summary(module, (c_in, h, w), verbose=False).total_macs


def _macs_hint(out, expected, c_in, h, w, c1, r3, c3, r5, c5, proj):
    """What a wrong count most likely left out or added, from the reference's pieces."""
    hw = (h, w)
    reads_input = {  # the 3×3 and the 5×5 reading in_channels instead of their reductions
        k: _conv_macs(c_in, c, k, hw) - _conv_macs(r, c, k, hw)
        for k, r, c in ((3, r3, c3), (5, r5, c5))
    }
    if expected - out == _conv_macs(c_in, r3, 1, hw) + _conv_macs(c_in, r5, 1, hw):
        return "the 1×1 reductions are convolutions too: they cost H · W · C_out · C_in each"
    if out - expected in (reads_input[3], reads_input[3] + reads_input[5]):
        return "the 3×3 convolution reads the ch3x3red reduced channels, not in_channels"
    if out - expected == reads_input[5]:
        return "the 5×5 convolution reads the ch5x5red reduced channels, not in_channels"
    if expected - out == _conv_macs(c_in, proj, 1, hw):
        return "the pool projection after the max pool is a 1×1 convolution too"
    if out - expected == _conv_macs(r3, c3, 3, hw):
        return "count each of the six convolutions once (the 3×3 term twice is too many)"
    if out - expected == _conv_macs(c_in, c_in, 3, hw, groups=c_in):
        return "the max pool compares numbers but multiplies nothing"
    return "sum H · W · C_out · k · k · C_in over the six convolutions, each with its own C_in"


def _check_module_macs(c_in, size, *widths, expected=None):
    call = f"inception_macs({c_in}, {size!r}, {', '.join(map(str, widths))})"
    h, w = (size, size) if isinstance(size, int) else size
    try:
        out = run_exercise(inception_macs, c_in, size, *widths, name=call)
    except (TypeError, ValueError) as err:
        fail(
            call,
            f"raised {type(err).__name__}: {err}",
            hint="size may be an int or a (height, width) pair",
        )
    if isinstance(out, bool) or not isinstance(out, int):
        fail(
            call,
            f"expected an int, got {type(out).__name__} ({out!r})",
            hint="keep the arithmetic in ints (no /, math.pow or float)",
        )
    if expected is None:
        expected = _module_reference(c_in, h, w, *widths)
    check_number(out, expected, call, hint=_macs_hint(out, expected, c_in, h, w, *widths))


_check_module_macs(3, 4, 2, 1, 2, 1, 2, 1)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_shapes_module.summary = banned("shapes.summary", "inception_macs", "Write the formula")
_shapes_module.conv_macs = banned("shapes.conv_macs", "inception_macs", "Write the formula")
try:
    # GoogLeNet's nine modules at their map sizes (Table 1)
    for _name, _row in _TABLE_1.items():
        _check_module_macs(_row[0], {"3": 28, "4": 14, "5": 7}[_name[0]], *_row[1:])
    for _args in [
        (7, (9, 5), 3, 2, 4, 1, 2, 3),  # non-square
        (1, 1, 1, 1, 1, 1, 1, 1),  # everything 1
        (13, (3, 11), 5, 7, 2, 9, 4, 6),  # reductions wider than the input
        (40, 13, 8, 5, 6, 3, 2, 11),  # odd
        (6, (1, 1), 2, 3, 4, 5, 6, 7),  # 1×1 map
    ]:
        _check_module_macs(*_args)
    _huge = 2**40 + 1
    _convs = ((_huge, 3, 1), (_huge, 4, 1), (4, 5, 3), (_huge, 6, 1), (6, 7, 5), (_huge, 8, 1))
    _check_module_macs(
        _huge,
        (27, 28),
        3,
        4,
        5,
        6,
        7,
        8,
        expected=sum(_conv_macs(c_in, c_out, k, (27, 28)) for c_in, c_out, k in _convs),
    )
    _good = dict(
        zip(
            ("in_channels", "size", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"),
            (4, 6, 2, 3, 3, 1, 2, 2),
            strict=True,
        )
    )
    for _name in _good:
        check_raises(
            inception_macs, **{**_good, _name: 0}, argument=_name, why=f"{_name}=0 is below 1"
        )
    check_raises(
        inception_macs,
        **{**_good, "size": (3, -2)},
        argument="size",
        why="a map of height 3 and width -2",
    )
finally:
    _shapes_module.summary, _shapes_module.conv_macs = _summary, _conv_macs
### END HIDDEN TESTS

# %% [markdown]
# ### The lecture's total
#
# The lecture lists the six convolutions of its example (reductions to 64 in front of
# the 3×3 and 5×5, a projection to 64 after the pool) and prints "Total: 358M ops".
# Here are its six terms, each computed on its own, and their sum:

# %%
bottleneck_terms = [
    ("[1×1 conv, 64]   28·28·64·1·1·256", shapes.conv_macs(256, 64, 1, 28)),
    ("[1×1 conv, 64]   28·28·64·1·1·256", shapes.conv_macs(256, 64, 1, 28)),
    ("[1×1 conv, 128]  28·28·128·1·1·256", shapes.conv_macs(256, 128, 1, 28)),
    ("[3×3 conv, 192]  28·28·192·3·3·64", shapes.conv_macs(64, 192, 3, 28)),
    ("[5×5 conv, 96]   28·28·96·5·5·64", shapes.conv_macs(64, 96, 5, 28)),
    ("[1×1 conv, 64]   28·28·64·1·1·256", shapes.conv_macs(256, 64, 1, 28)),
]
for label, macs in bottleneck_terms:
    print(f"{label:<50} {macs:>13,}")
bottleneck_total = sum(macs for _, macs in bottleneck_terms)
print(f"{'sum of the six terms':<50} {bottleneck_total:>13,}")
print(
    f"{'inception_macs(256, 28, 128, 64, 192, 64, 96, 64)':<50} "
    f"{inception_macs(256, 28, 128, 64, 192, 64, 96, 64):>13,}"
)
print()
three_by_three = shapes.conv_macs(64, 192, 3, 28)
print(f"{'the sum + the 3×3 term once more':<50} {bottleneck_total + three_by_three:>13,}")
reading_128 = bottleneck_total - three_by_three + shapes.conv_macs(128, 192, 3, 28)
print(f"{'... or with the 3×3 reading 128 channels':<50} {reading_128:>13,}")

# %% [markdown]
# **The six terms add up to 271,351,808, about 271M, not 358M.** Check it on the slide
# with a calculator: the terms are 12.8M, 12.8M, 25.7M, 86.7M, 120.4M and 12.8M. The
# printed 358M is 358,055,936, which is what you get by adding the 3×3 term (86.7M) a
# second time, or, the same number, by letting the 3×3 convolution read 128 channels
# instead of 64. (The example is GoogLeNet's module 3b with other reductions: 3b has 256
# input channels and 128, 192, 96 and 64 output filters, but reduces to 128 channels in
# front of its 3×3 and to 32 in front of its 5×5; its real cost is Table 1's 304M.)
#
# So the saving is larger than the slide says: 854M against 271M is a factor of 3.15,
# not 2.4. And the output is smaller: the pool branch now has 64 channels instead of 256.

# %%
bottleneck_example = inception_shapes(256, 28, 28, 128, 192, 96, pool_proj=64)
c, h, w = bottleneck_example["concat"]
print(f"output with bottlenecks: {h}×{w}×{c}")
print(
    f"cost: naive {naive_inception_macs(256, 28, 128, 192, 96) / 1e6:.0f}M, with "
    f"bottlenecks {inception_macs(256, 28, 128, 64, 192, 64, 96, 64) / 1e6:.0f}M MACs"
)

# %% [markdown]
# "Bottleneck can also reduce depth after pooling layer": the projection after the pool
# is what stops the growth of section 3. With it, a module's output depth is
# `ch1x1 + ch3x3 + ch5x5 + pool_proj`, whatever its input: the designer chooses it. Stack
# six modules of each kind with the lecture's filters, and watch the channels and the
# cost (your functions again):

# %%
stack = {"naive": [], "with bottlenecks": []}
naive_c = bottleneck_c = 256
for _ in range(6):
    stack["naive"].append((naive_c, naive_inception_macs(naive_c, 28, 128, 192, 96)))
    naive_c = inception_shapes(naive_c, 28, 28, 128, 192, 96)["concat"][0]
    bottleneck_cost = inception_macs(bottleneck_c, 28, 128, 64, 192, 64, 96, 64)
    stack["with bottlenecks"].append((bottleneck_c, bottleneck_cost))
    bottleneck_c = inception_shapes(bottleneck_c, 28, 28, 128, 192, 96, pool_proj=64)["concat"][0]
finals = {"naive": naive_c, "with bottlenecks": bottleneck_c}

fig, (ax_c, ax_m) = plt.subplots(1, 2, figsize=(10, 3.6))
for i, (name, rows) in enumerate(stack.items()):
    depths = [c for c, _ in rows] + [finals[name]]
    ax_c.plot(range(7), depths, "-o", color=f"C{i}", label=name)
    ax_m.plot(
        range(1, 7),
        [sum(m for _, m in rows[:j]) / 1e9 for j in range(1, 7)],
        "-o",
        color=f"C{i}",
        label=name,
    )
ax_c.set(xlabel="modules stacked", ylabel="channels", title="depth of the output")
ax_m.set(xlabel="modules stacked", ylabel="billion MACs", title="total cost, 28×28 grid")
for ax in (ax_c, ax_m):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()
for name, rows in stack.items():
    print(
        f"{name:<17} after 6 modules: {finals[name]:>5} channels, "
        f"{sum(m for _, m in rows) / 1e9:.1f} billion MACs"
    )


# %% [markdown]
# The naive stack grows by 416 channels per module and its cost grows with it: six
# modules cost 25.9 billion MACs, more than VGG-16 on a whole image. With bottlenecks the
# depth stays at 480 from the first module on, and six modules cost about 1.9 billion.
# (GoogLeNet itself does not repeat one module: Table 1 gives each of its nine modules
# its own widths, and three max pools halve the grid between the groups, from 28×28 to
# 7×7.)
#
# ## 5. The two modules in PyTorch
#
# Now build both modules. Every branch is a small `nn.Sequential`, stored as an
# attribute (`self.branch1` to `self.branch4`); `forward` runs the four on the same input
# and concatenates their outputs along the channels with
# `torch.cat([...], dim=1)`. The tests copy the reference's weights into yours with
# `grading.copy_weights`, which pairs the tensors *by position*: register the layers in
# the order the docstring gives. The tests then compare each branch with the reference's,
# so a message names the branch that differs.
#
# ## Exercise: the `NaiveInception` module (5 points)

# %% nbgrader={"grade_id": "naive_module", "solution": true}
class NaiveInception(nn.Module):
    """The naive Inception module: (N, in_channels, H, W) ->
    (N, ch1x1 + ch3x3 + ch5x5 + in_channels, H, W).

    NaiveInception(in_channels, ch1x1, ch3x3, ch5x5)

    Layers, registered in this order (the tests copy reference weights in by position):
    self.branch1: 1×1 convolution in_channels -> ch1x1 (with a bias), then a ReLU
    self.branch2: 3×3 convolution in_channels -> ch3x3, padded to keep H × W, then a ReLU
    self.branch3: 5×5 convolution in_channels -> ch5x5, padded to keep H × W, then a ReLU
    self.branch4: 3×3 max pool at stride 1, padded to keep H × W
    (each branch one module: an nn.Sequential, or the pool alone)
    self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels (an int)

    forward(x): the four branches' outputs, concatenated along the channels in the order
    branch1, branch2, branch3, branch4.
    """

    ### BEGIN SOLUTION
    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(in_channels, ch3x3, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(in_channels, ch5x5, 5, padding=2), nn.ReLU())
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)  # keeps H, W and the channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (N, out_channels, H, W)

    ### END SOLUTION


# %%
block = NaiveInception(8, 4, 6, 2)
print(block)
print(
    "output:",
    tuple(block(torch.zeros(2, 8, 10, 10)).shape),
    " out_channels:",
    block.out_channels,
    " parameters:",
    shapes.count_params(block),
)

# %% [markdown]
# The test cell checks the layers and the parameter counts (with the lecture's widths,
# on the meta device), then copies the reference's weights into yours and compares each
# branch and the whole output, in float32 and float64, on large inputs, a batch of one,
# a non-square input and a 1×1 map, and the gradients.

# %% nbgrader={"grade": true, "grade_id": "test_naive_module", "locked": true, "points": 5}
# Tests for NaiveInception: layers, shapes and, with the reference's weights copied in,
# what each branch computes (5 points).
import torch
import torch.nn as nn

from cnncourse import shapes
from cnncourse.grading import (
    check_grads,
    check_number,
    check_tensor,
    copy_weights,
    fail,
    run_exercise,
)
from cnncourse.models.googlenet import NaiveInception as _RefNaive

if "NaiveInception" not in globals():
    fail("NaiveInception", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(50)
_NAMES = ("the 1×1 branch", "the 3×3 branch", "the 5×5 branch", "the pool branch")
_HINTS = (
    "branch1: a 1×1 convolution with its bias, then a ReLU",
    "branch2: a 3×3 convolution with padding 1, then a ReLU",
    "branch3: a 5×5 convolution with padding 2, then a ReLU",
    "branch4: a 3×3 max pool at stride 1 with padding 1, and nothing else",
)


def _build_naive(args, meta=False):
    call = f"NaiveInception{args}"
    if meta:
        with torch.device("meta"):
            mine, ref = run_exercise(NaiveInception, *args, name=call), _RefNaive(*args)
    else:
        mine, ref = run_exercise(NaiveInception, *args, name=call), _RefNaive(*args)
    if not isinstance(mine, nn.Module):
        fail(call, f"expected an nn.Module, got {type(mine).__name__}")
    check_number(
        shapes.count_params(mine),
        shapes.count_params(ref),
        f"parameters of {call}",
        hint="three convolutions from in_channels, each with a bias; the pool has none",
    )
    check_number(
        getattr(mine, "out_channels", None),
        ref.out_channels,
        f"{call}.out_channels",
        hint="out_channels counts the channels of all four branches",
    )
    return call, mine, ref


def _naive_pair(args):
    call, mine, ref = _build_naive(args)
    with torch.no_grad():  # random weights and biases far from zero, so a missing one shows
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=_gen) * (0.3 if p.dim() == 1 else 0.2))
    return call, copy_weights(ref, mine), ref


def _same(out, expected, name, hint):
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        fail(name, f"expected shape {tuple(expected.shape)}, got {got}", hint=hint)
    if out.dtype != expected.dtype:
        fail(
            name,
            f"expected dtype {expected.dtype}, got {out.dtype}",
            hint="keep the input's dtype: nothing in forward may call .float()",
        )
    try:
        check_tensor(out, expected, "values", rtol=1e-4, atol=1e-4)
    except AssertionError as err:
        fail(name, " ".join(str(err).split()), hint=hint)


def _compare_naive(call, mine, ref, x, what=""):
    label = f"{call} on x of shape {tuple(x.shape)}{what}"
    with torch.no_grad():
        for i in range(4):
            branch = getattr(mine, f"branch{i + 1}", None)
            if not isinstance(branch, nn.Module):
                fail(
                    call,
                    f"no module self.branch{i + 1}",
                    hint="store the four branches as self.branch1 ... self.branch4",
                )
            name = f"{label}: self.branch{i + 1}(x), {_NAMES[i]}"
            try:
                out = run_exercise(branch, x, name=name)
            except RuntimeError as err:
                fail(name, f"failed ({err})", hint=_HINTS[i])
            _same(out, getattr(ref, f"branch{i + 1}")(x), name, _HINTS[i])
        try:
            out = run_exercise(mine, x, name=label)
        except RuntimeError as err:
            fail(label, f"failed ({err})", hint="concatenate along dim 1")
        _same(
            out,
            ref(x),
            f"{label}, with each branch right",
            "return torch.cat of the four branches' outputs along dim 1, in the order "
            "branch1, branch2, branch3, branch4, with nothing after it",
        )


_call, _mine, _ref = _naive_pair((5, 3, 4, 2))
_compare_naive(_call, _mine, _ref, torch.randn(2, 5, 8, 8, generator=_gen))
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _args in ((256, 128, 192, 96), (192, 64, 128, 32), (3, 1, 1, 1)):
    _, _m, _r = _build_naive(_args, meta=True)
    _shapes = [tuple(t.shape) for t in _m.state_dict().values()]
    if _shapes != [tuple(t.shape) for t in _r.state_dict().values()]:
        fail(
            f"NaiveInception{_args}",
            f"weights of shapes {_shapes}",
            hint="register the layers in the docstring's order",
        )
for _args, _shape in (
    ((5, 3, 4, 2), (3, 5, 9, 7)),
    ((3, 2, 2, 2), (1, 3, 1, 1)),
    ((1, 4, 1, 3), (2, 1, 6, 11)),
    ((6, 2, 5, 3), (1, 6, 13, 13)),
):
    _call, _mine, _ref = _naive_pair(_args)
    _x = torch.randn(*_shape, generator=_gen)
    for _train in (False, True):
        _mine.train(_train)
        _ref.train(_train)
        _compare_naive(_call, _mine, _ref, _x, " (train mode)" if _train else "")
_call, _mine, _ref = _naive_pair((4, 3, 2, 5))
_compare_naive(_call, _mine, _ref, 1000 * torch.randn(2, 4, 7, 7, generator=_gen), ", large")
_mine.double()
_ref.double()
_x = torch.randn(2, 4, 7, 5, generator=_gen, dtype=torch.float64)
_compare_naive(_call + ".double()", _mine, _ref, _x, ", float64")
# gradients with respect to the input and every parameter
_call, _mine, _ref = _naive_pair((4, 2, 3, 2))
_xm = torch.randn(2, 4, 6, 5, generator=_gen, requires_grad=True)
_xr = _xm.detach().clone().requires_grad_(True)
_pairs = {"the input": (_xm, _xr)}
for (_n, _pm), _pr in zip(_mine.named_parameters(), _ref.parameters(), strict=True):
    _pairs[f"parameter {_n}"] = (_pm, _pr)
check_grads(
    run_exercise(_mine, _xm, name=_call),
    _ref(_xr),
    _pairs,
    _call,
    generator=_gen,
    rtol=1e-4,
    atol=1e-4,
)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise: the `Inception` module with reductions (4 + 8 points)
#
# The module GoogLeNet is made of. Its arguments are the columns of the paper's Table 1,
# in the same order. Every convolution, the 1×1 reductions and the projection included,
# is followed by a ReLU. As in torchvision's GoogLeNet (and in Inception-v2, a year
# later), the module takes a `batch_norm` option: with `batch_norm=True`, each
# convolution has no bias (batch norm's shift does its job) and is followed by
# `nn.BatchNorm2d(channels, eps=0.001)` before its ReLU. (torchvision uses this `eps`,
# larger than PyTorch's default of 1e-5; so does the reference.) With batch norm the
# module computes something else in training mode, where batch norm uses the batch's
# statistics, than in eval mode, where it uses its running averages: the tests check
# both.
#
# The first test cell (4 points) checks the layers, the parameter counts and the output
# shapes, for GoogLeNet's nine modules among others (on the meta device). The second (8
# points) copies the reference's weights into yours and compares each branch and the
# output, in eval and train mode, in float64, on large inputs, and the gradients.

# %% nbgrader={"grade_id": "inception_module", "solution": true}
class Inception(nn.Module):
    """Inception module with 1×1 reductions: (N, in_channels, H, W) ->
    (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).

    Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
              batch_norm=False)

    Every "conv(c_in, c_out, k)" below is, in this order:
        a k×k nn.Conv2d(c_in, c_out, ...) padded to keep H × W, with a bias only if not
        batch_norm; nn.BatchNorm2d(c_out, eps=0.001) only if batch_norm; a ReLU.
    Layers, registered in this order (the tests copy reference weights in by position):
    self.branch1: conv(in_channels, ch1x1, 1)
    self.branch2: conv(in_channels, ch3x3red, 1), then conv(ch3x3red, ch3x3, 3)
    self.branch3: conv(in_channels, ch5x5red, 1), then conv(ch5x5red, ch5x5, 5)
    self.branch4: a 3×3 max pool at stride 1 padded to keep H × W, then
                  conv(in_channels, pool_proj, 1)
    (each branch one module, e.g. an nn.Sequential)
    self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj (an int)

    forward(x): the four branches' outputs concatenated along the channels, in order.
    """

    ### BEGIN SOLUTION
    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            layers = [nn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out, eps=0.001))
            return [*layers, nn.ReLU(inplace=True)]

        self.branch1 = nn.Sequential(*conv(in_channels, ch1x1, 1))
        self.branch2 = nn.Sequential(*conv(in_channels, ch3x3red, 1), *conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(*conv(in_channels, ch5x5red, 1), *conv(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), *conv(in_channels, pool_proj, 1)
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (N, out_channels, H, W)

    ### END SOLUTION


# %%
block = Inception(8, 4, 2, 6, 2, 2, 2, batch_norm=True)
print(block)
print(
    "output:",
    tuple(block(torch.zeros(2, 8, 10, 10)).shape),
    " out_channels:",
    block.out_channels,
    " parameters:",
    shapes.count_params(block),
)

# %% nbgrader={"grade": true, "grade_id": "test_inception_layers", "locked": true, "points": 4}
# Tests for Inception: layers, parameter counts and output shapes (4 points).
import torch
import torch.nn as nn

from cnncourse import shapes
from cnncourse.grading import check_number, check_shape, fail, run_exercise
from cnncourse.models.googlenet import INCEPTION_CONFIGS as _TABLE_1
from cnncourse.models.googlenet import Inception as _RefInception

if "Inception" not in globals():
    fail("Inception", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(60)


def _structure(widths, batch_norm, meta):
    call = f"Inception{widths}" + (", batch_norm=True" if batch_norm else "")
    with torch.device("meta" if meta else "cpu"):
        mine = run_exercise(Inception, *widths, batch_norm=batch_norm, name=call)
        ref = _RefInception(*widths, batch_norm=batch_norm)
    if not isinstance(mine, nn.Module):
        fail(call, f"expected an nn.Module, got {type(mine).__name__}")
    bn_hint = (
        "with batch_norm=True a convolution has no bias, and each batch norm has a scale and "
        "a shift per channel"
        if batch_norm
        else "every convolution has a bias"
    )
    check_number(
        shapes.count_params(mine),
        shapes.count_params(ref),
        f"parameters of {call}",
        hint="compare the six convolutions with the docstring: the 3×3 and 5×5 read the "
        f"reduced channels, and the kernels are 1, 3 and 5; {bn_hint}",
    )
    mine_shapes = [(n, tuple(t.shape)) for n, t in mine.state_dict().items()]
    ref_shapes = [(n, tuple(t.shape)) for n, t in ref.state_dict().items()]
    for i, ((n_m, s_m), (n_r, s_r)) in enumerate(zip(mine_shapes, ref_shapes, strict=False)):
        if s_m != s_r:
            fail(
                call,
                f"weight #{i} ({n_m}) has shape {s_m}, the reference's ({n_r}) {s_r}",
                hint="register the layers in the docstring's order",
            )
    if len(mine_shapes) != len(ref_shapes):
        fail(
            call,
            f"{len(mine_shapes)} weight and buffer tensors, the reference has {len(ref_shapes)}",
            hint="check for a missing or extra layer or batch norm",
        )
    check_number(
        getattr(mine, "out_channels", None),
        ref.out_channels,
        f"{call}.out_channels",
        hint="out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj",
    )
    return call, mine


def _output_shape(widths, batch_norm, shape, meta=False):
    call, mine = _structure(widths, batch_norm, meta)
    mine.eval()
    with torch.device("meta" if meta else "cpu"), torch.no_grad():
        x = torch.randn(*shape, generator=None if meta else _gen)
        try:
            # (run_exercise compares the input before and after: not possible on meta)
            out = mine(x) if meta else run_exercise(mine, x, name=f"{call}(x)")
        except RuntimeError as err:
            fail(
                f"{call}(x) for x of shape {shape}",
                f"failed ({err})",
                hint="pad each convolution by (k - 1) // 2 and pool at stride 1 with "
                "padding 1, so that the four branches keep H × W",
            )
    want = (shape[0], widths[1] + widths[3] + widths[5] + widths[6], *shape[2:])
    check_shape(out, want, f"{call}(x) for x of shape {shape}")
    if out.dtype != x.dtype:
        fail(f"{call}(x)", f"expected dtype {x.dtype}, got {out.dtype}")


_output_shape((8, 4, 2, 6, 2, 2, 2), False, (2, 8, 10, 10))
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _bn in (False, True):
    for _name, _row in _TABLE_1.items():  # GoogLeNet's modules, at their map sizes
        _size = {"3": 28, "4": 14, "5": 7}[_name[0]]
        _output_shape(_row, _bn, (1, _row[0], _size, _size), meta=True)
for _widths, _bn, _shape in [
    ((5, 2, 3, 4, 2, 3, 3), True, (1, 5, 9, 7)),  # non-square, a batch of one
    ((3, 1, 1, 1, 1, 1, 1), False, (2, 3, 1, 1)),  # a 1×1 map
    ((4, 3, 5, 2, 6, 1, 2), True, (3, 4, 6, 13)),  # reductions wider than the input
]:
    _output_shape(_widths, _bn, _shape)
for _attr in ("branch1", "branch2", "branch3", "branch4"):
    _, _m = _structure((3, 1, 1, 1, 1, 1, 1), False, meta=True)
    if not isinstance(getattr(_m, _attr, None), nn.Module):
        fail(
            "Inception(3, 1, 1, 1, 1, 1, 1)",
            f"no module self.{_attr}",
            hint="store the four branches as self.branch1 ... self.branch4",
        )
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_inception_function", "locked": true, "points": 8}
# Tests for Inception by function: with the reference's weights copied in, each branch and
# the output must equal the reference's, in eval and train mode (8 points).
import torch
import torch.nn as nn

from cnncourse.grading import check_grads, check_tensor, copy_weights, fail, run_exercise
from cnncourse.models.googlenet import Inception as _RefInception

if "Inception" not in globals():
    fail("Inception", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(61)
_NAMES = ("the 1×1 branch", "the 3×3 branch", "the 5×5 branch", "the pool branch")
_ORDER = "convolution, batch norm (if batch_norm, with eps=0.001), ReLU, in that order"
_HINTS = (
    f"branch1: a 1×1 convolution; {_ORDER}",
    f"branch2: the 1×1 reduction, then the 3×3 convolution with padding 1; each is a {_ORDER}",
    f"branch3: the 1×1 reduction, then the 5×5 convolution with padding 2; each is a {_ORDER}",
    f"branch4: the 3×3 max pool (stride 1, padding 1) first, then the 1×1 projection; {_ORDER}",
)


def _inception_pair(widths, batch_norm):
    """The reference with random weights and batch-norm statistics, and a copy in yours."""
    call = f"Inception{widths}" + (", batch_norm=True" if batch_norm else "")
    ref = _RefInception(*widths, batch_norm=batch_norm)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=_gen) * (0.3 if p.dim() == 1 else 0.25))
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=_gen) + 0.5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=_gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=_gen) * 0.2 + 0.05)
    mine = run_exercise(Inception, *widths, batch_norm=batch_norm, name=call)
    return call, copy_weights(ref, mine), ref


def _same(out, expected, name, hint):
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        fail(name, f"expected shape {tuple(expected.shape)}, got {got}", hint=hint)
    if out.dtype != expected.dtype:
        fail(
            name,
            f"expected dtype {expected.dtype}, got {out.dtype}",
            hint="keep the input's dtype: nothing in forward may call .float()",
        )
    try:
        check_tensor(out, expected, "values", rtol=1e-4, atol=1e-4)
    except AssertionError as err:
        fail(name, " ".join(str(err).split()), hint=hint)


def _compare(call, mine, ref, x, train_mode, what=""):
    mine.train(train_mode)
    ref.train(train_mode)
    label = f"{call} in {'train' if train_mode else 'eval'} mode, x {tuple(x.shape)}{what}"
    with torch.no_grad():
        for i in range(4):
            branch = getattr(mine, f"branch{i + 1}", None)
            if not isinstance(branch, nn.Module):
                fail(
                    call,
                    f"no module self.branch{i + 1}",
                    hint="store the four branches as self.branch1 ... self.branch4",
                )
            name = f"{label}: self.branch{i + 1}(x), {_NAMES[i]}"
            try:
                out = run_exercise(branch, x, name=name)
            except RuntimeError as err:
                fail(name, f"failed ({err})", hint=_HINTS[i])
            _same(out, getattr(ref, f"branch{i + 1}")(x), name, _HINTS[i])
        _same(
            run_exercise(mine, x, name=label),
            ref(x),
            f"{label}, with each branch right",
            "return torch.cat of the four branches' outputs along dim 1, in order",
        )


_call, _mine, _ref = _inception_pair((6, 3, 2, 4, 2, 3, 2), False)
_compare(_call, _mine, _ref, torch.randn(2, 6, 8, 8, generator=_gen), False)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_CASES = [
    ((6, 3, 2, 4, 2, 3, 2), False, (2, 6, 9, 7)),
    ((5, 2, 3, 4, 2, 3, 3), True, (4, 5, 8, 8)),
    ((3, 1, 4, 2, 5, 2, 1), True, (1, 3, 5, 6)),  # a batch of one, non-square
    ((4, 2, 2, 3, 2, 2, 2), False, (3, 4, 1, 1)),  # a 1×1 map
]
for _widths, _bn, _shape in _CASES:
    _call, _mine, _ref = _inception_pair(_widths, _bn)
    _x = torch.randn(*_shape, generator=_gen)
    for _train in (False, True):
        _compare(_call, _mine, _ref, _x, _train)
for _widths, _bn, _shape in _CASES[:2]:  # float64 after .double(); large inputs
    _call, _mine, _ref = _inception_pair(_widths, _bn)
    _compare(_call, _mine, _ref, 1000 * torch.randn(*_shape, generator=_gen), False, ", large")
    _mine.double()
    _ref.double()
    for _train in (False, True):
        _x = torch.randn(*_shape, generator=_gen, dtype=torch.float64)
        _compare(_call + ".double()", _mine, _ref, _x, _train, ", float64")
# gradients with respect to the input and every parameter, in train mode
for _widths, _bn, _shape in _CASES[:2]:
    _call, _mine, _ref = _inception_pair(_widths, _bn)
    _mine.train()
    _ref.train()
    _xm = torch.randn(*_shape, generator=_gen, requires_grad=True)
    _xr = _xm.detach().clone().requires_grad_(True)
    _pairs = {"the input": (_xm, _xr)}
    for (_n, _pm), _pr in zip(_mine.named_parameters(), _ref.parameters(), strict=True):
        _pairs[f"parameter {_n}"] = (_pm, _pr)
    _out = run_exercise(_mine, _xm, name=_call)
    check_grads(
        _out, _ref(_xr), _pairs, f"{_call} in train mode", generator=_gen, rtol=1e-4, atol=1e-4
    )
### END HIDDEN TESTS

# %% [markdown]
# Your two modules with the lecture's widths, drawn from your code (the shapes are
# measured by running them):

# %%
naive_block = NaiveInception(256, 128, 192, 96)
bottleneck_block = Inception(256, 128, 64, 192, 64, 96, 64)
draw_inception(naive_block, (256, 28, 28), "your NaiveInception(256, 128, 192, 96)")
plt.show()
draw_inception(bottleneck_block, (256, 28, 28), "your Inception(256, 128, 64, 192, 64, 96, 64)")
plt.show()
print(
    f"parameters: naive {shapes.count_params(naive_block):,}, with bottlenecks "
    f"{shapes.count_params(bottleneck_block):,}"
)

# %% [markdown]
# ### Measured, not only counted
#
# Counting MACs predicts that the module with bottlenecks is 3.15 times faster. Does the
# CPU agree? We time both modules on a batch of 28×28×256 inputs, without gradients, a
# few times each after a warm-up run, and take the median (the machine is rarely quiet;
# the median ignores the odd slow run).

# %%
BATCH, REPEATS = (1, 3) if utils.grading_mode() else (4, 7)
x = torch.randn(BATCH, 256, 28, 28)


def median_seconds(module: nn.Module) -> float:
    module.eval()
    with torch.no_grad():
        module(x)  # warm-up: the first call allocates memory and picks algorithms
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


naive_s, bottleneck_s = median_seconds(naive_block), median_seconds(bottleneck_block)
naive_macs = naive_inception_macs(256, 28, 128, 192, 96)
bottleneck_macs = inception_macs(256, 28, 128, 64, 192, 64, 96, 64)
for name, seconds, macs in (
    ("naive", naive_s, naive_macs),
    ("with bottlenecks", bottleneck_s, bottleneck_macs),
):
    print(
        f"{name:<17} {seconds * 1e3:7.1f} ms per batch of {BATCH}, "
        f"{BATCH * macs / seconds / 1e9:5.1f} billion MACs per second"
    )
print(
    f"measured speed-up {naive_s / bottleneck_s:.2f}×, "
    f"MAC ratio {naive_macs / bottleneck_macs:.2f}×"
)


# %% [markdown]
# **What came out.** In three runs on a 2-core CPU, some beside another busy process, the
# naive module took 71 to 125 ms per batch of four and the module with bottlenecks 38 to
# 62 ms: a speed-up of 1.8 to 2.0×, not the 3.15× that the MAC counts predict (your
# numbers are printed above and will differ). The counts are right; the CPU does not do
# every MAC at the same speed. The naive module is three large convolutions, which keep
# the processor busy (28 to 48 billion MACs per second in our runs). The module with
# bottlenecks does a third of the work in six smaller convolutions, four of them 1×1,
# which move as much memory per MAC as a 3×3 convolution does for nine times the work:
# it ran at 18 to 29 billion MACs per second. MACs are a good first estimate of cost, and
# the only one that does not depend on the machine; the time on a given machine has to
# be measured.
#
# ## 6. GoogLeNet's parameters: "only 5 million"?
#
# GoogLeNet stacks nine Inception modules, with widths given row by row in the paper's
# Table 1 (`cnncourse.models.googlenet.INCEPTION_CONFIGS` holds the rows), after a
# "stem" of three ordinary convolutions and before the global average pool and the one
# dense layer.
#
# ## Exercise: `inception_params` (4 points)
#
# Write `inception_params(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
# pool_proj, batch_norm=False)`: the number of parameters of your `Inception` module
# with these arguments, as an exact int. A convolution from $C_\text{in}$ to
# $C_\text{out}$ channels with $k \times k$ filters has $C_\text{out} k^2 C_\text{in}$
# weights and, without batch norm, $C_\text{out}$ biases; with batch norm it has no bias,
# and its batch norm has a scale and a shift per channel, $2 C_\text{out}$ (the running
# mean and variance are buffers, not parameters). It is graded against the parameter
# count of the reference module, for Table 1's rows and others. Do not build a module
# to count.

# %% nbgrader={"grade_id": "inception_params", "solution": true}
def inception_params(
    in_channels: int,
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    ch5x5red: int,
    ch5x5: int,
    pool_proj: int,
    batch_norm: bool = False,
) -> int:
    """Parameters of Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
    pool_proj, batch_norm): weights, plus a bias per filter, or with batch_norm a batch
    norm scale and shift per filter instead. An int."""
    ### BEGIN SOLUTION
    convs = [
        (in_channels, ch1x1, 1),
        (in_channels, ch3x3red, 1),
        (ch3x3red, ch3x3, 3),
        (in_channels, ch5x5red, 1),
        (ch5x5red, ch5x5, 5),
        (in_channels, pool_proj, 1),
    ]
    total = 0
    for c_in, c_out, k in convs:
        total += c_out * k * k * c_in  # the weights
        total += 2 * c_out if batch_norm else c_out  # batch norm's scale and shift, or a bias
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_inception_params", "locked": true, "points": 4}
# Tests for inception_params (4 points).
import torch

from cnncourse import shapes
from cnncourse.grading import check_number, fail, run_exercise
from cnncourse.models.googlenet import INCEPTION_CONFIGS as _TABLE_1
from cnncourse.models.googlenet import Inception as _RefInception

if "inception_params" not in globals():
    fail("inception_params", "not defined yet", hint="write the function and run its cell")


def _params_hint(out, expected, widths, batch_norm):
    """What a wrong count most likely left out or added, from the reference's pieces."""
    c_in, c1, r3, c3, r5, c5, proj = widths
    filters = c1 + r3 + c3 + r5 + c5 + proj  # one bias, or one batch norm channel, each
    per_filter = 2 if batch_norm else 1
    reads_input = sum(
        shapes.conv_params(c_in, c, k, bias=False) - shapes.conv_params(r, c, k, bias=False)
        for k, r, c in ((3, r3, c3), (5, r5, c5))
    )
    if not batch_norm and expected - out == filters:
        return "every convolution has one bias per filter"
    if batch_norm and abs(out - expected) == filters:
        return (
            "with batch norm a convolution has no bias, and each batch norm has a scale and "
            "a shift (2 parameters) per channel"
        )
    if expected - out == shapes.conv_params(c_in, proj, 1, bias=False) + per_filter * proj:
        return "the pool projection after the max pool is a 1×1 convolution with parameters"
    if out - expected == reads_input:
        return "the 3×3 and 5×5 convolutions read the reduced channels (ch3x3red, ch5x5red)"
    return "sum C_out · k · k · C_in over the six convolutions, plus their biases or batch norms"


def _check_params(widths, batch_norm=False):
    call = f"inception_params({', '.join(map(str, widths))}, batch_norm={batch_norm})"
    out = run_exercise(inception_params, *widths, batch_norm=batch_norm, name=call)
    if isinstance(out, bool) or not isinstance(out, int):
        fail(call, f"expected an int, got {type(out).__name__} ({out!r})")
    with torch.device("meta"):
        expected = shapes.count_params(_RefInception(*widths, batch_norm=batch_norm))
    check_number(out, expected, call, hint=_params_hint(out, expected, widths, batch_norm))


_check_params((4, 2, 1, 3, 1, 2, 1))
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _bn in (False, True):
    for _row in _TABLE_1.values():
        _check_params(_row, _bn)
    for _widths in [
        (7, 3, 2, 4, 1, 2, 3),
        (1, 1, 1, 1, 1, 1, 1),
        (13, 5, 17, 2, 9, 4, 6),
        (100_000, 30_000, 20_000, 40_000, 1_000, 50_000, 7),
    ]:
        _check_params(_widths, _bn)
### END HIDDEN TESTS

# %% [markdown]
# Now the whole network, one row of Table 1 at a time, with your function (without
# batch norm, as in the paper). The stem has three convolutions (7×7/2 with 64 filters,
# a 1×1 with 64 and a 3×3 with 192); the head is the dense layer 1024 → 1000.

# %%
from cnncourse.models.googlenet import INCEPTION_CONFIGS

rows = {
    "stem: conv 7×7/2, 64": shapes.conv_params(3, 64, 7),
    "stem: conv 1×1, 64": shapes.conv_params(64, 64, 1),
    "stem: conv 3×3, 192": shapes.conv_params(64, 192, 3),
}
for name, row in INCEPTION_CONFIGS.items():
    rows[f"inception {name}"] = inception_params(*row)
rows["linear 1024 → 1000"] = shapes.linear_params(1024, 1000)
for name, count in rows.items():
    print(f"{name:<20} {count:>10,}")
googlenet_total = sum(rows.values())
print(f"{'total':<20} {googlenet_total:>10,}")
with torch.device("meta"):
    print(f"{'models.googlenet()':<20} {shapes.count_params(models.googlenet()):>10,}")

# %% [markdown]
# **About 7.0 million, not 5.** The layer sizes of Table 1 give 6,998,552 parameters
# (weights and biases; `models.googlenet()` agrees). The table's own "params" column
# (weights only, in units of 1,024) adds up to 6,798K, about 6.96 million: the same
# count up to rounding, and three rows (conv1, 4c and 5a) that do not match their own
# layer sizes (`tests/test_models_classic.py` has the details). torchvision's GoogLeNet has
# 6,624,904, because it uses batch norm instead of biases and, by a bug kept for
# compatibility with its weights, 3×3 filters in the "5×5" branch.
#
# Where do the lecture's numbers come from? The paper says that GoogLeNet "uses 12×
# fewer parameters" than AlexNet, and the Inception-v3 paper (Szegedy et al. 2016) that
# it "employed only 5 million parameters, which represented a 12× reduction" against
# AlexNet's 60 million. So "5 million" and "12×" go together, and "27×" is VGG-16's 138
# million divided by 5. With the real counts:

# %%
with torch.device("meta"):
    counts = {
        "AlexNet": shapes.count_params(models.alexnet()),
        "VGG-16": shapes.count_params(models.vgg16()),
    }
for name, count in counts.items():
    print(
        f"{name:<8} {count:>12,} parameters: {count / googlenet_total:5.1f}× GoogLeNet's "
        f"{googlenet_total:,} ({count / 5e6:4.1f}× 5 million)"
    )

# %% [markdown]
# GoogLeNet has about **9× fewer** parameters than AlexNet and **20× fewer** than VGG-16
# (8.7× and 19.8×); the lecture's 12× and 27× are what 5 million would give. The claim
# is right in spirit (an order of magnitude fewer, from a network nearly three times as
# deep as AlexNet) but not in its figures. Without its dense layer GoogLeNet would have
# 6.0 million, still not 5.
#
# Parameters are not the whole cost. The chart puts each network's multiply-accumulates
# per 224×224 image (measured with `shapes.summary` on the models) against its top-5
# error in the competition; the area of each marker is proportional to its parameters.
# (The errors are those of the competition entries, which averaged several networks and
# many crops of each image; one network on one crop does a little worse.)

# %%
costs = {}
with torch.device("meta"):
    for name, factory in (
        ("AlexNet", models.alexnet),
        ("VGG-16", models.vgg16),
        ("GoogLeNet", models.googlenet),
    ):
        table = shapes.summary(factory(), (3, 224, 224), verbose=False)
        costs[name] = (table.total_params, table.total_macs)
plot.cost_chart(costs)
plt.show()
for name, (params, macs) in costs.items():
    print(f"{name:<10} {params / 1e6:6.1f}M parameters {macs / 1e9:6.2f} billion MACs per image")

# %% [markdown]
# GoogLeNet is the cheapest network here on parameters, and the most accurate, but not
# the cheapest on arithmetic: with 1.58 billion MACs per image it needs about twice
# AlexNet's 0.71 billion (the paper's budget was 1.5 billion multiply-adds), and a
# tenth of VGG-16's 15.5 billion. Its parameters are few because it has no big dense
# layers and because its convolutions read reduced inputs; its arithmetic is moderate
# because the first layers (the stem) shrink the image from 224×224 to 28×28 before the
# first Inception module.
#
# ## 7. The auxiliary classifiers
#
# GoogLeNet is 22 layers deep, and in 2014, before batch norm, it was not clear that a
# gradient would reach the first layers of so deep a network in useful shape. The paper
# adds two small classifiers in the middle of the network, after modules 4a and 4d: each
# is a 5×5/3 average pool (14×14 → 4×4), a 1×1 convolution with 128 filters, a dense
# layer of 1024 units, 70% dropout and a dense layer to the 1,000 classes. During
# training their losses are added to the main loss, each with weight 0.3:
#
# $$L = L_\text{main} + 0.3\,(L_\text{aux1} + L_\text{aux2}).$$
#
# The idea: the auxiliary losses send a gradient straight into the middle of the network,
# short-cutting the upper half; they push the middle layers to produce features that are
# already useful for classifying; and the extra task is a regulariser. At inference the
# auxiliary classifiers are discarded. `models.googlenet(aux_logits=True)` has them: in
# training mode it returns a `GoogLeNetOutputs(logits, aux1, aux2)`, in eval mode the
# logits alone. They are not cheap:

# %%
with torch.device("meta"):
    with_aux = models.googlenet(aux_logits=True)
aux_params = {
    "aux1 (after 4a)": shapes.count_params(with_aux.aux1),
    "aux2 (after 4d)": shapes.count_params(with_aux.aux2),
}
for name, count in aux_params.items():
    print(f"{name:<16} {count:>10,} parameters")
print(
    f"{'with both':<16} {shapes.count_params(with_aux):>10,} parameters, against "
    f"{googlenet_total:,} without"
)


# %% [markdown]
# Each auxiliary classifier has about 3.2 million parameters, two thirds of them in its
# 2048 → 1024 dense layer: together they nearly double the network during training
# (13.4 million instead of 7.0). Their arithmetic is small, as they run on 4×4 maps.
#
# ## Exercise: `googlenet_loss` (3 points)
#
# Write `googlenet_loss(outputs, target, aux_weight=0.3)`: the training loss of GoogLeNet
# from what the model returns. `outputs` is either a `GoogLeNetOutputs` (a named tuple
# of three `(N, num_classes)` logit tensors: `logits`, `aux1`, `aux2`), or, in eval mode
# or without auxiliary classifiers, the logits tensor alone. `target` holds the `N`
# class indices. Return a 0-dim tensor: the mean cross-entropy of the logits plus
# `aux_weight` times that of each auxiliary classifier, or just the first for a plain
# tensor. Use `F.cross_entropy`. The loss must keep the gradient to all three outputs.

# %% nbgrader={"grade_id": "googlenet_loss", "solution": true}
def googlenet_loss(outputs, target: torch.Tensor, aux_weight: float = 0.3) -> torch.Tensor:
    """CE(logits) + aux_weight * (CE(aux1) + CE(aux2)) for a GoogLeNetOutputs; CE(logits)
    for a plain (N, num_classes) tensor. CE: mean cross-entropy against target (N,)."""
    ### BEGIN SOLUTION
    if isinstance(outputs, torch.Tensor):  # eval mode, or no auxiliary classifiers
        return F.cross_entropy(outputs, target)
    logits, aux1, aux2 = outputs
    aux = F.cross_entropy(aux1, target) + F.cross_entropy(aux2, target)
    return F.cross_entropy(logits, target) + aux_weight * aux
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_googlenet_loss", "locked": true, "points": 3}
# Tests for googlenet_loss (3 points).
import torch
import torch.nn.functional as F

from cnncourse.grading import check_grads, check_tensor, fail, run_exercise
from cnncourse.models.googlenet import GoogLeNetOutputs as _Outputs

if "googlenet_loss" not in globals():
    fail("googlenet_loss", "not defined yet", hint="write the function and run its cell")
_gen = torch.Generator().manual_seed(70)


def _expected_loss(outs, target, aux_weight):
    if isinstance(outs, torch.Tensor):
        return F.cross_entropy(outs, target)
    main, aux1, aux2 = (F.cross_entropy(t, target) for t in outs)
    return main + aux_weight * (aux1 + aux2)  # the paper's weighting, 0.3 per head


def _check_loss(n, k, aux_weight=None, plain=False, dtype=torch.float32, scale=3.0):
    shown = "" if aux_weight is None else f", aux_weight={aux_weight}"
    what = "the logits (N, K)" if plain else "GoogLeNetOutputs(logits, aux1, aux2)"
    call = f"googlenet_loss({what}, target{shown}) with N={n}, K={k}, {dtype}"
    logits = [
        (torch.randn(n, k, generator=_gen, dtype=dtype) * scale).requires_grad_()
        for _ in range(1 if plain else 3)
    ]
    outs = logits[0] if plain else _Outputs(*logits)
    target = torch.randint(0, k, (n,), generator=_gen)
    copies = [t.detach().clone() for t in logits]
    kwargs = {} if aux_weight is None else {"aux_weight": aux_weight}
    try:
        out = run_exercise(googlenet_loss, outs, target, name=call, **kwargs)
    except (TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        fail(
            call,
            f"raised {type(err).__name__}: {err}",
            hint="in eval mode (or without auxiliary classifiers) the model returns the "
            "logits tensor alone: handle a plain tensor too"
            if plain
            else "",
        )
    if any(not torch.equal(t.detach(), c) for t, c in zip(logits, copies, strict=True)):
        fail(call, "it changed the logits in place", hint="leave the inputs alone")
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        fail(
            call,
            f"expected a 0-dim tensor, got {out!r}"[:200],
            hint="return the loss as a tensor (no .item()), averaged over the batch",
        )
    if out.dtype != dtype:
        fail(call, f"expected dtype {dtype}, got {out.dtype}")
    weight = 0.3 if aux_weight is None else aux_weight
    expected = _expected_loss(outs, target, weight)
    hint = "CE(logits) + aux_weight · (CE(aux1) + CE(aux2)), each the mean cross-entropy"
    if not plain:
        main = F.cross_entropy(logits[0], target).detach()
        aux = sum(F.cross_entropy(t, target).detach() for t in logits[1:])
        if weight != 0.3 and torch.isclose(out.detach(), main + 0.3 * aux, rtol=1e-4):
            hint = "use the argument aux_weight, not a fixed 0.3"
        elif weight and torch.isclose(out.detach(), main + weight * aux / 2, rtol=1e-4):
            hint = "each auxiliary loss is weighted by aux_weight: their sum, not their mean"
    try:
        check_tensor(out, expected, "the loss", rtol=1e-4, atol=1e-5)
    except AssertionError as err:
        fail(call, " ".join(str(err).split()), hint=hint)
    names = ("logits",) if plain else ("logits", "aux1", "aux2")
    check_grads(out, expected, dict(zip(names, logits, strict=True)), call, generator=_gen)


_check_loss(4, 5)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _args, _kwargs in [
    ((8, 10), {"aux_weight": 0.5}),
    ((3, 7), {"aux_weight": 1.0}),
    ((6, 4), {"aux_weight": 0.0}),
    ((1, 1000), {}),  # a batch of one, ImageNet's classes
    ((5, 3), {"dtype": torch.float64}),
    ((4, 6), {"scale": 1e4}),  # confident logits in float32
    ((3, 5), {"plain": True}),  # eval mode: the logits alone
    ((2, 8), {"plain": True, "dtype": torch.float64}),
]:
    _check_loss(*_args, **_kwargs)
### END HIDDEN TESTS

# %% [markdown]
# Here it is on a real forward pass: GoogLeNet with auxiliary classifiers for 10 classes
# and with batch norm (as in torchvision), on four random 224×224 images, in training
# mode, then in eval mode.

# %%
torch.manual_seed(0)
net = models.googlenet(num_classes=10, aux_logits=True, batch_norm=True)
NUM_IMAGES = 2 if utils.grading_mode() else 4  # grading: a quick look, nothing depends on it
images, labels = torch.randn(NUM_IMAGES, 3, 224, 224), torch.tensor([3, 7, 0, 5][:NUM_IMAGES])
net.train()
with torch.no_grad():
    train_out = net(images)
print(f"training mode: {type(train_out).__name__} of shapes {[tuple(t.shape) for t in train_out]}")
for name, logits in zip(train_out._fields, train_out, strict=True):
    print(f"  cross-entropy of {name:<6} {F.cross_entropy(logits, labels).item():.3f}")
print(f"  googlenet_loss              {googlenet_loss(train_out, labels).item():.3f}")
net.eval()
with torch.no_grad():
    eval_out = net(images)
print(
    f"eval mode: {type(eval_out).__name__} of shape {tuple(eval_out.shape)}, loss "
    f"{googlenet_loss(eval_out, labels).item():.3f} (ln 10 = {math.log(10):.3f})"
)

# %% [markdown]
# At initialisation each classifier guesses nearly uniformly, so each cross-entropy is
# near $\ln 10 \approx 2.3$ (2.30, 2.26 and 2.41 in our run) and the training loss is
# about $2.3 \cdot (1 + 2 \cdot 0.3) \approx 3.7$. In eval mode the network returns the
# main logits alone; their loss differs from training mode's because batch norm now uses
# its running averages, which after one batch are still close to their starting values.
#
# **Why later versions dropped them.** The Inception-v3 paper (Szegedy et al. 2016,
# *Rethinking the Inception Architecture*) measured what the auxiliary classifiers do:
# they did *not* speed up training early on (the curves with and without them were
# nearly identical until late in training), removing the lower one changed nothing,
# and near the end the network with the upper one reached a slightly better accuracy.
# The authors concluded that the heads act as regularisers, not as a gradient highway,
# and kept one, with batch norm. By then batch normalisation (2015) kept the signal in
# a deep network at a healthy scale layer after layer, and a year later ResNet's
# shortcut connections (notebook 07) carried the gradient through 152 layers: ResNet and
# most networks since have no auxiliary classifiers at all. torchvision's pretrained
# GoogLeNet ships without trained auxiliary heads.
#
# ## 8. Training a small GoogLeNet
#
# `models.googlenet_small()` is GoogLeNet for 32×32 images: every width of Table 1
# divided by 8, the stem's 7×7/2 convolution replaced by a 3×3 at stride 1, nine
# Inception modules on 8×8, 4×4 and 2×2 grids, and batch norm after every convolution
# (without it this deep stack of branches starts to learn much more slowly). It has no
# auxiliary classifiers. We train it on the offline `digits` (1,294 training images,
# grey, upsampled from 8×8 to 32×32) for three epochs with Adam. (Under nbgrader the
# training is cut to a few batches; nothing is graded on it.)

# %%
GOOGLENET_EPOCHS = 1 if utils.grading_mode() else 3
BATCH_SIZE = 16 if utils.grading_mode() else 64  # grading: a few small batches, nothing graded
digit_train, digit_val, _ = data.make_loaders("digits", BATCH_SIZE, image_size=32)
utils.seed_everything(0)
small = models.googlenet_small(in_channels=1)
small_macs = shapes.summary(small, (1, 32, 32), verbose=False).total_macs
print(f"googlenet_small: {shapes.count_params(small):,} parameters, {small_macs:,} MACs per image")
history = train.fit(
    small, digit_train, digit_val, epochs=GOOGLENET_EPOCHS, lr=3e-3, verbose=False, progress=False
)
print(
    f"train loss per epoch {[round(v, 3) for v in history.train_loss]}, validation accuracy "
    f"{[round(v, 3) for v in history.val_acc]} ({sum(history.epoch_time):.1f}s)"
)
plot.plot_history({"googlenet_small": history}, title="googlenet_small on digits")
plt.show()

# %% [markdown]
# **What came out.** In our run the training loss fell from 2.10 in the first epoch to
# 1.20 and 0.50, and the validation accuracy rose from 22% to 64% and 89% (chance is
# 10%; 144 validation images, so one image is 0.7 points), in 8 to 10 seconds on a
# quiet machine (about 20 beside a busy one). Nine Inception modules, 96 thousand
# parameters and two million MACs per image learn a simple task quickly once batch norm
# keeps them in shape. The 89% is after three short epochs, not a converged result: try
# more epochs, or `batch_norm=False`, to see the difference batch norm makes.

# %% [markdown]
# ## Summary
#
# - The Inception module runs 1×1, 3×3 and 5×5 convolutions and a 3×3 max pool side by
#   side and concatenates them along the channels; "same" padding at stride 1 keeps every
#   branch at the input's height and width.
# - A convolution costs $H \cdot W \cdot C_\text{out} \cdot k^2 \cdot C_\text{in}$
#   multiply-accumulates. The naive module on 28×28×256 costs 854,196,224 and outputs
#   28×28×672: the pool branch passes all its input channels on, so stacked naive modules
#   grow deeper and dearer at every step.
# - 1×1 bottleneck convolutions in front of the 3×3 and 5×5 and after the pool cut the
#   lecture's example to 271,351,808 MACs (the slide's 358M counts the 3×3 term twice)
#   and fix the output depth at 480. On this CPU the measured speed-up was smaller than
#   the MAC ratio: small 1×1 convolutions run at a lower rate.
# - GoogLeNet has 6,998,552 parameters (about 7.0M, not 5M): 8.7× fewer than AlexNet and
#   19.8× fewer than VGG-16, with one dense layer, for 1.58 billion MACs per image.
# - Its two auxiliary classifiers (3.2M parameters each, loss weight 0.3, discarded at
#   inference) turned out to be regularisers more than a gradient highway; batch norm and
#   residual connections made them unnecessary.
#
# **Further questions (not graded)**
# 1. Module 3a has 192 input channels and the widths (64, 96, 128, 16, 32, 32). Compute
#    its cost with and without its reductions. Which branch gains most from its
#    reduction, and why is the 5×5 reduction so much narrower (16) than the 3×3's (96)?
# 2. The naive module's pool branch passes 256 channels on unchanged. Is a 3×3 max pool
#    at stride 1 a useful operation at all? What does it do to a single bright pixel?
# 3. Inception-v3 replaces each 5×5 convolution by two 3×3 convolutions, and an $n \times n$
#    one by a $1 \times n$ followed by an $n \times 1$. Count the MACs saved for 64 → 96
#    channels on a 28×28 map.
# 4. Train `googlenet_small(in_channels=1, batch_norm=False)` with the same settings. How
#    many epochs does it need to leave chance?
# 5. Time the two modules with a larger batch, and with gradients (a backward pass too).
#    Does the measured speed-up come closer to 3.15?
# 6. Why do the auxiliary classifiers sit after 4a and 4d, and not after 3a?
