# %% [markdown]
# # 08 · ResNeXt: cardinality and grouped convolutions
#
# A year after ResNet, Xie, Girshick, Dollár, Tu and He (*Aggregated Residual
# Transformations for Deep Neural Networks*, CVPR 2017) asked how else a residual block
# could grow. Deeper (more blocks) and wider (more channels) were the usual answers. They
# added a third dimension: **cardinality**, the number of parallel paths inside one block.
# The block splits its input into many thin paths of the same shape, transforms each
# path, and adds the results (*split, transform, merge*), like GoogLeNet's Inception
# module (notebook 06), but with identical paths, so one number, $C$, describes it. In
# PyTorch the whole block is an ordinary bottleneck block (notebook 07) whose 3×3
# convolution is *grouped*: that one argument, `groups=C`, is ResNeXt.
#
# **In this notebook you will**
# - draw the split-transform-merge block next to ResNet's bottleneck block;
# - write a grouped convolution from scratch, and see which channels it connects;
# - count what a grouped convolution costs, answer the lecture's "Using g pathways for
#   computational efficiency (why?)", and time grouped convolutions on this CPU;
# - answer "What is the purpose of the last 1×1 CONV layer?" by splitting it into one
#   1×1 convolution per path, and show that the paper's three forms of the block
#   (separate paths, early concatenation, grouped convolution) compute the same thing;
# - reproduce the paper's Table 2 (the path width that keeps a block at ResNet's cost),
#   and check ResNeXt-50 against ResNet-50;
# - build the ResNeXt block in PyTorch and check it against the reference;
# - train a small ResNeXt and a small ResNet on the same budget.
#
# | section | what happens | points |
# |---|---|---|
# | 1 | split, transform, merge: the picture | |
# | 2 | grouped convolution: exercise `grouped_conv2d` | 8 |
# | 3 | what a group saves: exercise `grouped_conv_cost`; why g pathways?; timing | 4 |
# | 4 | the last 1×1 convolution: exercise `split_last_conv`; three equal forms | 5 |
# | 5 | the same cost as ResNet: exercise `matched_width` (Table 2); ResNeXt-50 | 4 |
# | 6 | the ResNeXt block in PyTorch: exercise `ResNeXtBlock` (two test cells) | 4 + 6 |
# | 7 | training a small ResNeXt and a small ResNet | |
# | | total | 31 |
#
# **The lecture's points, and where they are answered:** "Increases width of residual
# block through multiple parallel pathways (similar to Inception module)": sections 1
# and 4 (and what is *not* like Inception). "Using g pathways for computational
# efficiency (why?)": section 3, with counts and a measurement, and section 5, where the
# saving buys wider paths. "What is the purpose of the last 1×1 CONV layer?": section 4.
# The lecture's figure (the paper's figure 1: a ResNet block with 256 channels beside a
# ResNeXt block of 32 paths of width 4, "about the same complexity"): sections 1 and 5,
# where the two are counted exactly.

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnncourse
from cnncourse import data, grading, models, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)


# %% [markdown]
# ## 1. Split, transform, merge
#
# Notebook 07's bottleneck block takes 256 channels, reduces them to 64 with a 1×1
# convolution, applies a 3×3 convolution to the 64, expands back to 256 with a 1×1
# convolution, and adds the input: $y = x + \mathcal{F}(x)$. The ResNeXt block of the
# same size replaces the one wide path by $C = 32$ thin ones. Each path $\mathcal{T}_i$
# reduces the 256 channels to $d = 4$, applies a 3×3 convolution to its 4 channels, and
# expands back to 256; the block adds the 32 results, and then the input:
#
# $$y = x + \sum_{i=1}^{C} \mathcal{T}_i(x).$$
#
# The paper calls $C$ the *cardinality* (the size of the set of transformations) and
# $d$ the *bottleneck width*; "ResNeXt-50 (32×4d)" means $C = 32$, $d = 4$ in the first
# stage. In the picture, the ResNeXt block's numbers are read from the layers of
# `models.ResNeXtBlock(256, 256, 32, 4)`; the ResNet block is notebook 07's.

# %%
def draw_paths(ax, x0: float, labels: list[str], title: str, note: str) -> None:
    """One path of boxes from top to bottom, starting at x = x0."""
    for row, label in enumerate(labels):
        ax.add_patch(plt.Rectangle((x0, 5 - row), 1.5, 0.6, fc="C0", ec="black", alpha=0.8))
        ax.text(x0 + 0.75, 5.3 - row, label, ha="center", va="center", fontsize=8)
        top = 6.45 if row == 0 else 6 - row  # from the title, or the box above
        ax.annotate("", (x0 + 0.75, 5.6 - row), (x0 + 0.75, top),
                    arrowprops={"arrowstyle": "->", "color": "0.3"})  # fmt: skip
    ax.annotate("", (x0 + 0.75, 1.9), (x0 + 0.75, 6 - len(labels)),
                arrowprops={"arrowstyle": "->", "color": "0.3"})  # fmt: skip
    ax.text(x0 + 0.75, 6.55, title, ha="center", fontsize=8, color="black")
    ax.text(x0 + 0.75, 2.5, note, ha="center", fontsize=7, color="0.3")


resnext_block = models.ResNeXtBlock(256, 256, 32, 4)
conv_shapes = [tuple(m.weight.shape) for m in resnext_block.modules() if isinstance(m, nn.Conv2d)]
paths, width = resnext_block.cardinality, resnext_block.bottleneck_width
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), facecolor="white",
                         gridspec_kw={"width_ratios": [1, 3]})  # fmt: skip
for ax in axes:
    ax.set_facecolor("white")
    ax.axis("off")
    ax.set_ylim(1.2, 7.6)
draw_paths(axes[0], 0.5, ["1×1 conv, 256→64", "3×3 conv, 64→64", "1×1 conv, 64→256"],
           "one path of width 64", "")  # fmt: skip
axes[0].set_xlim(0, 2.5)
axes[0].set_title("ResNet bottleneck block", color="black")
for i, x0 in enumerate((0.3, 2.1, 3.9, 7.5)):
    name = f"path {paths}" if i == 3 else f"path {i + 1}"
    draw_paths(axes[1], x0, [f"1×1 conv, 256→{width}", f"3×3 conv, {width}→{width}",
                             f"1×1 conv, {width}→256"], name, "")  # fmt: skip
axes[1].text(6.45, 4.3, "· · ·", fontsize=20, ha="center", color="black")
axes[1].text(4.6, 1.6, f"⊕  sum of the {paths} paths' 256-channel outputs, then + x (shortcut)",
             ha="center", fontsize=9, color="black")  # fmt: skip
axes[1].text(4.6, 7.35, "256-d input x, given to every path", ha="center", fontsize=9,
             color="black")  # fmt: skip
axes[0].text(1.25, 1.6, "⊕  + x (shortcut)", ha="center", fontsize=9, color="black")
axes[0].text(1.25, 7.35, "256-d input x", ha="center", fontsize=9, color="black")
axes[1].set_xlim(0, 9.3)
axes[1].set_title(f"ResNeXt block: {paths} paths of width {width} (split, transform, merge)",
                  color="black")  # fmt: skip
fig.tight_layout()
print("the ResNeXt block's convolutions (weight shapes):", conv_shapes)

# %% [markdown]
# **Like Inception, and not like it.** Both modules run several paths side by side on
# the same input. GoogLeNet's paths are all different (1×1, 3×3, 5×5, a pool), each
# with its own widths, chosen by hand for each of nine modules, and their outputs are
# concatenated. ResNeXt's paths all have the same shape and their outputs are *summed*:
# the design has one new number, $C$, and every block of the network follows one rule.
# In the code above, the 32 paths are not 32 modules: the block holds three
# convolutions of weight shapes (128, 256, 1, 1), (128, 4, 3, 3) and (256, 128, 1, 1).
# The 128 = 32 × 4 channels are the 32 paths side by side, and the middle weight has 4
# input channels per filter, not 128. That is a *grouped* convolution, the subject of
# the next section; section 4 shows why the three layers are exactly the 32 paths.
#
# ## 2. Grouped convolution
#
# An ordinary convolution connects every output channel with every input channel: each
# filter is as deep as the input. A convolution with $g$ **groups** splits the $C_{in}$
# input channels into $g$ consecutive blocks of $C_{in}/g$, and the $C_{out}$ filters
# into $g$ blocks of $C_{out}/g$; the filters of group $j$ see only the input channels of
# group $j$. It is $g$ ordinary convolutions side by side, with their outputs
# concatenated. Each filter has $C_{in}/g$ channels, so the weight tensor has shape
# $(C_{out}, C_{in}/g, k_H, k_W)$. For output channel $o$, in group
# $j = \lfloor o / (C_{out}/g) \rfloor$, with $x$ padded by $p$ zeros:
#
# $$y_{n, o, r, s} = b_o + \sum_{c=0}^{C_{in}/g - 1} \sum_{u=0}^{k_H-1} \sum_{v=0}^{k_W-1}
# w_{o, c, u, v}\; x_{n,\; j C_{in}/g + c,\; r \cdot \text{stride} + u,\; s \cdot
# \text{stride} + v}.$$
#
# $g = 1$ is the ordinary convolution. $g = C_{in} = C_{out}$ is a *depthwise*
# convolution: one filter per channel, no mixing at all (MobileNet's building block).
# The picture shows which input channel (column) each output channel (row) reads, for 16
# channels: the weight matrix of a grouped convolution is block-diagonal.

