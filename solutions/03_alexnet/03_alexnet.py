# %% [markdown]
# # 03 · AlexNet: going deep on GPUs
#
# In 2012 a convolutional network won the ImageNet Large Scale Visual Recognition
# Challenge (ILSVRC) by a margin nobody expected. AlexNet (Krizhevsky, Sutskever and
# Hinton, *ImageNet Classification with Deep Convolutional Neural Networks*, NIPS 2012)
# is LeNet's design, convolutions then dense layers, made about a thousand times larger
# and trained on 1.2 million colour images with two GPUs. Almost everything in the
# notebooks that follow starts from it.
#
# **In this notebook you will**
# - see where AlexNet stands among the ILSVRC winners;
# - answer the lecture's questions about its first layers (why 55? how many parameters?
#   why 27? how many parameters in a pooling layer?) with general functions, and find out
#   why the paper's "224×224 input" cannot give its own 55;
# - write AlexNet's whole layer table, with output shapes, parameters and
#   multiply-accumulates, and see where the parameters live and where the computation goes;
# - build AlexNet as a PyTorch module, small enough for 32×32 images and, from the same
#   code, the full-size 62-million-parameter network;
# - go through the lecture's list "How is AlexNet different from LeNet?" with experiments
#   and exercises: ReLU against saturating activations, dropout (which you write) and
#   weight decay against overfitting, and local response normalisation (which you write
#   too), the one idea of AlexNet that did not last;
# - look at the data augmentation AlexNet relied on.
#
# | section | what happens | points |
# |---|---|---|
# | 1 | AlexNet and the ImageNet challenge | |
# | 2 | exercises: CONV1 and POOL1, and the 224 against 227 puzzle | 4 + 2 + 3 |
# | 3 | exercise: the layer table; where parameters and computation go | 4 + 2 + 3 |
# | 4 | exercise: the `AlexNet` module | 4 + 8 |
# | 5 | how AlexNet differs from LeNet: ReLU, dropout and weight decay, normalisation | 6 + 5 |
# | 6 | data augmentation | |

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnncourse import data, grading, models, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)

# Two versions of AlexNet's layout (section 3 explains them), and the names of its layers.
PAPER_CONVS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1))
SMALL_CONVS = ((24, 5, 1, 2), (48, 5, 1, 2), (64, 3, 1, 1), (64, 3, 1, 1), (48, 3, 1, 1))
PAPER = {"convs": PAPER_CONVS, "pool_size": 6, "hidden": 4096, "lrn": True}  # 3×227×227 input
SMALL = {"convs": SMALL_CONVS, "pool_size": 3, "hidden": 256, "lrn": False}  # 3×32×32 input
LAYERS = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7",
          "fc8")  # fmt: skip

# %% [markdown]
# ## 1. AlexNet and the ImageNet challenge
#
# ImageNet's classification challenge asks for the object in a photograph, out of 1,000
# classes (from "goldfish" to "toilet tissue", with 120 breeds of dog). A model may name
# five guesses per image; the **top-5 error** is the fraction of test images whose true
# class is not among them. The chart shows the winners year by year (VGG came second in
# 2014 but is in the chart because the course studies it).

# %%
plot.ilsvrc_chart(highlight="AlexNet")
plt.show()
print("Sources:")
for entry in plot.ILSVRC_WINNERS:
    print(f"  {entry.year} {entry.name:<10} {entry.top5:>5}%  {entry.source}")
print(f"  human      {plot.HUMAN_TOP5:>5}%  one trained annotator on 1,500 test images "
      "(Russakovsky et al. 2015, section 6.4)")


# %% [markdown]
# The methods of 2010 and 2011 were "shallow": hand-designed features (SIFT descriptors,
# local binary patterns, Fisher vectors) fed to linear classifiers, and they improved by
# a couple of points a year. AlexNet cut the error from about 26% to 16%, and from then
# on every winner was a deep convolutional network, each deeper than the last, until
# ResNet went below the error measured for a trained human. (The human figure comes from
# one annotator who practised on the task; it is a reference point, not a law of nature.)
#
# What made the jump possible was not one new idea but three things arriving together:
# a large labelled dataset (ImageNet), GPUs fast enough to train a network with 60
# million parameters on it in about a week, and a few design choices that made such a
# network trainable and kept it from memorising its training set. Sections 4 and 5 look
# at those choices.

# %% [markdown]
# ## 2. CONV1 and POOL1
#
# The paper's figure 2 draws AlexNet split in two halves, one per GPU (each GPU held
# half of the feature maps, and some layers only read the maps on their own GPU). We use
# the ungrouped, single-tower form throughout, as the lecture does. Its first two layers:
#
# - **CONV1**: 96 filters of 11×11 (over all 3 colour channels), applied at stride 4,
#   without padding, then ReLU;
# - **POOL1**: max pooling over 3×3 windows at stride 2.
#
# The lecture asks four questions about them. Why is CONV1's output 55×55? How many
# parameters does CONV1 have? Why is POOL1's output 27×27? How many parameters does POOL1
# have? Rather than work out four numbers, you will write the general functions, and the
# tests will try them on layers you have not seen.
#
# As in `01_components`, an output side is
# $\left\lfloor (n + 2p - k)/s \right\rfloor + 1$ for an input side $n$, kernel $k$,
# stride $s$ and padding $p$, along the height and the width separately; a convolution
# with $C_\text{in}$ input channels and $C_\text{out}$ filters of $k \times k$ has
# $C_\text{out}(C_\text{in} k^2 + 1)$ parameters (the weights and one bias per filter).
# A pooling layer takes the maximum (or the mean) of each window of each channel
# separately: it keeps the number of channels.
#
# ### Exercise 1: `conv_layer` (4 points)
#
# Given the shape of a layer's input as `(C, H, W)` (no batch dimension), return the
# shape of its output and its number of parameters. Inputs need not be square. If the
# kernel does not fit in the padded input along one side, raise a `ValueError` whose
# message names `kernel_size`.

