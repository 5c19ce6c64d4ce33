# %% [markdown]
# # 01 · The components of a CNN
#
# Every architecture in this course, from LeNet to ResNeXt, is built from the same handful
# of parts. This notebook takes them one at a time, writes the important ones from scratch
# and checks them against PyTorch, so that later notebooks can use `nn.Conv2d` and friends
# knowing exactly what they compute.
#
# **In this notebook you will**
# - compute a convolution by hand: the sliding dot product, padding, stride and channels;
# - derive the output-size formula and the parameter count of a convolutional layer;
# - write a convolution twice, first with loops, then vectorised with `unfold` and one
#   matrix product, and see why the second is so much faster;
# - apply hand-made edge filters to a photograph and look at the feature maps;
# - write max pooling, and see why pooling has no parameters;
# - compare ReLU, sigmoid and tanh, and watch gradients vanish through a stack of sigmoids;
# - write batch normalisation, in training and in evaluation mode, and measure what it
#   does to training and how it depends on the batch size;
# - put the parts together: the usual order of the layers in a block and why it matters,
#   a network built from a written spec with its shapes predicted, and a network made of
#   *your own* convolution, pooling and batch norm that learns to read digits.
#
# | section | exercise | points |
# |---|---|---|
# | 1. Convolution | `conv_output_size`, `conv_params`, `conv2d_naive`, `conv2d` | 5 + 5 + 10 + 10 |
# | 2. Pooling | `max_pool2d` | 5 |
# | 3. Dense layers and activations | `sigmoid_grad`, `tanh_grad`, `relu_grad` | 5 |
# | 4. Batch normalisation | `batch_norm_forward` (training, evaluation) | 5 + 5 |
# | 5. Putting the parts together | `layer_shapes`, `build_net` | 10 |
# | | **total** | **60** |

# %% nbgrader={"grade_id": "setup", "locked": true}
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnncourse
from cnncourse import data, grading, layers, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)


# %% [markdown]
# ## 1. Convolution
#
# A convolutional layer slides a small **filter** (or *kernel*) over its input. At each
# position it multiplies the filter with the patch of input under it, element by element,
# sums the products and adds a bias: one number of the output. Moving the filter across the
# whole input gives a 2-D **feature map**: large where the input looks like the filter,
# small elsewhere.
#
# The input has $C_\text{in}$ channels (3 for a colour image, many more deeper in a
# network), and a filter always spans all of them: a filter for a 3-channel input with a
# $5 \times 5$ window holds $3 \times 5 \times 5$ weights. A layer has $C_\text{out}$
# filters, each making one output channel. With input $x$ of shape
# $(C_\text{in}, H, W)$, weights $w$ of shape $(C_\text{out}, C_\text{in}, K_h, K_w)$,
# bias $b$, stride $S$ and zero padding $P$:
#
# $$
# y[o, i, j] \;=\; b[o] \;+\; \sum_{c=0}^{C_\text{in}-1} \sum_{u=0}^{K_h-1} \sum_{v=0}^{K_w-1}
#   w[o, c, u, v]\; x_\text{pad}[c,\; S i + u,\; S j + v],
# $$
#
# where $x_\text{pad}$ is $x$ with $P$ rows and columns of zeros added on **every** side.
# (Deep-learning libraries compute this *cross-correlation*; a textbook convolution would
# flip the filter first. With learned filters the difference does not matter.)
#
# - **Padding** controls the output size: at stride 1, a $3 \times 3$ filter with $P = 1$
#   keeps the size unchanged (in general $P = (K - 1)/2$ does, for an odd $K$ at stride 1).
#   It also gives the border more weight. Without padding, a $3 \times 3$ filter at stride 1
#   covers a corner pixel in a single window position, a pixel in the middle of a side in
#   3 and an interior pixel in 9; with $P = 1$ the counts become 4, 6 and 9.
# - **Stride** is the step between two positions of the filter: $S = 2$ roughly halves the
#   size (a $3 \times 3$ filter with $P = 1$ turns a side of 32 into 16, and one of 33 into
#   17).
#
# The pictures below show a $3 \times 3$ filter at stride 2: on the left over a
# $5 \times 5$ input padded by 1 (the grey border), on the right over a $6 \times 6$
# input without padding. Each coloured square is one window, and each window gives one
# output value.

# %%
def draw_windows(size: int, kernel: int, stride: int, padding: int, ax=None):
    # Draw the padded input grid and every `kernel` x `kernel` window at `stride`.
    full = size + 2 * padding
    ax = ax or plt.gca()
    for r in range(full):
        for c in range(full):
            pad = not (padding <= r < padding + size and padding <= c < padding + size)
            ax.add_patch(plt.Rectangle((c, r), 1, 1, fc="0.85" if pad else "white", ec="0.5"))
    starts = range(0, full - kernel + 1, stride)
    windows = [(r, c) for r in starts for c in starts]
    for n, (r, c) in enumerate(windows):
        inset = 0.08 + 0.04 * (n % 3)
        ax.add_patch(plt.Rectangle((c + inset, r + inset), kernel - 2 * inset, kernel - 2 * inset,
                                   fill=False, ec=f"C{n % 10}", lw=2))
    ax.set(xlim=(0, full), ylim=(full, 0), aspect="equal", xticks=[], yticks=[])
    ax.set_title(f"input {size}, kernel {kernel}, stride {stride}, padding {padding}: "
                 f"{len(starts)}×{len(starts)} windows", fontsize=9)
    return len(starts)

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
draw_windows(5, 3, 2, 1, axes[0])
draw_windows(6, 3, 2, 0, axes[1])
fig.tight_layout()

# %% [markdown]
# ### Convolution over a volume
#
# The pictures above show one channel. A real input is a *volume*: $C_\text{in}$ maps of
# $H \times W$, stacked. Each filter is exactly as deep as the input, so one filter
# position covers a $K \times K \times C_\text{in}$ box of the input and its dot product
# with that box (plus the bias) is **one** number. Sliding the filter over all positions
# gives one output map, whatever the input depth; $C_\text{out}$ filters give
# $C_\text{out}$ maps, and those maps are the channels of the next layer's input.

# %%
plot.conv_volume(in_channels=3, size=6, kernel_size=3, out_channels=2);


# %% [markdown]
# ### The output size
#
# Along one axis the input is $I$ wide, the padded input $I + 2P$. A filter of size $K$
# fits in it at the first position, and then once more for every further step of $S$ that
# still fits. Counting the positions gives the formula you will use all through the
# course:
#
# $$
# O \;=\; \left\lfloor \frac{I + 2P - K}{S} \right\rfloor + 1 .
# $$
#
# The floor matters when the stride does not divide $I + 2P - K$: the last few rows or
# columns that a full step cannot reach are simply dropped (count the windows in the
# right-hand picture above: the last column and row are never covered).
#
# ### Exercise 1: `conv_output_size` (5 points)
#
# Implement the formula for one axis. If the filter does not fit in the padded input at
# all, or the stride is not a positive integer, raise a `ValueError` whose message names
# the argument that is wrong (`"kernel_size=..."`, `"stride=..."`): a clear error now saves
# a confusing one deep inside a network later.