# %%
fig, axes = plt.subplots(1, 4, figsize=(11, 3), facecolor="white")
for ax, g in zip(axes, (1, 2, 4, 16), strict=True):
    conv = nn.Conv2d(16, 16, 3, groups=g, bias=False)
    reads = torch.zeros(16, 16)
    for o in range(16):
        j = o // (16 // g)  # the group of output channel o
        reads[o, j * 16 // g : (j + 1) * 16 // g] = 1
    ax.imshow(reads, cmap="Blues", vmin=0, vmax=1.3)
    ax.set_title(f"groups={g}: {conv.weight.numel()} weights", color="black", fontsize=9)
    ax.set(xlabel="input channel", ylabel="output channel", xticks=[], yticks=[])
fig.suptitle("which input channels each output channel reads (blue), 16 → 16 channels, 3×3",
             color="black")  # fmt: skip
fig.tight_layout()


# %% [markdown]
# ## Exercise: `grouped_conv2d` (8 points)
#
# Write `grouped_conv2d(x, weight, bias=None, stride=1, padding=0, groups=1)`, equal to
# `F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups)`, from basic
# tensor operations. One way, which handles all groups at once:
#
# 1. pad `x` with `padding` zeros on each side of both spatial axes (`F.pad`);
# 2. cut every $k_H \times k_W$ window with `Tensor.unfold` along the height, then the
#    width (its `step` is the stride): a tensor $(N, C_{in}, H_{out}, W_{out}, k_H,
#    k_W)$;
# 3. split the channel axis into $(g, C_{in}/g)$ with `reshape`, and the weights into
#    $(g, C_{out}/g, C_{in}/g, k_H, k_W)$;
# 4. multiply and sum over the channels of a group and the window: `torch.einsum` does
#    it in one call; give the result its $(N, C_{out}, H_{out}, W_{out})$ shape and add
#    the bias.
#
# A loop over the $g$ groups, each an ordinary convolution written with tensor
# operations, is also fine. Rules: no convolution op (`F.conv2d`, `torch.conv2d`,
# `torch.convolution`, `nn.Conv2d`, `cnncourse.layers.conv2d`: the test cell blocks
# them); no Python loop over pixels or channels (the test allows at most
# $30 + 10 g$ torch calls per call of your function, counting `x.shape`, indexing and
# arithmetic too: a few per group); leave the inputs unchanged; keep the input's dtype.
# `stride` and `padding` are ints; the kernel may be non-square.

# %% nbgrader={"grade_id": "grouped_conv2d", "solution": true}
def grouped_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """Grouped 2-D convolution: (N, C_in, H, W) -> (N, C_out, H_out, W_out).

    weight: (C_out, C_in / groups, kH, kW); bias: (C_out,) or None.
    H_out = (H + 2 * padding - kH) // stride + 1, and the same for W_out.
    Output channel o belongs to group j = o // (C_out / groups) and sums over the input
    channels j * C_in / groups ... (j + 1) * C_in / groups - 1 only.
    At most 30 + 10 * groups torch calls: no loop over pixels or channels.

    Raises:
        ValueError: if x or weight is not 4-D (names it); if groups is below 1 or does not
            divide C_in and C_out (names groups); if weight.shape[1] != C_in / groups
            (names weight); if bias is not (C_out,) (names bias).
    """
    ### BEGIN SOLUTION
    if x.dim() != 4:
        raise ValueError(f"x: expected (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight: expected (C_out, C_in / groups, kH, kW), got "
                         f"{tuple(weight.shape)}")  # fmt: skip
    n, c_in, h, w = x.shape
    c_out, per_group, kh, kw = weight.shape
    if groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups}: must divide C_in={c_in} and C_out={c_out}")
    if per_group != c_in // groups:
        raise ValueError(f"weight: {per_group} channels per filter, expected C_in / groups = "
                         f"{c_in // groups}")  # fmt: skip
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias: expected shape ({c_out},), got {tuple(bias.shape)}")
    padded = F.pad(x, (padding, padding, padding, padding))
    windows = padded.unfold(2, kh, stride).unfold(3, kw, stride)  # (N, C_in, Ho, Wo, kH, kW)
    h_out, w_out = windows.shape[2], windows.shape[3]
    windows = windows.reshape(n, groups, per_group, h_out, w_out, kh, kw)
    filters = weight.reshape(groups, c_out // groups, per_group, kh, kw)
    # Per group: sum over its channels c and the window (u, v); groups stay separate.
    out = torch.einsum("ngcrsuv,gocuv->ngors", windows, filters)  # (N, g, C_out/g, Ho, Wo)
    out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)
    return out
    ### END SOLUTION


# %%
x = torch.randn(2, 6, 7, 5)
weight, bias = torch.randn(4, 3, 3, 3), torch.randn(4)
mine = grouped_conv2d(x, weight, bias, stride=2, padding=1, groups=2)
print("output shape:", tuple(mine.shape))
reference = F.conv2d(x, weight, bias, stride=2, padding=1, groups=2)
print("same as F.conv2d:", torch.allclose(mine, reference, atol=1e-5))

# %% nbgrader={"grade": true, "grade_id": "test_grouped_conv2d", "locked": true, "points": 8}
# Tests for grouped_conv2d (8 points).
import functools

import torch
import torch.nn.functional as F

from cnncourse.grading import (
    check_grads,
    check_raises,
    check_tensor,
    fail,
    forbid,
    limit_calls,
    run_exercise,
)

if "grouped_conv2d" not in globals():
    fail("grouped_conv2d", "not defined yet", hint="write the function and run its cell")
_gen = torch.Generator().manual_seed(80)
_DTYPE_HINT = "keep the input's dtype: no .float() or torch.float32 inside"


def _guarded(max_calls, what):
    """grouped_conv2d with its convolution calls forbidden and its torch calls counted."""

    @functools.wraps(grouped_conv2d)
    def guarded(*args, **kwargs):
        with (
            forbid("conv", exercise="grouped_conv2d"),
            limit_calls(max_calls, "grouped_conv2d", what),
        ):
            return grouped_conv2d(*args, **kwargs)

    return guarded


def _label(x, weight, bias, stride, padding, groups):
    b = "None" if bias is None else f"of shape {tuple(bias.shape)}"
    return (
        f"grouped_conv2d(x of shape {tuple(x.shape)}, {x.dtype}, weight of shape "
        f"{tuple(weight.shape)}, bias {b}, stride={stride}, padding={padding}, groups={groups})"
    )


def _values_hint(out, x, weight, bias, stride, padding, groups):
    """The likely slip behind wrong values, recognised by what was computed."""
    if bias is not None and torch.allclose(
        out, F.conv2d(x, weight, None, stride, padding, 1, groups), atol=1e-4, rtol=1e-4
    ):
        return "add bias[o] to every pixel of output channel o"
    c_out, per = weight.shape[:2]
    # filters dealt out to the groups in turn (filter o in group o % g): a reshape slip
    if groups > 1:
        dealt = weight.reshape(c_out // groups, groups, per, *weight.shape[2:]).transpose(0, 1)
        swapped = F.conv2d(x, dealt.reshape(weight.shape), bias, stride, padding, 1, groups)
        if torch.allclose(out, swapped, atol=1e-4, rtol=1e-4):
            return ("consecutive blocks: filters 0 ... C_out/g - 1 are group 0, the next "
                    "C_out/g group 1, and so on; reshape weight to (g, C_out/g, C_in/g, kH, "
                    "kW)")  # fmt: skip
    return (
        "output channel o of group j = o // (C_out/g) sums over the input channels "
        "j·C_in/g ... (j+1)·C_in/g - 1 and the kH×kW window starting at row r·stride and "
        "column s·stride of the padded input"
    )


def _check(x, weight, bias=None, stride=1, padding=0, groups=1, atol=1e-4):
    label = _label(x, weight, bias, stride, padding, groups)
    limit = 30 + 10 * groups
    what = f"{groups} groups and a {x.shape[2]}×{x.shape[3]} input"
    try:
        out = run_exercise(_guarded(limit, what), x, weight, bias, stride=stride,
                           padding=padding, groups=groups, name=label)  # fmt: skip
    except RuntimeError as err:
        hint = "check the shapes of your reshape and einsum (or matrix product)"
        if "view" in str(err):
            hint = ("the input may not be contiguous in memory (a transposed or channels-last "
                    "tensor): use reshape, not view")  # fmt: skip
        elif "scalar type" in str(err) or "dtype" in str(err):
            hint = _DTYPE_HINT
        fail(label, f"failed ({err})", hint=hint)
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups)
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        fail(label, f"expected shape {tuple(expected.shape)}, got {got}",
             hint="the output is (N, C_out, H_out, W_out) with H_out = (H + 2·padding - kH) "
                  "// stride + 1: check the padding and the stride")  # fmt: skip
    if out.dtype != expected.dtype:
        fail(label, f"expected dtype {expected.dtype}, got {out.dtype}", hint=_DTYPE_HINT)
    try:
        check_tensor(out, expected, label, rtol=1e-4, atol=atol)
    except AssertionError as err:
        fail(label, str(err).split(": ", 1)[-1],
             hint=_values_hint(out, x, weight, bias, stride, padding, groups))  # fmt: skip
    return out