# %% nbgrader={"grade_id": "conv_layer", "solution": true}
def conv_layer(
    in_shape: tuple[int, int, int],
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
) -> tuple[tuple[int, int, int], int]:
    """Output shape and parameter count of nn.Conv2d(C, out_channels, kernel_size, stride,
    padding) (with its biases) applied to inputs of shape in_shape = (C, H, W).

    Returns:
        ((out_channels, H_out, W_out), params), all ints, where
        H_out = floor((H + 2*padding - kernel_size) / stride) + 1 (W_out alike) and
        params = out_channels * (C * kernel_size**2 + 1).

    Raises:
        ValueError: if kernel_size > H + 2*padding or kernel_size > W + 2*padding; the
            message names ``kernel_size``.
    """
    ### BEGIN SOLUTION
    c, h, w = in_shape
    if kernel_size > min(h, w) + 2 * padding:
        raise ValueError(
            f"kernel_size={kernel_size} does not fit in the padded input "
            f"({h}×{w} with padding {padding})"
        )
    h_out = (h + 2 * padding - kernel_size) // stride + 1
    w_out = (w + 2 * padding - kernel_size) // stride + 1
    return (out_channels, h_out, w_out), out_channels * (c * kernel_size * kernel_size + 1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv_layer", "locked": true, "points": 4}
# Tests for conv_layer (4 points).
from cnncourse.grading import check_raises, check_shape_answer, fail, run_exercise


def _check_conv_layer(in_shape, c_out, k, s, p):
    call = f"conv_layer({in_shape}, {c_out}, kernel_size={k}, stride={s}, padding={p})"
    out = run_exercise(conv_layer, in_shape, c_out, k, stride=s, padding=p, name=call)
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(call, f"expected a pair (output shape, parameters), got {out!r}")
    shape, params = out
    layer = nn.Conv2d(in_shape[0], c_out, k, s, p)  # what torch really builds and computes
    with torch.no_grad():
        expected = tuple(layer(torch.zeros(1, *in_shape)).shape[1:])
    want = sum(t.numel() for t in layer.parameters())
    if not (isinstance(shape, tuple) and all(type(v) is int for v in shape)):
        fail(call, f"expected the output shape as a tuple of ints, got {shape!r}",
             hint="use // for the floor, so the sizes stay ints")
    c, h, w = in_shape
    hint = ""
    if len(shape) == 3 and shape[1] == shape[2] and h != w:
        hint = "the height and the width are computed separately: the input is not square"
    elif shape[:1] == (c,) and c != c_out:
        hint = "a convolution has one output channel per filter (out_channels)"
    elif len(shape) == 3 and shape[1] == (h + p - k) // s + 1:
        hint = "padding adds zeros on each side: the padded height is H + 2*padding"
    elif len(shape) == 3 and shape[1] == (h + 2 * p - k) // s:
        hint = "count the first window position too (+ 1)"
    check_shape_answer(shape, expected, call,
                       hint or "floor((H + 2*padding - kernel_size) / stride) + 1, rounding down")
    if type(params) is not int or params != want:
        hint = ""
        if params == want - c_out:
            hint = "each filter also has one bias"
        elif params == c_out * (k * k + 1) and c > 1:
            hint = f"each filter spans all {c} input channels"
        elif params in (want * expected[1] * expected[2],
                        (want - c_out) * expected[1] * expected[2]):
            hint = ("filters are shared by every output position: the count does not depend "
                    "on the size of the image")
        fail(call, f"expected {want} parameters, got {params!r}", hint=hint)


_check_conv_layer((3, 20, 20), 8, 5, 1, 0)
_check_conv_layer((4, 16, 16), 6, 3, 2, 1)
check_raises(conv_layer, (3, 4, 4), 2, 7, why="a 7×7 kernel does not fit in a 4×4 input")
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Layers you have not seen, with size, kernel, stride and padding varied together;
# non-square inputs, a 1×1 output, 1×1 kernels.
for _args in [((3, 224, 224), 64, 7, 2, 3), ((1, 31, 17), 5, 3, 2, 1), ((96, 27, 27), 256, 5, 1, 2),
              ((2, 13, 9), 7, 4, 3, 0), ((64, 9, 9), 16, 9, 1, 0), ((3, 11, 15), 4, 1, 1, 0),
              ((5, 10, 10), 3, 4, 3, 2), ((8, 7, 12), 2, 5, 4, 1), ((3, 230, 227), 96, 11, 4, 0)]:
    _check_conv_layer(*_args)
for _in_shape, _k, _p in [((3, 4, 4), 7, 1), ((3, 20, 5), 6, 0), ((1, 2, 9), 5, 1)]:
    check_raises(conv_layer, _in_shape, 4, _k, padding=_p, argument="kernel_size",
                 why=f"a {_k}×{_k} kernel does not fit in a {_in_shape[1]}×{_in_shape[2]} input "
                     f"padded by {_p}")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: `pool_layer` (2 points)
#
# The same for a max-pooling layer with square windows of `kernel_size` at `stride`
# (no padding). Raise a `ValueError` naming `kernel_size` if the window does not fit.

# %% nbgrader={"grade_id": "pool_layer", "solution": true}
def pool_layer(
    in_shape: tuple[int, int, int], kernel_size: int, stride: int
) -> tuple[tuple[int, int, int], int]:
    """Output shape and parameter count of nn.MaxPool2d(kernel_size, stride) applied to
    inputs of shape in_shape = (C, H, W).

    Returns:
        ((C, H_out, W_out), params), all ints, with H_out = floor((H - kernel_size) /
        stride) + 1 (W_out alike).

    Raises:
        ValueError: if kernel_size > H or kernel_size > W; the message names ``kernel_size``.
    """
    ### BEGIN SOLUTION
    c, h, w = in_shape
    if kernel_size > min(h, w):
        raise ValueError(f"kernel_size={kernel_size} does not fit in a {h}×{w} input")
    h_out = (h - kernel_size) // stride + 1
    w_out = (w - kernel_size) // stride + 1
    return (c, h_out, w_out), 0  # a maximum has nothing to learn
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_pool_layer", "locked": true, "points": 2}
# Tests for pool_layer (2 points).
from cnncourse.grading import check_raises, check_shape_answer, fail, run_exercise


def _check_pool_layer(in_shape, k, s):
    call = f"pool_layer({in_shape}, kernel_size={k}, stride={s})"
    out = run_exercise(pool_layer, in_shape, k, s, name=call)
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(call, f"expected a pair (output shape, parameters), got {out!r}")
    shape, params = out
    expected = tuple(nn.MaxPool2d(k, s)(torch.zeros(1, *in_shape)).shape[1:])
    if not (isinstance(shape, tuple) and all(type(v) is int for v in shape)):
        fail(call, f"expected the output shape as a tuple of ints, got {shape!r}",
             hint="use // for the floor, so the sizes stay ints")
    c, h, w = in_shape
    hint = "floor((H - kernel_size) / stride) + 1, for the height and the width"
    if len(shape) == 3 and shape[0] != c:
        hint = "pooling works on each channel separately: it keeps the number of channels"
    elif len(shape) == 3 and (shape[1], shape[2]) == (h // s, w // s):
        hint = (f"the windows overlap ({k}×{k} at stride {s}): count the positions where a "
                "whole window fits, floor((H - kernel_size) / stride) + 1")
    check_shape_answer(shape, expected, call, hint)
    if type(params) is not int or params != 0:
        fail(call, f"expected 0 parameters, got {params!r}",
             hint="max pooling takes the largest value in each window: it learns nothing")


_check_pool_layer((6, 12, 12), 2, 2)
_check_pool_layer((4, 9, 9), 3, 3)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _args in [((64, 112, 112), 3, 2), ((3, 32, 32), 3, 2), ((5, 15, 22), 3, 2), ((7, 1, 1), 1, 1),
              ((2, 8, 13), 4, 3), ((9, 6, 7), 2, 1), ((256, 13, 13), 3, 2), ((1, 3, 5), 3, 5)]:
    _check_pool_layer(*_args)
for _in_shape, _k in [((3, 2, 2), 3), ((4, 10, 4), 5)]:
    check_raises(pool_layer, _in_shape, _k, 2, argument="kernel_size",
                 why=f"a {_k}×{_k} window does not fit in a {_in_shape[1]}×{_in_shape[2]} input")
### END HIDDEN TESTS

# %% [markdown]
# Now the lecture's four questions, answered by your functions:

# %%
conv1_shape, conv1_params = conv_layer((3, 227, 227), 96, kernel_size=11, stride=4)
pool1_shape, pool1_params = pool_layer(conv1_shape, kernel_size=3, stride=2)
print(f"CONV1 on 3×227×227: output {conv1_shape}, {conv1_params:,} parameters")
print(f"POOL1 on {conv1_shape}: output {pool1_shape}, {pool1_params} parameters")


# %% [markdown]
# CONV1's 11×11 window fits at the first position and then once more for each step of 4
# pixels: $(227 - 11)/4 = 54$ steps, plus the first position, gives 55 along each side.
# Its $96 \times (11 \cdot 11 \cdot 3 + 1) = 34{,}944$ parameters are the lecture's "35K":
# tiny next to the network's 62 million, even though this layer looks at the whole
# image. POOL1's 3×3 window fits $(55 - 3)/2 + 1 = 27$ times along each side, and a
# maximum has nothing to learn, so it has zero parameters.
#
# POOL1's windows **overlap**: they are 3 wide but only 2 apart, so neighbouring windows
# share a row or a column. LeNet's pooling (2×2 at stride 2) does not overlap. The paper
# reports that overlapping pooling lowered its top-5 error by 0.3 points compared with
# 2×2 windows at stride 2 (which give the same output size), and that it made the
# network slightly harder to overfit.
#
# ### Exercise 3: 224 or 227? (3 points)
#
# The paper's text says its network takes images of 224×224×3. But
# $(224 - 11)/4 + 1 = 54.25$: an 11-wide window at stride 4 does not fit a whole number
# of times into 224 pixels, and the floor gives 54, not 55. To find out which input the
# paper's 55 needs, turn the formula around. Write `input_size_for(output_size,
# kernel_size, stride, padding)`: the **smallest** input side that gives `output_size`
# positions. Raise a `ValueError` naming `output_size` when it is below 1, and one naming
# `padding` when the padding is so large that no input side (of at least 1) gives exactly
# `output_size`.

# %% nbgrader={"grade_id": "input_size_for", "solution": true}
def input_size_for(output_size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """The smallest input side n >= 1 with floor((n + 2*padding - kernel_size) / stride) + 1
    == output_size: (output_size - 1) * stride + kernel_size - 2 * padding.

    Raises:
        ValueError: if output_size < 1 (the message names ``output_size``), or if that
            smallest side would be below 1: a larger padding already gives more positions
            than output_size even for a 1-pixel input (the message names ``padding``).
    """
    ### BEGIN SOLUTION
    if output_size < 1:
        raise ValueError(f"output_size={output_size}: expected at least 1")
    size = (output_size - 1) * stride + kernel_size - 2 * padding
    if size < 1:
        raise ValueError(
            f"padding={padding}: too much padding, even a 1-pixel input gives more than "
            f"{output_size} positions"
        )
    return size
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_input_size_for", "locked": true, "points": 3}
# Tests for input_size_for (3 points).
from cnncourse.grading import check_number, check_raises, fail, run_exercise


def _positions(n, k, s, p):  # what nn.Conv2d really gives for an input side n
    return F.conv2d(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, k, 1), stride=(s, 1),
                    padding=(p, 0)).shape[2]


def _smallest(o, k, s, p):  # found by trying every input side
    return next(n for n in range(1, 3000) if n + 2 * p >= k and _positions(n, k, s, p) == o)


def _check_input_size(o, k, s, p):
    call = f"input_size_for({o}, kernel_size={k}, stride={s}, padding={p})"
    got = run_exercise(input_size_for, o, k, stride=s, padding=p, name=call)
    want = _smallest(o, k, s, p)
    if type(got) is not int:
        fail(call, f"expected an int, got {type(got).__name__} ({got!r})")
    hint = ""
    if p > 0 and got == _smallest(o, k, s, 0):
        hint = "padding adds 2*padding pixels, so the input itself can be that much smaller"
    elif got == _smallest(o + 1, k, s, p):
        hint = "output_size positions are output_size - 1 steps of the stride after the first"
    elif got > want and got + 2 * p >= k and _positions(got, k, s, p) == o:
        hint = "that input gives output_size positions, but a smaller one does too"
    check_number(got, want, call, hint=hint)


_check_input_size(10, 3, 1, 0)
_check_input_size(5, 3, 2, 1)
check_raises(input_size_for, 0, 3, why="no input gives 0 positions")
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _o, _k, _s, _p in [(27, 3, 2, 0), (13, 3, 2, 0), (112, 7, 2, 3), (1, 1, 1, 0), (1, 5, 3, 0),
                       (8, 4, 3, 1), (6, 11, 4, 2), (32, 5, 1, 2), (17, 2, 5, 0), (9, 9, 7, 3)]:
    _check_input_size(_o, _k, _s, _p)
check_raises(input_size_for, -2, 5, 2, argument="output_size", why="no input gives -2 positions")
check_raises(input_size_for, 1, 1, 1, 1, argument="padding",
             why="a 1-pixel input padded by 1 already gives 3 positions of a 1×1 kernel")
check_raises(input_size_for, 2, 3, 1, 3, argument="padding",
             why="a 1-pixel input padded by 3 already gives 5 positions of a 3×3 kernel")
### END HIDDEN TESTS

# %% [markdown]
# So what does 55 need, and what do nearby inputs give?

# %%
print("smallest input giving 55 after CONV1:", input_size_for(55, kernel_size=11, stride=4))
for n in (224, 227, 228, 230, 231):
    (_, side, _), _ = conv_layer((3, n, n), 96, kernel_size=11, stride=4)
    print(f"  {n}×{n} input -> {side}×{side}")
(_, side, _), _ = conv_layer((3, 224, 224), 64, kernel_size=11, stride=4, padding=2)
print(f"torchvision's CONV1 (64 filters, padding 2) on 224×224 -> {side}×{side}")

# %% [markdown]
# The arithmetic of the paper only works for inputs of 227 to 230 pixels (the floor
# absorbs up to three extra pixels, since the stride is 4), and 227 is the smallest of
# them: with 224, CONV1 gives 54×54, and every later size would change. The usual
# explanation is that the crops were 224×224 but the first layer saw them with a few
# pixels of zero padding, or that the text and the figure simply disagree; the paper does
# not say. Later reimplementations chose one or the other: Caffe's reference model crops
# 227×227, and torchvision's version takes 224×224 with a padding of 2 in CONV1
# ($\lfloor (224 + 4 - 11)/4 \rfloor + 1 = 55$). Our `models.alexnet(variant="paper")`
# takes 227.
#
# The lesson generalises: when a stride does not divide the input exactly, the last few
# rows and columns are silently dropped, and a network that seems to "work" on a slightly
# different input size may be looking at a slightly different picture than you think.

# %% [markdown]
# ## 3. The layer table
#
# After CONV1 and POOL1 come four more convolutions, two more pooling layers and three
# dense layers. In the table, *MACs* counts the multiply-accumulates one image costs:
# a convolution computes $C_\text{out} H_\text{out} W_\text{out}$ outputs, each a dot
# product of length $C_\text{in} k^2$; a dense layer from $n_\text{in}$ to
# $n_\text{out}$ units computes $n_\text{out}$ dot products of length $n_\text{in}$.
# (Adding the biases and the ReLU, and taking maxima in the pooling layers, cost far less
# and are not counted: pooling layers have 0 MACs here.)
#
# | layer | what it does (the paper's sizes) |
# |---|---|
# | conv1 | 96 filters 11×11, stride 4, no padding, ReLU |
# | pool1 | max 3×3, stride 2 |
# | conv2 | 256 filters 5×5, stride 1, padding 2, ReLU |
# | pool2 | max 3×3, stride 2 |
# | conv3 | 384 filters 3×3, stride 1, padding 1, ReLU |
# | conv4 | 384 filters 3×3, stride 1, padding 1, ReLU |
# | conv5 | 256 filters 3×3, stride 1, padding 1, ReLU |
# | pool5 | max 3×3, stride 2 |
# | fc6 | dense, pool5's maps flattened → 4096 units, ReLU |
# | fc7 | dense, 4096 → 4096, ReLU |
# | fc8 | dense, 4096 → 1000 class scores |
#
# The same layout works at other sizes, and the rest of the notebook describes each
# version by its five convolutions, each a tuple `(out_channels, kernel_size, stride,
# padding)`, and the width of the two hidden dense layers. The setup cell at the top
# defined two versions: `PAPER` (for 3×227×227 images) and `SMALL` (for 3×32×32), and
# the names of the layers, `LAYERS`:

# %%
for name, version in (("PAPER", PAPER), ("SMALL", SMALL)):
    print(f"{name}: convs {version['convs']}, hidden {version['hidden']}")
print("LAYERS:", ", ".join(LAYERS))


# %% [markdown]
# ### Exercise 4: `alexnet_table` (4 + 2 + 3 points)
#
# Write the table for any such version: a dict from each name in `LAYERS` to a triple
# `(output shape, parameters, MACs)`, with the output shape without the batch dimension,
# `(C, H, W)` for feature maps and `(features,)` for a dense layer. The pooling layers
# are all 3×3 at stride 2. Your `conv_layer` and `pool_layer` do half the work.
#
# It is graded in three parts, on versions you have not seen: the five convolutions (4
# points), the three pooling layers (2 points) and the three dense layers (3 points). A
# row counts as right when it matches the reference, or when it follows correctly from
# your own row before it, so one slip costs one part. The visible checks only look at
# the format.

# %% nbgrader={"grade_id": "alexnet_table", "solution": true}
def alexnet_table(
    convs, hidden: int, num_classes: int = 1000, in_channels: int = 3, image_size: int = 227
) -> dict:
    """AlexNet's layer table for square inputs of in_channels × image_size × image_size.

    convs: five (out_channels, kernel_size, stride, padding), for conv1 to conv5 (each with
    a bias); 3×3 max pooling at stride 2 after conv1, conv2 and conv5; then fc6 (pool5's
    maps flattened -> hidden), fc7 (hidden -> hidden) and fc8 (hidden -> num_classes),
    each with biases.

    Returns {"conv1": ((C, H, W), params, macs), ..., "fc8": ((num_classes,), params, macs)}
    with a key for every name in LAYERS, every entry an int; MACs per image (biases, ReLUs
    and pooling not counted).
    """
    ### BEGIN SOLUTION
    table = {}
    shape = (in_channels, image_size, image_size)
    convs_left = iter(convs)
    for name in LAYERS[:8]:
        if name.startswith("pool"):
            shape, params = pool_layer(shape, 3, 2)
            table[name] = (shape, params, 0)
            continue
        out_channels, k, s, p = next(convs_left)
        c_in = shape[0]
        shape, params = conv_layer(shape, out_channels, k, s, p)
        table[name] = (shape, params, math.prod(shape) * c_in * k * k)  # one dot product per output
    n_in = math.prod(shape)  # pool5's maps, flattened
    for name, n_out in (("fc6", hidden), ("fc7", hidden), ("fc8", num_classes)):
        table[name] = ((n_out,), n_out * (n_in + 1), n_out * n_in)
        n_in = n_out
    return table
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_table_conv", "locked": true, "points": 4}
# Tests for alexnet_table: the convolutions conv1 to conv5 (4 points).
from cnncourse.grading import check_shape_answer, fail, run_exercise, table_row, with_reference
from cnncourse.models.alexnet import alexnet_rows
from cnncourse.shapes import conv_output_size, conv_params, pool_output_size


def _ref_conv_layer(in_shape, out_channels, kernel_size, stride=1, padding=0):
    c, h, w = in_shape
    sides = [conv_output_size(n, kernel_size, stride, padding) for n in (h, w)]
    return (out_channels, *sides), conv_params(c, out_channels, kernel_size)


def _ref_pool_layer(in_shape, kernel_size, stride):
    c, h, w = in_shape
    return (c, *[pool_output_size(n, kernel_size, stride) for n in (h, w)]), 0


_REFERENCES = {"conv_layer": _ref_conv_layer, "pool_layer": _ref_pool_layer}
for _args in ((PAPER_CONVS, 4096), (SMALL_CONVS, 256, 10, 3, 32)):  # filled in, in the format
    with with_reference(globals(), **_REFERENCES):  # your table, with the reference helpers
        _table = run_exercise(alexnet_table, *_args, name="alexnet_table(...)")
    for _name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        table_row(_table, _name, table_name="alexnet_table(...)", macs=True)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_CONFIGS = [  # (convs, hidden, num_classes, in_channels, image_size)
    (((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)), 4096,
     1000, 3, 224),  # torchvision's AlexNet
    (SMALL_CONVS, 128, 7, 1, 35),
    (((32, 7, 2, 3), (40, 5, 1, 2), (56, 3, 1, 1), (48, 3, 2, 1), (24, 3, 1, 0)), 96, 5, 2, 83),
    (((10, 3, 1, 0), (12, 3, 1, 1), (8, 1, 1, 0), (6, 3, 1, 2), (4, 5, 1, 1)), 20, 3, 4, 41),
]


def _table_for(config):
    call = "alexnet_table(convs={}, hidden={}, num_classes={}, in_channels={}, image_size={})"
    call = call.format(*config)
    with with_reference(globals(), **_REFERENCES):
        return call, run_exercise(alexnet_table, *config, name=call)


def _own_shape(table, name):  # the (C, H, W) you wrote in row `name`, if well formed
    entry = table.get(name)
    shape = entry[0] if isinstance(entry, tuple) and entry else None
    ok = isinstance(shape, tuple) and len(shape) == 3 and all(type(v) is int for v in shape)
    return shape if ok else None


for _config in _CONFIGS:
    _call, _table = _table_for(_config)
    _expected = alexnet_rows(*_config)
    _before = {"conv1": None, "conv2": "pool1", "conv3": "pool2", "conv4": "conv3",
               "conv5": "conv4"}
    for (_name, _prev), (_c_out, _k, _s, _p) in zip(_before.items(), _config[0], strict=True):
        _shape, _params, _macs = table_row(_table, _name, table_name=_call, macs=True)
        _r = _expected[_name]
        _in = _own_shape(_table, _prev) if _prev else (_config[3], _config[4], _config[4])
        _right = {(_r.output_shape, _r.params, _r.macs)}
        if _in is not None and min(_in[1:]) + 2 * _p >= _k:  # what follows from your row before
            _own, _own_params = _ref_conv_layer(_in, _c_out, _k, _s, _p)
            _right.add((_own, _own_params, math.prod(_own) * _in[0] * _k * _k))
        if (_shape, _params, _macs) in _right:
            continue
        _label = f"{_call}, row {_name}"
        if _shape not in {r[0] for r in _right}:
            check_shape_answer(_shape, _r.output_shape, _label,
                               "floor((H + 2*padding - kernel_size) / stride) + 1, with this "
                               "layer's own kernel, stride and padding")
        if _params not in {r[1] for r in _right}:
            _hint = f"did you forget the {_c_out} biases?" if _params == _r.params - _c_out else (
                "each filter spans all the channels of the layer's input")
            fail(_label, f"expected {_r.params} parameters, got {_params}", hint=_hint)
        _hint = "one dot product of length C_in·k·k for each of the C_out·H_out·W_out outputs"
        if _macs in {_params, _params - _c_out}:
            _hint = ("a filter's weights are used once at every output position: multiply by "
                     "H_out·W_out")
        fail(_label, f"expected {_r.macs} MACs, got {_macs}", hint=_hint)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_table_pool", "locked": true, "points": 2}
# Tests for alexnet_table: the pooling layers pool1, pool2 and pool5 (2 points).
from cnncourse.grading import check_shape_answer, fail, run_exercise, table_row, with_reference
from cnncourse.models.alexnet import alexnet_rows
from cnncourse.shapes import conv_output_size, conv_params, pool_output_size


def _ref_conv_layer(in_shape, out_channels, kernel_size, stride=1, padding=0):
    c, h, w = in_shape
    sides = [conv_output_size(n, kernel_size, stride, padding) for n in (h, w)]
    return (out_channels, *sides), conv_params(c, out_channels, kernel_size)


def _ref_pool_layer(in_shape, kernel_size, stride):
    c, h, w = in_shape
    return (c, *[pool_output_size(n, kernel_size, stride) for n in (h, w)]), 0


_REFERENCES = {"conv_layer": _ref_conv_layer, "pool_layer": _ref_pool_layer}
for _args in ((PAPER_CONVS, 4096), (SMALL_CONVS, 256, 10, 3, 32)):
    with with_reference(globals(), **_REFERENCES):  # your table, with the reference helpers
        _table = run_exercise(alexnet_table, *_args, name="alexnet_table(...)")
    for _name in ("pool1", "pool2", "pool5"):
        table_row(_table, _name, table_name="alexnet_table(...)", macs=True)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_CONFIGS = [
    (((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)), 4096,
     1000, 3, 224),
    (SMALL_CONVS, 128, 7, 1, 35),
    (((32, 7, 2, 3), (40, 5, 1, 2), (56, 3, 1, 1), (48, 3, 2, 1), (24, 3, 1, 0)), 96, 5, 2, 83),
    (((10, 3, 1, 0), (12, 3, 1, 1), (8, 1, 1, 0), (6, 3, 1, 2), (4, 5, 1, 1)), 20, 3, 4, 41),
]


for _config in _CONFIGS:
    _call = "alexnet_table(convs={}, hidden={}, num_classes={}, in_channels={}, image_size={})"
    _call = _call.format(*_config)
    with with_reference(globals(), **_REFERENCES):
        _table = run_exercise(alexnet_table, *_config, name=_call)
    _expected = alexnet_rows(*_config)
    for _name, _prev in (("pool1", "conv1"), ("pool2", "conv2"), ("pool5", "conv5")):
        _shape, _params, _macs = table_row(_table, _name, table_name=_call, macs=True)
        _r = _expected[_name]
        _entry = _table.get(_prev)
        _in = _entry[0] if isinstance(_entry, tuple) and _entry else None
        _right = {_r.output_shape}
        if isinstance(_in, tuple) and len(_in) == 3 and all(type(v) is int for v in _in) \
                and min(_in[1:]) >= 3:
            _right.add(_ref_pool_layer(_in, 3, 2)[0])  # follows from your row before
        _label = f"{_call}, row {_name}"
        if _shape not in _right:
            _hint = "3×3 windows at stride 2: floor((H - 3) / 2) + 1, rounding down"
            if isinstance(_in, tuple) and len(_in) == 3 and _shape == (_in[0], _in[1] // 2,
                                                                       _in[2] // 2):
                _hint = ("the 3×3 windows at stride 2 overlap: count the positions where a "
                         "whole window fits, floor((H - 3) / 2) + 1, not H / 2")
            check_shape_answer(_shape, _r.output_shape, _label, _hint)
        if _params != 0 or _macs != 0:
            fail(_label, f"expected 0 parameters and 0 MACs, got {_params} and {_macs}",
                 hint="max pooling learns nothing, and its comparisons are not counted as MACs")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_table_dense", "locked": true, "points": 3}
# Tests for alexnet_table: the dense layers fc6, fc7 and fc8 (3 points).
from cnncourse.grading import check_shape_answer, fail, run_exercise, table_row, with_reference
from cnncourse.models.alexnet import alexnet_rows
from cnncourse.shapes import conv_output_size, conv_params, pool_output_size


def _ref_conv_layer(in_shape, out_channels, kernel_size, stride=1, padding=0):
    c, h, w = in_shape
    sides = [conv_output_size(n, kernel_size, stride, padding) for n in (h, w)]
    return (out_channels, *sides), conv_params(c, out_channels, kernel_size)


def _ref_pool_layer(in_shape, kernel_size, stride):
    c, h, w = in_shape
    return (c, *[pool_output_size(n, kernel_size, stride) for n in (h, w)]), 0


_REFERENCES = {"conv_layer": _ref_conv_layer, "pool_layer": _ref_pool_layer}
for _args in ((PAPER_CONVS, 4096), (SMALL_CONVS, 256, 10, 3, 32)):
    with with_reference(globals(), **_REFERENCES):  # your table, with the reference helpers
        _table = run_exercise(alexnet_table, *_args, name="alexnet_table(...)")
    for _name in ("fc6", "fc7", "fc8"):
        table_row(_table, _name, table_name="alexnet_table(...)", macs=True)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_CONFIGS = [
    (((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)), 4096,
     1000, 3, 224),
    (SMALL_CONVS, 128, 7, 1, 35),
    (((32, 7, 2, 3), (40, 5, 1, 2), (56, 3, 1, 1), (48, 3, 2, 1), (24, 3, 1, 0)), 96, 5, 2, 83),
    (((10, 3, 1, 0), (12, 3, 1, 1), (8, 1, 1, 0), (6, 3, 1, 2), (4, 5, 1, 1)), 20, 3, 4, 41),
]


for _config in _CONFIGS:
    _call = "alexnet_table(convs={}, hidden={}, num_classes={}, in_channels={}, image_size={})"
    _call = _call.format(*_config)
    with with_reference(globals(), **_REFERENCES):
        _table = run_exercise(alexnet_table, *_config, name=_call)
    _expected = alexnet_rows(*_config)
    _entry = _table.get("pool5")
    _pool5 = _entry[0] if isinstance(_entry, tuple) and _entry else None
    _n_in = {"fc6": {_expected["fc6"].macs // _config[1]}, "fc7": {_config[1]},
             "fc8": {_config[1]}}  # fmt: skip
    if isinstance(_pool5, tuple) and _pool5 and all(type(v) is int for v in _pool5):
        _n_in["fc6"].add(math.prod(_pool5))  # fc6 reads your pool5, flattened
    for _name in ("fc6", "fc7", "fc8"):
        _shape, _params, _macs = table_row(_table, _name, table_name=_call, macs=True)
        _r = _expected[_name]
        _n_out = _r.output_shape[0]
        _label = f"{_call}, row {_name}"
        _hint = ("a dense layer outputs a vector: write (features,)" if len(_shape) != 1
                 else "the output layer has one unit per class" if _name == "fc8"
                 else "fc6 and fc7 have `hidden` units")
        check_shape_answer(_shape, _r.output_shape, _label, _hint)
        if _params not in {_n_out * (n + 1) for n in _n_in[_name]}:
            _hint = ""
            if _params in {_n_out * n for n in _n_in[_name]}:
                _hint = f"did you forget the {_n_out} biases?"
            elif _name == "fc6" and _params == _n_out * (256 * 6 * 6 + 1):
                _hint = ("fc6 reads pool5's maps flattened, and how many values that is "
                         "depends on the convolutions and image_size")
            elif _name == "fc6":
                _hint = "fc6 reads all of pool5's maps, flattened: C·H·W values"
            fail(_label, f"expected {_r.params} parameters, got {_params}", hint=_hint)
        if _macs not in {_n_out * n for n in _n_in[_name]}:
            _hint = ("the biases are added, not multiplied: n_in·n_out MACs"
                     if _macs == _params else "one dot product of length n_in per output unit")
            fail(_label, f"expected {_r.macs} MACs, got {_macs}", hint=_hint)
### END HIDDEN TESTS

# %% [markdown]
# Your table for the paper's network, beside what `shapes.summary` measures on the
# reference model (built on PyTorch's "meta" device, which computes shapes without
# allocating any weights):

# %%
table = alexnet_table(PAPER_CONVS, 4096)
with torch.device("meta"):
    reference = shapes.summary(models.alexnet(variant="paper"), (3, 227, 227), verbose=False)
measured = [r for r in reference if r.kind in ("Conv2d", "MaxPool2d", "Linear")]
print(f"{'layer':<7}{'output':>16}{'params':>13}{'MACs':>15}   measured")
for (name, (shape, params, macs)), row in zip(table.items(), measured, strict=True):
    same = (shape, params, macs) == (row.output_shape, row.params, row.macs)
    print(f"{name:<7}{str(shape):>16}{params:>13,}{macs:>15,}   {'same' if same else 'DIFFERS'}")
total_params = sum(p for _, p, _ in table.values())
total_macs = sum(m for _, _, m in table.values())
print(f"{'total':<7}{'':>16}{total_params:>13,}{total_macs:>15,}")

# %% [markdown]
# ### Where do the parameters live, and where does the computation go?

# %%
names = list(table)
params = [table[n][1] for n in names]
macs = [table[n][2] for n in names]
colours = ["C0" if n.startswith("conv") else "0.6" if n.startswith("pool") else "C1"
           for n in names]  # fmt: skip
fig, (ax_p, ax_m) = plt.subplots(1, 2, figsize=(11, 3.4))
ax_p.bar(names, [p / 1e6 for p in params], color=colours)
ax_p.set(title="parameters (millions)", ylabel="millions")
ax_m.bar(names, [m / 1e6 for m in macs], color=colours)
ax_m.set(title="multiply-accumulates per image (millions)", ylabel="millions")
for ax in (ax_p, ax_m):
    ax.tick_params(axis="x", rotation=45)
    ax.grid(axis="y", alpha=0.3)
fig.tight_layout()
plt.show()
conv_params = sum(p for n, p in zip(names, params, strict=True) if n.startswith("conv"))
conv_macs = sum(m for n, m in zip(names, macs, strict=True) if n.startswith("conv"))
print(f"convolutions: {conv_params / total_params:.1%} of the parameters, "
      f"{conv_macs / total_macs:.1%} of the MACs")
print(f"dense layers: {1 - conv_params / total_params:.1%} of the parameters, "
      f"{1 - conv_macs / total_macs:.1%} of the MACs")
print(f"fc6 alone: {table['fc6'][1] / total_params:.1%} of the parameters")


# %% [markdown]
# The two charts are almost mirror images. The dense layers hold 94% of the parameters
# (fc6 alone, which connects every one of pool5's 9,216 values to each of 4,096 units,
# holds 60%), but cost only about 5% of the arithmetic, because each weight is used once
# per image. The convolutions hold 6% of the parameters but do about 95% of the work,
# because each filter is reused at every position of its output map: conv2's 615
# thousand weights are each used 27 × 27 = 729 times per image.
#
# Both facts shaped what came next. The parameters of the dense layers are what
# overfits (section 5 fights it with dropout), and they are also what later networks
# threw out: NiN and GoogLeNet replace fc6 and fc7 by global average pooling, and
# ResNet-50 has fewer than half of AlexNet's parameters while doing three to four times
# its arithmetic.
# The arithmetic of the convolutions is what needed GPUs: about 1.1 billion MACs per
# 227×227 image, times 1.2 million images, times 90 passes over the training set.

# %% [markdown]
# ## 4. Exercise: the `AlexNet` module (4 + 8 points)
#
# Write AlexNet as an `nn.Module` that builds any version of the layout from its
# arguments: `AlexNet(**SMALL)` for 32×32 images, `AlexNet(**PAPER, num_classes=1000)`
# for the paper's network. The layers, registered in this order in two `nn.Sequential`s:
#
# - `self.features`: for each of the five convolutions, `nn.Conv2d` with its out_channels,
#   kernel size, stride and padding, then `nn.ReLU`; if `lrn` is true, after the ReLU of
#   conv1 and conv2 only, `nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)` (the
#   paper's normalisation, section 5.3 explains the numbers); after conv1, conv2 and
#   conv5 (and their LRN), `nn.MaxPool2d(3, stride=2)`;
# - `self.head`: `nn.AdaptiveAvgPool2d(pool_size)` (it does nothing at the size the
#   network was designed for, and lets other input sizes through), `nn.Flatten()`,
#   `nn.Dropout(dropout)`, fc6, `nn.ReLU`, `nn.Dropout(dropout)`, fc7, `nn.ReLU`, fc8.
#
# Use `nn.ReLU(inplace=True)` or `nn.ReLU()`, as you like. The second test cell copies the
# reference model's weights into yours (`grading.copy_weights`, which pairs them by
# registration order) and compares the outputs in eval mode and in train mode. In train
# mode the dropout masks are random: the tests seed the generator before each model runs,
# so two models that call `nn.Dropout` at the same places draw the same masks.

# %% nbgrader={"grade_id": "alexnet_module", "solution": true}
class AlexNet(nn.Module):
    """AlexNet's layout with any sizes: (N, in_channels, H, W) -> logits (N, num_classes).

    AlexNet(convs, pool_size, hidden, num_classes=10, in_channels=3, lrn=False, dropout=0.5)

    Args:
        convs: five (out_channels, kernel_size, stride, padding), for conv1 to conv5.
        pool_size: side of the maps nn.AdaptiveAvgPool2d hands to fc6 (pool5's side at the
            input size the version is designed for).
        hidden: units of fc6 and fc7.
        num_classes: units of fc8, the logits.
        in_channels: channels of the input images.
        lrn: local response normalisation after conv1's and conv2's ReLU.
        dropout: probability of nn.Dropout before fc6 and before fc7.
    """

    ### BEGIN SOLUTION
    def __init__(
        self,
        convs,
        pool_size: int,
        hidden: int,
        num_classes: int = 10,
        in_channels: int = 3,
        lrn: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        layers = []
        channels = in_channels
        for i, (out_channels, kernel_size, stride, padding) in enumerate(convs):
            layers += [nn.Conv2d(channels, out_channels, kernel_size, stride, padding),
                       nn.ReLU(inplace=True)]  # fmt: skip
            if lrn and i < 2:
                layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
            if i in (0, 1, 4):
                layers.append(nn.MaxPool2d(3, stride=2))  # overlapping pooling
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pool_size),
            nn.Flatten(),  # (N, channels * pool_size**2)
            nn.Dropout(dropout),
            nn.Linear(channels * pool_size * pool_size, hidden),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),  # fc7
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),  # fc8: logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C5, pool5 side, pool5 side)
        return self.head(x)  # (N, num_classes)
    ### END SOLUTION


# %%
net = AlexNet(**SMALL)
x = torch.zeros(2, 3, 32, 32)
for part in ("features", "head"):
    for i, layer in enumerate(getattr(net, part)):
        x = layer(x)
        print(f"{part}.{i:<3}{type(layer).__name__:<20}{tuple(x.shape)}")
print(f"parameters: {shapes.count_params(net):,}")

# %% [markdown]
# The first test cell checks output shapes, dtypes and parameter counts, including the
# full-size network's (built on the meta device, so it costs no memory). The hidden part
# tries other versions, a batch of one image, and LRN on and off.

# %% nbgrader={"grade": true, "grade_id": "test_alexnet_shapes", "locked": true, "points": 4}
# Tests for AlexNet: output shape, dtype and parameter count (4 points).
from cnncourse.grading import check_number, check_shape, fail, run_exercise

if "AlexNet" not in globals():
    fail("AlexNet", "not defined yet", hint="write the class and run its cell")


def _shape_check(kwargs, x, device="cpu"):
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "convs")
    label = f"AlexNet(convs=..., {args})"
    with torch.device(device):
        model = run_exercise(AlexNet, name=label, **kwargs)
        ref = models.AlexNet(kwargs.get("num_classes", 10), kwargs.get("in_channels", 3),
                             {k: kwargs[k] for k in ("convs", "pool_size", "hidden")}
                             | {"lrn": kwargs.get("lrn", False)})
    if not isinstance(model, nn.Module):
        fail(label, f"expected an nn.Module, got {type(model).__name__}")
    for attr in ("features", "head"):
        if not isinstance(getattr(model, attr, None), nn.Sequential):
            fail(label, f"expected an nn.Sequential attribute `{attr}`",
                 hint="register the layers in self.features and self.head")
    hint = "compare your layers with the list above (channels, kernel sizes, biases)"
    check_number(shapes.count_params(model), shapes.count_params(ref),
                 f"number of parameters of {label}", hint=hint)
    x = x.to(device)
    try:
        with torch.no_grad():  # (on the meta device there are no values to compare)
            out = model(x) if device == "meta" else run_exercise(lambda x: model(x), x,
                                                                 name=f"{label}.forward")
    except RuntimeError as err:
        fail(label, f"the forward pass failed ({err})",
             hint="compare each layer with the list above (strides, pooling, flatten size)")
    check_shape(out, (len(x), kwargs.get("num_classes", 10)),
                f"{label}(x) for x of shape {tuple(x.shape)}")
    if out.dtype != x.dtype:
        fail(label, f"expected dtype {x.dtype}, got {out.dtype}")
    return model


_gen = torch.Generator().manual_seed(30)
_shape_check(dict(SMALL), torch.randn(4, 3, 32, 32, generator=_gen))
_paper = _shape_check(dict(PAPER, num_classes=1000), torch.zeros(2, 3, 227, 227), device="meta")
print(f"AlexNet(**PAPER, num_classes=1000): {shapes.count_params(_paper):,} parameters")
print("visible checks passed")
### BEGIN HIDDEN TESTS
_OTHERS = [
    dict(SMALL, num_classes=7, in_channels=1, lrn=True),
    {"convs": ((8, 3, 1, 1), (16, 3, 1, 1), (12, 3, 1, 1), (12, 3, 1, 1), (10, 3, 1, 1)),
     "pool_size": 2, "hidden": 32, "num_classes": 5, "in_channels": 2, "lrn": False},
    {"convs": ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)),
     "pool_size": 6, "hidden": 4096, "num_classes": 1000},
]
_shape_check(_OTHERS[0], torch.randn(1, 1, 32, 32, generator=_gen))  # a batch of one image
_shape_check(_OTHERS[1], torch.randn(3, 2, 24, 24, generator=_gen))
_shape_check(_OTHERS[2], torch.zeros(1, 3, 224, 224), device="meta")
_shape_check(dict(PAPER, num_classes=10, in_channels=1), torch.zeros(1, 1, 227, 227),
             device="meta")
