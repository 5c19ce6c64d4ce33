# %% [markdown]
# # 04 · VGG: small filters, deep networks
#
# AlexNet (the previous notebook) won ImageNet in 2012 with eight weight layers and
# filters as large as 11×11. Two years later the runner-up of ILSVRC 2014, VGGNet
# (Simonyan and Zisserman, Oxford's Visual Geometry Group), went the other way: it used
# *only* 3×3 convolutions, and stacked up to 19 weight layers. Its design is so regular
# that the whole network fits in one line of a table, and its blocks of 3×3 convolutions
# became the default building block of the networks that followed.
#
# **In this notebook you will**
# - compare AlexNet and VGG-16 side by side and answer the lecture's question "Do you see
#   any difference?";
# - write the receptive-field calculator for any stack of layers and use it to answer the
#   lecture's question: what do three stacked 3×3 convolutions see?;
# - *measure* what a stack of 3×3 convolutions and one 7×7 convolution look at, with
#   gradients, and see why the two are not the same;
# - count the parameters of a stack of convolutions ($3 \cdot 3^2 C^2$ against $7^2 C^2$)
#   and test the claim "more non-linearities, more capacity" with an experiment;
# - build VGG-11 to VGG-19 (with and without batch norm) from the paper's configuration
#   table, and check VGG-16's famous 138 million parameters;
# - work out where VGG-16 spends its memory and its parameters, layer by layer;
# - find out why a small VGG does not learn at all at first, and make it learn.
#
# | section | what happens | points |
# |---|---|---|
# | 1 | AlexNet and VGG-16 side by side | |
# | 2 | receptive fields: exercise `receptive_field`, the picture, measured fields | 8 |
# | 3 | parameters: exercise `conv_stack_params`; experiment: 3×3 stack against 7×7 | 4 |
# | 4 | the configuration table and the `VGGNet` module (three exercises) | 21 |
# | 5 | memory and parameters per layer: exercise `vgg_memory`, a chart for VGG-16 | 8 |
# | 6 | training a small VGG: why it does not learn, and what fixes it | |
#
# **The lecture's points, and where they are answered:** "Do you see any difference?"
# (smaller filters, deeper networks, only 3×3 conv at stride 1 with padding 1 and 2×2 max
# pool at stride 2): section 1. "Why use smaller filters?", "What is the effective
# receptive field of three 3×3 conv (stride 1) layers?": section 2. "Deeper network means
# more non-linearities which leads to more capacity" and "Fewer parameters:
# $3 \times (3^2 C^2)$ vs. $7^2 C^2$": section 3.

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnncourse
from cnncourse import data, grading, models, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)

# %% [markdown]
# ## 1. Do you see any difference?
#
# VGGNet came second in the ILSVRC 2014 classification task (GoogLeNet, notebook 06,
# won) and first in localisation. Its top-5 error of 7.3% was about half of AlexNet's.

# %%
plot.ilsvrc_chart(highlight="VGG")


# %% [markdown]
# Below, the two networks are drawn from the models in `cnncourse.models`, one box per
# layer, input at the bottom. (The models are built on PyTorch's `meta` device: their
# layers and shapes exist, but no memory is given to their weights, so even VGG-16's 138
# million parameters cost nothing.) Look at the kernel sizes, strides and the number of
# layers before you read on.

# %%
def layer_boxes(model: nn.Module) -> list[tuple[str, str]]:
    """(label, kind) for every convolution, max pool and dense layer, input to output."""
    boxes = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            (k, _), (s, _), (p, _) = m.kernel_size, m.stride, m.padding
            kind = "conv3" if k == 3 and s == 1 else "conv"
            boxes.append((f"conv {k}×{k}/{s}, pad {p}, {m.out_channels}", kind))
        elif isinstance(m, nn.MaxPool2d):
            boxes.append((f"max pool {m.kernel_size}×{m.kernel_size}/{m.stride}", "pool"))
        elif isinstance(m, nn.Linear):
            boxes.append((f"dense {m.out_features}", "fc"))
    return boxes


with torch.device("meta"):
    side_by_side = {"AlexNet": models.alexnet(), "VGG-16": models.vgg16()}
colours = {"conv": "C1", "conv3": "C0", "pool": "C2", "fc": "0.6"}
fig, ax = plt.subplots(figsize=(9, 7.5))
for col, (name, model) in enumerate(side_by_side.items()):
    boxes = layer_boxes(model)
    for row, (label, kind) in enumerate(boxes):
        ax.add_patch(
            plt.Rectangle((col * 2.2, row), 1.9, 0.85, fc=colours[kind], ec="black", alpha=0.85)
        )
        ax.text(
            col * 2.2 + 0.95, row + 0.42, label, ha="center", va="center", fontsize=8, color="black"
        )
    ax.text(
        col * 2.2 + 0.95,
        -0.7,
        f"{name}: {len(boxes)} layers\n{shapes.count_params(model) / 1e6:.0f}M parameters",
        ha="center",
        va="top",
    )
ax.set(xlim=(-0.2, 4.3), ylim=(-2.2, 21.5), title="input at the bottom, logits at the top")
ax.axis("off")
fig.tight_layout()

# %% [markdown]
# **The differences.**
#
# - **Smaller filters.** AlexNet starts with 11×11 filters at stride 4, then 5×5 and 3×3.
#   VGG uses one kind of convolution everywhere: 3×3, stride 1, padding 1. With padding 1
#   a 3×3 convolution keeps the height and width of its input
#   ($\lfloor (n + 2 - 3)/1 \rfloor + 1 = n$), so the convolutions only change the number
#   of channels.
# - **One kind of pooling.** Every block ends with a 2×2 max pool at stride 2, which
#   halves the height and width (AlexNet overlaps its 3×3 pools at stride 2). After each
#   pool VGG doubles the number of channels (64, 128, 256, 512, capped at 512), so each
#   block does roughly the same amount of arithmetic per layer.
# - **Deeper.** 16 weight layers (13 convolutions and 3 dense layers) against AlexNet's
#   8, and 19 in the deepest version. Depth comes for free from the regularity: a block
#   is "*n* convolutions of 3×3, then a pool", and a network is a list of blocks.
# - **The same head.** Both end with dense layers of 4096, 4096 and 1000 units; VGG's
#   first dense layer reads 512·7·7 = 25,088 numbers, and holds most of its parameters
#   (section 5).
#
# The rest of this notebook asks *why* small filters are a good idea, with numbers.