# %% nbgrader={"grade_id": "conv_output_size", "solution": true}
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one axis of a convolution (or pooling) window.

    Args:
        size: input length I (height or width), without padding.
        kernel_size: filter length K.
        stride: step S between two filter positions (>= 1).
        padding: zeros P added on each side.

    Returns:
        O = floor((I + 2P - K) / S) + 1, as an int.

    Raises:
        ValueError: if stride < 1, padding < 0, or K > I + 2P (the filter does not fit).
    """
    ### BEGIN SOLUTION
    if stride < 1:
        raise ValueError(f"stride={stride}: expected a positive int")
    if padding < 0:
        raise ValueError(f"padding={padding}: expected a non-negative int")
    if kernel_size > size + 2 * padding:
        raise ValueError(
            f"kernel_size={kernel_size} is larger than the padded input ({size} + 2*{padding})"
        )
    return (size + 2 * padding - kernel_size) // stride + 1
    ### END SOLUTION


# %%
# Try it: a 7-wide input, 3-wide filter, for a few strides and paddings.
for s, p in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 1)]:
    print(f"stride {s}, padding {p}: output {conv_output_size(7, 3, stride=s, padding=p)}")

# %% nbgrader={"grade": true, "grade_id": "test_conv_output_size", "locked": true, "points": 5}
# Tests for conv_output_size (5 points).
from cnncourse.grading import check_number, check_raises, run_exercise


def _torch_size(i, k, s, p):  # the length nn.Conv2d really produces
    return F.conv2d(torch.zeros(1, 1, i, 1), torch.zeros(1, 1, k, 1), stride=(s, 1),
                    padding=(p, 0)).shape[2]

def _check(i, k, s, p):
    got = run_exercise(conv_output_size, i, k, stride=s, padding=p)
    want = _torch_size(i, k, s, p)
    hint = ""
    if got == (i + p - k) // s + 1:
        hint = "padding adds P zeros on *each* side, so the padded length is I + 2P"
    elif got == (i + 2 * p - k) / s + 1 or got == round((i + 2 * p - k) / s) + 1:
        hint = "the number of positions is a whole number: round down (floor)"
    elif got == (i - k) // s + (2 * p) // s + 1:
        hint = "floor once, at the end: (I + 2P - K) // S, not each term on its own"
    elif got == (i + 2 * p - k) // s:
        hint = "count the first position too (the + 1)"
    check_number(got, want, f"conv_output_size({i}, kernel_size={k}, stride={s}, padding={p})",
                 hint=hint)
    if not isinstance(got, int):
        raise AssertionError(f"conv_output_size({i}, {k}, {s}, {p}) returned a "
                             f"{type(got).__name__}; return an int (use // for the floor)")

_check(12, 3, 1, 0)
_check(12, 3, 1, 1)
_check(12, 4, 2, 1)
try:
    conv_output_size(4, kernel_size=7)
except ValueError:
    pass
else:
    raise AssertionError("conv_output_size(4, kernel_size=7) should raise ValueError: "
                         "a 7-wide filter does not fit in a 4-wide input")
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _i, _k, _s, _p in [(32, 5, 1, 0), (28, 5, 1, 2), (227, 11, 4, 0), (224, 7, 2, 3),
                       (56, 3, 2, 1), (13, 3, 2, 0), (10, 4, 3, 0), (9, 2, 2, 0),
                       (1, 1, 1, 0), (5, 5, 1, 0), (3, 5, 1, 1), (100, 1, 7, 0)]:
    _check(_i, _k, _s, _p)
for _args, _kw, _name in [((4, 7), {}, "kernel_size"), ((4, 7), {"padding": 1}, "kernel_size"),
                          ((8, 3), {"stride": 0}, "stride"), ((8, 3), {"stride": -1}, "stride"),
                          ((8, 3), {"padding": -1}, "padding")]:
    check_raises(conv_output_size, *_args, argument=_name, **_kw)
# Size, kernel, stride and padding varied together, against the length torch produces.
for _i in range(1, 16):
    for _k in range(1, 6):
        for _s in range(1, 5):
            for _p in range(3):
                if _k <= _i + 2 * _p:
                    _check(_i, _k, _s, _p)
### END HIDDEN TESTS

# %% [markdown]
# ### Parameters of a convolutional layer
#
# Each of the $C_\text{out}$ filters has $C_\text{in} \times K_h \times K_w$ weights and one
# bias, so a layer has $(C_\text{in} K_h K_w + 1)\, C_\text{out}$ parameters (without the
# $+1$ when the layer has no bias, as when batch normalisation follows it). The count does
# **not** depend on the size of the image: the same filter is reused at every position.
# This *weight sharing* is why a convolutional layer needs so many fewer parameters than a
# dense layer on the same image.
#
# ### Exercise 2: `conv_params` (5 points)
#
# Count the parameters of a convolutional layer. `kernel_size` is an int for a square
# filter or a pair `(K_h, K_w)`.

# %% nbgrader={"grade_id": "conv_params", "solution": true}
def conv_params(in_channels: int, out_channels: int, kernel_size, bias: bool = True) -> int:
    """Learnable parameters of nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias).

    Args:
        kernel_size: K for a K x K filter, or a pair (K_h, K_w).

    Returns:
        (in_channels * K_h * K_w + [1 if bias]) * out_channels, as an int.
    """
    ### BEGIN SOLUTION
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return (in_channels * kh * kw + (1 if bias else 0)) * out_channels
    ### END SOLUTION


# %%
print("3 -> 16 channels, 3x3:", conv_params(3, 16, 3))
print("same, without bias:   ", conv_params(3, 16, 3, bias=False))

# %% nbgrader={"grade": true, "grade_id": "test_conv_params", "locked": true, "points": 5}
# Tests for conv_params (5 points).
from cnncourse.grading import check_number, run_exercise


def _check(cin, cout, k, bias=True):
    got = run_exercise(conv_params, cin, cout, k, bias=bias)
    want = sum(p.numel() for p in nn.Conv2d(cin, cout, k, bias=bias).parameters())
    kh, kw = (k, k) if isinstance(k, int) else k
    hint = ""
    if bias and got == cin * kh * kw * cout:
        hint = "each filter also has one bias"
    elif got == (cin * kh * kw + 1) * cout - cout + 1 and bias:
        hint = "every one of the out_channels filters has its own bias"
    elif got == (kh * kw + bias) * cout:
        hint = "a filter spans all in_channels input channels"
    check_number(got, want, f"conv_params({cin}, {cout}, kernel_size={k}, bias={bias})", hint=hint)

_check(1, 4, 3)
_check(2, 5, 3, bias=False)
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _args in [(3, 96, 11), (96, 256, 5), (256, 384, 3), (1, 6, 5), (6, 16, 5), (64, 64, 1),
              (3, 8, (3, 5)), (7, 2, (1, 4)), (512, 512, 3)]:
    _check(*_args)
    _check(*_args, bias=False)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: `conv2d_naive`, convolution with loops (10 points)
#
# Now compute the convolution itself, for a batch: `x` is $(N, C_\text{in}, H, W)$, the
# result $(N, C_\text{out}, H_\text{out}, W_\text{out})$. Write it the direct way, straight
# from the formula: pad the input, then loop over the images, the output channels and the
# output positions, and take the sum of the element-wise product of the filter and the
# patch under it. `F.pad` (or slicing into a tensor of zeros) does the padding;
# `conv_output_size` from exercise 1 gives the output size.
#
# This version is slow, and that is fine: it is the definition, and it is easy to check.
# The test cell runs it inside a guard that fails if it calls `F.conv2d` (or `nn.Conv2d`,
# or `cnncourse.layers.conv2d`), and compares the result with `F.conv2d`.

# %% nbgrader={"grade_id": "conv2d_naive", "solution": true}
def conv2d_naive(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 stride: int = 1, padding: int = 0) -> torch.Tensor:
    """2-D convolution (cross-correlation) computed with explicit loops.

    Args:
        x: input, shape (N, C_in, H, W).
        weight: filters, shape (C_out, C_in, K_h, K_w).
        bias: shape (C_out,), or None for no bias.
        stride, padding: ints, the same along both axes.

    Returns:
        y of shape (N, C_out, H_out, W_out) with
        y[n, o, i, j] = bias[o] + sum_{c,u,v} weight[o, c, u, v] * x_pad[n, c, S*i + u, S*j + v].
    """
    ### BEGIN SOLUTION
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = conv_output_size(h, kh, stride, padding)
    w_out = conv_output_size(w, kw, stride, padding)
    xp = F.pad(x, (padding, padding, padding, padding))
    out = x.new_zeros(n, c_out, h_out, w_out)
    for b in range(n):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    patch = xp[b, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[b, o, i, j] = (patch * weight[o]).sum()
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv2d_naive", "locked": true, "points": 10}
# Tests for conv2d_naive (10 points): values against F.conv2d, without calling it.
# Graded with the reference conv_output_size: a slip there costs only its own cell.
from cnncourse.grading import check_grads, check_tensor, forbid, run_exercise, with_reference

_gen = torch.Generator().manual_seed(3)
_helpers = dict(conv_output_size=shapes.conv_output_size,
                probes={"conv_output_size": [(6, 3, 1, 1), (9, 3, 3, 1), (8, 3, 2, 0)]})

def _check(n, cin, cout, h, w, kh, kw, stride, padding, bias=True, dtype=torch.float32,
           grad=False):
    x = torch.randn(n, cin, h, w, generator=_gen, dtype=dtype, requires_grad=grad)
    wt = torch.randn(cout, cin, kh, kw, generator=_gen, dtype=dtype, requires_grad=grad)
    b = torch.randn(cout, generator=_gen, dtype=dtype, requires_grad=grad) if bias else None
    what = (f"conv2d_naive on x {tuple(x.shape)}, weight {tuple(wt.shape)}, "
            f"stride={stride}, padding={padding}, bias={'yes' if bias else 'None'}, {dtype}")
    with forbid("conv", exercise="conv2d_naive"), with_reference(globals(), **_helpers):
        out = run_exercise(conv2d_naive, x, wt, b, stride=stride, padding=padding)
    _helpers.pop("probes", None)  # one note is enough
    ref = F.conv2d(x, wt, b, stride=stride, padding=padding)
    check_tensor(out, ref, what)
    if grad:
        check_grads(out, ref, {"x": x, "weight": wt, "bias": b}, what, generator=_gen)

_check(1, 1, 1, 5, 5, 3, 3, stride=1, padding=0)
_check(2, 3, 2, 6, 6, 3, 3, stride=1, padding=1)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check(2, 2, 3, 7, 7, 3, 3, stride=2, padding=1)
_check(1, 3, 2, 8, 8, 3, 3, stride=2, padding=0, bias=False)  # output 3: floor needed
_check(1, 2, 2, 6, 9, 2, 4, stride=1, padding=2)  # rectangular input and filter
_check(3, 1, 4, 5, 5, 5, 5, stride=1, padding=0)  # filter as large as the input
_check(1, 2, 2, 9, 9, 3, 3, stride=3, padding=1, dtype=torch.float64)
_check(2, 2, 2, 5, 6, 3, 2, stride=2, padding=1, bias=False, dtype=torch.float64)  # no bias
_check(1, 1, 2, 1, 1, 1, 1, stride=1, padding=0)  # a 1×1 map
_check(1, 2, 2, 5, 4, 3, 3, stride=1, padding=1, dtype=torch.float64, grad=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4: `conv2d`, vectorised (10 points)
#
# Python loops are slow: the naive version runs the inner statement
# $N \cdot C_\text{out} \cdot H_\text{out} \cdot W_\text{out}$ times, each time for a few
# dozen multiplications. The fast way rewrites the whole convolution as **one matrix
# product** (the *im2col* trick that early GPU libraries used):
#
# 1. **Unfold**: cut every patch the filter visits out of the padded input and lay it out
#    as a column of $C_\text{in} K_h K_w$ numbers. `F.unfold(x, kernel_size, padding=...,
#    stride=...)` does exactly this: $(N, C_\text{in}, H, W) \to
#    (N,\ C_\text{in} K_h K_w,\ H_\text{out} W_\text{out})$.
# 2. **Multiply**: flatten the filters into a matrix of shape
#    $(C_\text{out},\ C_\text{in} K_h K_w)$. Multiplying it with the unfolded columns gives
#    every filter's dot product with every patch at once:
#    $(N,\ C_\text{out},\ H_\text{out} W_\text{out})$.
# 3. **Fold back**: add the bias and reshape to $(N, C_\text{out}, H_\text{out}, W_\text{out})$.
#
# `F.unfold` and matrix products (`@`, `torch.matmul`) are allowed; `F.conv2d` is not. The
# hidden tests also check the gradients: if you only use tensor operations, autograd gives
# you the backward pass for free.

# %% nbgrader={"grade_id": "conv2d", "solution": true}
def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int = 1, padding: int = 0) -> torch.Tensor:
    """2-D convolution as one matrix product over unfolded patches (im2col).

    Args:
        x: input, shape (N, C_in, H, W).
        weight: filters, shape (C_out, C_in, K_h, K_w).
        bias: shape (C_out,), or None.
        stride, padding: ints, the same along both axes.

    Returns:
        Shape (N, C_out, H_out, W_out), equal to F.conv2d(x, weight, bias, stride, padding).
    """
    ### BEGIN SOLUTION
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = conv_output_size(h, kh, stride, padding)
    w_out = conv_output_size(w, kw, stride, padding)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, C_in*kh*kw, L)
    out = weight.reshape(c_out, -1) @ cols  # (N, C_out, L)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.view(n, c_out, h_out, w_out)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv2d", "locked": true, "points": 10}
# Tests for the vectorised conv2d (10 points): values and gradients against F.conv2d.
# Graded with the reference conv_output_size; calling conv2d_naive (the loops) fails.
from cnncourse.grading import (
    banned,
    check_grads,
    check_tensor,
    forbid,
    run_exercise,
    with_reference,
)

_helpers = dict(conv_output_size=shapes.conv_output_size,
                conv2d_naive=banned("conv2d_naive", "conv2d", "Vectorise it: no Python loops "
                                    "over pixels, so no call to conv2d_naive either"),
                probes={"conv_output_size": [(6, 3, 1, 1), (9, 3, 3, 1), (8, 3, 2, 0)]})

_gen = torch.Generator().manual_seed(4)

def _check(n, cin, cout, h, w, kh, kw, stride, padding, bias=True, dtype=torch.float32,
           grad=False):
    x = torch.randn(n, cin, h, w, generator=_gen, dtype=dtype, requires_grad=grad)
    wt = torch.randn(cout, cin, kh, kw, generator=_gen, dtype=dtype, requires_grad=grad)
    b = torch.randn(cout, generator=_gen, dtype=dtype, requires_grad=grad) if bias else None
    what = (f"conv2d on x {tuple(x.shape)}, weight {tuple(wt.shape)}, stride={stride}, "
            f"padding={padding}, bias={'yes' if bias else 'None'}")
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)
    with forbid("conv", exercise="conv2d"), with_reference(globals(), **_helpers):
        out = run_exercise(conv2d, x, wt, b, stride=stride, padding=padding)
    _helpers.pop("probes", None)  # one note is enough
    ref = F.conv2d(x, wt, b, stride=stride, padding=padding)
    check_tensor(out, ref, what, **tol)
    if grad:
        check_grads(out, ref, {"x": x, "weight": wt, "bias": b}, what, generator=_gen, **tol)

_check(2, 3, 4, 8, 8, 3, 3, stride=1, padding=1)
_check(1, 2, 3, 9, 9, 3, 3, stride=2, padding=0)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check(4, 3, 8, 32, 32, 5, 5, stride=1, padding=2)
_check(2, 3, 6, 27, 27, 11, 11, stride=4, padding=0, bias=False)
_check(2, 4, 5, 10, 13, 2, 3, stride=2, padding=1)  # rectangular input and filter
_check(3, 6, 16, 14, 14, 5, 5, stride=1, padding=0, dtype=torch.float64, grad=True)
_check(2, 3, 4, 11, 11, 3, 3, stride=3, padding=1, dtype=torch.float64, grad=True)
_check(2, 2, 3, 7, 7, 1, 1, stride=1, padding=0, bias=False, dtype=torch.float64, grad=True)
_check(1, 3, 2, 4, 4, 4, 4, stride=1, padding=0, bias=False, dtype=torch.float64)  # 1×1 out
_check(1, 2, 3, 6, 5, 3, 3, stride=2, padding=2, grad=True)  # more padding than usual
### END HIDDEN TESTS

# %% [markdown]
# How much faster is the vectorised version? The cell below times both on one colour
# image with eight $5 \times 5$ filters, and PyTorch's own `F.conv2d` (C++ kernels tuned
# for your CPU) for reference. Your numbers will differ from your neighbour's; the ratios
# are what matter. On such a small input unfold + matmul is close to PyTorch's own
# kernel; on large inputs the unfolded matrix (every pixel copied $K_h K_w$ times) costs
# memory and time, which is why libraries use smarter algorithms.

# %%
def best_time(fn, repeats=3):
    # The fastest of a few runs: the least disturbed by whatever else the machine does.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)

x = torch.randn(1, 3, 32, 32)  # one colour image
w = torch.randn(8, 3, 5, 5)    # eight 5x5 filters
b = torch.randn(8)
with torch.no_grad():
    times = {"naive loops": best_time(lambda: conv2d_naive(x, w, b), repeats=1),
             "unfold + matmul": best_time(lambda: conv2d(x, w, b), repeats=20),
             "F.conv2d": best_time(lambda: F.conv2d(x, w, b), repeats=20)}
for name, t in times.items():
    print(f"{name:>16}: {t * 1e3:8.3f} ms = {t / times['F.conv2d']:8.1f} x F.conv2d")

# %% [markdown]
# ### Filters on a real photograph
#
# What does a filter *detect*? Before any training, we can design filters by hand. The
# **Sobel** filters respond to a change of brightness from left to right (or top to
# bottom): their weights are negative on one side and positive on the other, so on a flat
# region the products cancel and on an edge they do not. A **Laplacian** responds to
# edges in any direction, and a filter of equal weights simply blurs.
#
# Below, your `conv2d` applies four such filters to a photograph that ships with
# matplotlib (Grace Hopper, computer scientist and US Navy rear admiral). The input is
# one grey channel, so the weights have shape $(4, 1, 3, 3)$ and the output has four
# channels: four feature maps. The first layer of a trained CNN learns filters much like
# these (you will see LeNet's in the next notebook).

# %%
from matplotlib import cbook

with cbook.get_sample_data("grace_hopper.jpg") as f:
    photo = torch.tensor(plt.imread(f)).permute(2, 0, 1).float() / 255  # (3, 600, 512)
grey = F.avg_pool2d(photo.mean(dim=0, keepdim=True)[None], 2)  # (1, 1, 300, 256)

sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
filters = torch.stack([
    sobel_x,                     # vertical edges (brightness changes left to right)
    sobel_x.T,                   # horizontal edges
    torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),  # Laplacian
    torch.full((3, 3), 1 / 9),   # blur
]).unsqueeze(1)                  # (4, 1, 3, 3)
maps = conv2d(grey, filters, padding=1)  # (1, 4, 300, 256)
print("input", tuple(grey.shape), "-> feature maps", tuple(maps.shape))

titles = ["input", "Sobel x", "Sobel y", "Laplacian", "blur"]
fig, axes = plt.subplots(1, 5, figsize=(14, 3.4))
for ax, img, title in zip(axes, [grey[0, 0], *maps[0].abs()], titles, strict=True):
    ax.imshow(img, cmap="gray")
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# A filter on a colour image spans all three channels. The one below has $3 \times 3
# \times 3$ weights: it adds up the red channel and subtracts green and blue, so it lights
# up where the picture is *red* rather than merely bright: the red stripes of the flag,
# and more weakly her skin, while the white shirt and the blue background stay dark. One
# filter, three input channels, **one** output map.

# %%
small = F.avg_pool2d(photo[None], 2)  # (1, 3, 300, 256)
redness = torch.zeros(1, 3, 3, 3)
redness[0, 0], redness[0, 1], redness[0, 2] = 1 / 9, -0.5 / 9, -0.5 / 9
red_map = conv2d(small, redness, padding=1)  # (1, 1, 300, 256)
fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.4))
axes[0].imshow(small[0].permute(1, 2, 0))
axes[0].set_title("input (3 channels)")
axes[1].imshow(red_map[0, 0].clamp(min=0), cmap="magma")
axes[1].set_title("'redness' feature map")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
print("parameters of this layer:", conv_params(3, 1, 3))


# %% [markdown]
# ## 2. Pooling
#
# A pooling layer shrinks each feature map on its own, channel by channel. It slides a
# window over the map, like a convolution, but instead of a dot product with learned
# weights it takes a fixed summary of the window:
#
# - **max pooling** keeps the largest value: "did the feature appear somewhere in this
#   window?";
# - **average pooling** keeps the mean.
#
# The output size follows the same formula as a convolution (a window of size $K$ at
# stride $S$). In PyTorch the stride of a pooling layer defaults to the window size, so
# `nn.MaxPool2d(2)` means $2 \times 2$ windows at stride 2: they do not overlap and halve
# the height and the width. Pooling has **no parameters**: there is nothing to learn in
# "take the maximum". It makes the maps smaller (less computation in later layers), lets
# each later filter see a larger part of the image, and makes the output a little
# insensitive to small shifts of the input.
#
# ### Exercise 5: `max_pool2d` (5 points)
#
# Implement max pooling without padding: `x` is $(N, C, H, W)$; `stride=None` means the
# stride equals `kernel_size`. A neat way: `Tensor.unfold(dim, size, step)` cuts windows
# along one dimension (without copying); do it along the height and then the width, and
# take the maximum over the two new window dimensions. Loops over the output positions
# are fine too. `F.max_pool2d` and `nn.MaxPool2d` are off limits.

# %% nbgrader={"grade_id": "max_pool2d", "solution": true}
def max_pool2d(x: torch.Tensor, kernel_size: int, stride: int | None = None) -> torch.Tensor:
    """Max pooling over kernel_size x kernel_size windows, no padding.

    Args:
        x: shape (N, C, H, W).
        kernel_size: window side K.
        stride: step S between windows; None means S = K.

    Returns:
        Shape (N, C, H_out, W_out) with H_out = floor((H - K) / S) + 1 (same for W), and
        y[n, c, i, j] = max over the window starting at (S*i, S*j).
    """
    ### BEGIN SOLUTION
    stride = kernel_size if stride is None else stride
    windows = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)  # (N,C,Ho,Wo,K,K)
    return windows.amax(dim=(-2, -1))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_max_pool2d", "locked": true, "points": 5}
# Tests for max_pool2d (5 points): values and gradients against F.max_pool2d.
from cnncourse.grading import check_grads, check_tensor, forbid, run_exercise

_gen = torch.Generator().manual_seed(5)

def _check(shape, k, stride=None, grad=False, dtype=torch.float32):
    x = torch.randn(*shape, generator=_gen, dtype=dtype, requires_grad=grad)
    what = f"max_pool2d(x of shape {shape}, kernel_size={k}, stride={stride})"
    with forbid("max_pool", exercise="max_pool2d"):
        out = (run_exercise(max_pool2d, x, k) if stride is None
               else run_exercise(max_pool2d, x, k, stride=stride))
    ref = F.max_pool2d(x, k, stride=stride)
    check_tensor(out, ref, what)
    if grad:
        check_grads(out, ref, {"x": x}, what, generator=_gen)

_check((1, 1, 4, 4), 2)
_check((2, 3, 6, 6), 2, stride=2)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check((2, 3, 8, 8), 2)  # default stride must be the kernel size
_check((2, 3, 9, 9), 3)
_check((2, 4, 13, 13), 3, stride=2)  # overlapping windows, as in AlexNet
_check((1, 2, 7, 10), 2, stride=1)
_check((2, 2, 7, 7), 2)  # 7 is not a multiple of 2: the last row and column are dropped
_check((3, 2, 6, 8), 2, grad=True, dtype=torch.float64)
_check((1, 3, 9, 9), 3, stride=2, grad=True, dtype=torch.float64)
_check((2, 3, 5, 5), 5)  # one window covers the map: a 1×1 output
# Ties (ReLU outputs are full of zeros) and large magnitudes in float32.
_tied = torch.relu(torch.randn(2, 3, 8, 8, generator=_gen)).round()
with forbid("max_pool", exercise="max_pool2d"):
    _out = run_exercise(max_pool2d, _tied, 2)
check_tensor(_out, F.max_pool2d(_tied, 2), "max_pool2d with ties")
_big = torch.randn(1, 2, 6, 6, generator=_gen) * 1e30
with forbid("max_pool", exercise="max_pool2d"):
    _out = run_exercise(max_pool2d, _big, 3, stride=1)
check_tensor(_out, F.max_pool2d(_big, 3, stride=1), "max_pool2d(x of magnitude 1e30, 3, stride=1)")
# Size, kernel and stride varied together.
for _h, _k, _s in [(5, 2, 3), (11, 4, 3), (6, 3, 3), (10, 3, 1), (4, 4, 2)]:
    _check((1, 2, _h, _h + 1), _k, stride=_s)
### END HIDDEN TESTS

# %% [markdown]
# ### A worked example in numbers
#
# A $4 \times 4$ map pooled with $2 \times 2$ windows at stride 2: four windows that do not
# overlap, so the output is $2 \times 2$. Each output value summarises one window, by its
# largest value (max pooling) or by its mean (average pooling). Check one window by hand.

# %%
x4 = torch.tensor([[1.0, 3.0, 2.0, 1.0],
                   [4.0, 6.0, 5.0, 0.0],
                   [3.0, 1.0, 1.0, 2.0],
                   [0.0, 2.0, 7.0, 3.0]])[None, None]  # (N, C, H, W) = (1, 1, 4, 4)
for title, result in [("input, 4x4", x4), ("max pooling 2x2, stride 2 (your max_pool2d)",
                      max_pool2d(x4, 2)), ("average pooling 2x2, stride 2", F.avg_pool2d(x4, 2))]:
    print(title)
    for row in result[0, 0].tolist():
        print("   " + " ".join(f"{v:5.2f}" for v in row))

# %% [markdown]
# Max and average pooling of the Sobel map from above, $4 \times 4$ windows at stride 4,
# drawn on the same grey scale: both shrink the map 16-fold. Max pooling keeps every strong
# edge (a thin edge survives
# if it crosses the window anywhere); average pooling dilutes a thin edge with the flat
# pixels around it.

# %%
edges = maps[:, :1].abs()  # the |Sobel x| map, (1, 1, 300, 256)
pooled = {"Sobel x map": edges, "max pool 4x4": max_pool2d(edges, 4),
          "average pool 4x4": F.avg_pool2d(edges, 4)}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, (title, m) in zip(axes, pooled.items(), strict=True):
    ax.imshow(m[0, 0], cmap="gray", vmin=0, vmax=edges.max().item())  # one scale for all three
    ax.set_title(f"{title}\n{tuple(m.shape[-2:])}")
    ax.axis("off")
fig.tight_layout()
print("parameters of nn.MaxPool2d(4):", shapes.count_params(nn.MaxPool2d(4)))


# %% [markdown]
# ## 3. Dense layers and activations
#
# A **dense** (fully connected, `nn.Linear`) layer connects every input to every output:
# $y = W x + b$ with $W$ of shape $(\text{out}, \text{in})$, so it has
# $(\text{in} + 1) \cdot \text{out}$ parameters. After the convolutions, a CNN flattens its
# last feature maps into a vector and uses one or more dense layers to turn them into class
# scores. Dense layers are where the parameters pile up: on a $32 \times 8 \times 8$ map,
# a dense layer to 100 units has $(2048 + 1) \cdot 100 = 204{,}900$ parameters, while a
# $3 \times 3$ convolution from 32 to 32 channels has $(32 \cdot 9 + 1) \cdot 32 = 9{,}248$.
#
# Between layers sits a non-linear **activation** function. Without it, a stack of
# convolutions and dense layers would collapse into one linear map, however deep. The three
# classic choices:
#
# | | formula | derivative |
# |---|---|---|
# | sigmoid | $\sigma(x) = \dfrac{1}{1 + e^{-x}}$ | $\sigma'(x) = \sigma(x)\,(1 - \sigma(x))$ |
# | tanh | $\tanh(x) = \dfrac{e^{x} - e^{-x}}{e^{x} + e^{-x}}$ | $\tanh'(x) = 1 - \tanh^2(x)$ |
# | ReLU | $\max(0, x)$ | $1$ if $x > 0$, else $0$ |
#
# ### Exercise 6: activation derivatives (5 points)
#
# Write the three derivatives from the table, with basic tensor operations
# (`torch.sigmoid` and `torch.tanh` may be used for the functions themselves). At $x = 0$
# ReLU has no derivative; use 0 there, as PyTorch does. The result has the shape and dtype
# of `x`.

# %% nbgrader={"grade_id": "activation_grads", "solution": true}
def sigmoid_grad(x: torch.Tensor) -> torch.Tensor:
    """d sigmoid(x) / dx, element-wise."""
    ### BEGIN SOLUTION
    s = torch.sigmoid(x)
    return s * (1 - s)
    ### END SOLUTION


def tanh_grad(x: torch.Tensor) -> torch.Tensor:
    """d tanh(x) / dx, element-wise."""
    ### BEGIN SOLUTION
    return 1 - torch.tanh(x) ** 2
    ### END SOLUTION


def relu_grad(x: torch.Tensor) -> torch.Tensor:
    """d relu(x) / dx, element-wise: 1 where x > 0, else 0 (also at x = 0)."""
    ### BEGIN SOLUTION
    return (x > 0).to(x.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_activation_grads", "locked": true, "points": 5}
# Tests for sigmoid_grad, tanh_grad and relu_grad (5 points), against autograd.
from cnncourse.grading import check_tensor, run_exercise


def _autograd(fn, x):
    x = x.detach().clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad

def _check(x):
    for mine, ref in [(sigmoid_grad, torch.sigmoid), (tanh_grad, torch.tanh),
                      (relu_grad, torch.relu)]:
        check_tensor(run_exercise(mine, x), _autograd(ref, x),
                     f"{mine.__name__}(x) for x of shape {tuple(x.shape)}, dtype {x.dtype}")

_check(torch.linspace(-3, 3, 7))
print("visible checks passed")
### BEGIN HIDDEN TESTS
_gen = torch.Generator().manual_seed(6)
_check(torch.randn(4, 5, generator=_gen) * 4)
_check(torch.tensor([0.0, -0.0, 1e-8, -1e-8, 30.0, -30.0]))  # ReLU at 0 and saturated tails
_check(torch.randn(2, 3, 4, generator=_gen, dtype=torch.float64) * 3)
# Far into the tails in float32, where exp(-x) overflows: the derivatives must be 0, not nan.
_check(torch.tensor([-1000.0, -100.0, -89.0, 89.0, 100.0, 1000.0]))
### END HIDDEN TESTS

# %%
xs = torch.linspace(-6, 6, 401)
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 3.4))
for name, f, df in [("sigmoid", torch.sigmoid, sigmoid_grad), ("tanh", torch.tanh, tanh_grad),
                    ("ReLU", torch.relu, relu_grad)]:
    ax_f.plot(xs, f(xs), label=name)
    ax_d.plot(xs, df(xs), label=name)
ax_f.set(title="activation", xlabel="x", ylim=(-1.2, 2.2))
ax_d.set(title="derivative", xlabel="x", ylim=(-0.1, 1.15))
for ax in (ax_f, ax_d):
    ax.axhline(0, color="0.6", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
print(f"largest derivative: sigmoid {sigmoid_grad(xs).max():.3f}, tanh {tanh_grad(xs).max():.3f}, "
      f"ReLU {relu_grad(xs).max():.3f}")


# %% [markdown]
# ### Why saturating activations slow learning
#
# Look at the derivatives. Sigmoid's is at most $1/4$, and both sigmoid and tanh are flat,
# with a derivative near 0, as soon as $|x|$ is a few units: they **saturate**.
# Backpropagation multiplies the gradient by the activation's derivative once per layer
# (and by the layer's weights), so through a stack of sigmoids it shrinks by a factor of
# at least 4 at every layer when the weights roughly preserve its scale, as the usual
# initialisations are designed to. Larger weights could make up for the factor, but they
# also push the inputs of the sigmoids out into the flat tails, where the derivative is
# far below $1/4$. Either way the first layers barely learn. ReLU's derivative is exactly
# 1 wherever the unit is active, so the gradient passes through unchanged. (Sigmoid's
# outputs are also all positive, not centred on 0, which makes the next layer's gradient
# steps zig-zag.)
#
# The cell below measures this. It builds a stack of ten dense layers of width 128 with
# each activation (all three with the same Glorot initialisation), passes a random batch
# through, backpropagates the loss once, and plots the size of the gradient that reaches
# each layer's weights. This is the lecture's "ReLU vs sigmoid (why?)". A fourth, dashed
# curve repeats ReLU with He initialisation; the text after the plot says why.

# %%
def gradient_norms(activation: type[nn.Module], depth: int = 10, width: int = 128,
                   init: str = "glorot") -> list[float]:
    # Norm of the loss gradient w.r.t. each dense layer's weights, first layer first.
    utils.seed_everything(0)
    blocks = [m for _ in range(depth) for m in (nn.Linear(width, width), activation())]
    net = nn.Sequential(*blocks, nn.Linear(width, 10))
    for m in net:
        if isinstance(m, nn.Linear):
            if init == "he":  # variance 2 / fan_in: twice Glorot's for a square layer
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:             # variance 2 / (fan_in + fan_out)
                nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
    x, y = torch.randn(256, width), torch.randint(0, 10, (256,))
    F.cross_entropy(net(x), y).backward()
    return [m.weight.grad.norm().item() for m in net if isinstance(m, nn.Linear)]

fig, ax = plt.subplots(figsize=(6.5, 3.6))
levels = {}
for name, act, init, style in [("sigmoid", nn.Sigmoid, "glorot", "-o"),
                               ("tanh", nn.Tanh, "glorot", "-o"), ("ReLU", nn.ReLU, "glorot", "-o"),
                               ("ReLU, He init", nn.ReLU, "he", "--^")]:
    norms = gradient_norms(act, init=init)
    levels[name] = torch.tensor(norms[:-1]).log().mean().exp().item()  # geometric mean
    ax.semilogy(range(1, len(norms) + 1), norms, style, label=name)
    print(f"{name:>13}: last layer {norms[-1]:.2e}, first layer {norms[0]:.2e} "
          f"(ratio {norms[-1] / norms[0]:,.0f})")
print(f"hidden layers, typical gradient: tanh / ReLU = {levels['tanh'] / levels['ReLU']:.1f}, "
      f"ReLU with He / with Glorot = {levels['ReLU, He init'] / levels['ReLU']:.1f}")
ax.set(xlabel="layer (1 = closest to the input)", ylabel="gradient norm (log scale)",
       title="gradient reaching each layer of a 10-layer stack")
ax.grid(alpha=0.3)
ax.legend();


# %% [markdown]
# Sigmoid's gradient shrinks by a factor of about 4.4 per layer on the way to the input
# (2.6 million over ten layers); tanh's and ReLU's stay level. But ReLU's level sits
# 8 times below tanh's, although its derivative is 1 wherever it is active. That is the
# initialisation, not the derivative. Glorot initialisation gives a $128 \to 128$ layer
# weights of variance $2 / (128 + 128) = 1/128$, chosen so that the variance of the signal
# stays the same through a unit that is linear around 0, as tanh is. ReLU sets half of its
# inputs to 0, so every layer **halves** the variance of the signal on the way forward, and
# that of the gradient on the way back. The gradient of a layer's weights is the product of
# the two (the layer's input times the gradient at its output): near the input the first
# factor is large and the second small, near the output the reverse, so the curve is flat,
# but the product loses a factor of $\sqrt{2}$ for every layer of depth, $2^{-10/2} = 1/32$
# for these ten. **He initialisation** (He et al., 2015) doubles the weight variance to
# $2/\text{fan-in}$ to make up for the half of the units that ReLU switches off. The dashed
# curve shows it: 33 times Glorot's level, as the argument predicts, and above tanh's
# (which also shrinks the signal a little). PyTorch's layers start from even smaller
# weights by default (variance $1 / (3\,\text{fan-in})$), which is why the signal in the
# batch-norm experiment below shrinks from layer to layer.

# %% [markdown]
# ## 4. Batch normalisation
#
# Deep networks train badly when the values flowing between layers drift to very large or
# very small scales: activations saturate, gradients vanish or explode, and every layer has
# to keep adapting to the changing scale of its input. **Batch normalisation** (Ioffe and
# Szegedy, 2015) fixes the scale explicitly. For each channel, over a mini-batch
# $\mathcal{B} = \{x_1, \dots, x_m\}$ of that channel's values:
#
# $$
# \mu_\mathcal{B} = \frac{1}{m} \sum_{i=1}^{m} x_i, \qquad
# \sigma_\mathcal{B}^2 = \frac{1}{m} \sum_{i=1}^{m} (x_i - \mu_\mathcal{B})^2, \qquad
# \hat{x}_i = \frac{x_i - \mu_\mathcal{B}}{\sqrt{\sigma_\mathcal{B}^2 + \epsilon}}, \qquad
# y_i = \gamma\, \hat{x}_i + \beta .
# $$
#
# Why it helps is less settled than that it helps. Ioffe and Szegedy's motivation was
# **internal covariate shift**: every update of the early layers changes the distribution
# of the inputs the later layers see, and normalising was meant to hold it still.
# Santurkar et al. ("How does batch normalization help optimization?", 2018) disputed
# this: they added noise that shifts the distributions *after* batch norm and training
# was still fast, and they measured that batch norm makes the loss surface smoother
# (gradients that change more slowly from step to step), which allows larger steps. The
# recipe is not in doubt; the explanation still is.
#
# The learned scale $\gamma$ and shift $\beta$ (one pair per channel) let the network undo
# the normalisation where that helps, so nothing is lost. For a convolutional layer the
# statistics of a channel are taken over the batch **and** all positions: for
# $x$ of shape $(N, C, H, W)$, $m = N \cdot H \cdot W$.
#
# **Training and evaluation differ.** At test time there may be a single image, and its
# prediction must not depend on the other images in the batch. So during training the
# layer also keeps **running averages** of the statistics, updated after each batch with a
# momentum $\alpha$ (0.1 in PyTorch):
#
# $$
# \mu_\text{run} \leftarrow (1 - \alpha)\, \mu_\text{run} + \alpha\, \mu_\mathcal{B}, \qquad
# \sigma^2_\text{run} \leftarrow (1 - \alpha)\, \sigma^2_\text{run}
#   + \alpha\, \frac{m}{m-1}\, \sigma_\mathcal{B}^2 ,
# $$
#
# and in evaluation mode it normalises with $\mu_\text{run}$ and $\sigma^2_\text{run}$
# instead of the batch's. Note the detail PyTorch uses: the batch is normalised with the
# biased variance $\sigma_\mathcal{B}^2$ (divide by $m$), but the running variance is fed
# the unbiased estimate (divide by $m - 1$), since it estimates the variance of the whole
# data set.
#
# ### Exercise 7: `batch_norm_forward` (5 + 5 points)
#
# Implement both modes for inputs of shape $(N, C, H, W)$ (and $(N, C)$, after a dense
# layer: the statistics are then over $N$ only). In training mode, update `running_mean`
# and `running_var` **in place** (`tensor.mul_`, `add_`, `copy_`, inside
# `torch.no_grad()` so autograd does not track the bookkeeping). `F.batch_norm` and
# `nn.BatchNorm2d` are off limits; `mean`, `var` and arithmetic are fine. Two test cells
# grade the two modes against `nn.BatchNorm2d`.

# %% nbgrader={"grade_id": "batch_norm", "solution": true}
def batch_norm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                       running_mean: torch.Tensor, running_var: torch.Tensor, training: bool,
                       momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalisation of x per channel (dimension 1).

    Args:
        x: shape (N, C, H, W) or (N, C).
        gamma, beta: learned scale and shift, shape (C,).
        running_mean, running_var: running statistics, shape (C,); updated in place
            when training: r <- (1 - momentum) * r + momentum * batch statistic, with the
            unbiased batch variance (divide by m - 1) for running_var.
        training: True: normalise with the batch's mean and biased variance (divide by m)
            and update the running statistics. False: normalise with the running ones.
        momentum, eps: as in nn.BatchNorm2d.

    Returns:
        y = gamma * (x - mean) / sqrt(var + eps) + beta, same shape as x.
    """
    ### BEGIN SOLUTION
    dims = (0, 2, 3) if x.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    if training:
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        m = x.numel() // x.shape[1]
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))
    else:
        mean, var = running_mean, running_var
    x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    return gamma.view(shape) * x_hat + beta.view(shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_batch_norm_train", "locked": true, "points": 5}
# Tests for batch_norm_forward in training mode (5 points), against nn.BatchNorm2d.
from cnncourse.grading import (
    check_close,
    check_grads,
    check_tensor,
    forbid,
    random_batch_norm,
    run_exercise,
)

_gen = torch.Generator().manual_seed(7)

def _check_train(shape, steps=1, momentum=0.1, dtype=torch.float32):
    bn = random_batch_norm(shape[1], len(shape), momentum=momentum, dtype=dtype,
                           generator=_gen).train()
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    for step in range(1, steps + 1):
        x = torch.randn(*shape, generator=_gen, dtype=dtype) * 3 + 1
        what = f"training mode, x of shape {shape}, momentum={momentum}, step {step}"
        with forbid("norm", exercise="batch_norm_forward"):
            out = run_exercise(batch_norm_forward, x, bn.weight.detach(), bn.bias.detach(),
                               mean, var, True, momentum=momentum,
                               may_change=("running_mean", "running_var"))
        ref = bn(x)
        check_tensor(out, ref, f"output, {what}")
        check_close(mean, bn.running_mean, f"running_mean after the update, {what}")
        check_close(var, bn.running_var, f"running_var after the update, {what} "
                    "(it is fed the unbiased variance, divided by m - 1)")

_check_train((8, 3, 4, 4))
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check_train((4, 5, 6, 7), steps=3)
_check_train((2, 2, 3, 3), steps=2, momentum=0.3, dtype=torch.float64)
_check_train((16, 6), steps=2)  # after a dense layer: statistics over the batch only
# The output is normalised per channel: mean 0 and std 1 before gamma and beta.
_x = torch.randn(32, 4, 5, 5, generator=_gen) * 10 + 5
_y = batch_norm_forward(_x, torch.ones(4), torch.zeros(4), torch.zeros(4), torch.ones(4), True)
check_close(_y.mean(dim=(0, 2, 3)), torch.zeros(4), "per-channel mean of the output", atol=1e-4)
check_close(_y.var(dim=(0, 2, 3), unbiased=False), torch.ones(4),
            "per-channel variance of the output", atol=1e-3)
# A nearly constant channel: its variance is far below eps, so where eps goes matters.
_x = torch.randn(8, 3, 4, 4, generator=_gen)
_x[:, 1] = 2.0 + 1e-4 * _x[:, 1]
_bn = random_batch_norm(3, generator=_gen).train()
with forbid("norm", exercise="batch_norm_forward"):
    _out = run_exercise(batch_norm_forward, _x, _bn.weight.detach(), _bn.bias.detach(),
                        _bn.running_mean.clone(), _bn.running_var.clone(), True,
                        may_change=("running_mean", "running_var"))
check_tensor(_out, _bn(_x), "output for a nearly constant channel (variance 1e-8, eps 1e-5)")
# Gradients reach x, gamma and beta (float64), as through nn.BatchNorm2d.
_bn = random_batch_norm(3, dtype=torch.float64, generator=_gen).train()
_x = torch.randn(4, 3, 3, 5, generator=_gen, dtype=torch.float64, requires_grad=True)
_gamma = _bn.weight.detach().clone().requires_grad_(True)
_beta = _bn.bias.detach().clone().requires_grad_(True)
with forbid("norm", exercise="batch_norm_forward"):
    _out = run_exercise(batch_norm_forward, _x, _gamma, _beta, _bn.running_mean.clone(),
                        _bn.running_var.clone(), True, may_change=("running_mean", "running_var"))
check_grads(_out, _bn(_x), {"x": _x, "gamma": (_gamma, _bn.weight), "beta": (_beta, _bn.bias)},
            "batch_norm_forward in training mode", generator=_gen, rtol=1e-7, atol=1e-9)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_batch_norm_eval", "locked": true, "points": 5}
# Tests for batch_norm_forward in evaluation mode (5 points), against nn.BatchNorm2d.
from cnncourse.grading import check_tensor, forbid, random_batch_norm, run_exercise

_gen = torch.Generator().manual_seed(8)

def _check_eval(shape, dtype=torch.float32):
    bn = random_batch_norm(shape[1], len(shape), dtype=dtype, generator=_gen).eval()
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(*shape, generator=_gen, dtype=dtype) * 2 - 1
    what = f"evaluation mode, x of shape {shape}"
    with forbid("norm", exercise="batch_norm_forward"):
        out = run_exercise(batch_norm_forward, x, bn.weight.detach(), bn.bias.detach(),
                           mean, var, False, may_change=("running_mean", "running_var"))
    check_tensor(out, bn(x), f"output, {what} (use the running statistics, not the batch's)")
    if not (torch.equal(mean, bn.running_mean) and torch.equal(var, bn.running_var)):
        raise AssertionError(f"{what}: the running statistics changed; "
                             "evaluation mode must leave them alone")

_check_eval((4, 3, 5, 5))
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check_eval((1, 6, 4, 4))  # a single image: batch statistics would be meaningless
_check_eval((3, 2, 7, 5), dtype=torch.float64)
_check_eval((5, 8))
# The output of one image must not depend on the rest of the batch.
_x = torch.randn(6, 3, 4, 4, generator=_gen)
_args = (torch.ones(3), torch.zeros(3), torch.randn(3, generator=_gen),
         torch.rand(3, generator=_gen) + 1)
_alone = batch_norm_forward(_x[:1], *_args, False)
_in_batch = batch_norm_forward(_x, *_args, False)[:1]
check_tensor(_alone, _in_batch, "evaluation mode: image 0 alone against image 0 in a batch of 6")
# A channel whose running variance is far below eps: where eps goes matters.
_bn = random_batch_norm(3, generator=_gen).eval()
with torch.no_grad():
    _bn.running_var[2] = 1e-9
_x = torch.randn(4, 3, 5, 5, generator=_gen)
with forbid("norm", exercise="batch_norm_forward"):
    _out = run_exercise(batch_norm_forward, _x, _bn.weight.detach(), _bn.bias.detach(),
                        _bn.running_mean.clone(), _bn.running_var.clone(), False)
check_tensor(_out, _bn(_x), "evaluation mode, a channel with running variance 1e-9 (eps 1e-5)")
### END HIDDEN TESTS

# %% [markdown]
# ### What batch normalisation does to training
#
# The experiment: a plain stack of five $3 \times 3$ convolutions with ReLU (PyTorch's
# default initialisation), then global average pooling and a dense layer, trained on the
# `digits` data set (upsampled to $16 \times 16$) with SGD, starting at a fairly high
# learning rate (0.05, momentum 0.9) that decays to 0 over the six epochs along a cosine
# curve (`CosineAnnealingLR`). The second network is identical except for a `BatchNorm2d`
# after every convolution. Both start from the same seed and see the same batches.
#
# First, look inside the untrained networks: the standard deviation of the values after
# each block, for one batch. Without normalisation the signal shrinks layer after layer
# (PyTorch's default initialisation is not scaled for ReLU), and the gradients shrink with
# it. With batch norm every layer starts from the same scale.

# %%
def conv_stack(batch_norm: bool, depth: int = 5, width: int = 16) -> nn.Sequential:
    blocks, c = [], 1
    for i in range(depth):
        blocks += [nn.Conv2d(c, width, 3, padding=1, bias=not batch_norm)]  # BN's beta is the bias
        blocks += [nn.BatchNorm2d(width)] if batch_norm else []
        blocks += [nn.ReLU()] + ([nn.MaxPool2d(2)] if i in (1, 3) else [])
        c = width
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))