_shape_check(dict(SMALL), torch.randn(2, 3, 40, 40, generator=_gen))  # adaptive pooling
_n = sum(isinstance(m, nn.LocalResponseNorm) for m in _paper.modules())
if _n != 2:
    fail("AlexNet(**PAPER)", f"expected 2 nn.LocalResponseNorm layers, found {_n}",
         hint="with lrn=True, normalise after conv1's and conv2's ReLU only")
### END HIDDEN TESTS

# %% [markdown]
# The second test cell (8 points) checks what your model computes, with the reference's
# weights copied in: the small version in eval and train mode (visible), then versions
# with LRN, other sizes, float64, inputs of large magnitude and the gradients (hidden).

# %% nbgrader={"grade": true, "grade_id": "test_alexnet_function", "locked": true, "points": 8}
# Tests for AlexNet by function, with the reference's weights copied in (8 points).
from cnncourse.grading import check_grads, check_tensor, copy_weights, fail, run_exercise

if "AlexNet" not in globals():
    fail("AlexNet", "not defined yet", hint="write the class and run its cell")


def _pair(kwargs, gen):
    cfg = {k: kwargs[k] for k in ("convs", "pool_size", "hidden")}
    cfg["lrn"] = kwargs.get("lrn", False)
    ref = models.AlexNet(kwargs.get("num_classes", 10), kwargs.get("in_channels", 3), cfg,
                         dropout=kwargs.get("dropout", 0.5))
    with torch.no_grad():
        for p in ref.parameters():
            scale = p[0].numel() ** -0.5 if p.dim() > 1 else 0.3
            p.copy_(torch.randn(p.shape, generator=gen) * scale * 1.5)
    mine = run_exercise(AlexNet, name="AlexNet(...)", **kwargs)
    return ref, copy_weights(ref, mine)