# %% [markdown]
# ## 2. Why smaller filters? The receptive field
#
# The *receptive field* of a unit is the patch of the input image that can influence
# its value. A unit of a 3×3 convolution applied to the image sees 3×3 pixels. A unit of
# a second 3×3 convolution sees a 3×3 patch of the first layer's units, and each of
# those sees its own 3×3 patch of pixels; neighbouring patches overlap, so together they
# cover a patch that is wider by one pixel on each side. The picture builds this up
# layer by layer for three layers, the lecture's question: how large is the patch of the
# input that one unit of the third layer sees? (Count the squares; the general rule
# follows.)

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
side = 9  # a 9×9 input; the unit we follow sits above its centre pixel
for depth, ax in enumerate(axes, start=1):
    ax.add_patch(plt.Rectangle((0, 0), side, side, fc="none", ec="0.5"))
    for i in range(1, side):
        ax.plot([i, i], [0, side], color="0.8", lw=0.6)
        ax.plot([0, side], [i, i], color="0.8", lw=0.6)
    c = side // 2  # the centre pixel's lower-left corner
    for reach in range(depth, 0, -1):  # widest first: the input patch seen through `reach`
        ax.add_patch(
            plt.Rectangle(
                (c - reach, c - reach),
                2 * reach + 1,
                2 * reach + 1,
                fc=f"C{reach - 1}",
                alpha=0.3,
                ec=f"C{reach - 1}",
                lw=2,
                label=f"{2 * reach + 1}×{2 * reach + 1}",
            )
        )
    ax.add_patch(plt.Rectangle((side // 2, side // 2), 1, 1, fc="C3", ec="black"))
    ax.set(
        xlim=(-0.3, side + 0.3),
        ylim=(-0.3, side + 0.3),
        aspect="equal",
        title=f"{depth} layer{'s' * (depth > 1)} of 3×3 conv, stride 1",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="input patch")
    ax.axis("off")
fig.suptitle("what one unit on top sees of the input (red: the pixel under it)")
fig.tight_layout()


# %% [markdown]
# Each extra 3×3 layer at stride 1 adds one pixel on every side. With strides the
# layers further up move in bigger steps: a layer after a stride-2 layer takes neighbours
# that are 2 input pixels apart, so its 3×3 window widens the field by 2·2 = 4 pixels
# instead of 2. In general, for layers $l = 1, \dots, L$ from the input up, with kernel
# sizes $k_l$ and strides $s_l$,
#
# $$r = 1 + \sum_{l=1}^{L} (k_l - 1) \prod_{i < l} s_i ,$$
#
# where the product $\prod_{i<l} s_i$ (the *jump*) is the distance, in input pixels,
# between two neighbouring units of the input to layer $l$ (1 for the image itself).
# Pooling layers count like convolutions (a 2×2/2 max pool has $k = 2$, $s = 2$); ReLU,
# batch norm and dropout are $k = 1$, $s = 1$ and change nothing.
#
# ## Exercise: `receptive_field` (8 points)
#
# Write `receptive_field(layers)` for a list of `(kernel_size, stride)` pairs, from the
# input upwards, that returns the side of the (square) receptive field of one unit of the
# last layer, as an int. Go through the layers from the bottom and keep two numbers up to
# date: the field so far and the jump. An empty list means the unit *is* an input pixel.
# A kernel size or stride below 1 is not a layer: raise a `ValueError` whose message
# names the bad argument (`kernel_size` or `stride`).
#
# It is graded on stacks you have not seen, with strides and with pooling, including
# AlexNet's and VGG's. Do not call `shapes.receptive_field` (the reference).

# %% nbgrader={"grade_id": "receptive_field", "solution": true}
def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Side of the receptive field, in input pixels, of one unit of the last layer.

    layers: (kernel_size, stride) per layer, from the input upwards; pooling layers too.
    r = 1 + sum_l (k_l - 1) * prod_{i<l} s_i (the product is 1 for the first layer).

    Examples: receptive_field([]) == 1 (an input pixel); receptive_field([(3, 1)]) == 3.

    Raises:
        ValueError: if a kernel_size or a stride is below 1; the message names which.
    """
    ### BEGIN SOLUTION
    field, jump = 1, 1  # jump: input pixels between two neighbouring units of this layer
    for kernel_size, stride in layers:
        if kernel_size < 1:
            raise ValueError(f"kernel_size={kernel_size}: expected at least 1")
        if stride < 1:
            raise ValueError(f"stride={stride}: expected at least 1")
        field += (kernel_size - 1) * jump  # k - 1 more neighbours, `jump` pixels apart
        jump *= stride
    return field
    ### END SOLUTION


# %%
for stack in ([(3, 1)], [(3, 1)] * 2, [(3, 1)] * 3, [(7, 1)], [(3, 1), (2, 2), (3, 1)]):
    print(f"{str(stack):<36} receptive field {receptive_field(stack)}")

# %% nbgrader={"grade": true, "grade_id": "test_receptive_field", "locked": true, "points": 8}
# Tests for receptive_field (8 points).
import cnncourse.shapes as _shapes_module
from cnncourse.grading import banned, check_number, check_raises, fail, run_exercise

if "receptive_field" not in globals():
    fail("receptive_field", "not defined yet", hint="write the function and run its cell")


_reference_field = _shapes_module.receptive_field


def _check_field(layers, hint=""):
    call = f"receptive_field({layers})"
    out = run_exercise(receptive_field, list(layers), name=call)
    if isinstance(out, bool) or not isinstance(out, int):
        fail(call, f"expected an int, got {type(out).__name__} ({out!r})")
    check_number(out, _reference_field(list(layers)), call, hint=hint)


_check_field([], hint="an empty stack: the unit is one input pixel")
_check_field([(3, 1)], hint="one k×k layer sees k×k pixels")
_STRIDE_HINT = (
    "a stride multiplies the jump for the layers *above* it, not for its own "
    "window: r = 1 + sum (k_l - 1) * prod_{i<l} s_i"
)
_check_field([(5, 1), (2, 2)], hint=_STRIDE_HINT)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_shapes_module.receptive_field = banned(
    "shapes.receptive_field", "receptive_field", "Follow the field and the jump yourself"
)
try:
    _cases = [
        [(3, 1)] * 2,
        [(3, 1)] * 3,
        [(3, 1)] * 5,
        [(7, 1)],
        [(1, 1)] * 4,  # stride 1
        [(3, 1), (3, 1), (2, 2)] * 3,  # VGG blocks
        [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)],  # AlexNet
        [(2, 2), (3, 1)],
        [(3, 2), (3, 2), (3, 2)],
        [(4, 3), (5, 2), (1, 1), (3, 1)],
        [(7, 2), (3, 2), (1, 1), (3, 1)],
        [(1, 5), (3, 1)],
    ]
    for _layers in _cases:
        with_strides = any(s > 1 for _, s in _layers[:-1])
        _check_field(
            _layers,
            hint=_STRIDE_HINT
            if with_strides
            else "each stride-1 k×k layer widens the field by k - 1",
        )
    _vgg16 = [(3, 1)] * 2 + [(2, 2)] + [(3, 1)] * 2 + [(2, 2)] + ([(3, 1)] * 3 + [(2, 2)]) * 3
    _check_field(_vgg16, hint=_STRIDE_HINT)  # VGG-16's features: 212
    _check_field([(3, 1)] * 60, hint="each stride-1 k×k layer widens the field by k - 1")
    # tuples in a tuple work as well as in a list
    _out = run_exercise(receptive_field, ((3, 1), (2, 2), (3, 1)), name="receptive_field(tuple)")
    check_number(_out, 8, "receptive_field(((3, 1), (2, 2), (3, 1)))", hint=_STRIDE_HINT)
    for _bad, _arg in (
        ([(3, 1), (0, 1)], "kernel_size"),
        ([(3, 0)], "stride"),
        ([(3, 1), (2, -2)], "stride"),
        ([(-3, 1)], "kernel_size"),
    ):
        check_raises(receptive_field, _bad, argument=_arg, why=f"{_arg} below 1 is not a layer")
finally:
    _shapes_module.receptive_field = _reference_field
### END HIDDEN TESTS

# %% [markdown]
# **The lecture's answer.** A stack of three 3×3 convolutions at stride 1 has the same
# receptive field as one 7×7 convolution (two of them: 5×5). So on paper a VGG block of
# three 3×3 convolutions sees exactly what one of AlexNet's large filters would see.
# With the pools in between, VGG-16's last convolution sees a 196×196 patch of the
# 224×224 image, and the last pool 212×212, nearly the whole image.
#
# ### Measured: the *effective* receptive field
#
# Is every pixel inside those 7×7 equally important? We can measure it. Take one unit
# in the centre of the last layer's output, compute the gradient of its value with
# respect to every input pixel, and draw it as an image: the gradient says how much the
# unit changes when that pixel changes. Pixels outside the receptive field get exactly 0.
#
# We do it for three 3×3 convolutions and for one 7×7 convolution, one channel each,
# with every weight equal to 1 and no bias or activation: then the gradient counts, for
# each input pixel, the number of paths through the layers from that pixel up to the
# unit. A third panel uses random (He-initialised) weights with 16 channels and ReLUs
# between the layers, like a freshly built network, averaging the gradient's magnitude
# over 32 random networks so that the shape, not one network's noise, shows.

# %%
def centre_gradient(net: nn.Module, size: int = 15, in_channels: int = 1) -> torch.Tensor:
    """|d(centre output unit) / d(input)| as a (size, size) map, summed over channels."""
    x = torch.zeros(1, in_channels, size, size, requires_grad=True)
    out = net(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    return x.grad[0].abs().sum(0)


def ones_conv(k: int) -> nn.Conv2d:
    conv = nn.Conv2d(1, 1, k, padding=k // 2, bias=False)
    nn.init.ones_(conv.weight)
    return conv


stack = nn.Sequential(ones_conv(3), ones_conv(3), ones_conv(3))
single = ones_conv(7)
maps = {
    "three 3×3, all-ones weights": centre_gradient(stack),
    "one 7×7, all-ones weights": centre_gradient(single),
}
random_maps = []
for seed in range(8 if utils.grading_mode() else 32):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
    )
    for m in net:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    x = torch.randn(1, 16, 15, 15, requires_grad=True)  # a random input: ReLUs half on
    out = net(x)
    out[0, :, 7, 7].sum().backward()
    random_maps.append(x.grad[0].abs().sum(0))
maps[f"three 3×3 + ReLU, random weights\n(mean |gradient| of {len(random_maps)} nets)"] = (
    torch.stack(random_maps).mean(0)
)

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (title, g) in zip(axes[:3], maps.items(), strict=True):
    im = ax.imshow(g / g.max(), cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.04, label="share of the largest")
for title, g in maps.items():  # the middle row of each map, as a profile
    axes[3].plot(range(-7, 8), (g / g.max())[7], "-o", ms=3, label=title.split(",")[0])
axes[3].set(title="the middle row", xlabel="pixel offset from the centre", ylim=(0, 1.05))
axes[3].legend(fontsize=7)
axes[3].grid(alpha=0.3)
fig.tight_layout()
print("three 3×3, all ones, middle row:", maps["three 3×3, all-ones weights"][7, 4:11].tolist())


# %% [markdown]
# All three are exactly 7 pixels wide, as the formula says, but they are not the same.
# The single 7×7 filter with equal weights is flat: each pixel reaches the unit along one
# path. Through three 3×3 layers, a pixel at the centre reaches the top unit along many
# paths (through any of the middle-layer units that see it), while a corner pixel reaches
# it along only one. In one dimension the path counts are 1, 3, 6, 7, 6, 3, 1 (the row
# printed above is the 2-D version of that profile, scaled by 7); each extra layer
# convolves the profile with another small box, and repeated convolutions of boxes tend
# to a Gaussian (the central limit theorem). The random network shows the same hump.
# This is the *effective* receptive field (Luo et al., 2016): the centre of the
# theoretical field counts much more than its border, and a deep stack of small filters
# concentrates on the middle of the field. A learned 7×7 filter could learn such a hump
# too, or any other pattern: the stack cannot represent every 7×7 filter. What the stack
# gains is the subject of the next section.

# %% [markdown]
# ## 3. Fewer parameters, more non-linearities
#
# Take $C$ input and $C$ output channels at every layer. One $k \times k$ convolution
# has $k^2 C$ weights per filter (it spans all $C$ input channels) and $C$ filters. The
# lecture compares three 3×3 layers with one 7×7 layer:
#
# $$3 \cdot (3^2 C^2) = 27 C^2 \qquad\text{against}\qquad 7^2 C^2 = 49 C^2 ,$$
#
# about 45% fewer weights for the same receptive field (the lecture counts without
# biases). And where the 7×7 layer applies one ReLU, the stack applies three: its function
# is a composition of three non-linear steps, so it can carve the input space into more
# pieces than one linear filter followed by one ReLU.
#
# ## Exercise: `conv_stack_params` (4 points)
#
# Write `conv_stack_params(num_layers, kernel_size, channels, bias=False)`: the number of
# parameters of `num_layers` convolutions of `kernel_size`×`kernel_size`, each from
# `channels` to `channels` channels, with a bias per filter when `bias` is true. Return
# an exact int (for large channel counts a float loses digits).

# %% nbgrader={"grade_id": "conv_stack_params", "solution": true}
def conv_stack_params(num_layers: int, kernel_size: int, channels: int, bias: bool = False) -> int:
    """Parameters of num_layers k×k convolutions, each channels -> channels.

    Each layer: channels filters of channels × k × k weights, plus one bias per filter if
    bias. Returns an int.
    """
    ### BEGIN SOLUTION
    per_layer = channels * (channels * kernel_size * kernel_size + (1 if bias else 0))
    return num_layers * per_layer
    ### END SOLUTION


# %%
for c in (64, 256, 512):
    three, one = conv_stack_params(3, 3, c), conv_stack_params(1, 7, c)
    print(f"C = {c:>3}: three 3×3 {three:>10,}   one 7×7 {one:>10,}   ratio {three / one:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test_conv_stack_params", "locked": true, "points": 4}
# Tests for conv_stack_params (4 points).
from cnncourse.grading import check_number, fail, run_exercise

if "conv_stack_params" not in globals():
    fail("conv_stack_params", "not defined yet", hint="write the function and run its cell")


def _check_stack(n, k, c, bias):
    call = f"conv_stack_params({n}, {k}, {c}, bias={bias})"
    out = run_exercise(conv_stack_params, n, k, c, bias=bias, name=call)
    if isinstance(out, bool) or not isinstance(out, int):
        fail(
            call,
            f"expected an int, got {type(out).__name__} ({out!r})",
            hint="keep the arithmetic in ints (no /, ** 0.5 or math.pow)",
        )
    expected = n * shapes.conv_params(c, c, k, bias=bias)
    hint = (
        "each filter spans all the input channels: k·k·C weights per filter, and C "
        "filters per layer"
    )
    if bias and out == expected - (n - 1) * c:
        hint = "every layer has its own biases, one per filter"
    elif bias and out == expected - n * c:
        hint = "with bias=True, add one bias per filter"
    elif not bias and out == expected + n * c:
        hint = "with bias=False there are no biases"
    check_number(out, expected, call, hint=hint)


_check_stack(1, 3, 1, False)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _n, _k, _c, _bias in [
    (1, 5, 2, False),
    (2, 3, 5, False),
    (3, 3, 7, True),
    (1, 7, 3, True),
    (4, 1, 9, True),
    (2, 5, 1, True),
    (3, 3, 512, False),
    (5, 3, 4096, True),
    (1, 11, 96, True),
    (13, 3, 64, False),
]:
    _check_stack(_n, _k, _c, _bias)
_check_stack(3, 3, 2**40 + 1, True)  # exact arithmetic on huge counts
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: three 3×3 layers against one 7×7 layer
#
# Does the stack learn better than one large filter of the same cost? We train three
# small networks that share a first layer (3×3 convolution, batch norm, ReLU, 2×2 max
# pool) and a head (2×2 max pool, 2×2 average pool, a dense layer); only the middle
# differs:
#
# - **3×3 ×3**: three 3×3 convolutions from $C = 32$ to 32 channels, each with batch norm
#   and ReLU ($27 C^2$ weights);
# - **7×7**: one 7×7 convolution, with batch norm and ReLU, from 32 channels to $C' = 18$,
#   chosen so that its $49 \cdot 32 \cdot 18 = 28{,}224$ weights match the stack's
#   $27 \cdot 32^2 = 27{,}648$ (with $C' = 32$ it would have 81% more);
# - **3×3 ×3, linear**: the same three 3×3 convolutions with no ReLU between them (one
#   batch norm and ReLU at the end): exactly as many parameters as the first, but the
#   three convolutions now compose to one linear map, a 7×7 filter in disguise. It
#   isolates the effect of the non-linearities.
#
# Each gets the same data in the same order, the same optimiser (Adam, learning rate
# $10^{-3}$) and the same number of epochs. We use the offline `digits` dataset here
# (1,294 training images of 8×8 pixels, upsampled to 16×16): on `sprites` none of the
# three left chance level within the few seconds a notebook cell can spend (section 6
# shows how slowly even a VGG starts on sprites), and a comparison at chance says nothing.

# %%
EPOCHS = 1 if utils.grading_mode() else 2
digit_train, digit_val, _ = data.make_loaders("digits", 32, image_size=16)
print(
    f"digits: {len(digit_train.dataset)} training and {len(digit_val.dataset)} validation "
    f"images of shape {digit_train.dataset.image_shape}; {EPOCHS} epochs"
)


def conv_bn_relu(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU()]


def small_net(middle: str, c: int = 32) -> nn.Sequential:
    """First layer, then the middle ("3x3", "7x7" or "3x3 linear"), then the head."""
    if middle == "3x3":
        body = [*conv_bn_relu(c, c, 3), *conv_bn_relu(c, c, 3), *conv_bn_relu(c, c, 3)]
        c_out = c
    elif middle == "3x3 linear":  # no ReLU (or batch norm) between the three convolutions
        body = [
            nn.Conv2d(c, c, 3, padding=1),
            nn.Conv2d(c, c, 3, padding=1),
            *conv_bn_relu(c, c, 3),
        ]
        c_out = c
    else:
        c_out = round(27 * c / 49)  # 49·c·c_out ≈ 27·c², the stack's weights
        body = conv_bn_relu(c, c_out, 7)
    return nn.Sequential(
        *conv_bn_relu(1, c, 3),
        nn.MaxPool2d(2),  # (N, c, 8, 8)
        *body,
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),  # (N, c_out, 2, 2)
        nn.Flatten(),
        nn.Linear(c_out * 4, 10),
    )


def run_digits(middle: str) -> train.History:
    utils.seed_everything(0)  # the same initial weights for the same layers ...
    digit_train.generator.manual_seed(0)  # ... and the same batches in the same order
    return train.fit(
        small_net(middle),
        digit_train,
        digit_val,
        epochs=EPOCHS,
        lr=1e-3,
        verbose=False,
        progress=False,
    )


filter_runs = {}
for middle, label in (("3x3", "3×3 ×3"), ("7x7", "7×7"), ("3x3 linear", "3×3 ×3, linear")):
    net = small_net(middle)
    n_middle = sum(m.weight.numel() for m in net if isinstance(m, nn.Conv2d)) - 9 * 32
    filter_runs[label] = run_digits(middle)
    h = filter_runs[label]
    print(
        f"{label:<16} middle weights {n_middle:>6,}  total parameters "
        f"{shapes.count_params(net):>6,}  final train loss {h.train_loss[-1]:.3f}"
        f"  val acc {h.val_acc[-1]:.3f}  ({sum(h.epoch_time):.1f}s)"
    )

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.4))
for label, h in filter_runs.items():
    epochs_seen = range(1, h.epochs + 1)
    ax_loss.plot(epochs_seen, h.train_loss, "-o", label=label)
    ax_acc.plot(epochs_seen, h.val_acc, "-o", label=label)
ax_loss.set(title="training loss", xlabel="epoch")
ax_acc.set(title="validation accuracy", xlabel="epoch", ylim=(0, 1))
for ax in (ax_loss, ax_acc):
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()

# %% [markdown]
# **What came out.** The numbers are printed above the plot. In our run the stack of
# three 3×3 layers with ReLUs fitted the training data fastest: after two epochs its
# training loss was about 0.33, against about 0.49 for the same stack without the inner
# ReLUs and 0.59 for the single 7×7 layer. The linear stack, which has exactly the
# parameters of the first and differs only in the two missing ReLUs, sits between the
# two: the two inner ReLUs alone account for part of the gain. The rest separates the
# linear stack from the 7×7 layer, which compute the same kind of function (a linear 7×7
# filter, then batch norm and ReLU); they differ in how it is parametrised (three small
# filters in a row) and in width: at the same cost the stack keeps 32 output channels
# where the 7×7 layer has 18, so this experiment cannot tell those two apart. On the
# validation images the differences are small: 144 images, so one image is 0.7 points,
# and all three are above 95%, with the ReLU stack a few images ahead. One run, one seed,
# two epochs: treat it as a trend, not a measurement to three digits; run the cell with
# other seeds to see how much it moves.
#
# This is the lecture's argument in numbers: for the same receptive field and about the
# same number of weights, the deeper stack has more non-linear steps and learns faster
# here. It is also cheaper: with $C$ channels in and out, the stack costs $27 C^2$ weights
# and multiply-accumulates per pixel, where a 7×7 layer with the same channels costs
# $49 C^2$.

# %% [markdown]
# ## 4. VGG from a configuration table
#
# The paper describes all its networks in one table. Each row is one network; read it
# block by block from the input. "conv3-64" is a 3×3 convolution (stride 1, padding 1) with
# 64 output channels, followed by a ReLU; "maxpool" is a 2×2 max pool at stride 2; "FC"
# a dense layer. The networks are named by their number of weight layers.
#
# | network | layers | block 1 | block 2 | block 3 | block 4 | block 5 |
# |---|---|---|---|---|---|---|
# | A | 11 | conv3-64 | conv3-128 | conv3-256 ×2 | conv3-512 ×2 | conv3-512 ×2 |
# | A-LRN | 11 | conv3-64, LRN | conv3-128 | conv3-256 ×2 | conv3-512 ×2 | conv3-512 ×2 |
# | B | 13 | conv3-64 ×2 | conv3-128 ×2 | conv3-256 ×2 | conv3-512 ×2 | conv3-512 ×2 |
# | C | 16 | conv3-64 ×2 | conv3-128 ×2 | conv3-256 ×2, conv1-256 | conv3-512 ×2, conv1-512 | as 4 |
# | D | 16 | conv3-64 ×2 | conv3-128 ×2 | conv3-256 ×3 | conv3-512 ×3 | conv3-512 ×3 |
# | E | 19 | conv3-64 ×2 | conv3-128 ×2 | conv3-256 ×4 | conv3-512 ×4 | conv3-512 ×4 |
#
# Every block ends with a maxpool, and every network ends with the same head: FC-4096,
# FC-4096, FC-1000 and a softmax.
#
# A-LRN adds AlexNet's local response normalisation after the first layer (the paper
# found it did not help), and C puts a 1×1 convolution at the end of the last three
# blocks (D, with 3×3 instead, was better). Neither is in `cnncourse.models`, nor in
# this notebook's exercises: A, B, D and E are the four that everyone uses, as VGG-11,
# VGG-13, VGG-16 and VGG-19. The paper's parameter counts are 133, 133, 134, 138 and 144
# million for A to E (A and A-LRN the same).
#
# Because every convolution is 3×3 with padding 1 and every block ends with the same
# pool, a block is described by two numbers: how many convolutions, and how many output
# channels. A network is a list of blocks.
#
# ## Exercise: the configuration table (3 points)
#
# Define `VGG_TABLE`, a dict: for each of the networks `"A"`, `"B"`, `"D"` and `"E"`, a
# tuple of blocks from the input up, each block a pair `(number of 3×3 convolutions,
# output channels)`. The dense head is not part of it.

# %% nbgrader={"grade_id": "vgg_table", "solution": true}
### BEGIN SOLUTION
VGG_TABLE = {
    "A": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "B": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "D": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "E": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test_vgg_table", "locked": true, "points": 3}
# Tests for VGG_TABLE (3 points).
from cnncourse.grading import fail
from cnncourse.models.vgg import VGG_CONFIGS as _REFERENCE_CONFIGS


def _check_table_format(table):
    if not isinstance(table, dict):
        fail("VGG_TABLE", f"expected a dict, got {type(table).__name__}")
    for _key in "ABDE":
        if _key not in table:
            fail("VGG_TABLE", f"no entry {_key!r}", hint="keep the keys 'A', 'B', 'D' and 'E'")
        _blocks = table[_key]
        _ok = (
            isinstance(_blocks, (tuple, list))
            and len(_blocks) > 0
            and all(
                isinstance(_b, (tuple, list))
                and len(_b) == 2
                and all(isinstance(_v, int) and not isinstance(_v, bool) for _v in _b)
                for _b in _blocks
            )
        )
        if not _ok:
            fail(
                f"VGG_TABLE[{_key!r}]",
                f"expected a tuple of (num_convs, out_channels) pairs of ints, got {_blocks!r}",
            )


if "VGG_TABLE" not in globals():
    fail("VGG_TABLE", "not defined yet", hint="fill in the table and run its cell")
_check_table_format(VGG_TABLE)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _key, _name in (("A", "vgg11"), ("B", "vgg13"), ("D", "vgg16"), ("E", "vgg19")):
    _mine = tuple(tuple(_b) for _b in VGG_TABLE[_key])
    _ref = _REFERENCE_CONFIGS[_name]
    if len(_mine) != len(_ref):
        fail(
            f"VGG_TABLE[{_key!r}]",
            f"expected {len(_ref)} blocks, got {len(_mine)}",
            hint="a block ends at each maxpool row of the table: leave out the dense head",
        )
    for _i, (_m, _r) in enumerate(zip(_mine, _ref, strict=True), start=1):
        if _m[1] != _r[1]:
            fail(
                f"VGG_TABLE[{_key!r}], block {_i}",
                f"expected {_r[1]} output channels, got {_m[1]}",
                hint="the channels are the number after 'conv3-'",
            )
        if _m[0] != _r[0]:
            fail(
                f"VGG_TABLE[{_key!r}], block {_i}",
                f"expected {_r[0]} convolutions, got {_m[0]}",
                hint=f"count the conv3 layers of block {_i} in column {_key} "
                "(a network's name counts its convolutions plus the 3 dense layers)",
            )
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise: the `VGGNet` module (6 + 12 points)
#
# Now build any VGG from such a list of blocks. Write `VGGNet(config, num_classes=1000,
# in_channels=3, batch_norm=False, dropout=0.5, hidden=4096, pool_size=7)`, an
# `nn.Module` with two `nn.Sequential` parts, `self.features` and `self.head`, as in the
# docstring. Two details come from torchvision's version, which the reference
# `cnncourse.models.vgg.VGG` follows:
#
# - **`nn.AdaptiveAvgPool2d(pool_size)`** opens the head. It averages the feature maps
#   down (or copies them up) to `pool_size`×`pool_size`, whatever their size, so that the
#   first dense layer always gets `C · pool_size²` numbers. At 224×224 the features are
#   already 7×7 and it does nothing; it lets the same network accept other image sizes.
# - **Batch norm** (Ioffe and Szegedy, 2015, a year after VGG) is optional: with
#   `batch_norm=True`, an `nn.BatchNorm2d` goes between each convolution and its ReLU.
#   The convolutions keep their biases either way (redundant before batch norm, but it
#   keeps the layers equal to torchvision's).
#
# Weight initialisation is up to you (the tests copy the reference's weights in); if you
# want to train your module, `cnncourse.models._common.init_weights(self)` at the end of
# `__init__` is what the reference does. If `config` is empty, raise a `ValueError` whose
# message names `config`.
#
# **How it is graded.** The first test cell (6 points) checks the output shape, the
# parameter counts and the layer order for the paper's networks A, B, D and E, with and
# without batch norm (built on the `meta` device, so even VGG-19's 144 million parameters
# take no memory), and for small networks of its own. The second (12 points) copies the
# reference's weights into yours with `grading.copy_weights` (by position, so register the
# layers in the docstring's order) and compares outputs in eval and in train mode, in
# float32 and float64, and the gradients.

# %% nbgrader={"grade_id": "vgg_module", "solution": true}
class VGGNet(nn.Module):
    """VGG from a configuration: (N, in_channels, H, W) -> logits (N, num_classes).

    VGGNet(config, num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5,
           hidden=4096, pool_size=7)

    config: a sequence of blocks (num_convs, out_channels), e.g. VGG_TABLE["D"].

    Layers, registered in this order (the tests copy reference weights in by position):

    self.features, an nn.Sequential of one nn.Sequential per block, each holding
        num_convs times: nn.Conv2d(c, out_channels, 3, padding=1) (with its bias),
                         [nn.BatchNorm2d(out_channels) if batch_norm], nn.ReLU()
        then nn.MaxPool2d(2, stride=2)             (N, out_channels, H / 2, W / 2)
        (c is in_channels for the first convolution, then the previous out_channels)
    self.head, an nn.Sequential:
        nn.AdaptiveAvgPool2d(pool_size)            (N, C_last, pool_size, pool_size)
        nn.Flatten()                               (N, C_last * pool_size**2)
        nn.Linear(C_last * pool_size**2, hidden), nn.ReLU(), nn.Dropout(dropout)
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout)
        nn.Linear(hidden, num_classes)             (N, num_classes), no activation

    Raises:
        ValueError: if config is empty (the message names config).
    """

    ### BEGIN SOLUTION
    def __init__(
        self,
        config,
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        hidden: int = 4096,
        pool_size: int = 7,
    ) -> None:
        super().__init__()
        if len(config) == 0:
            raise ValueError("config: expected at least one (num_convs, out_channels) block")
        blocks, channels = [], in_channels
        for num_convs, out_channels in config:
            layers = []
            for _ in range(num_convs):
                layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ReLU(inplace=True))
                channels = out_channels
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))  # halves H and W
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pool_size),  # (N, C, pool_size, pool_size) for any H, W
            nn.Flatten(),
            nn.Linear(channels * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        cnncourse.models._common.init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C_last, H / 2^B, W / 2^B)
        return self.head(x)  # (N, num_classes)

    ### END SOLUTION


# %%
net = VGGNet(((1, 8), (2, 16)), num_classes=5, hidden=32, pool_size=2)
x = torch.zeros(2, 3, 32, 32)
for i, block in enumerate(net.features):
    x = block(x)
    print(f"block {i + 1}: {tuple(x.shape)}")
print("logits:", tuple(net.head(x).shape), " parameters:", shapes.count_params(net))

# %% [markdown]
# The first test cell checks the shapes, the parameter counts and the order of the
# layers (6 points). Its hidden part builds the paper's networks A, B, D and E with and
# without batch norm, and checks VGG-16's 138,357,544 parameters.

# %% nbgrader={"grade": true, "grade_id": "test_vgg_shapes", "locked": true, "points": 6}
# Tests for VGGNet: output shape, dtype, parameter counts and layer order (6 points).
from cnncourse.grading import check_number, check_raises, check_shape, fail, run_exercise
from cnncourse.models.vgg import VGG as _RefVGG
from cnncourse.models.vgg import VGG_CONFIGS as _REFERENCE_CONFIGS

if "VGGNet" not in globals():
    fail("VGGNet", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(40)


def _call(config, kwargs):
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"VGGNet({config}{', ' if args else ''}{args})"


def _build(config, kwargs, meta=False):
    if meta:
        with torch.device("meta"):
            return run_exercise(VGGNet, config, name=_call(config, kwargs), **kwargs)
    return run_exercise(VGGNet, config, name=_call(config, kwargs), **kwargs)


def _check_structure(config, kwargs, meta=False):
    """Parameter count and the shapes of all weights and buffers, in order."""
    call = _call(config, kwargs)
    mine = _build(config, kwargs, meta)
    if not isinstance(mine, nn.Module):
        fail(call, f"expected an nn.Module, got {type(mine).__name__}")
    if meta:
        with torch.device("meta"):
            ref = _RefVGG(config, **kwargs)
    else:
        ref = _RefVGG(config, **kwargs)
    check_number(
        shapes.count_params(mine),
        shapes.count_params(ref),
        f"number of parameters of {call}",
        hint="compare your layers with the docstring: 3×3 convolutions with biases, "
        "each reading the previous layer's channels, and the dense head reading "
        "C_last · pool_size² numbers",
    )
    mine_shapes = [(n, tuple(t.shape)) for n, t in mine.state_dict().items()]
    ref_shapes = [(n, tuple(t.shape)) for n, t in ref.state_dict().items()]
    for i, ((n_m, s_m), (n_r, s_r)) in enumerate(zip(mine_shapes, ref_shapes, strict=False)):
        if s_m != s_r:
            fail(
                call,
                f"weight #{i} ({n_m}) has shape {s_m}, the reference's ({n_r}) {s_r}",
                hint="register the layers in the docstring's order (batch norm between each "
                "convolution and its ReLU)",
            )
    if len(mine_shapes) != len(ref_shapes):
        fail(
            call,
            f"{len(mine_shapes)} weight and buffer tensors, the reference has {len(ref_shapes)}",
            hint="check for a missing or extra layer or batch norm",
        )
    return mine


def _check_output(config, kwargs, x):
    call = _call(config, kwargs)
    model = _check_structure(config, kwargs).eval()
    try:
        with torch.no_grad():
            out = run_exercise(lambda x: model(x), x, name=f"{call}(x)")
    except RuntimeError as err:
        fail(
            f"{call}(x) for x of shape {tuple(x.shape)}",
            f"failed ({err})",
            hint="compare each layer with the docstring: 3×3 convolutions with padding 1 keep H "
            "and W, and the head starts with nn.AdaptiveAvgPool2d(pool_size), so that any "
            "feature map size reaches the first dense layer as C · pool_size² numbers",
        )
    check_shape(
        out, (len(x), kwargs.get("num_classes", 1000)), f"{call}(x) for x of shape {tuple(x.shape)}"
    )
    if out.dtype != x.dtype:
        fail(f"{call}(x)", f"expected dtype {x.dtype}, got {out.dtype}")


_check_output(
    ((1, 8), (2, 16)),
    {"num_classes": 5, "hidden": 32, "pool_size": 2},
    torch.randn(2, 3, 32, 32, generator=_gen),
)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _attr in ("features", "head"):
    _m = _build(((1, 4),), {"num_classes": 3, "hidden": 8, "pool_size": 1})
    if not isinstance(getattr(_m, _attr, None), nn.Sequential):
        fail(
            "VGGNet(((1, 4),), ...)",
            f"expected an nn.Sequential attribute `{_attr}`",
            hint="register the layers in self.features and self.head, as the docstring asks",
        )
# Small networks: batch norm, one input channel, a batch of one, non-square input, an input
# whose feature maps are not pool_size × pool_size.
_check_output(
    ((2, 6), (1, 12), (3, 10)),
    {"num_classes": 7, "in_channels": 1, "batch_norm": True, "hidden": 16, "pool_size": 3},
    torch.randn(1, 1, 48, 40, generator=_gen),
)
_check_output(
    ((1, 4), (1, 8), (1, 8)),
    {"num_classes": 2, "in_channels": 2, "hidden": 24, "pool_size": 2, "dropout": 0.2},
    torch.randn(3, 2, 64, 64, generator=_gen),
)
_check_output(
    ((3, 5),),
    {"num_classes": 4, "batch_norm": True, "hidden": 10, "pool_size": 1},
    torch.randn(2, 3, 7, 9, generator=_gen),
)
# The paper's networks A, B, D, E, with and without batch norm (on the meta device).
for _name in ("vgg11", "vgg13", "vgg16", "vgg19"):
    for _bn in (False, True):
        _check_structure(_REFERENCE_CONFIGS[_name], {"batch_norm": _bn}, meta=True)
with torch.device("meta"):
    _vgg16 = run_exercise(VGGNet, _REFERENCE_CONFIGS["vgg16"], name="VGGNet(D)")
check_number(shapes.count_params(_vgg16), 138_357_544, "parameters of VGG-16 (configuration D)")
_check_structure(
    _REFERENCE_CONFIGS["vgg16"],
    {"num_classes": 10, "in_channels": 1, "hidden": 512, "pool_size": 1},
    meta=True,
)
check_raises(VGGNet, (), argument="config", why="a VGG needs at least one block")
### END HIDDEN TESTS

# %% [markdown]
# The second test cell checks what your module computes (12 points): with the
# reference's weights copied in, the features and the logits must equal the
# reference's, in eval mode and in train mode (batch norm then uses the batch's
# statistics, and dropout draws its masks: both passes start from the same seed, so the
# masks are the same), in float64 after `.double()`, on large inputs, and the gradients
# with respect to the input and every parameter.

# %% nbgrader={"grade": true, "grade_id": "test_vgg_function", "locked": true, "points": 12}
# Tests for VGGNet by function: with the reference's weights copied in, your model must
# compute the reference's logits (12 points).
from cnncourse.grading import check_grads, check_tensor, copy_weights, fail, run_exercise
from cnncourse.models.vgg import VGG as _RefVGG

if "VGGNet" not in globals():
    fail("VGGNet", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(41)


def _pair(config, kwargs, gen):
    """The reference with random weights, biases and batch-norm statistics, and the
    student's model with a copy."""
    ref = _RefVGG(config, **kwargs)
    with torch.no_grad():
        for p in ref.parameters():
            scale = p[0].numel() ** -0.5 * 1.4 if p.dim() > 1 else 0.3
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    mine = run_exercise(VGGNet, config, name=f"VGGNet({config}, **{kwargs})", **kwargs)
    return ref, copy_weights(ref, mine)


def _label(config, kwargs, mode, inputs=""):
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return f"VGGNet({config}{args}) in {mode} mode{inputs}, reference weights copied in"


def _forward(model, x, label):
    try:
        torch.manual_seed(7)  # the same dropout masks for both models
        return run_exercise(lambda x: model(x), x, name=label)
    except RuntimeError as err:
        hint = (
            "keep the input's dtype: nothing in forward may call .float()"
            if x.dtype == torch.float64
            else "compare each layer with the docstring (kernel sizes, padding, the head)"
        )
        fail(label, f"the forward pass failed ({err})", hint=hint)


def _compare(mine, ref, x, label, train_mode):
    mine.train(train_mode)
    ref.train(train_mode)
    with torch.no_grad():
        out = _forward(mine, x, label)
        torch.manual_seed(7)
        expected = ref(x)
        if isinstance(getattr(mine, "features", None), nn.Module):
            mine.eval()
            ref.eval()
            feats, ref_feats = mine.features(x), ref.features(x)
            if isinstance(feats, torch.Tensor) and feats.shape != ref_feats.shape:
                fail(
                    f"{label}: self.features(x)",
                    f"expected shape {tuple(ref_feats.shape)}, got {tuple(feats.shape)}",
                    hint="a 3×3 convolution with padding 1 keeps "
                    "H and W; only the 2×2 max pool at stride 2 halves them",
                )
            try:
                check_tensor(
                    feats,
                    ref_feats,
                    f"{label}: self.features(x) in eval mode",
                    rtol=1e-4,
                    atol=1e-4,
                )
            except AssertionError as err:
                fail(
                    f"{label}: self.features(x) in eval mode",
                    str(err).split(": ", 1)[-1],
                    hint="compare each block with the docstring: convolution, batch norm (if "
                    "batch_norm), ReLU, in that order, and the max pool at the end",
                )
            label += " (self.features(x) matches, so look at self.head)"
    check_tensor(out, expected, f"{label}: the logits", rtol=1e-4, atol=1e-4)


_config, _kwargs = ((1, 8), (2, 16)), {"num_classes": 5, "hidden": 32, "pool_size": 2}
_ref, _mine = _pair(_config, _kwargs, _gen)
_compare(
    _mine, _ref, torch.randn(4, 3, 32, 32, generator=_gen), _label(_config, _kwargs, "eval"), False
)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_CASES = [
    (((1, 8), (2, 16)), {"num_classes": 5, "hidden": 32, "pool_size": 2}, (4, 3, 32, 32)),
    (
        ((2, 6), (1, 12)),
        {"num_classes": 7, "batch_norm": True, "hidden": 16, "pool_size": 3},
        (3, 3, 40, 36),
    ),
    (
        ((1, 4), (1, 8), (2, 8)),
        {
            "num_classes": 3,
            "in_channels": 1,
            "batch_norm": True,
            "dropout": 0.3,
            "hidden": 20,
            "pool_size": 1,
        },
        (5, 1, 32, 32),
    ),
    (
        ((2, 5), (2, 5)),
        {"num_classes": 4, "in_channels": 2, "dropout": 0.0, "hidden": 12, "pool_size": 4},
        (2, 2, 24, 24),
    ),
]
for _config, _kwargs, _shape in _CASES:
    _ref, _mine = _pair(_config, _kwargs, _gen)
    _x = torch.randn(*_shape, generator=_gen)
    for _train in (False, True):
        _compare(_mine, _ref, _x, _label(_config, _kwargs, "train" if _train else "eval"), _train)
# float64 after .double(), with and without batch norm
for _config, _kwargs, _shape in _CASES[:2]:
    _ref, _mine = _pair(_config, _kwargs, _gen)
    _ref.double()
    _mine.double()
    _x = torch.randn(*_shape, generator=_gen, dtype=torch.float64)
    _compare(_mine, _ref, _x, _label(_config, _kwargs, "eval", ", .double(), float64 input"), False)
# large inputs
_config, _kwargs, _shape = _CASES[1]
_ref, _mine = _pair(_config, _kwargs, _gen)
_x = 1000 * torch.randn(*_shape, generator=_gen)
_compare(_mine, _ref, _x, _label(_config, _kwargs, "eval", " on large inputs"), False)
# gradients with respect to the input and every parameter, in train mode
for _config, _kwargs, _shape in _CASES[1:3]:
    _ref, _mine = _pair(_config, _kwargs, _gen)
    _ref.train()
    _mine.train()
    _xm = torch.randn(*_shape, generator=_gen, requires_grad=True)
    _xr = _xm.detach().clone().requires_grad_(True)
    _pairs = {"the input": (_xm, _xr)}
    for (_n, _pm), _pr in zip(_mine.named_parameters(), _ref.parameters(), strict=True):
        _pairs[f"parameter {_n}"] = (_pm, _pr)
    _lab = _label(_config, _kwargs, "train")
    _out = _forward(_mine, _xm, _lab)
    torch.manual_seed(7)
    check_grads(_out, _ref(_xr), _pairs, _lab, generator=_gen, rtol=1e-4, atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# With your module, the parameter counts of the paper's four networks (built on the meta
# device). The paper rounds them to 133, 133, 138 and 144 million; ours are exact.

# %%
with torch.device("meta"):
    for key, name in (("A", "VGG-11"), ("B", "VGG-13"), ("D", "VGG-16"), ("E", "VGG-19")):
        plain = shapes.count_params(VGGNet(VGG_TABLE[key]))
        with_bn = shapes.count_params(VGGNet(VGG_TABLE[key], batch_norm=True))
        print(f"{key} {name}: {plain:>12,} parameters, {with_bn:>12,} with batch norm")


# %% [markdown]
# ## 5. Where the memory and the parameters are
#
# Training a network needs memory for two things: its parameters (and, for the
# optimiser, their gradients and Adam's two running averages: four copies), and the
# *activations*, the output of every layer for every image in the batch, which the
# backward pass needs. Both are counted in numbers; in float32 each takes 4 bytes.
#
# ## Exercise: `vgg_memory` (8 points)
#
# Write `vgg_memory(config, image_size=224, in_channels=3, num_classes=1000,
# hidden=4096, pool_size=7)` for a VGG without batch norm and square
# `image_size`×`image_size` images. It returns a list with one row per convolution, per
# max pool and per dense layer, from the input up, each row a tuple
# `(name, activations, params)`:
#
# - `name`: `"conv{b}_{i}"` for the `i`-th convolution of block `b`, `"pool{b}"` for the
#   pool that ends block `b` (both counted from 1), `"fc1"`, `"fc2"`, `"fc3"` for the
#   dense layers;
# - `activations`: the number of values in the layer's output for one image
#   (channels × height × width, or the number of units);
# - `params`: its number of parameters, weights and biases (0 for a pool).
#
# Leave out the ReLUs and the dropout (in torchvision's VGG the ReLUs work in place and
# store nothing new), the flatten and the adaptive pool. Remember that the first dense
# layer reads `C_last · pool_size²` numbers, whatever the size of the last feature map
# (the adaptive pool). The 2×2 max pool at stride 2 rounds down. If the image is too
# small for the pools (a feature map would have no pixel left), raise a `ValueError`
# whose message names `image_size`.
#
# It is graded in two parts on networks and image sizes you have not seen, checked
# against `shapes.summary` on the reference model: the convolution and pool rows (5
# points) and the dense rows (3 points).

# %% nbgrader={"grade_id": "vgg_memory", "solution": true}
def vgg_memory(
    config,
    image_size: int = 224,
    in_channels: int = 3,
    num_classes: int = 1000,
    hidden: int = 4096,
    pool_size: int = 7,
) -> list[tuple[str, int, int]]:
    """[(name, activations, params), ...] for every conv, max pool and dense layer of
    VGGNet(config, num_classes, in_channels, batch_norm=False, hidden=hidden,
    pool_size=pool_size) on one in_channels × image_size × image_size image.

    Names: "conv{b}_{i}", "pool{b}" (block b, convolution i, from 1), "fc1", "fc2", "fc3".
    Activations: values in the layer's output for one image. Params: weights + biases.

    Raises:
        ValueError: if image_size is too small for the pools (the message names it).
    """
    ### BEGIN SOLUTION
    rows, size, channels = [], image_size, in_channels
    for b, (num_convs, out_channels) in enumerate(config, start=1):
        for i in range(1, num_convs + 1):
            params = out_channels * (channels * 3 * 3 + 1)  # 3×3 filters over all channels
            channels = out_channels
            rows.append((f"conv{b}_{i}", channels * size * size, params))  # padding 1: same size
        size //= 2  # 2×2 max pool, stride 2, rounding down
        if size < 1:
            raise ValueError(f"image_size={image_size}: too small for {len(config)} pools")
        rows.append((f"pool{b}", channels * size * size, 0))
    widths = [channels * pool_size * pool_size, hidden, hidden, num_classes]
    for j in range(3):
        rows.append((f"fc{j + 1}", widths[j + 1], widths[j + 1] * (widths[j] + 1)))
    return rows
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_memory_features", "locked": true, "points": 5}
# Tests for vgg_memory: the convolution and pool rows (5 points).
from cnncourse.grading import check_raises, fail, run_exercise
from cnncourse.models.vgg import VGG as _RefVGG

if "vgg_memory" not in globals():
    fail("vgg_memory", "not defined yet", hint="write the function and run its cell")


def _reference_rows(config, image_size, in_channels, num_classes, hidden, pool_size):
    """[(name, activations, params)] measured by shapes.summary on the reference model."""
    model = _RefVGG(config, num_classes, in_channels, hidden=hidden, pool_size=pool_size)
    summary = shapes.summary(model, (in_channels, image_size, image_size), verbose=False)
    rows, conv, block, fc = [], 0, 1, 0
    for r in summary:
        if r.kind == "Conv2d":
            conv += 1
            name = f"conv{block}_{conv}"
        elif r.kind == "MaxPool2d":
            name, block, conv = f"pool{block}", block + 1, 0
        elif r.kind == "Linear":
            fc += 1
            name = f"fc{fc}"
        else:
            continue
        rows.append((name, math.prod(r.output_shape), r.params))
    return rows


def _memory_call(args):
    config, image_size, in_channels, num_classes, hidden, pool_size = args
    call = (
        f"vgg_memory({config}, image_size={image_size}, in_channels={in_channels}, "
        f"num_classes={num_classes}, hidden={hidden}, pool_size={pool_size})"
    )
    out = run_exercise(
        vgg_memory,
        config,
        image_size=image_size,
        in_channels=in_channels,
        num_classes=num_classes,
        hidden=hidden,
        pool_size=pool_size,
        name=call,
    )
    if not isinstance(out, (list, tuple)):
        fail(call, f"expected a list of (name, activations, params), got {type(out).__name__}")
    for row in out:
        ok = (
            isinstance(row, (tuple, list))
            and len(row) == 3
            and isinstance(row[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in row[1:])
        )
        if not ok:
            fail(
                call,
                f"expected rows (name, activations, params) of a str and two ints, got {row!r}",
            )
    return call, [tuple(row) for row in out]


def _check_memory(args, part):
    call, mine = _memory_call(args)
    expected = _reference_rows(*args)
    want = [r for r in expected if (r[0].startswith("fc")) == (part == "dense")]
    got = {r[0]: r for r in mine}
    for name, acts, params in want:
        if name not in got:
            fail(
                call,
                f"no row named {name!r} (your rows: {[r[0] for r in mine]})",
                hint="one row per convolution, per pool and per dense layer, named as the "
                "docstring says",
            )
        _, my_acts, my_params = got[name]
        if my_acts != acts:
            hint = {
                "features": "a 3×3 convolution with padding 1 keeps the size; each pool "
                "halves it, rounding down; count channels × height × width",
                "dense": "a dense layer's output has one value per unit",
            }[part]
            fail(f"{call}, row {name}", f"expected {acts} activations, got {my_acts}", hint=hint)
        if my_params != params:
            hint = {
                "features": "a convolution has out_channels · (in_channels · 3 · 3 + 1) "
                "parameters: don't forget the biases; a pool has none",
                "dense": "fc1 reads C_last · pool_size² numbers (the adaptive pool), "
                "and every dense layer has one bias per unit",
            }[part]
            fail(f"{call}, row {name}", f"expected {params} parameters, got {my_params}", hint=hint)


_check_memory((((1, 4), (2, 8)), 32, 3, 10, 16, 2), "features")
print("visible checks passed")
### BEGIN HIDDEN TESTS
_MEMORY_CASES = [
    (((2, 6), (1, 12), (3, 10)), 40, 1, 7, 20, 5),
    (((1, 5), (1, 9)), 37, 2, 3, 12, 3),  # odd sizes: 37 -> 18 -> 9
    (((3, 4),), 9, 3, 2, 8, 1),
    (((1, 3), (2, 6), (2, 6), (1, 8), (1, 8)), 50, 3, 5, 10, 2),  # 50 -> 25 -> 12 -> 6 -> 3 -> 1
    (((1, 2), (1, 2)), 4, 4, 2, 4, 1),  # down to 1×1
]
for _args in _MEMORY_CASES:
    _check_memory(_args, "features")
for _small, _config in ((7, ((1, 4),) * 3), (1, ((1, 4),)), (31, ((1, 2),) * 5)):
    check_raises(
        vgg_memory,
        _config,
        image_size=_small,
        argument="image_size",
        why=f"a {_small}×{_small} image has no pixel left after {len(_config)} pools",
    )
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_memory_dense", "locked": true, "points": 3}
# Tests for vgg_memory: the dense rows (3 points). _check_memory, _reference_rows: see the
# cell before (repeated here so that this cell runs on its own).
from cnncourse.grading import fail, run_exercise
from cnncourse.models.vgg import VGG as _RefVGG

if "vgg_memory" not in globals():
    fail("vgg_memory", "not defined yet", hint="write the function and run its cell")


def _dense_rows(config, in_channels, num_classes, hidden, pool_size):
    c_last = config[-1][1]
    widths = [c_last * pool_size * pool_size, hidden, hidden, num_classes]
    return [(f"fc{j + 1}", widths[j + 1], widths[j + 1] * (widths[j] + 1)) for j in range(3)]


def _check_dense(config, image_size, in_channels, num_classes, hidden, pool_size):
    call = (
        f"vgg_memory({config}, image_size={image_size}, in_channels={in_channels}, "
        f"num_classes={num_classes}, hidden={hidden}, pool_size={pool_size})"
    )
    out = run_exercise(
        vgg_memory,
        config,
        image_size=image_size,
        in_channels=in_channels,
        num_classes=num_classes,
        hidden=hidden,
        pool_size=pool_size,
        name=call,
    )
    if not isinstance(out, (list, tuple)) or not all(
        isinstance(r, (tuple, list)) and len(r) == 3 for r in out
    ):
        fail(call, "expected a list of (name, activations, params) rows")
    got = {r[0]: tuple(r) for r in out}
    for name, acts, params in _dense_rows(config, in_channels, num_classes, hidden, pool_size):
        if name not in got:
            fail(call, f"no row named {name!r}", hint="name the dense layers fc1, fc2, fc3")
        if got[name][1] != acts:
            fail(
                f"{call}, row {name}",
                f"expected {acts} activations, got {got[name][1]}",
                hint="a dense layer's output has one value per unit",
            )
        if got[name][2] != params:
            fail(
                f"{call}, row {name}",
                f"expected {params} parameters, got {got[name][2]}",
                hint="fc1 reads C_last · pool_size² numbers whatever the size of the last "
                "feature map (the adaptive pool), and every dense layer has one bias per "
                "unit",
            )


_check_dense(((1, 4), (2, 8)), 32, 3, 10, 16, 2)
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Measured on a reference model once, to check this cell's own formula.
_model = _RefVGG(((1, 5), (1, 9)), 3, 2, hidden=12, pool_size=3)
_measured = [
    r.params for r in shapes.summary(_model, (2, 37, 37), verbose=False) if r.kind == "Linear"
]
assert _measured == [r[2] for r in _dense_rows(((1, 5), (1, 9)), 2, 3, 12, 3)]
for _args in [
    (((2, 6), (1, 12), (3, 10)), 40, 1, 7, 20, 5),  # features 5×5 = pool_size
    (((1, 5), (1, 9)), 37, 2, 3, 12, 3),  # features 9×9, pooled to 3×3
    (((1, 3), (2, 6), (2, 6), (1, 8), (1, 8)), 50, 3, 5, 10, 2),  # 1×1 to 2×2
    (((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), 224, 3, 1000, 4096, 7),
]:
    _check_dense(*_args)
_rows = run_exercise(
    vgg_memory, ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), name="vgg_memory(VGG-16)"
)
_dense_params = sum(r[2] for r in _rows if str(r[0]).startswith("fc"))
if _dense_params != 123_642_856:
    fail(
        "vgg_memory(VGG-16)",
        f"the dense layers hold 123,642,856 parameters, yours {_dense_params:,}",
        hint="fc1 is 25,088 -> 4096, fc2 4096 -> 4096, fc3 4096 -> 1000",
    )
### END HIDDEN TESTS

# %% [markdown]
# Now VGG-16 on one 224×224 image, from your function. The left chart shows the
# activations of each layer, the right one its parameters.

# %%
rows = vgg_memory(VGG_TABLE["D"])
names = [r[0] for r in rows]
activations = [r[1] for r in rows]
params = [r[2] for r in rows]
fig, (ax_a, ax_p) = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
colour = ["C0" if n.startswith("conv") else "C2" if n.startswith("pool") else "C1" for n in names]
ax_a.barh(range(len(rows)), [a / 1e6 for a in activations], color=colour)
ax_p.barh(range(len(rows)), [p / 1e6 for p in params], color=colour)
ax_a.set(
    yticks=range(len(rows)),
    yticklabels=names,
    xlabel="activations per image (millions)",
    title="memory: activations",
)
ax_p.set(xlabel="parameters (millions)", title="parameters")
ax_a.invert_yaxis()
for ax in (ax_a, ax_p):
    ax.grid(axis="x", alpha=0.3)
fig.suptitle("VGG-16 on one 224×224 image (blue: conv, green: pool, orange: dense)")
fig.tight_layout()

total_acts, total_params = sum(activations), sum(params)
conv_acts = sum(a for n, a in zip(names, activations, strict=True) if n.startswith("conv"))
early = sum(
    a for n, a in zip(names, activations, strict=True) if not n.startswith("fc") and n[4] in "12"
)  # conv1_1 ... pool2
print(
    f"activations: {total_acts:,} per image = {total_acts * 4 / 2**20:.1f} MiB in float32 "
    f"(forward only); blocks 1 and 2: {early / total_acts:.0%}"
)
print(
    f"  with the input image and a separate output for every ReLU (not in place): "
    f"{total_acts + 3 * 224 * 224 + conv_acts + 2 * 4096:,}"
)
print(
    f"parameters: {total_params:,} = {total_params * 4 / 2**20:.0f} MiB in float32; "
    f"fc1 alone: {params[names.index('fc1')]:,} ({params[names.index('fc1')] / total_params:.0%})"
)
print(
    f"convolutions: {sum(p for n, p in zip(names, params, strict=True) if n.startswith('conv')):,}"
    " parameters"
)

# %% [markdown]
# **What the chart says.** The blue bars on the left are largest at the top: the first
# two convolutions output 64 maps of 224×224 each, 3.2 million values per image, and
# blocks 1 and 2 together hold nearly three quarters of all activations (the share is
# printed above). Their parameters are tiny (1,792 and 36,928). On the right it is the
# other way round: the first dense layer, 25,088 → 4096, holds 102.8 million of the
# 138.4 million parameters, about three quarters, and all 13 convolutions together
# hold 14.7 million. This is the famous summary of VGG: *most memory in the early
# convolutions, most parameters in the first dense layer*, and most arithmetic in the
# convolutions (each weight of a convolution is used at every pixel; each weight of
# a dense layer once per image).
#
# How much memory is that? Adding up the rows gives about 15.1 million values, 58 MiB in
# float32, per image and for the forward pass only; training keeps them for the backward
# pass and needs about as much again for their gradients, and a batch of 64 images
# multiplies everything by 64. A much-copied lecture slide (CS231n) quotes about 24
# million values (93 MB) for the same network: the exact figure depends on what one
# counts. With the input image and a separate output tensor for every ReLU (as when they
# do not work in place), it comes to 28.8 million. The parameters take 528 MiB in
# float32, and training with Adam keeps three more copies of them (the gradients and two
# running averages).
#
# Later networks took the hint: GoogLeNet and ResNet replace the big dense layers by a
# global average pool (notebook 05 introduces it), and shrink the image quickly in their
# first layers (a "stem"), where the activations are largest.

# %% [markdown]
# ## 6. Training a small VGG
#
# `models.vgg_small()` is VGG-11's pattern shrunk for 32×32 images: four blocks
# (1×16, 1×32, 2×64, 2×128 convolutions; 32 → 16 → 8 → 4 → 2 pixels) and a head of
# 512 → 256 → 256 → 10 units with dropout 0.5, as in the paper, and no batch norm, as in
# the paper. We train it on `sprites`: ten kinds of shape, each at a random position,
# size and rotation, in a random colour on a graded background with a distracting blob.
# (Under nbgrader the training is cut to a few batches.)

# %%
NUM_EVAL = 100 if utils.grading_mode() else 500  # grading: a quick look, nothing depends on it
sprite_train, sprite_val, _ = data.make_loaders("sprites", 32, num_train=1600, num_eval=NUM_EVAL)
sprite_set = sprite_val.dataset
plot.show_images(
    sprite_set.images[:10], sprite_set.labels[:10], dataset=sprite_set, title="sprites"
)
VGG_EPOCHS = 1 if utils.grading_mode() else 4


def run_sprites(make) -> train.History:
    utils.seed_everything(0)
    sprite_train.generator.manual_seed(0)
    return train.fit(
        make(), sprite_train, sprite_val, epochs=VGG_EPOCHS, lr=1e-3, verbose=False, progress=False
    )


vgg_runs = {"plain (paper)": run_sprites(models.vgg_small)}
h = vgg_runs["plain (paper)"]
print(
    f"plain vgg_small: train loss per epoch {[round(v, 3) for v in h.train_loss]}, "
    f"validation accuracy {[round(v, 3) for v in h.val_acc]} (chance: 0.1, ln 10 = 2.303)"
)

# %% [markdown]
# The loss does not move from $\ln 10 \approx 2.30$, the loss of a uniform guess, and
# the accuracy stays at chance. Nothing is broken: the same code learns other data.
# So what goes wrong? Three suspects: the initialisation, the gradients, and what the
# layers make of the images. We look at all three on one batch, at initialisation.
#
# - **Initialisation.** `cnncourse.models` initialises convolutions with He's rule (a
#   normal distribution with variance $2/\text{fan\_in}$), which is designed to keep the
#   size of the activations the same from layer to layer through ReLUs; the classifier
#   starts small, so that the first predictions are nearly uniform.
# - **Gradients.** If they vanished on the way down, the first layers could not learn.
# - **Representations.** For the head to tell images apart, their features must differ.
#   We measure the average cosine similarity between the feature vectors of different
#   images after each block: 0 for unrelated directions, 1 for the same direction.

# %%
probe_x, probe_y = next(iter(data.make_loaders("sprites", 64, num_train=256, num_eval=64)[0]))


def mean_cosine(h: torch.Tensor) -> float:
    """Average cosine similarity between the flattened features of different images."""
    h = F.normalize(h.flatten(1), dim=1)
    n = len(h)
    return ((h @ h.T).sum() - n).item() / (n * n - n)


def diagnose(model: nn.Module) -> dict[str, list[float]]:
    model.train()
    stats = {"activation std": [], "cosine": [mean_cosine(probe_x)], "grad / weight": []}
    h = probe_x
    for block in model.features:
        h = block(h)
        stats["activation std"].append(h.std().item())
        stats["cosine"].append(mean_cosine(h))
    F.cross_entropy(model.head(h), probe_y).backward()
    for m in model.features.modules():
        if isinstance(m, nn.Conv2d):
            stats["grad / weight"].append((m.weight.grad.norm() / m.weight.norm()).item())
    return stats


torch.manual_seed(0)
plain_stats = diagnose(models.vgg_small())
torch.manual_seed(0)
bn_stats = diagnose(models.vgg_small(batch_norm=True))
print("after block               " + "".join(f"{b:>8}" for b in ("input", 1, 2, 3, 4)))
print(
    "activation std, plain     "
    + " " * 8
    + "".join(f"{v:8.2f}" for v in plain_stats["activation std"])
)
for name, stats in (("plain", plain_stats), ("batch norm", bn_stats)):
    print(f"cosine similarity, {name:<7}" + "".join(f"{v:8.2f}" for v in stats["cosine"]))
print("conv layer                " + "".join(f"{i:>8}" for i in range(1, 7)))
print("|grad| / |weight|, plain  " + "".join(f"{v:8.3f}" for v in plain_stats["grad / weight"]))

fig, ax = plt.subplots(figsize=(5.5, 3.2))
for name, stats in (("plain", plain_stats), ("batch norm", bn_stats)):
    ax.plot(range(5), stats["cosine"], "-o", label=name)
ax.set(
    xticks=range(5),
    xticklabels=["input", "1", "2", "3", "4"],
    xlabel="after block",
    ylabel="mean cosine similarity",
    ylim=(0, 1),
    title="how alike images look, at init",
)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()


# %% [markdown]
# **Reading the numbers** (printed above, on one batch of 64 images at initialisation),
# and our reading of them:
#
# - *The initialisation is fine.* The size (standard deviation) of the activations stays
#   close to 1 from block to block: He's rule does what it is designed for.
# - *The gradients do not vanish.* Every convolution gets a gradient of a few percent of
#   its weights' size; the first layer's is the smallest, a few times below the others,
#   but nowhere near zero.
# - *The images become alike.* The mean cosine similarity between different images'
#   features climbs block by block, to about 0.9 after block 4 in the plain network:
#   the feature vectors of all images point in nearly the same direction. ReLU outputs
#   are never negative, so every layer adds a large component that all images share, and
#   the next layer's weighted sums are dominated by it. What tells a star from a square
#   is a small remainder, and so is the part of the gradient that would push the classes
#   apart; most of each update moves all the predictions together, which the loss
#   cannot use (the plateau at $\ln 10$). The dropout in the head (a random half of the
#   256 units set to zero at every step, the others doubled) adds noise on top of those
#   small differences. On an easier dataset (the digits of notebook 02, say: try it)
#   the same network escapes this plateau within an epoch or two; on sprites, where the
#   classes differ by shape only and colour and position vary at random, it stays there
#   for the whole run.
# - *Batch norm keeps them apart.* With batch norm the similarity after block 4 is much
#   lower (about 0.7). Batch norm subtracts each channel's mean over the batch and divides
#   by its spread, before every ReLU: the shared component is removed at every layer, and
#   what is left is what differs between images. It also keeps each layer's output at a
#   fixed scale however the weights change during training, so the learning rate means
#   the same thing for every layer.
#
# **The recipe:** batch norm after every convolution, and no dropout (batch norm's noise
# from batch to batch is a regulariser of its own, and on a short run we want the
# signal, not more noise). Same data, same epochs, same learning rate:

# %%
def vgg_small_bn() -> nn.Module:
    return models.vgg_small(batch_norm=True, dropout=0.0)


vgg_runs["batch norm, no dropout"] = run_sprites(vgg_small_bn)
for name, h in vgg_runs.items():
    print(
        f"{name:<24} train loss {[round(v, 3) for v in h.train_loss]}  validation accuracy "
        f"{[round(v, 3) for v in h.val_acc]}  ({sum(h.epoch_time):.1f}s)"
    )
plot.plot_history(vgg_runs, title="vgg_small on sprites")

# %% [markdown]
# **What came out** (numbers printed above the plot; 1,600 images, four epochs, 200
# steps each): the plain network stays at chance for all four epochs, its training loss
# at $\ln 10$. With batch norm and without dropout the training loss starts to fall in
# the second epoch and keeps falling, and the validation accuracy climbs well off chance
# (to 28% in our run; chance is 10%). The accuracy is still low, as sprites is a hard
# task for a network that has seen 1,600 images four times: the point is that one
# network learns and the other does not, on the same data and budget. (In a longer run
# while this notebook was written, 4,000 images for four epochs, the batch-norm network
# reached 43% and the plain one stayed at 10%; try `VGG_EPOCHS = 8` to see the curves go
# on.)
#
# The VGG paper trained its deepest networks without batch norm, which did not exist yet,
# and needed a trick for it: it trained the 11-layer network A first, then used its
# weights to initialise the first four convolutions and the dense layers of the deeper
# networks (the authors noted later that Glorot's random initialisation works without
# this step). The difficulty you saw gets worse with every layer added: a plain network
# of 30 or 50 layers trains *worse* than a shallower one, even on its training data,
# with or without batch norm. That is the problem ResNet (notebook 07) solves, with
# shortcut connections that let each block learn a change to its input rather than a
# whole new representation.

# %% [markdown]
# ## Summary
#
# - VGG's answer to "what should a convolution look like?" is: always 3×3, stride 1,
#   padding 1, with 2×2 max pools at stride 2 between blocks and channels doubling after
#   each pool; the network is a list of `(convolutions, channels)` blocks, A to E in the
#   paper (VGG-11 to VGG-19).
# - The receptive field grows by $(k - 1)$ times the jump per layer:
#   $r = 1 + \sum_l (k_l - 1) \prod_{i<l} s_i$. Stacked 3×3 layers reach any size a
#   large filter has, and measured with gradients, their effective field is concentrated
#   in its centre.
# - Three 3×3 layers cost $27 C^2$ weights against $49 C^2$ for one 7×7, and bring three
#   ReLUs instead of one; in our experiment the stack fitted the data faster than a 7×7
#   layer of the same cost, and faster than the same stack without its inner ReLUs.
# - VGG-16 has 138,357,544 parameters, three quarters of them in its first dense layer,
#   while its first convolutions hold most of the activations: memory and parameters
#   sit at opposite ends of the network.
# - Deep plain networks can be hard to start training: here the features of different
#   images became nearly parallel with depth. Batch norm (and no dropout on a short run)
#   made the small VGG learn; the general fix for depth is notebook 07's ResNet.
#
# **Further questions (not graded)**
# 1. What is the receptive field of one unit after VGG-16's last *convolution*, and why
#    is it smaller than the 224×224 image? What is the receptive field of a unit of the
#    first dense layer?
# 2. Two 3×3 layers against one 5×5: write down the parameter ratio. What about a 3×1
#    followed by a 1×3 layer instead of one 3×3 (an idea of Inception-v3)?
# 3. In section 2, replace the all-ones weights by random ones without ReLUs (a linear
#    stack). Is the average effective receptive field still a hump? Why?
# 4. Separate the two changes of the recipe: train `vgg_small(batch_norm=True)` (with
#    its dropout of 0.5), and the plain network with `dropout=0.0`. Which change matters
#    more on sprites? Measure the cosine similarity of section 6 after training too.
# 5. Configuration C uses 1×1 convolutions at the end of three blocks. What do they add
#    to the receptive field, and what do they add to the network? (Notebook 05 is about
#    1×1 convolutions.)
# 6. How much memory would training VGG-16 need for a batch of 32 images in float32,
#    counting the activations twice (forward and backward) and four copies of the
#    parameters?