def _case(n, c_in, c_out, size, k, groups, bias=True, dtype=torch.float32):
    x = torch.randn(n, c_in, *size, generator=_gen, dtype=dtype)
    kh, kw = (k, k) if isinstance(k, int) else k
    weight = torch.randn(c_out, c_in // groups, kh, kw, generator=_gen, dtype=dtype)
    b = torch.randn(c_out, generator=_gen, dtype=dtype) if bias else None
    return x, weight, b


_check(*_case(2, 4, 6, (5, 5), 3, 2), padding=1, groups=2)
print("visible checks passed")
### BEGIN HIDDEN TESTS
# values: groups, stride, padding, sizes and kernels varied together
for (_n, _ci, _co, _size, _k, _g), _s, _p in [
    ((2, 6, 4, (7, 5), 3, 2), 2, 1),
    ((1, 8, 8, (9, 9), 3, 4), 1, 1),
    ((3, 8, 16, (6, 10), 3, 8), 2, 0),
    ((2, 12, 6, (8, 7), 5, 3), 1, 2),
    ((2, 6, 6, (5, 8), 3, 6), 1, 1),  # depthwise: one channel per group
    ((2, 5, 3, (6, 6), 3, 1), 1, 0),  # an ordinary convolution
    ((1, 4, 8, (7, 9), (3, 1), 2), 2, 1),  # a non-square kernel
    ((2, 16, 32, (4, 4), 1, 16), 1, 0),  # a grouped 1×1 convolution
    ((2, 32, 32, (6, 6), 3, 32), 2, 1),  # 32 groups, ResNeXt's cardinality
]:
    _check(*_case(_n, _ci, _co, _size, _k, _g), stride=_s, padding=_p, groups=_g)
# extremes: 1×1 maps, with and without padding; a batch of one
_check(*_case(1, 4, 6, (1, 1), 1, 2), groups=2)
_check(*_case(2, 4, 4, (1, 1), 3, 2), padding=1, groups=2)
_check(*_case(1, 6, 3, (3, 3), 3, 3, bias=False), groups=3)
# large magnitudes in float32
_x, _w, _b = _case(2, 4, 4, (5, 6), 3, 2)
_check(1e15 * _x, _w, 1e15 * _b, padding=1, groups=2, atol=1e12)
# float64, with and without a bias
_check(*_case(2, 6, 4, (5, 7), 3, 2, dtype=torch.float64), stride=2, padding=1, groups=2)
_check(*_case(2, 6, 9, (4, 4), 3, 3, bias=False, dtype=torch.float64), padding=1, groups=3)
# inputs that are not contiguous in memory: transposed, and channels-last
_x, _w, _b = _case(2, 6, 4, (5, 7), 3, 2)
_check(_x.transpose(2, 3), _w, _b, padding=1, groups=2)
_check(_x.contiguous(memory_format=torch.channels_last), _w, _b, stride=2, groups=2)
# vectorised: at most 30 + 10 g torch calls; a loop over pixels or channels makes more
_check(*_case(2, 8, 32, (10, 10), 3, 2), padding=1, groups=2)
# gradients with respect to x, weight and bias
_x, _w, _b = _case(2, 6, 4, (6, 5), 3, 2)
for _t in (_x, _w, _b):
    _t.requires_grad_(True)
_label_g = _label(_x, _w, _b, 2, 1, 2)
with forbid("conv", exercise="grouped_conv2d"):
    _out = run_exercise(grouped_conv2d, _x, _w, _b, stride=2, padding=1, groups=2, name=_label_g)
check_grads(_out, F.conv2d(_x, _w, _b, stride=2, padding=1, groups=2),
            {"x": _x, "weight": _w, "bias": _b}, _label_g, generator=_gen)  # fmt: skip
# the promised errors
_x = torch.randn(2, 6, 5, 5, generator=_gen)
check_raises(grouped_conv2d, _x[0], torch.randn(4, 3, 3, 3), groups=2, argument="x",
             why="x must be (N, C, H, W)")  # fmt: skip
check_raises(grouped_conv2d, _x, torch.randn(4, 3, 3), groups=2, argument="weight",
             why="weight must be 4-D")  # fmt: skip
check_raises(grouped_conv2d, _x, torch.randn(4, 3, 3, 3), groups=4, argument="groups",
             why="4 groups do not divide 6 input channels")  # fmt: skip
check_raises(grouped_conv2d, _x, torch.randn(4, 2, 3, 3), groups=3, argument="groups",
             why="3 groups do not divide 4 output channels")  # fmt: skip
check_raises(grouped_conv2d, _x, torch.randn(6, 3, 3, 3), groups=3, argument="weight",
             why="with 3 groups each filter has 6 / 3 = 2 channels, not 3")  # fmt: skip
check_raises(grouped_conv2d, _x, torch.randn(6, 6, 3, 3), groups=2, argument="weight",
             why="with 2 groups each filter has 3 channels, not 6")  # fmt: skip
check_raises(grouped_conv2d, _x, torch.randn(4, 3, 3, 3), torch.randn(3), groups=2,
             argument="bias", why="4 filters need 4 biases")  # fmt: skip
### END HIDDEN TESTS

# %% [markdown]
# ## 3. What a group saves, and why g pathways
#
# Each filter of a grouped convolution has $C_{in}/g$ channels instead of $C_{in}$, so
# both the weights and the multiply-accumulates (MACs) drop by the factor $g$:
#
# $$\text{params} = C_{out} \cdot \frac{C_{in}}{g} \cdot k_H k_W \;(+\,C_{out}
# \text{ biases}), \qquad
# \text{MACs} = H_{out} W_{out} \cdot C_{out} \cdot \frac{C_{in}}{g} \cdot k_H k_W .$$
#
# ## Exercise: `grouped_conv_cost` (4 points)
#
# Write `grouped_conv_cost(in_channels, out_channels, kernel_size, output_size, groups=1,
# bias=False)`, returning the pair `(params, macs)` of one convolution on one image, as
# exact ints: `kernel_size` and `output_size` are an int (square) or an `(h, w)` pair; the
# bias adds `out_channels` parameters when `bias` is true and no MACs. Raise a
# `ValueError` naming the argument if a channel count, a size or `groups` is below 1, and
# naming `groups` if it does not divide both channel counts. Write the formulas
# yourself: `shapes.conv_params` and `shapes.conv_macs` are what it is graded against.

# %% nbgrader={"grade_id": "grouped_conv_cost", "solution": true}
def grouped_conv_cost(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    output_size: int | tuple[int, int],
    groups: int = 1,
    bias: bool = False,
) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of a grouped convolution on one image.

    params = C_out * (C_in / groups) * kH * kW (+ C_out if bias)
    macs = H_out * W_out * C_out * (C_in / groups) * kH * kW (the bias costs no MACs)

    Raises:
        ValueError: if an argument is below 1 (names it), or groups does not divide
            in_channels and out_channels (names groups).
    """
    ### BEGIN SOLUTION
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    h, w = (output_size, output_size) if isinstance(output_size, int) else output_size
    arguments = {"in_channels": in_channels, "out_channels": out_channels, "groups": groups,
                 "kernel_size": min(kh, kw), "output_size": min(h, w)}  # fmt: skip
    for name, value in arguments.items():
        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups}: must divide in_channels={in_channels} and "
                         f"out_channels={out_channels}")  # fmt: skip
    per_filter = in_channels // groups * kh * kw  # each filter reads C_in / g channels
    params = out_channels * per_filter + (out_channels if bias else 0)
    return params, h * w * out_channels * per_filter
    ### END SOLUTION


# %%
for g in (1, 32):
    print(f"3×3 conv 128 → 128 at 56×56, groups={g:>2}: (params, MACs) =",
          grouped_conv_cost(128, 128, 3, 56, groups=g))  # fmt: skip

# %% nbgrader={"grade": true, "grade_id": "test_grouped_conv_cost", "locked": true, "points": 4}
# Tests for grouped_conv_cost (4 points).
import cnncourse.shapes as _shapes_module
from cnncourse.grading import banned, check_number, check_raises, fail, run_exercise

if "grouped_conv_cost" not in globals():
    fail("grouped_conv_cost", "not defined yet", hint="write the function and run its cell")
_ref_params, _ref_macs = _shapes_module.conv_params, _shapes_module.conv_macs


def _check_cost(c_in, c_out, k, size, groups=1, bias=False):
    call = f"grouped_conv_cost({c_in}, {c_out}, {k}, {size}, groups={groups}, bias={bias})"
    out = run_exercise(grouped_conv_cost, c_in, c_out, k, size, groups=groups, bias=bias,
                       name=call)  # fmt: skip
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(call, f"expected a pair (params, macs), got {out!r}")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in out):
        fail(call, f"expected two ints, got {out!r}",
             hint="keep the arithmetic in ints: // for C_in / g, no / or math.pow")  # fmt: skip
    params, macs = out
    want_p = _ref_params(c_in, c_out, k, bias=bias, groups=groups)
    want_m = _ref_macs(c_in, c_out, k, size, groups=groups)
    dense_p = _ref_params(c_in, c_out, k, bias=bias)
    b = c_out if bias else 0
    hint = "params = C_out · (C_in / g) · kH · kW, plus C_out biases if bias"
    if groups > 1 and params == dense_p:
        hint = "each filter sees only C_in / g input channels: g times fewer weights"
    elif groups > 1 and params == (want_p - b) // groups + b:
        hint = "divide by g once: C_out filters of C_in / g channels each"
    elif params == want_p - b:
        hint = "with bias=True each of the C_out filters has one bias"
    check_number(params, want_p, f"{call}: the parameters", hint=hint)
    hint = "MACs = H_out · W_out · C_out · (C_in / g) · kH · kW (the bias costs none)"
    if groups > 1 and macs == _ref_macs(c_in, c_out, k, size):
        hint = "each output reads only the C_in / g channels of its group: g times fewer MACs"
    elif macs == want_m + (_ref_macs(1, c_out, 1, size) if bias else -1):
        hint = "the bias is added, not multiplied: count no MACs for it"
    check_number(macs, want_m, f"{call}: the MACs", hint=hint)


_check_cost(8, 8, 3, 5, groups=2)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_shapes_module.conv_params = banned("shapes.conv_params", "grouped_conv_cost",
                                    "Write the formula yourself")  # fmt: skip
_shapes_module.conv_macs = banned("shapes.conv_macs", "grouped_conv_cost",
                                  "Write the formula yourself")  # fmt: skip
try:
    for _args in [
        (128, 128, 3, 56, 32, False),  # ResNeXt-50's first grouped conv
        (256, 256, 3, 28, 32, True),
        (64, 64, 3, 56, 1, False),
        (12, 18, 5, (7, 9), 3, True),  # a non-square output
        (8, 4, (3, 1), (5, 2), 4, False),  # a non-square kernel
        (6, 6, 3, 1, 6, True),  # depthwise, a 1×1 output
        (1, 1, 1, 1, 1, True),
        (2**20, 2**21, 7, (1000, 999), 2**10, True),  # exact ints for huge counts
    ]:
        _check_cost(*_args)
    check_raises(grouped_conv_cost, 6, 8, 3, 5, groups=4, argument="groups",
                 why="4 groups do not divide 6 input channels")  # fmt: skip
    check_raises(grouped_conv_cost, 8, 6, 3, 5, groups=4, argument="groups",
                 why="4 groups do not divide 6 output channels")  # fmt: skip
    check_raises(grouped_conv_cost, 8, 8, 3, 5, groups=0, argument="groups", why="groups=0")
    check_raises(grouped_conv_cost, 0, 8, 3, 5, argument="in_channels", why="no input channels")
    check_raises(grouped_conv_cost, 8, -1, 3, 5, argument="out_channels", why="below 1")
    check_raises(grouped_conv_cost, 8, 8, 0, 5, argument="kernel_size", why="a 0×0 kernel")
    check_raises(grouped_conv_cost, 8, 8, 3, 0, argument="output_size", why="an empty output")
finally:
    _shapes_module.conv_params, _shapes_module.conv_macs = _ref_params, _ref_macs
### END HIDDEN TESTS

# %% [markdown]
# **Why g pathways?** In counts, the answer is the factor $g$: a 3×3 convolution on 128
# channels at 56×56 (the grouped convolution of ResNeXt-50's first stage) has 147,456
# weights and 462 million MACs as an ordinary convolution, and 4,608 weights and 14.5
# million MACs with 32 groups. The paper does not pocket the saving: it spends it on
# width. With groups, a block can have many more channels in its middle layer for the
# same cost (section 5: 32 paths of 4, 128 channels, cost what ResNet's 64 channels
# cost), and the paper's experiments find that more paths at the same cost are more
# accurate (ResNeXt-50 32×4d: 22.2% top-1 error on ImageNet against ResNet-50's 23.9%).
#
# ### Measured on this CPU
#
# Is a grouped convolution also $g$ times faster? Below, `F.conv2d` with 128 input and
# output channels, 3×3, on a batch of 8 maps of 28×28, for $g$ = 1, 2, 4, 8, 32: the
# best time of several rounds (each round times every $g$ once, after a warm-up call),
# without gradients, next to the MACs.

# %%
def best_time(fn, repeats: int) -> float:
    """The fastest of `repeats` calls of fn(), in seconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


REPEATS = 2 if utils.grading_mode() else 7
x_timing = torch.randn(8, 128, 28, 28)
weights_g = {g: torch.randn(128, 128 // g, 3, 3) for g in (1, 2, 4, 8, 32)}
best = dict.fromkeys(weights_g, math.inf)
with torch.no_grad():
    for _ in range(REPEATS):  # rounds over all g, so a busy moment hits every g alike
        for g, w_g in weights_g.items():
            call = lambda w_g=w_g, g=g: F.conv2d(x_timing, w_g, padding=1, groups=g)  # noqa: E731
            best[g] = min(best[g], best_time(call, 1))
timings = {g: (8 * grouped_conv_cost(128, 128, 3, 28, groups=g)[1], best[g]) for g in best}
fig, (ax_macs, ax_time) = plt.subplots(1, 2, figsize=(10, 3.5), facecolor="white")
labels = [str(g) for g in timings]
ax_macs.bar(labels, [m / 1e6 for m, _ in timings.values()], color="C0")
ax_macs.set(xlabel="groups g", ylabel="million MACs", title="arithmetic: falls as 1/g")
ax_time.bar(labels, [s * 1e3 for _, s in timings.values()], color="C1")
ax_time.set(xlabel="groups g", ylabel="milliseconds (best of runs)",
            title="time on this CPU")  # fmt: skip
for ax in (ax_macs, ax_time):
    ax.set_facecolor("white")
    ax.grid(alpha=0.3, axis="y")
fig.suptitle("3×3 convolution, 128 → 128 channels, batch of 8 at 28×28", color="black")
fig.tight_layout()
for g, (macs, seconds) in timings.items():
    print(f"groups={g:>2}: {macs / 1e6:6.1f}M MACs, {seconds * 1e3:6.2f} ms, "
          f"{macs / seconds / 1e9:6.1f} GMAC/s")  # fmt: skip
fewer = timings[1][0] / timings[32][0]
faster = timings[1][1] / timings[32][1]
print(f"32 groups: {fewer:.0f}× fewer MACs, {faster:.1f}× faster, "
      f"{fewer / faster:.0f}× fewer MACs per second")  # fmt: skip


# %% [markdown]
# **What the measurement says** (numbers above; they vary from run to run and machine to
# machine). In our runs while this notebook was written, on this 2-core machine shared
# with other work, the ordinary convolution took 8.5 to 19 ms for its 925 million MACs
# (50 to 110 GMAC/s). With 32 groups it did 32 times less arithmetic and took 4.4 to 10
# ms: only 1.5 to 2.2 times faster, at 3 to 6.5 GMAC/s, fourteen to twenty times less
# work per second. The groups in between varied from run to run: in a quiet run 2, 4
# and 8 groups kept 65 to 90% of the dense rate (8 groups in 1.8 ms against 9.8 ms),
# in busier ones they fell far short of their MAC count (8 groups in 9 ms against 15
# ms). On a CPU a grouped convolution is **not** faster per MAC; with many
# groups it is much slower. An ordinary convolution is one large matrix product, which a
# CPU does close to its peak; 32 groups make 32 small products of 4-channel filters,
# whose cost is dominated by reading and writing the 128-channel maps, which the groups
# do not shrink (we did not measure a GPU here). The "efficiency"
# of g pathways is efficiency in parameters and arithmetic: it pays where arithmetic is
# the limit, and it is the reason ResNeXt's accuracy per parameter is better; it does
# not make the network run faster on this machine (section 7 measures a whole network).
#
# ## 4. What is the purpose of the last 1×1 convolution?
#
# Look at the block as three layers: a 1×1 convolution from 256 to $C d = 128$ channels,
# the grouped 3×3 convolution that keeps each path's $d$ channels apart, and a last 1×1
# convolution from 128 back to 256. Two jobs fall to the last layer:
#
# 1. **It restores the channel count**: the branch must have the shortcut's 256
#    channels to be added to it.
# 2. **It merges the paths.** The grouped convolution never mixes paths: path $i$'s
#    channels $i d \dots (i+1) d - 1$ depend on path $i$'s channels only. The last 1×1
#    convolution reads all $C d$ channels, and a weighted sum over all channels is the
#    sum of the weighted sums over each path's channels. Splitting its weight
#    $W \in \mathbb{R}^{256 \times C d}$ by columns into $W = [W_1, \dots, W_C]$, with
#    $W_i \in \mathbb{R}^{256 \times d}$, and the input $h$ into the paths' parts
#    $h_1, \dots, h_C$:
#
# $$W h = \sum_{i=1}^{C} W_i h_i .$$
#
# $W_i h_i$ is path $i$'s own last layer, a 1×1 convolution from $d$ to 256 channels: so
# one 1×1 convolution over the concatenated paths *is* the "transform each path to 256
# channels, then sum" of section 1. The "aggregation" of the paper's title is this layer.
#
# ## Exercise: `split_last_conv` (5 points)
#
# Write `split_last_conv(weight, cardinality)`: given the weight of the last 1×1
# convolution, shape $(C_{out}, C d, 1, 1)$, return the $C$ paths' own 1×1 weights as one
# tensor of shape $(C, C_{out}, d, 1, 1)$: entry $i$ is $W_i$, the weight of a 1×1
# convolution from path $i$'s $d$ channels to $C_{out}$. The test checks your weights by
# what they compute: applying entry $i$ to path $i$'s channels and summing over the
# paths must give the whole layer's output. Path $i$ owns the same channels as group $i$
# of the grouped convolution before it. Raise a `ValueError` naming `weight` if it is
# not 4-D or its kernel is not 1×1, and naming `cardinality` if it is below 1 or does
# not divide the input channels. Return a new tensor that gradients flow through.

# %% nbgrader={"grade_id": "split_last_conv", "solution": true}
def split_last_conv(weight: torch.Tensor, cardinality: int) -> torch.Tensor:
    """Per-path weights of a 1×1 conv over C concatenated paths: (C_out, C*d, 1, 1) ->
    (C, C_out, d, 1, 1).

    Entry i is weight[:, channels of path i]: path i owns input channels i*d ... (i+1)*d - 1,
    and sum_i conv2d(h[:, path i's channels], entry i) == conv2d(h, weight).

    Raises:
        ValueError: if weight is not (C_out, C_in, 1, 1) (names weight), or cardinality is
            below 1 or does not divide C_in (names cardinality).
    """
    ### BEGIN SOLUTION
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (1, 1):
        raise ValueError(f"weight: expected (C_out, C*d, 1, 1), got {tuple(weight.shape)}")
    c_out, channels = weight.shape[:2]
    if cardinality < 1 or channels % cardinality:
        raise ValueError(f"cardinality={cardinality}: must divide the {channels} input channels")
    d = channels // cardinality
    # (C_out, C, d, 1, 1): the input channels split into C consecutive blocks of d
    return weight.reshape(c_out, cardinality, d, 1, 1).transpose(0, 1)
    ### END SOLUTION


# %%
w_last = torch.randn(6, 8, 1, 1)
print("per-path weights:", tuple(split_last_conv(w_last, 4).shape))

# %% nbgrader={"grade": true, "grade_id": "test_split_last_conv", "locked": true, "points": 5}
# Tests for split_last_conv (5 points).
import torch
import torch.nn.functional as F

from cnncourse.grading import check_grads, check_raises, check_tensor, fail, run_exercise

if "split_last_conv" not in globals():
    fail("split_last_conv", "not defined yet", hint="write the function and run its cell")
_gen = torch.Generator().manual_seed(81)
_PATHS = ("path i owns the consecutive input channels i·d ... (i+1)·d - 1 (the channels of "
          "group i of the grouped conv before it), not every C-th channel")  # fmt: skip


def _reference_split(weight, cardinality):
    d = weight.shape[1] // cardinality
    return torch.stack([weight[:, i * d : (i + 1) * d] for i in range(cardinality)])


def _check_split(weight, cardinality):
    call = (f"split_last_conv(weight of shape {tuple(weight.shape)}, {weight.dtype}, "
            f"cardinality={cardinality})")  # fmt: skip
    out = run_exercise(split_last_conv, weight, cardinality, name=call)
    c_out, channels = weight.shape[:2]
    d = channels // cardinality
    expected = _reference_split(weight, cardinality)
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        hint = "one 1×1 weight per path, stacked: shape (C, C_out, d, 1, 1)"
        if isinstance(out, torch.Tensor) and out.dim() == 5 and out.shape[2] == channels > d:
            hint = ("split the input channels (dim 1), not the filters: every path writes all "
                    "C_out output channels from its own d input channels")  # fmt: skip
        fail(call, f"expected shape {tuple(expected.shape)}, got {got}", hint=hint)
    if out.dtype != weight.dtype:
        fail(call, f"expected dtype {weight.dtype}, got {out.dtype}", hint="keep the dtype")
    # What the last 1×1 conv computes: the sum of the paths' own projections.
    h = torch.randn(2, channels, 3, 4, generator=_gen, dtype=weight.dtype)
    with torch.no_grad():
        merged = sum(F.conv2d(h[:, i * d : (i + 1) * d], out[i]) for i in range(cardinality))
        whole = F.conv2d(h, weight)
    hint = _PATHS
    if torch.allclose(out * cardinality, expected, atol=1e-5, rtol=1e-4):
        hint = "the paths' outputs are added, not averaged: no division by the cardinality"
    try:
        check_tensor(merged, whole, f"{call}: the sum over the paths of conv2d(path i's "
                     "channels, your entry i), against conv2d(h, weight)")  # fmt: skip
        check_tensor(out, expected, call)
    except AssertionError as err:
        fail(call, " ".join(str(err).split()), hint=hint)
    return out


_check_split(torch.randn(6, 8, 1, 1, generator=_gen), 4)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _shape, _card in [
    ((256, 128, 1, 1), 32),  # ResNeXt-50's first stage: 32 paths of 4
    ((10, 12, 1, 1), 3),
    ((5, 12, 1, 1), 4),
    ((7, 9, 1, 1), 1),  # one path: the whole layer
    ((4, 6, 1, 1), 6),  # paths of width 1
    ((1, 4, 1, 1), 2),  # one output channel
]:
    _check_split(torch.randn(*_shape, generator=_gen), _card)
_check_split(torch.randn(6, 8, 1, 1, generator=_gen, dtype=torch.float64), 2)
_check_split(1e20 * torch.randn(6, 8, 1, 1, generator=_gen), 4)
_check_split(torch.randn(8, 6, 1, 1, generator=_gen).transpose(0, 1).reshape(6, 8, 1, 1), 2)
# gradients reach the weight
_w = torch.randn(6, 8, 1, 1, generator=_gen, requires_grad=True)
_out = run_exercise(split_last_conv, _w, 4, name="split_last_conv(weight, 4)")
check_grads(_out, _reference_split(_w, 4), {"weight": _w}, "split_last_conv(weight, 4)",
            generator=_gen)  # fmt: skip
# the promised errors
check_raises(split_last_conv, torch.randn(6, 8), 2, argument="weight", why="weight must be 4-D")
check_raises(split_last_conv, torch.randn(6, 8, 3, 3), 2, argument="weight",
             why="the kernel is 3×3, not 1×1")  # fmt: skip
check_raises(split_last_conv, torch.randn(6, 8, 1, 1), 3, argument="cardinality",
             why="3 paths do not divide 8 channels")  # fmt: skip
check_raises(split_last_conv, torch.randn(6, 8, 1, 1), 0, argument="cardinality",
             why="no paths")  # fmt: skip
### END HIDDEN TESTS

# %% [markdown]
# ### The three forms of the block are one
#
# The paper's figure 3 draws the block three ways: (a) $C$ separate paths, each 1×1 →
# 3×3 → 1×1 to 256 channels, summed; (b) the same with *early concatenation*: the first
# layers of the paths stacked into one 1×1 convolution, the 3×3 convolutions still
# separate, their outputs concatenated and sent through one 1×1 convolution; (c) the
# same with the separate 3×3 convolutions replaced by one grouped convolution. Below
# the three are built from the weights of one `models.ResNeXtBlock(256, 256, 32, 4)`
# (its convolutions and ReLUs; batch norm, a per-channel scale and shift, changes
# nothing in the argument) and compared with `torch.testing.assert_close`. Form (a)
# uses your `split_last_conv` for the paths' last layers; the first layers are split by
# their output channels, and the grouped convolution by its groups. The forms are also
# timed (best of a few runs, one image of 256×56×56, as in ResNeXt-50's first stage).

# %%
C, d = resnext_block.cardinality, resnext_block.bottleneck_width
w1 = resnext_block.conv1.weight.detach()  # (C·d, 256, 1, 1): all first layers, stacked
w2 = resnext_block.conv2.weight.detach()  # (C·d, d, 3, 3): the grouped 3×3 conv
w3 = resnext_block.conv3.weight.detach()  # (256, C·d, 1, 1): the last layer
x_block = torch.randn(1, 256, 56, 56)


def form_a(x: torch.Tensor) -> torch.Tensor:
    """C separate paths, each 256 -> d -> d -> 256, summed."""
    last = split_last_conv(w3, C)  # (C, 256, d, 1, 1)
    total = 0
    for i in range(C):
        h = F.relu(F.conv2d(x, w1[i * d : (i + 1) * d]))  # (N, d, H, W)
        h = F.relu(F.conv2d(h, w2[i * d : (i + 1) * d], padding=1))  # (N, d, H, W)
        total = total + F.conv2d(h, last[i])  # (N, 256, H, W)
    return total


def form_b(x: torch.Tensor) -> torch.Tensor:
    """Early concatenation: one first layer, C separate 3×3 convs, one last layer."""
    h = F.relu(F.conv2d(x, w1))  # (N, C·d, H, W)
    parts = [F.relu(F.conv2d(h[:, i * d : (i + 1) * d], w2[i * d : (i + 1) * d], padding=1))
             for i in range(C)]  # fmt: skip
    return F.conv2d(torch.cat(parts, dim=1), w3)  # (N, 256, H, W)


def form_c(x: torch.Tensor) -> torch.Tensor:
    """Grouped convolution: three layers."""
    h = F.relu(F.conv2d(x, w1))  # (N, C·d, H, W)
    h = F.relu(F.conv2d(h, w2, padding=1, groups=C))  # (N, C·d, H, W)
    return F.conv2d(h, w3)  # (N, 256, H, W)


with torch.no_grad():
    outputs = {name: form(x_block) for name, form in
               (("a", form_a), ("b", form_b), ("c", form_c))}  # fmt: skip
    torch.testing.assert_close(outputs["a"], outputs["c"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outputs["b"], outputs["c"], rtol=1e-4, atol=1e-5)
    print("forms (a), (b) and (c) agree; largest difference from (c):",
          f"{(outputs['a'] - outputs['c']).abs().max():.2e} (a),",
          f"{(outputs['b'] - outputs['c']).abs().max():.2e} (b)")  # fmt: skip
    form_repeats = 1 if utils.grading_mode() else 3
    for name, form in (("a", form_a), ("b", form_b), ("c", form_c)):
        seconds = best_time(lambda form=form: form(x_block), form_repeats)
        print(f"form ({name}): {seconds * 1e3:6.1f} ms")


# %% [markdown]
# The three forms agree to float32 rounding (the largest differences above are about
# $2 \times 10^{-7}$). The timings, in our runs: form (c) was the fastest (4 to 9 ms),
# form (b) close behind (6 to 12 ms), and the 32 separate paths of form (a) four to
# fifteen times slower (28 to 135 ms), because its 96 small convolutions each pay a
# call's fixed cost and each path reads the whole 256-channel input. Frameworks
# implement the block as (c), and that is why "ResNeXt" in code is "a bottleneck block
# with `groups=32`".
#
# ## 5. The same cost as a ResNet block
#
# The paper compares networks at equal cost. The ResNet-50 block of the first stage (256
# channels in and out, 64 in the middle) has $256 \cdot 64 + 3 \cdot 3 \cdot 64 \cdot 64
# + 64 \cdot 256 = 69{,}632$ convolution weights (the paper: "≈70k"). A ResNeXt block
# with $C$ paths of width $d$, with the same 256 channels in and out, has
#
# $$256 \cdot C d + 3 \cdot 3 \cdot \frac{(C d)^2}{C} + C d \cdot 256
# = C d\,(2 \cdot 256 + 9 d),$$
#
# 70,144 for $C = 32$, $d = 4$ (the paper: "≈70k" too). For each cardinality the paper
# picks the width that keeps the block at about ResNet's cost (its Table 2).
#
# ## Exercise: `matched_width` (4 points)
#
# Write `matched_width(channels, cardinality, budget)`: the path width $d \ge 1$ whose
# ResNeXt block, `channels` in and out, has the number of convolution weights closest to
# `budget` (the smaller $d$ if two are equally close). The block's three convolutions,
# none with a bias (batch norm follows each), are: 1×1 from `channels` to $C d$, 3×3 from
# $C d$ to $C d$ with $C$ groups, and 1×1 from $C d$ to `channels`. Count them with your
# `grouped_conv_cost` (the test cell grades this function with the reference
# `grouped_conv_cost` in place of yours, and prints a note if yours differs). Raise a
# `ValueError` naming the argument if any argument is below 1. The count grows with $d$,
# so you can try $d = 1, 2, 3, \dots$ until it passes the budget.

# %% nbgrader={"grade_id": "matched_width", "solution": true}
def matched_width(channels: int, cardinality: int, budget: int) -> int:
    """The path width d (>= 1) of a ResNeXt block whose convolution weights come closest
    to budget (the smaller d on a tie).

    Block: 1×1 conv channels -> C*d, 3×3 conv C*d -> C*d with C groups, 1×1 conv
    C*d -> channels, no biases; C = cardinality.

    Raises:
        ValueError: if an argument is below 1 (names it).
    """
    ### BEGIN SOLUTION
    for name, value in (("channels", channels), ("cardinality", cardinality),
                        ("budget", budget)):  # fmt: skip
        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")

    def weights(d: int) -> int:
        width = cardinality * d  # all paths side by side
        return (
            grouped_conv_cost(channels, width, 1, 1)[0]
            + grouped_conv_cost(width, width, 3, 1, groups=cardinality)[0]
            + grouped_conv_cost(width, channels, 1, 1)[0]
        )

    d = 1
    while weights(d + 1) <= budget:  # the largest d within the budget
        d += 1
    if weights(d) < budget and weights(d + 1) - budget < budget - weights(d):
        d += 1  # one step over the budget is closer
    return d
    ### END SOLUTION


# %%
BUDGET = 256 * 64 + 9 * 64 * 64 + 64 * 256  # ResNet-50's first-stage block: 69,632
print("C = 32:", matched_width(256, 32, BUDGET))

# %% nbgrader={"grade": true, "grade_id": "test_matched_width", "locked": true, "points": 4}
# Tests for matched_width (4 points), graded with the reference grouped_conv_cost.
from cnncourse import shapes
from cnncourse.grading import check_number, check_raises, fail, run_exercise, with_reference

if "matched_width" not in globals():
    fail("matched_width", "not defined yet", hint="write the function and run its cell")


def _reference_cost(in_channels, out_channels, kernel_size, output_size, groups=1, bias=False):
    return (
        shapes.conv_params(in_channels, out_channels, kernel_size, bias=bias, groups=groups),
        shapes.conv_macs(in_channels, out_channels, kernel_size, output_size, groups=groups),
    )


def _weights(channels, cardinality, d, slip=""):
    """The block's convolution weights; `slip` counts it with a common mistake."""
    width = cardinality * d
    middle = 9 * width * (width if slip == "ungrouped" else d)
    return 2 * channels * (d if slip == "thin" else width) + middle


def _closest(channels, cardinality, budget, slip=""):
    """(the closest width, the largest width within the budget)."""
    d = 1
    while _weights(channels, cardinality, d + 1, slip) <= budget:
        d += 1
    below = _weights(channels, cardinality, d, slip)
    above = _weights(channels, cardinality, d + 1, slip)
    closest = d + 1 if below < budget and above - budget < budget - below else d
    return closest, d


def _check_width(channels, cardinality, budget):
    call = f"matched_width({channels}, {cardinality}, {budget})"
    out = run_exercise(matched_width, channels, cardinality, budget, name=call)
    if isinstance(out, bool) or not isinstance(out, int):
        fail(call, f"expected an int, got {type(out).__name__} ({out!r})")
    want, within = _closest(channels, cardinality, budget)
    hint = ("count the three convolutions' weights: channels → C·d (1×1), C·d → C·d (3×3, "
            "C groups), C·d → channels (1×1), and take the d whose count is closest")  # fmt: skip
    if out == within != want:
        hint = ("the closest count may be a little above the budget: compare the last d within "
                "the budget with the next one")  # fmt: skip
    elif out == _closest(channels, cardinality, budget, "ungrouped")[0]:
        hint = "the 3×3 convolution is grouped: pass groups=cardinality"
    elif out == _closest(channels, cardinality, budget, "thin")[0]:
        hint = ("the 1×1 convolutions connect the block's channels with all C·d channels of "
                "the middle: all C paths side by side")  # fmt: skip
    check_number(out, want, call, hint=hint)


_probes = {"grouped_conv_cost": [(256, 128, 1, 1), (128, 128, 3, 1, 32), (24, 8, (3, 1), 4, 2)]}
with with_reference(globals(), probes=_probes, grouped_conv_cost=_reference_cost):
    _check_width(64, 4, 4000)
    print("visible checks passed")
    ### BEGIN HIDDEN TESTS
    for _card, _d in ((1, 64), (2, 40), (4, 24), (8, 14), (32, 4)):  # the paper's Table 2
        _check_width(256, _card, 69_632)
    for _args in [
        (1024, 32, 1024 * 256 * 2 + 9 * 256 * 256),  # the third stage's budget
        (512, 64, 300_000),
        (16, 2, 5),  # a budget below the smallest block: d = 1
        (3, 1, 1),
        (100, 3, 123_457),
        (64, 16, _weights(64, 16, 7)),  # the budget met exactly
    ]:
        _check_width(*_args)
    check_raises(matched_width, 0, 4, 1000, argument="channels", why="channels below 1")
    check_raises(matched_width, 64, 0, 1000, argument="cardinality", why="no paths")
    check_raises(matched_width, 64, 4, 0, argument="budget", why="budget below 1")
    ### END HIDDEN TESTS

# %% [markdown]
# Your function against the paper's Table 2 (cardinality, width, and the count of the
# block, all for 256 channels against ResNet's 69,632):

# %%
print(f"{'C':>3} {'d':>4} {'C·d':>5} {'weights':>8}")
for card in (1, 2, 4, 8, 32):
    d_c = matched_width(256, card, BUDGET)
    count = 256 * card * d_c * 2 + 9 * card * d_c * d_c
    print(f"{card:>3} {d_c:>4} {card * d_c:>5} {count:>8,}")
with torch.device("meta"):
    resnext50, resnet50 = models.resnext50_32x4d(), models.resnet50()
    one_resnext = models.ResNeXtBlock(256, 256, 32, 4)
    one_resnet = models.Bottleneck(256, 64)


def conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


print(f"ResNeXt-50 (32×4d): {shapes.count_params(resnext50):,} parameters; "
      f"ResNet-50: {shapes.count_params(resnet50):,}")  # fmt: skip
for name, one in (("ResNeXt 32×4d", one_resnext), ("ResNet", one_resnet)):
    print(f"one first-stage block, {name}: {conv_weights(one):,} convolution weights "
          f"({shapes.count_params(one):,} with batch norm)")  # fmt: skip


# %% [markdown]
# The table is the paper's Table 2: widths 64, 40, 24, 14 and 4 for 1, 2, 4, 8 and 32
# paths. The middle layer gets wider as the paths get thinner, 64, 80, 96, 112 and 128
# channels, at the same cost: the saving of the groups, spent on width. The paper's
# finding (its Table 3): at this fixed cost, the top-1 error of ResNeXt-50 on ImageNet
# falls from 23.9% (1×64d, which is ResNet-50) through 23.0%, 22.6% and 22.3% to 22.2%
# (32×4d). Going from 8 to 32 paths gains only 0.1 point; most of the gain comes early.
#
# The whole networks, counted on PyTorch's `meta` device (no memory for the weights):
# ResNeXt-50 (32×4d) has 25,028,904 parameters and ResNet-50 25,557,032, 2% fewer,
# "about the same complexity" as the lecture's figure says. One first-stage block of
# each: 70,144 against 69,632 convolution weights, 0.7% more for ResNeXt (71,168 against
# 70,400 with the batch norms' scales and shifts).
#
# ## 6. The ResNeXt block in PyTorch
#
# Now the block as a module. It is notebook 07's bottleneck block with a grouped 3×3
# convolution and a middle width of $C d$ that need not be a quarter of the output.
#
# ## Exercise: the `ResNeXtBlock` module (4 + 6 points)
#
# Build `ResNeXtBlock(in_channels, out_channels, cardinality, bottleneck_width,
# stride=1)`. The tests copy the weights of `cnncourse.models.ResNeXtBlock` into yours
# with `grading.copy_weights`, which pairs tensors *by position*: register the layers in
# the docstring's order. The first test cell (4 points) checks the layers and parameter
# counts; the second (6 points), with random weights and batch-norm statistics copied
# in, compares the output in eval and train mode, in float64, with stride 2 and a
# projection shortcut and with the identity shortcut, and the gradients.

# %% nbgrader={"grade_id": "resnext_block", "solution": true}
class ResNeXtBlock(nn.Module):
    """A ResNeXt block: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).

    ResNeXtBlock(in_channels, out_channels, cardinality, bottleneck_width, stride=1)
    with width = cardinality * bottleneck_width (all paths side by side).

    Layers, registered in this order (the tests copy reference weights in by position),
    every convolution without a bias:
    self.conv1: 1×1 conv in_channels -> width;   self.bn1: BatchNorm2d(width)
    self.conv2: 3×3 conv width -> width, stride `stride`, padding 1, groups=cardinality;
                self.bn2: BatchNorm2d(width)
    self.conv3: 1×1 conv width -> out_channels;  self.bn3: BatchNorm2d(out_channels)
    self.shortcut: nn.Identity() if stride == 1 and in_channels == out_channels, else
                nn.Sequential(1×1 conv in_channels -> out_channels with stride `stride`,
                BatchNorm2d(out_channels))

    forward(x): relu(bn1(conv1(x))), then relu(bn2(conv2(.))), then bn3(conv3(.)); add
    shortcut(x); a ReLU last. x itself must not change.
    """

    ### BEGIN SOLUTION
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cardinality: int,
        bottleneck_width: int,
        stride: int = 1,
    ) -> None:
        super().__init__()
        width = cardinality * bottleneck_width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality,
                               bias=False)  # fmt: skip
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (N, width, H, W): C paths of d channels
        out = F.relu(self.bn2(self.conv2(out)))  # (N, width, H/s, W/s): each path on its own
        out = self.bn3(self.conv3(out))  # (N, out, H/s, W/s): the paths merged
        return F.relu(out + self.shortcut(x))  # (N, out, H/s, W/s)

    ### END SOLUTION


# %%
block = ResNeXtBlock(64, 256, 32, 4)
print(block)
print("output:", tuple(block(torch.zeros(2, 64, 8, 8)).shape),
      " parameters:", shapes.count_params(block))  # fmt: skip

# %% nbgrader={"grade": true, "grade_id": "test_resnext_layers", "locked": true, "points": 4}
# Tests for ResNeXtBlock: layers, parameter counts and output shapes (4 points).
import torch
import torch.nn as nn

from cnncourse import shapes
from cnncourse.grading import check_number, check_shape, fail, run_exercise
from cnncourse.models.resnext import ResNeXtBlock as _RefBlock

if "ResNeXtBlock" not in globals():
    fail("ResNeXtBlock", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(82)


def _build(args, stride, meta=True):
    call = f"ResNeXtBlock{args}, stride={stride}"
    with torch.device("meta" if meta else "cpu"):
        mine = run_exercise(ResNeXtBlock, *args, stride=stride, name=call)
        ref = _RefBlock(*args, stride=stride)
    if not isinstance(mine, nn.Module):
        fail(call, f"expected an nn.Module, got {type(mine).__name__}")
    return call, mine, ref


def _structure(args, stride):
    call, mine, ref = _build(args, stride)
    c_in, c_out, card, d = args
    width = card * d
    want = shapes.count_params(ref)
    got = shapes.count_params(mine)
    projection = sum(p.numel() for p in ref.shortcut.parameters())
    hint = (
        "compare your layers with the docstring's: three convolutions without biases, "
        "a batch norm after each, and the shortcut"
    )
    if card > 1 and got == want + 9 * width * (width - d):
        hint = "the 3×3 convolution is grouped: groups=cardinality, d input channels per filter"
    elif projection and got == want - projection:
        hint = ("the shortcut must match the branch's shape: a 1×1 convolution (stride "
                "`stride`, no bias) and a batch norm when the stride is 2 or the channels "
                "change")  # fmt: skip
    elif not projection and got > want:
        hint = "when the shapes already agree the shortcut is the identity: no parameters"
    check_number(got, want, f"parameters of {call}", hint=hint)
    mine_shapes = [(n, tuple(t.shape)) for n, t in mine.state_dict().items()]
    ref_shapes = [(n, tuple(t.shape)) for n, t in ref.state_dict().items()]
    for i, ((n_m, s_m), (n_r, s_r)) in enumerate(zip(mine_shapes, ref_shapes, strict=False)):
        if s_m != s_r:
            fail(call, f"weight #{i} ({n_m}) has shape {s_m}, the reference's ({n_r}) {s_r}",
                 hint="register the layers in the docstring's order")  # fmt: skip
    if len(mine_shapes) != len(ref_shapes):
        fail(call, f"{len(mine_shapes)} weight and buffer tensors, the reference has "
             f"{len(ref_shapes)}", hint="check for a missing or extra layer")  # fmt: skip


def _output_shape(args, stride, shape):
    call, mine, _ = _build(args, stride, meta=False)
    mine.eval()
    x = torch.randn(*shape, generator=_gen)
    try:
        with torch.no_grad():
            out = mine(x.clone())
    except RuntimeError as err:
        fail(f"{call}, x of shape {shape}", f"failed ({err})",
             hint="the 3×3 convolution needs padding 1; the shortcut must give the branch's "
                  "shape")  # fmt: skip
    c_out = args[1]
    want = (shape[0], c_out, (shape[2] - 1) // stride + 1, (shape[3] - 1) // stride + 1)
    check_shape(out, want, f"{call}, output for x of shape {shape}")


_structure((16, 16, 4, 2), 1)
_output_shape((8, 16, 4, 2), 2, (2, 8, 6, 6))
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _args, _stride in [
    ((64, 256, 32, 4), 1),  # ResNeXt-50's first block: projection to 256 channels
    ((256, 256, 32, 4), 1),  # the paper's figure 1: identity shortcut
    ((256, 512, 32, 8), 2),  # the first block of stage 2: stride 2
    ((1024, 2048, 32, 32), 2),
    ((16, 16, 1, 8), 1),  # cardinality 1: a ResNet bottleneck
    ((6, 6, 3, 1), 2),  # stride 2 with the same channels: still a projection
    ((12, 12, 12, 1), 1),  # one channel per path
]:
    _structure(_args, _stride)
for _args, _stride, _shape in [
    ((8, 8, 2, 4), 1, (1, 8, 5, 7)),  # a batch of one, non-square
    ((4, 8, 4, 1), 2, (2, 4, 9, 4)),
    ((8, 16, 8, 2), 2, (2, 8, 1, 1)),  # a 1×1 map
]:
    _output_shape(_args, _stride, _shape)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_resnext_function", "locked": true, "points": 6}
# Tests for ResNeXtBlock by function: with the reference's weights and batch-norm statistics
# copied in, the output must equal the reference's in eval and train mode (6 points).
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnncourse.grading import (
    check_module,
    check_tensor,
    copy_weights,
    fail,
    randomise_weights,
    run_exercise,
)
from cnncourse.models.resnext import ResNeXtBlock as _RefBlock

if "ResNeXtBlock" not in globals():
    fail("ResNeXtBlock", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(83)
_ORDER = ("conv1, bn1, ReLU; conv2 (grouped, with the block's stride), bn2, ReLU; conv3, bn3; "
          "then add shortcut(x), then a ReLU")  # fmt: skip


def _block_pair(args, stride):
    """The reference with random weights and batch-norm statistics, and a copy in yours."""
    call = f"ResNeXtBlock{args}, stride={stride}"
    ref = randomise_weights(_RefBlock(*args, stride=stride), _gen)
    mine = run_exercise(ResNeXtBlock, *args, stride=stride, name=call)
    return call, copy_weights(ref, mine), ref


def _variants(ref, x, stride):
    """What common slips compute, from the reference's layers (eval mode): hint -> output."""
    r, relu = ref, torch.relu
    h = relu(r.bn2(r.conv2(relu(r.bn1(r.conv1(x))))))
    branch, short = r.bn3(r.conv3(h)), r.shortcut(x)
    found = {
        "a ReLU last, after adding the shortcut": branch + short,
        "no ReLU on the branch before the sum: bn3's output goes straight into it":
            relu(relu(branch) + short),
        "add the shortcut: relu(branch + shortcut(x))": relu(branch),
        "bn3 after conv3, before the sum": relu(r.conv3(h) + short),
    }  # fmt: skip
    if stride == 2:
        g = r.conv2.groups
        h1 = relu(r.bn1(F.conv2d(x, r.conv1.weight, stride=2)))
        h2 = relu(r.bn2(F.conv2d(h1, r.conv2.weight, padding=1, groups=g)))
        found["the stride goes on the grouped 3×3 convolution, not the first 1×1"] = relu(
            r.bn3(r.conv3(h2)) + short)  # fmt: skip
    return found


def _compare(call, mine, ref, x, train_mode, what=""):
    mine.train(train_mode)
    ref.train(train_mode)
    label = f"{call} in {'train' if train_mode else 'eval'} mode, x {tuple(x.shape)}{what}"
    with torch.no_grad():
        try:
            out = run_exercise(mine, x, name=label)
        except RuntimeError as err:
            fail(label, f"failed ({err})", hint=_ORDER)
        expected = ref(x)
        if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            fail(label, f"expected shape {tuple(expected.shape)}, got {got}", hint=_ORDER)
        if out.dtype != expected.dtype:
            fail(label, f"expected dtype {expected.dtype}, got {out.dtype}",
                 hint="keep the input's dtype: nothing in forward may call .float()")  # fmt: skip
        try:
            check_tensor(out, expected, "values", rtol=1e-4, atol=1e-4)
        except AssertionError as err:
            hint = _ORDER
            if not train_mode:
                for slip, value in _variants(ref, x, ref.conv2.stride[0]).items():
                    if torch.allclose(out, value, rtol=1e-4, atol=1e-4):
                        hint = slip
                        break
            fail(label, " ".join(str(err).split()), hint=hint)


_call, _mine, _ref = _block_pair((8, 16, 4, 2), 2)
_compare(_call, _mine, _ref, torch.randn(2, 8, 6, 6, generator=_gen), False)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_CASES = [
    ((8, 16, 4, 2), 2, (2, 8, 7, 6)),  # stride 2, projection
    ((16, 16, 4, 2), 1, (2, 16, 5, 5)),  # identity shortcut
    ((8, 16, 8, 2), 1, (3, 8, 4, 6)),  # projection at stride 1 (channels change)
    ((6, 6, 3, 2), 2, (2, 6, 2, 2)),  # stride 2, same channels: a 1×1 output
    ((12, 12, 1, 4), 1, (1, 12, 5, 3)),  # cardinality 1, a batch of one (eval only)
]
for _args, _stride, _shape in _CASES:
    _call, _mine, _ref = _block_pair(_args, _stride)
    _x = torch.randn(*_shape, generator=_gen)
    for _train in (False, True) if _shape[0] > 1 else (False,):
        _compare(_call, _mine, _ref, _x, _train)
    _compare(_call, _mine, _ref, 1000 * _x, False, ", large")
for _args, _stride, _shape in _CASES[:2]:  # float64 after .double()
    _call, _mine, _ref = _block_pair(_args, _stride)
    _mine.double()
    _ref.double()
    for _train in (False, True):
        _x = torch.randn(*_shape, generator=_gen, dtype=torch.float64)
        _compare(_call + ".double()", _mine, _ref, _x, _train, ", float64")
# gradients with respect to the input and every parameter, in train mode
for _args, _stride, _shape in _CASES[:2]:
    _call, _mine, _ref = _block_pair(_args, _stride)
    _x = torch.randn(*_shape, generator=_gen, requires_grad=True)
    check_module(_mine, _ref, _x, _call, train=True, grads=True, generator=_gen, hint=_ORDER,
                 rtol=1e-4, atol=1e-4)  # fmt: skip
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Training a small ResNeXt and a small ResNet
#
# `models.resnext_small` is the CIFAR-style twin of `models.resnet_small` (notebook 07):
# the same stem, three stages of one block with 16, 32 and 64 output channels, and the
# same head; its blocks are ResNeXt blocks of 8 paths of width 2, 4 and 8 where the
# ResNet has BasicBlocks of two 3×3 convolutions. Both train below on scikit-learn's
# handwritten digits (1,294 training images of 8×8 pixels, one channel; 144 for
# validation), with the same budget: six epochs of Adam at learning rate 3e-3, batches
# of 64, the same seed. (In grading mode: one short epoch each.) The table reports each
# network's parameters, its MACs per image, its training time and its accuracy.

# %%
EPOCHS = 1 if utils.grading_mode() else 6
digits_train, digits_val, digits_test = data.make_loaders("digits", 64)
results, histories = {}, {}
for name, make in (("ResNeXt (8 paths)", models.resnext_small), ("ResNet", models.resnet_small)):
    utils.seed_everything(0)
    digits_train.generator.manual_seed(0)
    net = make(in_channels=1)
    start = time.perf_counter()
    histories[name] = train.fit(net, digits_train, digits_val, epochs=EPOCHS, lr=3e-3,
                                verbose=False, progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    test = train.evaluate(net, digits_test)
    macs = shapes.summary(net, (1, 8, 8), verbose=False).total_macs
    results[name] = (shapes.count_params(net), macs, seconds, test)
print(f"{'network':<18} {'params':>8} {'MACs/image':>11} {'train time':>11} {'test acc':>9}")
for name, (params, macs, seconds, test) in results.items():
    print(f"{name:<18} {params:>8,} {macs:>11,} {seconds:>10.1f}s {test['acc']:>9.3f}")
for name, history in histories.items():
    print(f"{name}: validation accuracy per epoch {[round(a, 3) for a in history.val_acc]}")
plot.plot_history(histories, title="small ResNeXt and ResNet on digits, same budget")

# %% [markdown]
# **What came out** (numbers above; the text gives those of our runs while this notebook
# was written). Both networks learn the digits well. After six epochs the ResNet
# reached 0.99 on the validation and the test set (test 0.992), the ResNeXt 0.97 (test
# 0.969), and the ResNet got there sooner (0.92 validation accuracy after one epoch
# against the ResNeXt's 0.74). The ResNeXt has a quarter of the parameters (18,490
# against 77,754) and 28% of the MACs (212,608 against 763,520 per image), and it still
# took about 1.6 times as long to train on this CPU (5.2 s against 3.1 s in one run,
# 6.0 s against 3.8 s in another): the grouped convolutions of section 3 again, now
# in a whole network. This small comparison is not the paper's: there the two networks
# had the same cost; here the ResNeXt is much cheaper in arithmetic, and on 8×8 digits
# both are near the ceiling, so the difference of two points in accuracy says little
# (the test set has 359 images: one image is 0.3 points). What it does show is that
# fewer MACs did not mean less time here.

# %% [markdown]
# ## Summary
#
# - ResNeXt adds **cardinality** to depth and width: a block of $C$ parallel paths of
#   the same shape (1×1 to $d$ channels, 3×3, 1×1 back), whose outputs are summed and
#   added to the shortcut: *split, transform, merge*. Like Inception it runs paths side
#   by side; unlike Inception its paths are identical and summed, so one number
#   describes the block.
# - The $C$ paths are one **grouped convolution**: $g$ groups connect input block $j$
#   with output block $j$ only, which divides weights and MACs by $g$. You wrote one
#   with `unfold` and `einsum`.
# - **Why g pathways:** for the same weights and arithmetic, groups allow a wider
#   middle layer; at ResNet-50's cost, 32 paths of 4 (128 channels) instead of one of
#   64 (Table 2), and a lower ImageNet error (22.2% against 23.9%). ResNeXt-50 has
#   25.0M parameters against ResNet-50's 25.6M. On this CPU a grouped convolution is
#   not faster per MAC: 32 groups did 32 times less arithmetic and ran only 1.5 to 2.2
#   times faster.
# - **The last 1×1 convolution** merges the paths and restores the channel count: its
#   weight, split by input channels, is the $C$ paths' own last layers, and one 1×1
#   convolution over the concatenated paths equals the sum of the paths' outputs. So the
#   paper's three forms of the block (separate paths, early concatenation, grouped
#   convolution) compute the same function.
# - The ResNeXt block in PyTorch is a bottleneck block with `groups=cardinality` in its
#   3×3 convolution.
#
# **Further questions (not graded)**
# 1. A grouped convolution never mixes groups. What would a network of grouped
#    convolutions *without* 1×1 convolutions between them compute? (ShuffleNet, 2018,
#    answers with a "channel shuffle" between grouped layers.)
# 2. Depthwise convolutions are the extreme $g = C_{in}$. Count the weights and MACs of a
#    depthwise 3×3 convolution followed by a 1×1 convolution (MobileNet's *separable*
#    convolution) against an ordinary 3×3 convolution, for 128 channels.
# 3. Repeat the timing of section 3 with gradients (a training step) and with a batch
#    of 64. Does the gap between MACs and time shrink?
# 4. In section 5, why do the widths 64, 40, 24, 14, 4 give middle layers of 64, 80, 96,
#    112, 128 channels, and not more? Which term of $C d (512 + 9 d)$ limits the width?
# 5. Build a small ResNeXt with the same parameter count as `resnet_small` (choose the
#    widths with `matched_width`) and compare the two again.