def _compare(kwargs, x, mode, gen, what=""):
    ref, mine = _pair(kwargs, gen)
    ref.train(mode == "train")
    mine.train(mode == "train")
    if x.dtype == torch.float64:
        ref.double()
        mine.double()
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "convs")
    label = f"AlexNet(convs=..., {args}) in {mode} mode{what}, reference weights copied in"
    with torch.no_grad():
        torch.manual_seed(7)  # the same dropout masks, if drawn at the same places
        try:
            out = run_exercise(lambda x: mine(x), x, name=label)
        except RuntimeError as err:
            fail(label, f"the forward pass failed ({err})",
                 hint="keep the input's dtype" if x.dtype == torch.float64 else "")
        torch.manual_seed(7)
        expected = ref(x)
        feats = mine.features(x) if isinstance(getattr(mine, "features", None), nn.Module) else None
        torch.manual_seed(7)
        if feats is not None:
            hint = ("check the order: conv, ReLU, then LRN (conv1, conv2 only), then pooling"
                    if kwargs.get("lrn") else "check the order: conv, ReLU, pooling after conv1, "
                    "conv2 and conv5")
            ref_feats = ref.features(x)
            if feats.shape != ref_feats.shape:
                fail(label, f"self.features(x) has shape {tuple(feats.shape)}, expected "
                     f"{tuple(ref_feats.shape)}", hint="check the pooling: 3×3 windows at "
                     "stride 2, after conv1, conv2 and conv5, and each conv's stride and padding")
            try:
                check_tensor(feats, ref_feats, f"{label}: self.features(x)")
            except AssertionError as err:
                fail(label, str(err), hint=hint)
    hint = "self.features(x) matches, so look at self.head"
    if mode == "train":
        hint += (": dropout before fc6 and before fc7, with probability `dropout`, through "
                 "nn.Dropout (train mode)")
    try:
        check_tensor(out, expected, f"{label}: the logits")
    except AssertionError as err:
        fail(label, str(err), hint=hint)