train_loader, val_loader, _ = data.make_loaders("digits", batch_size=64, image_size=16)
images, _ = next(iter(train_loader))

fig, ax = plt.subplots(figsize=(6, 3.2))
for batch_norm in (False, True):
    utils.seed_everything(0)
    net, stds, h = conv_stack(batch_norm), [], images
    for m in net:
        h = m(h)
        if isinstance(m, nn.ReLU):
            stds.append(h.std().item())
    ax.plot(range(1, len(stds) + 1), stds, "-o", label="with batch norm" if batch_norm else "plain")
ax.set(xlabel="block", ylabel="std of activations", yscale="log", xticks=range(1, 6),
       title="scale of the signal at initialisation")
ax.grid(alpha=0.3)
ax.legend();

# %%
epochs = 1 if utils.grading_mode() else 6
histories = {}
for batch_norm in (False, True):
    name = "with batch norm" if batch_norm else "plain"
    print(f"-- {name}")
    utils.seed_everything(0)
    net = conv_stack(batch_norm)
    sgd = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, T_max=epochs)  # stepped per epoch
    histories[name] = train.fit(net, train_loader, val_loader, epochs=epochs, optimizer=sgd,
                                scheduler=cosine)
plot.plot_history(histories, title="the same network and optimiser, with and without batch norm");

# %% [markdown]
# With the same learning rate and the same number of steps, the plain network barely moves
# from chance (10%), while the normalised one learns the digits within a few epochs
# (94% of the validation images after three, all 144 of them after six). Batch norm keeps
# each layer's input at a sensible scale whatever the layers before it do, so the
# optimiser can take large steps safely. (The plain network *can* be trained: with a
# better initialisation and a smaller learning rate, and more patience.)
#
# Why the decaying learning rate? With a constant rate of 0.05, the batch-norm network's
# validation accuracy dips now and then while its training accuracy keeps rising (in our
# trial runs by up to 7 points in one epoch, from 97.9% to 91.0%). That is not
# overfitting. In evaluation mode batch norm normalises with its running averages, and
# with momentum 0.1 those weigh roughly the last ten batches, half an epoch here; while the
# learning rate is high the weights move so much in that time that the averages describe
# an older network than the one being evaluated. (In the trial run we checked, the same
# network evaluated with the statistics of the validation batch itself improved steadily
# while evaluation mode dipped.) As the learning rate decays, the weights settle and the
# running averages catch up. What is left of a dip above, 98.6% to 97.9% in epoch 5, is
# one image of 144.
#
# Batch norm was published in 2015, after AlexNet and VGG. Ioffe and Szegedy introduced it
# by training a modified GoogLeNet with it (Inception with batch normalisation, which they
# called BN-Inception); ResNet puts it after every convolution, and torchvision offers VGG
# with it added (`vgg16_bn`). AlexNet used an older "local response normalisation"; the
# lecture's question "use of normalization (why?)" comes back in the AlexNet notebook.
#
# ### Batch norm and the batch size
#
# Batch norm's statistics are estimates from one batch, and a small batch gives a noisy
# estimate. How noisy, and does it matter? The cell below takes the batch-norm network
# just trained (with batches of 64) and
#
# 1. measures how far the mean of each channel over one batch lies from its mean over the
#    whole training set, at the input of the first batch-norm layer, in units of that
#    channel's standard deviation, for batches of 2 to 64 images;
# 2. classifies the validation images in batches of $m$ images with batch norm in
#    training mode, that is normalising with each batch's own statistics (momentum 0, so
#    the running averages stay as they are), and compares the accuracy with evaluation
#    mode, which uses the running averages.