_gen = torch.Generator().manual_seed(31)
_x = torch.randn(4, 3, 32, 32, generator=_gen)
_compare(dict(SMALL), _x, "eval", _gen)
_compare(dict(SMALL), _x, "train", _gen)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_TINY = ((8, 3, 1, 1), (16, 3, 1, 1), (12, 3, 1, 1), (12, 3, 1, 1), (10, 3, 1, 1))
_cases = [
    (dict(SMALL, num_classes=7, in_channels=1, lrn=True),
     torch.randn(3, 1, 32, 32, generator=_gen)),
    ({"convs": _TINY, "pool_size": 2, "hidden": 32, "num_classes": 5, "in_channels": 2,
      "lrn": True, "dropout": 0.3}, torch.randn(2, 2, 24, 24, generator=_gen)),
    ({"convs": ((16, 7, 3, 1), (24, 5, 1, 2), (16, 3, 1, 1), (16, 3, 1, 1), (8, 3, 1, 1)),
      "pool_size": 1, "hidden": 20, "num_classes": 3, "dropout": 0.8},
     torch.randn(1, 3, 61, 53, generator=_gen)),  # non-square, batch of one
    (dict(SMALL, hidden=64), torch.randn(2, 3, 40, 40, generator=_gen)),  # adaptive pooling
]
for _kwargs, _x in _cases:
    for _mode in ("eval", "train"):
        _compare(_kwargs, _x, _mode, _gen)
# float64, and inputs of large magnitude
_kw = {"convs": _TINY, "pool_size": 2, "hidden": 32, "num_classes": 5, "lrn": True}
_compare(_kw, torch.randn(2, 3, 24, 24, generator=_gen, dtype=torch.float64), "train", _gen,
         ", converted with .double(), on float64 images")
_compare(_kw, 300 * torch.randn(2, 3, 24, 24, generator=_gen), "eval", _gen,
         " on large inputs (randn × 300)")
# Gradients reach the input and every parameter, as through the reference.
_ref, _mine = _pair(_kw, _gen)
_xm = torch.randn(2, 3, 24, 24, generator=_gen, requires_grad=True)
_xr = _xm.detach().clone().requires_grad_(True)
_pairs = {"the input": (_xm, _xr)}
for (_n, _pm), _pr in zip(_mine.named_parameters(), _ref.parameters(), strict=True):
    _pairs[f"parameter {_n}"] = (_pm, _pr)
torch.manual_seed(8)
_out = run_exercise(lambda x: _mine(x), _xm, name="AlexNet(...) in train mode")
torch.manual_seed(8)
check_grads(_out, _ref(_xr), _pairs, "AlexNet(...) in train mode", generator=_gen)
### END HIDDEN TESTS

# %% [markdown]
# ### 62 million against 61 thousand
#
# The lecture's first difference between AlexNet and LeNet is size:

# %%
with torch.device("meta"):
    n_alexnet = shapes.count_params(AlexNet(**PAPER, num_classes=1000))
n_small = shapes.count_params(AlexNet(**SMALL))
n_lenet = shapes.count_params(models.lenet5())
print(f"AlexNet (paper, 227×227, 1000 classes): {n_alexnet:>12,}")
print(f"AlexNet (small, 32×32, 10 classes):     {n_small:>12,}")
print(f"LeNet-5 (32×32, 10 classes):            {n_lenet:>12,}   ratio {n_alexnet / n_lenet:,.0f}×")

# %% [markdown]
# About a thousand times more parameters, for images with 50 times more pixels and
# three colour channels, and 100 times more classes. The paper's own count is "60
# million": its network was split over two GPUs, and conv2, conv4 and conv5 only read the
# feature maps on their own GPU (a *grouped* convolution with two groups), which halves
# those layers' weights and gives 60,965,224 (`models.alexnet(variant="paper",
# two_tower=True)`). The grouping was a memory workaround (a GTX 580 had 3 GB), not a
# design goal; ResNeXt brings groups back on purpose in the last notebook.
#
# Our small version keeps the layout but has about 300 thousand parameters: at 32×32
# there is no room for an 11×11 filter at stride 4 (it would shrink the image to 6×6 at
# once), so its first layer is 5×5 at stride 1 with padding 2.

# %% [markdown]
# ## 5. How is AlexNet different from LeNet?
#
# The lecture lists four differences, and asks *why* for three of them:
#
# 1. 62M parameters against 61K: done above;
# 2. ReLU against sigmoid (why?);
# 3. regularisation: dropout and weight decay (why?);
# 4. normalisation (why?).
#
# ### 5.1 ReLU against saturating activations
#
# LeNet used a scaled tanh; AlexNet used the rectified linear unit, $\max(0, z)$. The
# paper's argument was speed: its figure 1 shows a four-layer CNN reaching 25% training
# error on CIFAR-10 six times faster with ReLUs than the same network with tanh units.
# Saturating functions (sigmoid, tanh) have derivatives close to zero for large inputs,
# and sigmoid's derivative is at most 1/4, so every layer shrinks the gradient on its way
# back; ReLU's derivative is exactly 1 wherever the unit is active.
#
# We repeat the experiment at small scale: a network of four convolutions and one dense
# layer on the offline `digits` dataset (8×8 grey images), trained with plain SGD with
# momentum as in the paper, the same seed for the initial weights, the same batches in
# the same order, once with ReLU, once with tanh and once with sigmoid. We count the
# iterations until the training error, averaged over the last 10 batches, falls below
# 25%.

# %%
digits_train, _, _ = data.make_loaders("digits", batch_size=32)
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
THRESHOLD, WINDOW = 0.25, 10


def four_layer_cnn(activation: str) -> nn.Module:
    act = ACTIVATIONS[activation]
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), act(),
        nn.Conv2d(16, 16, 3, padding=1), act(),
        nn.Conv2d(16, 32, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )  # fmt: skip


def training_errors(activation: str, epochs: int = 4, lr: float = 0.02) -> list[float]:
    """Training error of every batch, in order."""
    utils.seed_everything(0)
    digits_train.generator.manual_seed(0)
    model = four_layer_cnn(activation)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    errors = []
    for _ in range(epochs):
        for x, y in digits_train:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            errors.append((logits.argmax(1) != y).float().mean().item())
            if utils.grading_mode() and len(errors) >= 5:  # autograding: a few batches only
                return errors
    return errors


def smoothed(errors: list[float]) -> list[float]:
    return [sum(errors[max(0, i - WINDOW + 1): i + 1]) / min(i + 1, WINDOW)
            for i in range(len(errors))]  # fmt: skip


curves = {name: smoothed(training_errors(name)) for name in ACTIVATIONS}
reached = {name: next((i + 1 for i, e in enumerate(c) if e < THRESHOLD), None)
           for name, c in curves.items()}  # fmt: skip

fig, ax = plt.subplots(figsize=(7, 3.4))
for name, c in curves.items():
    ax.plot(range(1, len(c) + 1), c, label=name)
ax.axhline(THRESHOLD, color="0.5", ls="--", lw=1)
ax.set(xlabel="iteration (batch of 32)", ylabel=f"training error (mean of last {WINDOW})",
       ylim=(0, 1), title="Same network, three activations")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()
for name, it in reached.items():
    print(f"{name:<8} reaches {THRESHOLD:.0%} training error after "
          f"{it if it else 'more than ' + str(len(curves[name]))} iterations; "
          f"final {curves[name][-1]:.1%}")


# %% [markdown]
# In our runs (4 passes over 1,294 images, 164 iterations) sigmoid never got near the
# threshold: its training error stayed at chance, about 90%, for the whole run, the
# vanishing gradient at work through four saturating layers. ReLU and tanh both crossed
# 25% within the first two passes, and **tanh was not slower than ReLU here**: it got
# there first (58 iterations against 81 for ReLU in this run), and it was first in every
# variant we tried while preparing the notebook (three learning rates, two
# initialisations). So the small-scale experiment reproduces the gap between ReLU and
# sigmoid, but not the paper's six-fold gap between ReLU and tanh. That gap was measured
# on a harder problem (CIFAR-10's 32×32 colour images rather than 8×8 digits), over much
# longer training, with the paper's own initialisation and a learning rate chosen
# separately for each network; with PyTorch's default initialisation, which scales the
# weights to each layer's fan-in, a shallow tanh network does not get deep into
# saturation. The reasons ReLU won anyway are the ones that matter more as networks get
# deeper: it does not saturate for positive inputs, so the gradient of an active unit
# passes unchanged through any number of layers, and it costs a comparison instead of an
# exponential.
# Every network after AlexNet in this course uses it.

# %% [markdown]
# ### 5.2 Regularisation: dropout and weight decay
#
# AlexNet's 62 million parameters were trained on 1.2 million images, and the paper
# says that without help it would overfit badly: learn its training images by heart and
# do worse on new ones. It used two remedies.
#
# **Weight decay** adds $\tfrac{\lambda}{2}\lVert w \rVert^2$ to the loss (AlexNet:
# $\lambda = 0.0005$), so every step also shrinks each weight towards zero by a factor
# $(1 - \eta\lambda)$. Large weights are only kept if the data keeps pushing for them,
# which favours smoother functions that depend on many inputs a little rather than on a
# few inputs a lot. In PyTorch it is the `weight_decay` argument of the optimiser.
#
# **Dropout** (Hinton et al. 2012; Srivastava et al. 2014) sets each input of fc6 and
# fc7 to zero with probability $p = 0.5$ at every training step, a different random
# subset each time. A unit cannot rely on any particular other unit being present, so it
# has to learn features that are useful on their own, and each step trains a different
# "thinned" network, all sharing weights. At test time all units are present; the paper
# multiplied the outputs by $1 - p$ at test time so that each unit sees the same
# expected input as in training. Modern code does the equivalent **inverted dropout**:
# during training, the kept values are divided by $1 - p$, and at test time dropout does
# nothing at all. That is what `nn.Dropout` does, and what you will write.
#
# Dropout sits before the dense layers, where the parameters are (section 3): the
# convolutions have few parameters, share them across positions, and overfit much less.
#
# ### Exercise 5: `dropout` (6 points)
#
# In training mode, zero each element independently with probability `p` and divide the
# others by $1 - p$; in evaluation mode (`training=False`) return the input unchanged.
# Draw the random numbers from torch's global generator (`torch.rand_like` or
# `torch.bernoulli`), so `torch.manual_seed` makes it repeatable. With `p = 1` every
# element is dropped (the output is all zeros, not NaN). Raise a `ValueError` naming `p`
# if `p` is outside $[0, 1]$. Write it from tensor operations: the test fails if you call
# `F.dropout`, `nn.Dropout` or the library's reference.