# %%
from torch.utils.data import DataLoader

bn_net = net  # the last network trained above: the one with batch norm
bn_layers = [m for m in bn_net.modules() if isinstance(m, nn.BatchNorm2d)]
net_device = next(bn_net.parameters()).device
batch_sizes = [2, 4, 8, 16, 32, 64]


@torch.no_grad()
def accuracy_with_batch_statistics(model: nn.Module, dataset, m: int) -> float:
    # Batch norm in training mode normalises each batch of m images with its own statistics;
    # momentum 0 leaves the running averages untouched.
    momenta = [layer.momentum for layer in bn_layers]
    for layer in bn_layers:
        layer.momentum = 0.0
    model.train()
    loader = DataLoader(dataset, batch_size=m, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    correct = seen = 0
    for x, y in loader:
        correct += (model(x.to(net_device)).argmax(dim=1).cpu() == y).sum().item()
        seen += len(y)
    for layer, momentum in zip(bn_layers, momenta, strict=True):
        layer.momentum = momentum
    model.eval()
    return correct / seen


with torch.no_grad():
    bn_net.eval()
    first = bn_net[0](train_loader.dataset.images.to(net_device))  # input of the first BN layer
    mean, std = first.mean(dim=(0, 2, 3)), first.std(dim=(0, 2, 3))
    noise = []
    for m in batch_sizes:
        batch_means = first[: len(first) // m * m].unflatten(0, (-1, m)).mean(dim=(1, 3, 4))
        noise.append((((batch_means - mean) / std) ** 2).mean().sqrt().item())
accuracy = [accuracy_with_batch_statistics(bn_net, val_loader.dataset, m) for m in batch_sizes]
eval_accuracy = train.evaluate(bn_net, val_loader)["acc"]

fig, (ax_n, ax_a) = plt.subplots(1, 2, figsize=(10, 3.4))
ax_n.loglog(batch_sizes, noise, "-o", label="measured")
ax_n.loglog(batch_sizes, [noise[0] * (2 / m) ** 0.5 for m in batch_sizes], "--", color="0.5",
            label=r"$\propto 1/\sqrt{m}$")
ax_n.set(xlabel="batch size m", ylabel="error of the batch mean (in std)",
         title="noise of the batch statistics")
ax_a.semilogx(batch_sizes, accuracy, "-o", label="batch statistics (training mode)")
ax_a.axhline(eval_accuracy, color="C1", ls="--", label="running averages (evaluation mode)")
ax_a.set(xlabel="batch size m", ylabel="validation accuracy", ylim=(0, 1.02),
         title="normalising with the statistics of m images")
ax_n.set_yticks([0.01, 0.02, 0.05], ["0.01", "0.02", "0.05"])
for ax in (ax_n, ax_a):
    ax.minorticks_off()
    ax.set_xticks(batch_sizes, [str(m) for m in batch_sizes])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
for m, n, a in zip(batch_sizes, noise, accuracy, strict=True):
    print(f"batch of {m:2d}: batch mean off by {n:.3f} std, accuracy {a:.1%}")
print(f"evaluation mode (running averages): accuracy {eval_accuracy:.1%}")

# %% [markdown]
# The error of a batch's mean falls roughly like $1/\sqrt{m}$, as for any average of $m$
# independent samples: 0.062 of a standard deviation with batches of 2, 0.009 with
# batches of 64. (It is a mean over $m \cdot H \cdot W$ values, but the values within one
# image are correlated, so it is noisier than that count suggests.) The network tolerates
# the noise of batches of 32 or 64, the size it was trained with, but not much more:
# normalised with the statistics of 2 images it classifies 69.4% of the validation images
# correctly, with 8 images 94.4%, with 32 images 99.2%, against 100% in evaluation mode.
# Two lessons. The running averages are what make the prediction for one image both
# independent of the other images and accurate; and batch norm needs batches of a few
# dozen examples. Where memory allows only a few images per batch (large images, detection,
# segmentation), normalisations that take their statistics from one example instead of
# the batch, such as layer norm or group norm (Wu and He, 2018), are used instead.
#
# ## 5. Putting the parts together
#
# "How should we put them together?" is the lecture's question after the components, and
# the rest of the course is a tour of answers to it. Almost all of them follow one recipe,
# though, and the order of the parts within it is not arbitrary.
#
# ### The block recipe
#
# $$
# \text{input} \;\to\; \big[\,\text{conv} \to \text{BN} \to \text{ReLU} \;(\to \text{pool})\,\big]
#   \times n \;\to\; \text{flatten} \;\to\; \big[\,\text{dense} \to \text{ReLU}\,\big] \times k
#   \;\to\; \text{dense} \;\to\; \text{logits}
# $$
#
# - **Feature extractor.** Blocks of convolution, batch normalisation (where it is used)
#   and activation, with a pooling layer after some of them. The convolutions find local
#   patterns; each pooling layer shrinks the maps, so that the next filters see a larger
#   part of the image for the same cost; and the number of channels usually grows as the
#   maps shrink (LeNet: 6, then 16; VGG: 64 up to 512).
# - **Flatten.** The last maps, $C \times H \times W$ numbers per image, become one vector.
#   Its length depends on the input size, through every output-size formula on the way and
#   every floor in them, and the first dense layer must be built for exactly that length.
# - **Classifier.** A dense layer and an activation, once or a few times, then one last
#   dense layer with one output per class. Its outputs are the **logits**, and they get
#   **no activation**: `nn.CrossEntropyLoss` applies the softmax itself (as a log-softmax,
#   which is numerically stable), so a softmax in the network would be applied twice and a
#   ReLU would clip every negative score to 0. To predict, take the `argmax` of the logits;
#   `softmax` turns them into probabilities when you need those.
#
# ### Why the order matters
#
# Some orders give the same result, some do not.
#
# - **Max pooling and ReLU commute.** ReLU never reverses the order of two values, so the
#   largest value of a window is still the largest after it:
#   $\max(\text{relu}(x)) = \text{relu}(\max(x))$. The same holds for every activation
#   that never decreases (tanh and sigmoid too). Pooling first is cheaper: the activation
#   then runs on a quarter of the values.
# - **Average pooling commutes with no non-linear activation**: the mean of $\tanh(x)$ is
#   not $\tanh$ of the mean, and the mean of the ReLUs is not the ReLU of the mean.
#
# The cell below checks the four pairs on random maps.

# %%
gen = torch.Generator().manual_seed(0)
pre = torch.randn(8, 16, 12, 12, generator=gen) * 2  # pre-activation maps
for act_name, act in [("ReLU", torch.relu), ("tanh", torch.tanh)]:
    for pool_name, pool in [("max", F.max_pool2d), ("average", F.avg_pool2d)]:
        diff = (pool(act(pre), 2) - act(pool(pre, 2))).abs().max().item()
        print(f"{act_name:>4} then {pool_name:>7} pooling vs the reverse: "
              f"largest difference {diff:.3g}")

# %% [markdown]
# - **No bias in a convolution followed by batch norm.** A convolution's bias adds the same
#   constant to every value of its channel. Batch norm then subtracts the channel's mean,
#   which has moved by exactly that constant, so the bias cancels: it changes nothing in the
#   output and receives a gradient of 0. Batch norm's shift $\beta$ plays its part. (In
#   evaluation mode the running mean has absorbed the bias in the same way.) That is why
#   `conv_stack` above uses `bias=False` with batch norm. The cell below gives one
#   convolution a large bias and compares.
# - **Batch norm before or after the activation?** The paper puts it before (on the
#   convolution's output), and so do ResNet and torchvision's models; after the activation
#   works too in practice. This course follows the paper.

# %%
conv = nn.Conv2d(3, 8, 3)
with torch.no_grad():
    conv.bias.uniform_(-5.0, 5.0, generator=gen)  # a large bias, different in each channel
bn = nn.BatchNorm2d(8)  # training mode: normalises with the batch's statistics
x = torch.randn(16, 3, 10, 10, generator=gen)
with_bias = bn(conv(x))
without_bias = bn(F.conv2d(x, conv.weight))  # the same filters without the bias
with_bias.mul(torch.randn(with_bias.shape, generator=gen)).sum().backward()  # any loss
print(f"largest difference in the output with and without the bias: "
      f"{(with_bias - without_bias).abs().max().item():.1g}")
print(f"largest gradient reaching the bias: {conv.bias.grad.abs().max().item():.1g} "
      f"(the weights get {conv.weight.grad.abs().max().item():.2g})")
print(f"parameters saved: {conv_params(3, 8, 3) - conv_params(3, 8, 3, bias=False)}")


# %% [markdown]
# ### Exercise 8: a network from a written spec (10 points)
#
# A written spec lists the layers that carry the design decisions and leaves the rest to
# the recipe. Ours is a list of tuples:
#
# ```python
# spec = [
#     ("conv", 8, 3, 1, 1),   # ("conv", out_channels, kernel_size, stride, padding)
#     ("pool", 2, 2),         # ("pool", kernel_size, stride): max pooling, no padding
#     ("conv", 16, 3, 1, 1),
#     ("pool", 2, 2),
#     ("dense", 32),          # ("dense", out_features)
#     ("dense", 10),          # the last dense layer gives the logits
# ]
# ```
#
# Write two functions.
#
# 1. `layer_shapes(spec, input_shape)` predicts the shape after each entry of `spec`, for
#    one input of shape $(C, H, W)$, without the batch dimension: $(C, H, W)$ after a conv
#    or a pool entry, $(\text{features},)$ after a dense one. Use your `conv_output_size`
#    for each axis ($H$ and $W$ may differ). It must not run any layer: predicting the
#    shapes is the point. If a window does not fit in its input, raise a `ValueError`
#    (`conv_output_size` already does); if an entry's kind is not `"conv"`, `"pool"` or
#    `"dense"`, raise a `ValueError` whose message names the kind.
# 2. `build_net(spec, input_shape, batch_norm=True)` builds the network as one flat
#    `nn.Sequential`, following the recipe and its docstring: batch norm and ReLU after
#    each convolution, flatten before the first dense layer, no activation on the logits,
#    no convolution bias where batch norm follows. The first dense layer's `in_features`
#    is the size of the flattened maps, which `layer_shapes` knows.
#
# The test cell builds networks from specs you have not seen, copies the weights of a
# reference network into yours and compares the outputs in training and evaluation mode,
# on square and non-square inputs and on a batch of one image; it compares
# `layer_shapes` with the shapes the reference network really produces. It grades with
# the reference `conv_output_size` in place of yours, so a slip in exercise 1 is not
# charged twice.

# %% nbgrader={"grade_id": "net_from_spec", "solution": true}
def layer_shapes(spec: list[tuple], input_shape: tuple[int, int, int]) -> list[tuple[int, ...]]:
    """Output shape of every entry of spec, for one input of shape (C, H, W), no batch dim.

    Entries and their output shapes:
        ("conv", out_channels, kernel_size, stride, padding) -> (out_channels, H', W')
        ("pool", kernel_size, stride)                        -> (C, H', W')  (max, no padding)
        ("dense", out_features)                              -> (out_features,)
    with H' = floor((H + 2P - K) / S) + 1, and W' likewise. The first dense entry takes
    the C * H * W values of the maps before it, flattened.

    Raises:
        ValueError: if a window does not fit in its input, or an entry's kind is not
            "conv", "pool" or "dense" (the message names the kind).
    """
    ### BEGIN SOLUTION
    shape = tuple(input_shape)
    result = []
    for entry in spec:
        kind = entry[0]
        if kind == "conv":
            _, out_channels, k, s, p = entry
            shape = (out_channels, conv_output_size(shape[1], k, s, p),
                     conv_output_size(shape[2], k, s, p))
        elif kind == "pool":
            _, k, s = entry
            shape = (shape[0], conv_output_size(shape[1], k, s), conv_output_size(shape[2], k, s))
        elif kind == "dense":
            shape = (entry[1],)
        else:
            raise ValueError(f"unknown layer kind {kind!r}: expected 'conv', 'pool' or 'dense'")
        result.append(shape)
    return result
    ### END SOLUTION


def build_net(spec: list[tuple], input_shape: tuple[int, int, int],
              batch_norm: bool = True) -> nn.Sequential:
    """The network spec describes, built by the block recipe as one flat nn.Sequential.

    conv entry  -> nn.Conv2d(C, out_channels, kernel_size, stride, padding, bias=not batch_norm),
                   then nn.BatchNorm2d(out_channels) if batch_norm, then nn.ReLU()
    pool entry  -> nn.MaxPool2d(kernel_size, stride)
    dense entry -> nn.Flatten() before the first dense entry only; nn.Linear(in_features,
                   out_features), then nn.ReLU(), except after the last entry of spec (its
                   outputs are the logits)
    C is input_shape[0] for the first convolution and the number of channels before it
    for the others; the first Linear's in_features is C * H * W of the maps before it.

    Raises:
        ValueError: as layer_shapes does.
    """
    ### BEGIN SOLUTION
    after = layer_shapes(spec, input_shape)
    modules, shape = [], tuple(input_shape)
    for i, entry in enumerate(spec):
        kind = entry[0]
        if kind == "conv":
            _, out_channels, k, s, p = entry
            modules.append(nn.Conv2d(shape[0], out_channels, k, stride=s, padding=p,
                                     bias=not batch_norm))
            if batch_norm:
                modules.append(nn.BatchNorm2d(out_channels))
            modules.append(nn.ReLU())
        elif kind == "pool":
            modules.append(nn.MaxPool2d(entry[1], stride=entry[2]))
        else:
            if len(shape) == 3:  # the first dense layer: flatten the maps first
                modules.append(nn.Flatten())
            in_features = shape[0] * shape[1] * shape[2] if len(shape) == 3 else shape[0]
            modules.append(nn.Linear(in_features, entry[1]))
            if i < len(spec) - 1:  # the logits get no activation
                modules.append(nn.ReLU())
        shape = after[i]
    return nn.Sequential(*modules)
    ### END SOLUTION


# %%
spec = [("conv", 8, 3, 1, 1), ("pool", 2, 2), ("conv", 16, 3, 1, 1), ("pool", 2, 2),
        ("dense", 32), ("dense", 10)]
for entry, shape in zip(spec, layer_shapes(spec, (1, 16, 16)), strict=True):
    print(f"{str(entry):<22} -> {shape}")
print(build_net(spec, (1, 16, 16)))

# %% nbgrader={"grade": true, "grade_id": "test_net_from_spec", "locked": true, "points": 10}
# Tests for layer_shapes and build_net (10 points): shapes and outputs against a reference
# network built from the same spec, on specs you have not seen.
from cnncourse.grading import (
    ForbiddenCallError,
    banned,
    check_grads,
    check_raises,
    check_shape,
    check_shape_answer,
    check_tensor,
    copy_weights,
    fail,
    forbid,
    run_exercise,
    with_reference,
)

_gen = torch.Generator().manual_seed(12)
_predict = "predict the shapes with the output-size formula: do not run the layers"
_helpers = dict(conv_output_size=shapes.conv_output_size,  # one slip costs one exercise
                conv2d=banned("conv2d", "layer_shapes", _predict),
                conv2d_naive=banned("conv2d_naive", "layer_shapes", _predict),
                max_pool2d=banned("max_pool2d", "layer_shapes", _predict))


def _predicted(spec, input_shape):
    what = f"layer_shapes({spec}, {input_shape})"
    try:
        with forbid("conv", "max_pool", "avg_pool", "linear", exercise="layer_shapes"):
            got = run_exercise(layer_shapes, spec, input_shape)
    except ForbiddenCallError:
        fail(what, "it runs a layer of the network to find the shapes", hint=_predict)
    if not isinstance(got, (list, tuple)) or len(got) != len(spec):
        fail(what, f"expected a list of {len(spec)} shapes, one per entry of spec, got {got!r}")
    for i, shape in enumerate(got):
        if not isinstance(shape, tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in shape):
            fail(what, f"entry {i}: expected a tuple of ints such as (C, H, W) or (features,), "
                 f"got {shape!r}")
    return list(got)


_spec = [("conv", 8, 3, 1, 1), ("pool", 2, 2), ("conv", 16, 3, 1, 1), ("pool", 2, 2),
         ("dense", 32), ("dense", 10)]
_probes = {"conv_output_size": [(12, 3, 1, 1), (7, 3, 2, 1), (9, 2, 2, 0)]}
with with_reference(globals(), probes=_probes, **_helpers):
    _got = _predicted(_spec, (1, 16, 16))
    check_shape_answer(_got[-1], (10,), f"layer_shapes({_spec}, (1, 16, 16)), last entry")
    _net = run_exercise(build_net, _spec, (1, 16, 16))
    if not isinstance(_net, nn.Module):
        fail("build_net", f"expected an nn.Module (an nn.Sequential), got {type(_net).__name__}")
    with torch.no_grad():
        _out = _net.eval()(torch.randn(2, 1, 16, 16, generator=_gen))
    check_shape(_out, (2, 10), f"output of build_net({_spec}, (1, 16, 16)) for 2 images")
print("visible checks passed")
### BEGIN HIDDEN TESTS
def _reference(spec, input_shape, batch_norm=True):
    # One nn.Sequential per entry of spec, so the shape after each entry can be read off.
    blocks, c = [], input_shape[0]
    for i, entry in enumerate(spec):
        if entry[0] == "conv":
            _, out, k, s, p = entry
            block = [nn.Conv2d(c, out, k, s, p, bias=not batch_norm)]
            block += [nn.BatchNorm2d(out)] if batch_norm else []
            block += [nn.ReLU()]
            c = out
        elif entry[0] == "pool":
            block = [nn.MaxPool2d(entry[1], entry[2])]
        else:
            flat = any(e[0] == "dense" for e in spec[:i])
            with torch.no_grad():
                n_in = nn.Sequential(*[m for b in blocks for m in b]).eval()(
                    torch.zeros(1, *input_shape))[0].numel()
            block = ([] if flat else [nn.Flatten()]) + [nn.Linear(n_in, entry[1])]
            block += [nn.ReLU()] if i < len(spec) - 1 else []
        blocks.append(nn.Sequential(*block))
    return blocks


def _true_shapes(spec, input_shape):
    out, h = [], torch.zeros(1, *input_shape)
    with torch.no_grad():
        for block in _reference(spec, input_shape):
            h = block.eval()(h)
            out.append(tuple(h.shape[1:]))
    return out


def _ceil_pool(shape, k, s):
    return (shape[0],) + tuple(-(-(n - k) // s) + 1 for n in shape[1:])


def _check_shapes(spec, input_shape):
    got, want = _predicted(spec, input_shape), _true_shapes(spec, input_shape)
    before = [tuple(input_shape)] + want[:-1]
    for i, (entry, g, w, b) in enumerate(zip(spec, got, want, before, strict=True)):
        hint = ""
        if entry[0] == "pool" and g == _ceil_pool(b, entry[1], entry[2]):
            hint = ("pooling rounds down: a last window that does not fit in whole is dropped "
                    "(floor, as in the output-size formula)")
        elif entry[0] == "conv" and len(g) == 3 and g[0] != w[0]:
            hint = "a convolution's output has out_channels channels"
        check_shape_answer(g, w, f"layer_shapes({spec}, {input_shape}): entry {i} {entry}",
                           hint=hint)


def _leaves(net):
    return [m for m in net.modules() if not list(m.children())]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _check_structure(net, ref, what, batch_norm):
    mine, theirs = _leaves(net), _leaves(ref)
    names, ref_names = [type(m).__name__ for m in mine], [type(m).__name__ for m in theirs]
    if names and names[-1] != "Linear" and ref_names[-1] == "Linear":
        fail(what, f"the network ends with {names[-1]} after its last Linear",
             hint="the last dense layer gives the logits: no activation after it "
                  "(nn.CrossEntropyLoss applies the softmax itself)")
    if names != ref_names:
        pairs = zip(names, ref_names, strict=False)
        i = next((j for j, (a, b) in enumerate(pairs) if a != b), min(len(names), len(ref_names)))
        hint = "follow the recipe in the docstring"
        if i < len(ref_names) and ref_names[i] == "BatchNorm2d":
            hint = "batch norm comes right after each convolution, before the ReLU"
        elif i < len(ref_names) and ref_names[i] == "Flatten":
            hint = "flatten the maps before the first dense layer"
        fail(what, f"layer {i}: expected {ref_names[i] if i < len(ref_names) else 'nothing'}, "
             f"got {names[i] if i < len(names) else 'nothing'}; expected the layers "
             f"{' → '.join(ref_names)}", hint=hint)
    for j, (m, r) in enumerate(zip(mine, theirs, strict=True)):
        if isinstance(r, nn.Conv2d):
            if (m.bias is None) != (r.bias is None):
                hint = ("no bias in a convolution followed by batch norm (bias=False): batch norm "
                        "subtracts the mean, which cancels the bias" if batch_norm else
                        "without batch norm the convolutions need their bias")
                fail(what, f"layer {j} (Conv2d): bias {'missing' if m.bias is None else 'present'}",
                     hint=hint)
            for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding"):
                if _pair(getattr(m, attr)) != _pair(getattr(r, attr)):
                    fail(what, f"layer {j} (Conv2d): expected {attr}={getattr(r, attr)}, "
                         f"got {getattr(m, attr)}", hint="take the numbers from the spec entry")
        elif isinstance(r, nn.MaxPool2d):
            for attr in ("kernel_size", "stride"):
                if _pair(getattr(m, attr)) != _pair(getattr(r, attr)):
                    fail(what, f"layer {j} (MaxPool2d): expected {attr}={getattr(r, attr)}, got "
                         f"{getattr(m, attr)}", hint="take the numbers from the spec entry")
        elif isinstance(r, nn.Linear) and (m.in_features, m.out_features) != (r.in_features,
                                                                             r.out_features):
            fail(what, f"layer {j} (Linear): expected in_features={r.in_features}, "
                 f"out_features={r.out_features}, got {m.in_features}, {m.out_features}",
                 hint="the first dense layer takes all C × H × W values of the last maps: "
                      "follow the sizes through every conv and pool (layer_shapes does)")


def _check_net(spec, input_shape, batch_norm=True, batch=4, modes=("train", "eval"),
               grads=False):
    what = f"build_net({spec}, {input_shape}, batch_norm={batch_norm})"
    net = run_exercise(build_net, spec, input_shape, batch_norm=batch_norm)
    if not isinstance(net, nn.Module):
        fail(what, f"expected an nn.Module (an nn.Sequential), got {type(net).__name__}")
    ref = nn.Sequential(*[m for b in _reference(spec, input_shape, batch_norm) for m in b])
    _check_structure(net, ref, what, batch_norm)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):  # distinguishable statistics and affine
                m.weight.uniform_(0.5, 1.5, generator=_gen)
                m.bias.uniform_(-0.5, 0.5, generator=_gen)
                m.running_mean.uniform_(-0.5, 0.5, generator=_gen)
                m.running_var.uniform_(0.5, 2.0, generator=_gen)
    copy_weights(ref, net)
    for mode in modes:
        net.train(mode == "train")
        ref.train(mode == "train")
        x = torch.randn(batch, *input_shape, generator=_gen, requires_grad=grads)
        x_ref = x.detach().clone().requires_grad_(grads)
        out = run_exercise(net, x, name=f"the network of {what}")
        want = ref(x_ref)
        where = f"{what}, {mode} mode, input {tuple(x.shape)}"
        check_tensor(out, want, f"output of {where}")
        if grads:
            pairs = {"x": (x, x_ref)} | {
                f"parameter {name}": (p, q) for (name, p), q in
                zip(net.named_parameters(), ref.parameters(), strict=True)}
            check_grads(out, want, pairs, where, generator=_gen)


_lenet_like = [("conv", 6, 5, 1, 0), ("pool", 2, 2), ("conv", 16, 5, 1, 0), ("pool", 2, 2),
               ("dense", 120), ("dense", 84), ("dense", 10)]
_strided = [("conv", 8, 3, 2, 1), ("conv", 12, 3, 1, 1), ("pool", 3, 2), ("dense", 5)]
_to_1x1 = [("conv", 4, 3, 1, 0), ("pool", 2, 2), ("conv", 6, 2, 1, 0), ("dense", 3)]
_dense_only = [("dense", 7), ("dense", 4)]
_pool_first = [("pool", 2, 2), ("conv", 5, 1, 1, 0), ("dense", 2)]
with with_reference(globals(), **_helpers):
    for _spec_, _shape in [(_lenet_like, (1, 32, 32)), (_lenet_like, (1, 35, 29)),
                           (_strided, (3, 23, 17)), (_to_1x1, (2, 6, 6)),
                           (_dense_only, (1, 5, 3)), (_pool_first, (3, 9, 9)),
                           (_spec, (3, 21, 30))]:
        _check_shapes(_spec_, _shape)
    check_raises(layer_shapes, [("conv", 4, 5, 1, 0)], (1, 4, 4),
                 why="a 5×5 filter does not fit in a 4×4 input")
    check_raises(layer_shapes, [("pool", 3, 3)], (2, 2, 8),
                 why="a 3×3 window does not fit in a 2×8 input")
    check_raises(layer_shapes, [("conv", 4, 3, 1, 1), ("dropout", 0.5), ("dense", 10)],
                 (1, 8, 8), argument="dropout", why="'dropout' is not a kind of entry")
    _check_net(_lenet_like, (1, 32, 32))
    _check_net(_lenet_like, (1, 35, 29), batch_norm=False)
    _check_net(_strided, (3, 23, 17), grads=True)
    _check_net(_strided, (3, 23, 17), batch=1, modes=("eval",))  # a single image
    _check_net(_to_1x1, (2, 6, 6))
    _check_net(_dense_only, (1, 5, 3))
    _check_net(_pool_first, (3, 9, 9), batch_norm=False)
    _check_net(_spec, (3, 21, 30), batch=1, modes=("eval",))
### END HIDDEN TESTS

# %% [markdown]
# ### Your own layers, learning
#
# Every part of a small CNN has now been written by you: the convolution, the pooling and
# batch normalisation (a dense layer is one matrix product, so `nn.Linear` will do, and
# `nn.ReLU` is one comparison). To use them in a network, each becomes a small
# `nn.Module`, as in *Dive into Deep Learning*:
#
# - the learnable tensors are `nn.Parameter`s, so `net.parameters()` finds them and the
#   optimiser updates them;
# - batch norm's running statistics are **buffers** (`register_buffer`): saved with the
#   model and moved by `.to(device)`, but not trained;
# - `forward` calls your function; `self.training`, which `net.train()` and `net.eval()`
#   switch, chooses batch norm's mode.
#
# There is no backward pass to write: autograd differentiates your functions. The network
# follows the recipe, on digits enlarged to $12 \times 12$, and `layer_shapes` sizes its
# dense layer. (The weights start from He initialisation, the one made for ReLU.)

# %%
class MyConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.stride, self.padding = stride, padding
        weight = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(nn.init.kaiming_normal_(weight, nonlinearity="relu"))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class MyMaxPool2d(nn.Module):
    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size, self.stride)


class MyBatchNorm2d(nn.Module):
    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))   # beta
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return batch_norm_forward(x, self.weight, self.bias, self.running_mean, self.running_var,
                                  self.training, momentum=self.momentum, eps=self.eps)