# %% nbgrader={"grade_id": "dropout", "solution": true}
def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Inverted dropout: any shape -> the same shape and dtype.

    training: each element is zeroed with probability p, independently, and the kept
    ones are scaled by 1 / (1 - p), so the expected value of every output equals its
    input; p = 1 gives all zeros. Not training: x itself.

    Raises:
        ValueError: if p < 0 or p > 1; the message names ``p``.
    """
    ### BEGIN SOLUTION
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: a probability must be between 0 and 1")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return torch.zeros_like(x)  # dividing by 1 - p = 0 would give NaN
    keep = (torch.rand_like(x) >= p).to(x.dtype)  # 1 with probability 1 - p
    return x * keep / (1.0 - p)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_dropout", "locked": true, "points": 6}
# Tests for dropout: compared with F.dropout's statistics (6 points).
from cnncourse.grading import check_raises, check_tensor, fail, forbid, run_exercise


def _drop(x, p, training=True, seed=0):
    call = f"dropout(x of shape {tuple(x.shape)}, p={p}, training={training})"
    torch.manual_seed(seed)
    with forbid("dropout", exercise="dropout"):
        out = run_exercise(dropout, x, p, training, name=call)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        fail(call, f"expected a tensor of shape {tuple(x.shape)}, got "
             f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if out.dtype != x.dtype:
        fail(call, f"expected dtype {x.dtype}, got {out.dtype}",
             hint="keep the input's dtype: build the mask with x's dtype")
    if out.isnan().any():
        fail(call, "the output has NaN", hint="with p = 1 there is nothing to keep: dividing by "
             "1 - p = 0 gives NaN; return zeros")
    return out, call


def _check_statistics(x, p, seed=0):
    """x > 0 everywhere, so a zero in the output means a dropped element."""
    out, call = _drop(x, p, seed=seed)
    dropped = out == 0
    frac = dropped.double().mean().item()
    tol = 4 * math.sqrt(p * (1 - p) / x.numel()) + 1e-9  # four standard deviations
    if abs(frac - p) > tol:
        hint = "each element is dropped with probability p"
        if abs(frac - (1 - p)) <= tol:
            hint = "you keep a fraction p of the elements: drop with probability p, keep 1 - p"
        fail(call, f"expected about {p:.0%} of the elements zeroed, got {frac:.1%}", hint=hint)
    kept = ~dropped
    if p < 1:
        expected = x[kept] / (1 - p)
        if torch.allclose(out[kept], x[kept]):
            fail(call, "the kept elements are unchanged",
                 hint="scale the kept values by 1 / (1 - p), so the expected output equals x")
        check_tensor(out[kept], expected, f"{call}: the kept elements",
                     rtol=1e-5 if x.dtype == torch.float32 else 1e-10)
    return out


_gen = torch.Generator().manual_seed(40)
_x = torch.rand(200, 500, generator=_gen) + 0.5
_check_statistics(_x, 0.5)
_out, _ = _drop(_x, 0.5, training=False)
check_tensor(_out, _x, "dropout(x, p=0.5, training=False) (evaluation mode: the identity)")
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Independent draws: two calls differ, and rows of a batch get different masks.
_a, _call = _drop(_x, 0.5, seed=1)
_b, _ = _drop(_x, 0.5, seed=2)
if torch.equal(_a == 0, _b == 0):
    fail(_call, "two calls with different seeds dropped the same elements",
         hint="draw new random numbers at every call, from torch's global generator")
_both = ((_a[0] == 0) & (_a[1] == 0)).double().mean().item()
if abs(_both - 0.25) > 0.1:
    fail(_call, f"rows 0 and 1 share their dropped positions ({_both:.0%} dropped in both, "
         "about 25% expected)", hint="draw one random number per element, not one mask per row")
for _p in (0.1, 0.3, 0.8):
    _check_statistics(_x, _p, seed=int(_p * 10))
# The mean is preserved (inverted dropout), float64 too, and other shapes.
_x64 = torch.rand(4, 8, 50, 50, generator=_gen, dtype=torch.float64) + 0.5
_out = _check_statistics(_x64, 0.4)
if abs(_out.mean().item() / _x64.mean().item() - 1) > 0.02:
    fail("dropout(x, p=0.4)", "the mean of the output differs from the mean of x by more than 2%",
         hint="scale the kept values by 1 / (1 - p)")
# Edge cases: p = 0 and evaluation mode change nothing; p = 1 drops everything.
for _p, _training in ((0.0, True), (0.7, False), (1.0, False)):
    _out, _call = _drop(_x, _p, training=_training)
    check_tensor(_out, _x, _call + " (nothing is dropped)")
_out, _call = _drop(_x, 1.0)
if (_out != 0).any():
    fail(_call, "expected all zeros", hint="with p = 1 every element is dropped")
# Large magnitudes and negative values survive exactly where kept.
_check_statistics((torch.rand(100, 100, generator=_gen) + 0.5) * 1e30, 0.5, seed=3)
# Gradients: 1 / (1 - p) through the kept elements, 0 through the dropped ones.
_xg = (torch.rand(50, 60, generator=_gen) + 0.5).requires_grad_(True)
_out, _call = _drop(_xg, 0.25, seed=4)
if _out.grad_fn is None:
    fail(_call, "no gradient reaches x", hint="keep every step a torch operation on x "
         "(no .detach(), .data or torch.no_grad())")
(_grad,) = torch.autograd.grad(_out.sum(), _xg)
check_tensor(_grad, (_out != 0).float() / 0.75, f"{_call}: the gradient with respect to x")
# Probabilities outside [0, 1]
for _p in (-0.1, 1.5):
    check_raises(dropout, _x, _p, argument="p", why=f"p={_p} is not a probability")
### END HIDDEN TESTS

# %% [markdown]
# Now the experiment. To make overfitting visible within a few seconds, we train on only
# 150 of the `digits` training images and measure on the 359 test images, with a network
# that, like AlexNet, keeps most of its parameters in dense layers: one convolution and
# pooling, then two dense layers of 512 units (about 530 thousand parameters for 150
# images). Three runs from the same initial weights with the same batches: no
# regularisation; your dropout ($p = 0.5$) before both hidden dense layers; and weight
# decay instead ($\lambda = 0.01$; larger than AlexNet's 0.0005 because this run is
# short, and weight decay acts a little at every step).

# %%
class Dropout(nn.Module):
    """Your dropout as a layer: it follows model.train() / model.eval()."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def dense_heavy_net(p: float) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),  # 32×4×4
        Dropout(p), nn.Linear(512, 512), nn.ReLU(),
        Dropout(p), nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, 10),
    )  # fmt: skip


digits = data.load_dataset("digits", "train")
digits_test = data.load_dataset("digits", "test")
subset = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:150]
x_small, y_small = digits.images[subset], digits.labels[subset]
STEPS, EVERY = (5, 5) if utils.grading_mode() else (200, 10)


def overfit_run(p: float, weight_decay: float) -> dict[str, list[float]]:
    utils.seed_everything(0)
    model = dense_heavy_net(p)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=weight_decay)
    batches = torch.Generator().manual_seed(1)
    log = {"step": [], "train_loss": [], "test_loss": [], "train_acc": [], "test_acc": []}
    for step in range(1, STEPS + 1):
        model.train()
        idx = torch.randint(0, len(x_small), (50,), generator=batches)
        loss = F.cross_entropy(model(x_small[idx]), y_small[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVERY == 0:
            model.eval()
            with torch.no_grad():
                for split, (xs, ys) in (("train", (x_small, y_small)),
                                        ("test", (digits_test.images, digits_test.labels))):
                    logits = model(xs)
                    log[f"{split}_loss"].append(F.cross_entropy(logits, ys).item())
                    log[f"{split}_acc"].append((logits.argmax(1) == ys).float().mean().item())
            log["step"].append(step)
    return log


runs = {
    "no regularisation": overfit_run(0.0, 0.0),
    "dropout 0.5": overfit_run(0.5, 0.0),
    "weight decay 0.01": overfit_run(0.0, 0.01),
}
fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 3.6))
for i, (name, log) in enumerate(runs.items()):
    ax_l.plot(log["step"], log["train_loss"], color=f"C{i}", ls="-", label=f"{name}, train")
    ax_l.plot(log["step"], log["test_loss"], color=f"C{i}", ls="--", label=f"{name}, test")
    ax_a.plot(log["step"], log["test_acc"], color=f"C{i}", label=name)
ax_l.set(xlabel="step", ylabel="cross-entropy", title="loss (solid: train, dashed: test)")
ax_a.set(xlabel="step", ylabel="accuracy", title="test accuracy", ylim=(0.5, 1))
for ax in (ax_l, ax_a):
    ax.grid(alpha=0.3)
ax_l.legend(fontsize=7)
ax_a.legend(fontsize=8)
fig.tight_layout()
plt.show()
print(f"{'run':<20}{'train loss':>11}{'test loss':>11}{'train acc':>11}{'test acc':>10}"
      f"{'best test acc':>15}")
for name, log in runs.items():
    print(f"{name:<20}{log['train_loss'][-1]:>11.3f}{log['test_loss'][-1]:>11.3f}"
          f"{log['train_acc'][-1]:>11.1%}{log['test_acc'][-1]:>10.1%}{max(log['test_acc']):>15.1%}")


# %% [markdown]
# In our run all three fitted the 150 training images perfectly (100% training accuracy,
# training loss near zero), so the difference is in how they do on the images they have
# not seen. Without regularisation the test loss bounced up around step 60 and settled at
# about 0.58, with 90% test accuracy. With dropout the test loss was half that, about
# 0.29, and the test accuracy about 93%, 2 to 3 points better. Weight decay landed in
# between on the loss (about 0.35) and gave no gain in accuracy (90%). The effects are
# real but modest, as is usual for regularisation: it does not stop a network from
# fitting its training set, it changes *which* of the many functions that fit the
# training set the network ends up with, towards one that also fits new data. Dropout
# also slowed the first 20 steps down: each step trains a thinned network, so learning is
# noisier. The paper reports the same trade: dropout "roughly doubles the number of
# iterations required to converge". With 150 images, one image of the 359 in the test
# set is 0.3 points, so differences of a point or two between runs are noise; the test
# loss tells the story more reliably.

# %% [markdown]
# ### 5.3 Normalisation: local response normalisation
#
# AlexNet normalised the outputs of conv1 and conv2 (after the ReLU) across channels.
# Writing $a^i_{x,y}$ for the activity of channel $i$ at position $(x, y)$ and $N$ for
# the number of channels, the paper's **local response normalisation** (LRN) is
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\, i - n/2)}^{\min(N-1,\, i + n/2)}
#   \big(a^j_{x,y}\big)^2\Big)^{\beta}$$
#
# with $k = 2$, $n = 5$, $\alpha = 10^{-4}$ and $\beta = 0.75$: each value is divided by
# a power of the energy of its $n$ neighbouring channels at the same position. The idea
# came from neuroscience (*lateral inhibition*: a strongly active neuron suppresses its
# neighbours), and the purpose was to make channels compete, so that a large response in
# one channel dampens the others at that spot. Because ReLU outputs are unbounded, it
# also keeps their scale in check. The paper reports that it lowered the top-5 error by
# 1.2 points.
#
# PyTorch's `nn.LocalResponseNorm(size, alpha, beta, k)` computes the same thing with one
# difference: it divides `alpha` by `size`, averaging the squares instead of summing
# them. The paper's $\alpha = 10^{-4}$ with $n = 5$ is therefore `alpha=5e-4` in PyTorch,
# as in your module. For an even `size` the window is not symmetric: PyTorch's covers the
# channels from $i - \lfloor n/2 \rfloor$ to $i + \lfloor (n-1)/2 \rfloor$.
#
# ### Exercise 6: `local_response_norm` (5 points)
#
# Write the paper's formula for `x` of shape $(N, C, H, W)$, with the paper's $\alpha$
# (it multiplies the **sum**) and the window of $n$ = `size` channels described above,
# clipped at the first and last channel. Use tensor operations only (no loop over
# positions; a loop over the `size` offsets is fine); the test fails if you call
# `F.local_response_norm`, `nn.LocalResponseNorm` or the library's reference. Raise a
# `ValueError` naming `size` if `size` is below 1.

# %% nbgrader={"grade_id": "lrn", "solution": true}
def local_response_norm(
    x: torch.Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> torch.Tensor:
    """AlexNet's local response normalisation across channels: (N, C, H, W) -> same shape.

    b[:, i] = x[:, i] / (k + alpha * sum of x[:, j]**2 for j from i - size//2 to
    i + (size-1)//2, clipped to 0 .. C-1) ** beta.

    Equal to nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)(x).

    Raises:
        ValueError: if size < 1; the message names ``size``.
    """
    ### BEGIN SOLUTION
    if size < 1:
        raise ValueError(f"size={size}: the window needs at least one channel")
    squares = x * x
    c = x.shape[1]
    before, after = size // 2, (size - 1) // 2
    zeros = squares.new_zeros(squares.shape[0], before + after, *squares.shape[2:])
    padded = torch.cat([zeros[:, :before], squares, zeros[:, before:]], dim=1)
    window = sum(padded[:, j : j + c] for j in range(size))  # (N, C, H, W)
    return x / (k + alpha * window) ** beta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_lrn", "locked": true, "points": 5}
# Tests for local_response_norm, against nn.LocalResponseNorm (5 points).
from cnncourse.grading import check_grads, check_raises, check_tensor, fail, forbid, run_exercise


def _lrn(x, size, alpha, beta, k):
    call = (f"local_response_norm(x of shape {tuple(x.shape)}, size={size}, alpha={alpha}, "
            f"beta={beta}, k={k})")
    with forbid("norm", exercise="local_response_norm"):
        out = run_exercise(local_response_norm, x, size, alpha, beta, k, name=call)
    return out, call


def _check_lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    out, call = _lrn(x, size, alpha, beta, k)
    expected = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)(x)
    if isinstance(out, torch.Tensor) and out.shape == expected.shape and out.dtype == x.dtype:
        tol = {"rtol": 1e-4, "atol": 1e-6}
        pytorch_alpha = nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)(x)
        if not torch.allclose(out, expected, **tol) and torch.allclose(out, pytorch_alpha, **tol):
            fail(call, "you computed PyTorch's convention",
                 hint="the paper's alpha multiplies the sum of the squares: PyTorch's "
                      "nn.LocalResponseNorm divides its alpha by size, the paper does not")
        hint = ""
        if size % 2 == 0:
            hint = ("for an even size the window runs from channel i - size//2 to "
                    "i + (size-1)//2")
        if hint and not torch.allclose(out, expected, **tol):
            fail(call, "the output differs from the reference", hint=hint)
    check_tensor(out, expected, call)
    return out


_gen = torch.Generator().manual_seed(50)
_check_lrn(torch.rand(2, 8, 5, 5, generator=_gen) * 30)
_check_lrn(torch.rand(1, 6, 3, 4, generator=_gen) * 50, size=3, alpha=1e-3, beta=0.5, k=1.0)
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Sizes larger than the number of channels, even sizes, size 1, a single channel, 1×1 maps,
# non-square maps, a batch of one; alpha, beta, k varied together.
for _shape, _args in [((3, 16, 7, 9), (5, 1e-4, 0.75, 2.0)), ((2, 3, 4, 4), (7, 2e-3, 0.75, 1.0)),
                      ((2, 10, 3, 3), (4, 1e-3, 0.6, 2.0)), ((1, 9, 1, 1), (2, 5e-3, 1.0, 0.5)),
                      ((2, 1, 6, 5), (5, 1e-2, 0.75, 2.0)), ((1, 7, 2, 3), (1, 1e-2, 0.75, 1.0)),
                      ((2, 12, 4, 2), (6, 1e-3, 0.9, 3.0))]:
    _check_lrn(torch.randn(*_shape, generator=_gen) * 20, *_args)
_check_lrn(torch.randn(2, 6, 4, 4, generator=_gen, dtype=torch.float64) * 20)  # float64
_check_lrn(torch.randn(2, 6, 4, 4, generator=_gen) * 1e4, alpha=1e-4)  # large magnitudes
# Gradients reach x.
_x = (torch.randn(2, 7, 3, 3, generator=_gen) * 20).requires_grad_(True)
_out, _call = _lrn(_x, 5, 1e-3, 0.75, 2.0)
check_grads(_out, nn.LocalResponseNorm(5, alpha=5e-3, beta=0.75, k=2.0)(_x), {"x": _x}, _call,
            generator=_gen)
for _size in (0, -2):
    check_raises(local_response_norm, torch.ones(1, 3, 2, 2), _size, argument="size",
                 why="the window needs at least one channel")
### END HIDDEN TESTS

# %% [markdown]
# What does it do to a feature map? Below, one position of a layer with 32 channels,
# where three channels respond strongly (6, 8 and 24) and the rest weakly. Each bar group
# is scaled by its own maximum, so the picture shows the *relative* responses.

# %%
acts = torch.full((1, 32, 1, 1), 20.0)
acts[0, [6, 8, 24], 0, 0] = torch.tensor([150.0, 200.0, 180.0])
normed = local_response_norm(acts, size=5, alpha=1e-4, beta=0.75, k=2.0)
fig, ax = plt.subplots(figsize=(9, 3))
ax.bar(range(32), acts.flatten() / acts.max(), width=0.4, align="edge", label="before (÷ max)")
ax.bar([i + 0.4 for i in range(32)], normed.flatten() / normed.max(), width=0.4, align="edge",
       label="after LRN (÷ max)")
ax.set(xlabel="channel", ylabel="relative response", title="LRN at one position")
ax.grid(axis="y", alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()
ratio = normed.flatten() / acts.flatten()
print(f"scale factor far from the strong channels (channel 16): {ratio[16]:.3f}")
print(f"scale factor next to them (channel 7):                  {ratio[7]:.3f}")
print(f"scale factor of the strongest channel (8):              {ratio[8]:.3f}")
print(f"scale factor of the lone strong channel (24):           {ratio[24]:.3f}")

# %% [markdown]
# Every value is divided by at least $k^{0.75} = 2^{0.75} \approx 1.7$, but the weak
# channels within two places of a strong one (4 to 10, 22 to 26) are pushed down up to
# about 2.7 times harder than the weak channels far away, and channels 6 and 8,
# neighbours, dampen each other: after normalisation channel 24, strong but alone, is the
# largest response. That is the competition the paper wanted.

# %% [markdown]
# **The honest finding: later work dropped it.** The effect was small from the start (1.2
# points of top-5 error in the paper; on CIFAR-10 a four-layer network went from 13% to
# 11% test error), and it did not survive the next architectures. The VGG paper
# (Simonyan and Zisserman 2015, section 4.1) trained its 11-layer network with and
# without LRN and found that "such normalisation does not improve the performance on the
# ILSVRC dataset, but leads to increased memory consumption and computation time"; none
# of its deeper networks use it. torchvision's
# AlexNet leaves it out too. GoogLeNet kept LRN in its stem in 2014, and its successors
# dropped it.
#
# What replaced it was **batch normalisation** (Ioffe and Szegedy 2015), which you wrote
# in `01_components`: it normalises each channel by the mean and variance of that channel
# over the batch, then applies a learned scale and shift. Where LRN only divides by a
# fixed function of the neighbours, batch norm makes every layer's input have a
# controlled mean and variance whatever the layers before it do, which lets much deeper
# networks train with larger learning rates. From ResNet on, a batch norm follows almost
# every convolution.

# %% [markdown]
# ## 6. Data augmentation
#
# The second weapon against overfitting in the paper was more data, made up for free.
# The images were resized to 256×256, and during training the network saw a **random
# 224×224 crop** of each one, **mirrored left to right** half of the time: 32 × 32
# positions times 2 gives 2,048 versions of every image (highly correlated ones, but the
# paper says that without them the network overfits substantially). At test time it
# averaged its predictions over ten crops: the four corners and the centre, and their
# mirror images. The paper also jittered the colours: it added to every pixel a random
# multiple of the principal components of the RGB values over the training set
# (so the same image is seen under slightly different lighting, with the amount drawn
# afresh each time the image is used), which lowered the top-1 error by over 1 point.
#
# At 32×32, the usual form of the crop is to pad the image by a few pixels of zeros (the
# mean colour, after normalisation) on each side and cut a random 32×32 window back out:
# a shift by up to that many pixels. `data.RandomCropFlip(padding=4, flip=0.5)` does this,
# and `data.make_loaders(..., train_transform=data.RandomCropFlip())` applies it to the
# training images only. Each row below is one `sprites` image and six random versions of
# it.

# %%
sprites = data.load_dataset("sprites", "train", num_samples=4)
augment = data.RandomCropFlip(padding=4, flip=0.5)
torch.manual_seed(0)
grid = torch.stack([img if j == 0 else augment(img) for img in sprites.images for j in range(7)])
plot.show_images(grid, dataset=sprites, ncols=7,
                 title="original (left) and six random crops and flips of each")
plt.show()

# %% [markdown]
# The label stays the same under every one of these changes, and that is the point: the
# network is told that a shifted or mirrored object is still the same object, without a
# single new photograph. (A flip is not always harmless: a mirrored digit 7 is not a 7,
# which is why augmentations are chosen per dataset.)

# %% [markdown]
# ## Summary
#
# - AlexNet cut the ILSVRC top-5 error from about 26% to 16% in 2012 and started the
#   sequence of ever-deeper CNNs that this course follows.
# - CONV1 (96 filters of 11×11 at stride 4) gives 55×55 maps only from a 227×227 input
#   (the paper's text says 224, which gives 54; torchvision pads by 2 instead) and has
#   34,944 parameters; POOL1's overlapping 3×3 windows at stride 2 give 27×27 and have
#   no parameters.
# - The dense layers hold 94% of the 62 million parameters; the convolutions do about
#   95% of the arithmetic.
# - The same code builds the 32×32 version and the full-size network; the full one has
#   about a thousand times LeNet's parameters.
# - ReLU trains far faster than sigmoid (which did not learn at all in our short run); at
#   our small scale, tanh kept pace with ReLU, unlike in the paper's CIFAR-10 experiment.
# - Dropout and weight decay fight overfitting: in our run dropout halved the test loss
#   and gained 2 to 3 points of test accuracy, weight decay less; data augmentation
#   makes more data out of the same images.
# - Local response normalisation made channels compete, gave a small gain, and was
#   dropped by later networks; batch normalisation took its place.
#
# **Further questions (not graded)**
# 1. Give CONV1 a padding of 2 and feed it 224×224 images. What changes in the rest of
#    the table? (`alexnet_table` answers it.)
# 2. How many parameters would fc6 have if pool5 were not there (conv5's 13×13 maps
#    flattened)? What does that say about pooling before the dense layers?
# 3. Replace fc6 and fc7 by a global average over pool5's maps and a single dense layer to
#    the classes. How many parameters are left? (NiN, two notebooks on, does this.)
# 4. The paper multiplied outputs by $1 - p$ at test time; inverted dropout divides by
#    $1 - p$ at training time. Show that the expected input of the next layer is the same
#    in both, and say why the inverted form is more convenient.
# 5. Train the sigmoid network of section 5.1 for longer or with a larger learning rate.
#    Does it start to learn? What about initialising its weights with a larger scale?