own_spec = [("conv", 16, 3, 1, 1), ("pool", 2, 2), ("conv", 32, 3, 1, 1), ("pool", 2, 2),
            ("dense", 10)]
c, h, w = layer_shapes(own_spec, (1, 12, 12))[-2]  # the maps that reach the dense layer
utils.seed_everything(0)
own_net = nn.Sequential(
    MyConv2d(1, 16, 3, padding=1, bias=False), MyBatchNorm2d(16), nn.ReLU(), MyMaxPool2d(2),
    MyConv2d(16, 32, 3, padding=1, bias=False), MyBatchNorm2d(32), nn.ReLU(), MyMaxPool2d(2),
    nn.Flatten(), nn.Linear(c * h * w, 10),
)
print(f"{shapes.count_params(own_net):,} parameters, buffers: "
      f"{[name for name, _ in own_net.named_buffers()]}")

train12, val12, test12 = data.make_loaders("digits", batch_size=64, image_size=12)
own_epochs = 1 if utils.grading_mode() else 3
start = time.perf_counter()
own_history = train.fit(own_net, train12, val12, epochs=own_epochs, lr=3e-3)
own_seconds = time.perf_counter() - start
own_test = train.evaluate(own_net, test12)
print(f"trained in {own_seconds:.1f} s; test accuracy {own_test['acc']:.1%} "
      f"on {own_test['n']} images")
plot.plot_history(own_history, title="a CNN made of your conv2d, max_pool2d and batch norm");

# %% [markdown]
# In three epochs (about 2 seconds on our 2-core test machine; the cell prints yours) the
# network built from your functions reaches 96.5% on the validation images and 97.5% on
# the 359 test images: the exercises add up to something that learns. `nn.Conv2d` and
# friends would be faster (the timing in section 1 showed why), but they compute the same
# thing, and autograd found every gradient of yours.
#
# ## Summary
#
# - A convolution slides $C_\text{out}$ filters of shape $C_\text{in} \times K_h \times K_w$
#   over the padded input; the output length is
#   $\lfloor (I + 2P - K)/S \rfloor + 1$ and the layer has
#   $(C_\text{in} K_h K_w + 1)\,C_\text{out}$ parameters, whatever the image size.
# - Written as loops it is the definition; written as `unfold` + one matrix product it is
#   fast, and autograd differentiates it for free.
# - Pooling summarises windows of each channel (max or mean), shrinks the maps and has no
#   parameters; in PyTorch its stride defaults to the window size.
# - Dense layers map a flattened vector to class scores and hold most of the parameters
#   of early CNNs; activations make the stack non-linear. Sigmoid and tanh saturate and
#   sigmoid's derivative is at most 1/4, so gradients vanish through deep stacks; ReLU's
#   is 1 where it is active, and with He initialisation its gradient keeps its size.
# - Batch normalisation standardises each channel with the batch's statistics during
#   training and with running averages at test time; it lets deep networks train fast at
#   high learning rates, and it needs batches of a few dozen examples for its statistics
#   to be reliable.
# - The recipe: conv → batch norm → ReLU (→ pool), repeated; flatten; dense → ReLU; a last
#   dense layer whose logits go to the loss without an activation. ReLU and max pooling
#   commute, average pooling and a non-linear activation do not, and a convolution before
#   batch norm needs no bias.
#
# **Next:** the next notebook builds the first successful CNN, LeNet-5, from exactly these
# components, and the notebooks after it follow the lecture through its answers to "how
# should we put them together?": AlexNet, VGG, Network in Network, GoogLeNet, ResNet and
# ResNeXt.
#
# **Further questions (not graded)**
# 1. A $1 \times 1$ convolution has a filter of a single pixel. What can it possibly
#    compute? Write its parameter count for $C_\text{in} = 256$, $C_\text{out} = 64$.
#    (Network in Network and GoogLeNet are built on it.)
# 2. Two stacked $3 \times 3$ convolutions at stride 1: how large is the patch of the input
#    that one output value depends on? And three? Compare the parameter counts with one
#    $5 \times 5$ and one $7 \times 7$ layer (the VGG notebook answers this).
# 3. Your `conv2d` builds a matrix of unfolded patches. How many times larger than the
#    input is it for a $3 \times 3$ filter at stride 1 with padding 1? What does that mean
#    for memory on large images?
# 4. In evaluation mode batch norm is a fixed affine map per channel. Does it commute with
#    max pooling? (Think about the sign of $\gamma$.)
# 5. In evaluation mode batch norm is an affine map per channel. How could you fold it into
#    the convolution before it, so that inference does no normalisation at all?
