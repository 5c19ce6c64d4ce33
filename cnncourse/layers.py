"""From-scratch reference layers, mirroring ``torch.nn.functional``.

Each function here is written with plain tensor operations (``Tensor.unfold`` views,
``as_strided``, ``matmul``) and never calls the ``torch.nn.functional`` op it
re-implements; the tests compare every one of them with its torch twin, forward and
backward. They are decorated with :func:`cnncourse.grading.reference`, so a test cell
can forbid them while grading a student's own version.

Shapes follow torch: images are ``(N, C, H, W)``, a convolution weight is
``(C_out, C_in / groups, kH, kW)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 -- only F.pad is used, to add zero borders
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._checks import positive_int
from .grading import reference
from .shapes import _as_pair as _pair
from .shapes import conv_output_size, pool_output_size

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "linear",
    "relu",
    "sigmoid",
    "batch_norm",
    "dropout",
    "local_response_norm",
    "IntPair",
]

IntPair = int | tuple[int, int]


# ---------------------------------------------------------------------------------------
# argument checks: every error names the argument and says what is wrong


def _check_tensor(x: Tensor, name: str, ndims: tuple[int, ...]) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} tensor, got shape {tuple(x.shape)}")


# ---------------------------------------------------------------------------------------
# convolution


@reference
def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation, as in torch), like ``F.conv2d``.

    x: (N, C_in, H, W); weight: (C_out, C_in / groups, kH, kW); bias: (C_out,) or None.
    Returns (N, C_out, H_out, W_out) with H_out = floor((H + 2p - d(kH-1) - 1) / s) + 1.

    out[n, o, i, j] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * x_pad[n, c, s*i + d*u, s*j + d*v]

    The default path is im2col: cut every kH x kW window out of the padded input (a view,
    no copy), lay the windows out as columns and do one matrix product with the flattened
    filters. Two shortcuts give the same numbers faster: a 1x1 convolution is already a
    matrix product, and a stride-1 convolution with many channels sums kH*kW shifted matrix
    products instead of copying every window (see ``_ShiftedConv``).
    """
    _check_tensor(x, "x", (4,))
    _check_tensor(weight, "weight", (4,))
    positive_int("groups", groups)
    s, p, d = (
        _pair(stride, "stride", 1),
        _pair(padding, "padding", 0),
        _pair(dilation, "dilation", 1),
    )
    n, c, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    if c % groups or c_out % groups:
        raise ValueError(
            f"groups={groups}: in_channels ({c}) and out_channels ({c_out}) must both be "
            "divisible by groups"
        )
    if c_per_group * groups != c:
        raise ValueError(
            f"weight: shape {tuple(weight.shape)} expects {c_per_group * groups} input channels "
            f"(weight.shape[1] * groups), but x has {c}"
        )
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias: expected shape ({c_out},), got {tuple(bias.shape)}")
    conv_output_size((h, w), (kh, kw), s, p, d)  # raises if the kernel does not fit

    if kh == kw == 1 and s == (1, 1) and p == (0, 0) and groups == 1:
        # 1x1 convolution: a channel-mixing matrix applied at every pixel. (bmm with the
        # weight expanded over the batch is a view; matmul's broadcasting would copy x.)
        filters = weight.view(1, c_out, c).expand(n, c_out, c)
        out = torch.bmm(filters, x.reshape(n, c, h * w)).view(n, c_out, h, w)
    elif s == (1, 1) and groups == 1 and c >= 16:
        out = _ShiftedConv.apply(x, weight, p, d)
    else:
        out = _conv2d_im2col(x, weight, s, p, d, groups)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def _conv2d_im2col(x: Tensor, weight: Tensor, s, p, d, groups: int) -> Tensor:
    n, c, _, _ = x.shape
    c_out, cg, kh, kw = weight.shape
    if p != (0, 0):
        x = F.pad(x, (p[1], p[1], p[0], p[0]))
    # every window as a view: (N, C, H_out, W_out, span_h, span_w); dilation keeps every d-th tap
    win = x.unfold(2, d[0] * (kh - 1) + 1, s[0]).unfold(3, d[1] * (kw - 1) + 1, s[1])
    win = win[..., :: d[0], :: d[1]]  # (N, C, H_out, W_out, kH, kW)
    h_out, w_out = win.shape[2:4]
    # columns grouped by (group, C_in/groups * kH * kW); this reshape is the im2col copy
    win = win.reshape(n, groups, cg, h_out, w_out, kh, kw).permute(0, 1, 2, 5, 6, 3, 4)
    cols = win.reshape(n, groups, cg * kh * kw, h_out * w_out)  # (N, G, K, L)
    filters = weight.reshape(groups, c_out // groups, cg * kh * kw)  # (G, C_out/G, K)
    if groups == 1:  # one matrix product per image; the expanded weight is a view
        out = torch.bmm(filters.expand(n, c_out, cg * kh * kw), cols.view(n, -1, h_out * w_out))
    else:
        out = torch.matmul(filters, cols)  # (N, G, C_out/G, L)
    return out.view(n, c_out, h_out, w_out)


class _ShiftedConv(torch.autograd.Function):
    """Stride-1 convolution as kH*kW matrix products over shifted views, with no im2col copy.

    Lay the padded input out channels-last and flatten the pixels row by row: a matrix
    of shape (H_pad * W_pad, C). Moving a filter tap by (u, v) shifts which pixel row each
    output reads by u * W_pad + v, so the contribution of tap (u, v) to *all* outputs is
    one contiguous slice of that matrix times weight[:, :, u, v].T. Computing outputs over
    the full padded width (and dropping the W_pad - W_out extra columns at the end) is what
    makes each slice contiguous. The backward pass uses the same slices.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, p: tuple[int, int], d: tuple[int, int]) -> Tensor:
        n, c, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        hp, wp = h + 2 * p[0], w + 2 * p[1]
        h_out, w_out = hp - d[0] * (kh - 1), wp - d[1] * (kw - 1)
        m = h_out * wp  # output positions computed, counting the dropped columns
        rows = max(hp * wp, d[0] * (kh - 1) * wp + d[1] * (kw - 1) + m)
        flat = x.new_zeros(n, rows, c)  # (N, pixels, C), zero borders included
        flat[:, : hp * wp].view(n, hp, wp, c)[:, p[0] : p[0] + h, p[1] : p[1] + w] = x.permute(
            0, 2, 3, 1
        )
        taps = weight.permute(2, 3, 1, 0).contiguous()  # (kH, kW, C, C_out)
        out = x.new_zeros(n, m, c_out)
        for u in range(kh):
            for v in range(kw):
                shifted = flat[:, d[0] * u * wp + d[1] * v :][:, :m]  # (N, M, C) view
                out.baddbmm_(shifted, taps[u, v].expand(n, c, c_out))
        ctx.save_for_backward(flat, taps)
        ctx.geometry = (p, d, (h, w), wp, h_out, w_out)
        return out.view(n, h_out, wp, c_out)[:, :, :w_out].permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        flat, taps = ctx.saved_tensors
        p, d, (h, w), wp, h_out, w_out = ctx.geometry
        kh, kw, c, c_out = taps.shape
        n, m = grad.shape[0], h_out * wp
        g = grad.new_zeros(n, h_out, wp, c_out)
        g[:, :, :w_out] = grad.permute(0, 2, 3, 1)  # the dropped columns get no gradient
        g = g.view(n, m, c_out)
        grad_flat = torch.zeros_like(flat) if ctx.needs_input_grad[0] else None
        grad_taps = torch.empty_like(taps)
        for u in range(kh):
            for v in range(kw):
                start = d[0] * u * wp + d[1] * v
                shifted = flat[:, start:][:, :m]  # (N, M, C)
                grad_taps[u, v] = torch.matmul(shifted.transpose(1, 2), g).sum(0)  # (C, C_out)
                if grad_flat is not None:
                    grad_flat[:, start:][:, :m].baddbmm_(g, taps[u, v].t().expand(n, c_out, c))
        grad_x = None
        if grad_flat is not None:
            hp = h + 2 * p[0]
            grad_x = grad_flat[:, : hp * wp].view(n, hp, wp, c)
            grad_x = grad_x[:, p[0] : p[0] + h, p[1] : p[1] + w].permute(0, 3, 1, 2)
        return grad_x, grad_taps.permute(3, 2, 0, 1), None, None


# ---------------------------------------------------------------------------------------
# pooling


def _pool_geometry(x: Tensor, kernel_size, stride, padding, ceil_mode: bool, fill: float):
    """Check the arguments and pad x (fill value) so every window lies inside it."""
    _check_tensor(x, "x", (4,))
    h, w = x.shape[2:]
    # the calculator checks every argument and applies torch's ceil_mode rule
    out = pool_output_size((h, w), kernel_size, stride, padding, ceil_mode=ceil_mode)
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    # ceil mode may need a partial window past the right/bottom padding: pad that too
    extra = tuple(max(0, (out[a] - 1) * s[a] + k[a] - ((h, w)[a] + 2 * p[a])) for a in range(2))
    if any(p) or any(extra):
        x = F.pad(x, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]), value=fill)
    return x, out, k, s, p, extra


def _windows(x: Tensor, dim: int, k: int, s: int, n_out: int) -> Tensor:
    """Windows of length k at stride s along ``dim``, as a new last dimension (a view)."""
    return x.unfold(dim, k, s).narrow(dim, 0, n_out)


@reference
def max_pool2d(
    x: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
) -> Tensor:
    """Max pooling, like ``F.max_pool2d``: the largest value of each kH x kW window.

    x: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to kernel_size; padding adds
    -inf borders (never chosen). No parameters.

    A window's maximum is the maximum over its rows of each row's maximum, so we pool
    along W, then along H: k + k comparisons per output instead of k * k. The gradient
    goes to one maximum per window (the first in reading order), as in torch, even when
    values tie: ``max(dim)`` routes it to the first maximum along each axis.
    """
    x, out, k, s, _, _ = _pool_geometry(x, kernel_size, stride, padding, ceil_mode, float("-inf"))
    rows = _windows(x, 3, k[1], s[1], out[1]).max(dim=-1).values  # (N, C, H_pad, W_out)
    return _windows(rows, 2, k[0], s[0], out[0]).max(dim=-1).values  # (N, C, H_out, W_out)


@reference
def avg_pool2d(
    x: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Average pooling, like ``F.avg_pool2d``: the mean of each kH x kW window.

    x: (N, C, H, W) -> (N, C, H_out, W_out). Zero padding counts towards the mean when
    ``count_include_pad`` is true (torch's default); the extra cells a ``ceil_mode`` window
    hangs over never count. Sums are taken along W, then along H, as in ``max_pool2d``.
    """
    h, w = x.shape[2:] if isinstance(x, Tensor) and x.dim() == 4 else (0, 0)
    x, out, k, s, p, extra = _pool_geometry(x, kernel_size, stride, padding, ceil_mode, 0.0)

    def window_sum(t: Tensor) -> Tensor:
        t = _windows(t, 3, k[1], s[1], out[1]).sum(dim=-1)
        return _windows(t, 2, k[0], s[0], out[0]).sum(dim=-1)

    total = window_sum(x)
    if not (any(p) or any(extra)):
        return total / (k[0] * k[1])
    # the divisor of each window: how many of its cells count (the same sums over a mask)
    mask = x.new_zeros(1, 1, *x.shape[2:])
    if count_include_pad:
        mask[..., : h + 2 * p[0], : w + 2 * p[1]] = 1
    else:
        mask[..., p[0] : p[0] + h, p[1] : p[1] + w] = 1
    return total / window_sum(mask)


@reference
def global_avg_pool2d(x: Tensor) -> Tensor:
    """Global average pooling (NiN, GoogLeNet, ResNet heads): (N, C, H, W) -> (N, C, 1, 1).

    Each feature map becomes its mean, like ``F.adaptive_avg_pool2d(x, 1)``.
    """
    _check_tensor(x, "x", (4,))
    return x.mean(dim=(2, 3), keepdim=True)


# ---------------------------------------------------------------------------------------
# dense layer and activations


@reference
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Fully connected layer, like ``F.linear``: y = x W^T + b.

    x: (*, in_features); weight: (out_features, in_features); bias: (out_features,).
    """
    _check_tensor(weight, "weight", (2,))
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"x: last dimension is {x.shape[-1]} but weight {tuple(weight.shape)} expects "
            f"{weight.shape[1]} input features"
        )
    out = torch.matmul(x, weight.t())
    return out if bias is None else out + bias


@reference
def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise, like ``F.relu``; its gradient is 1 where x > 0, else 0."""
    return x.clamp(min=0)  # one pass; clamp's gradient at exactly 0 is 0, as relu's


@reference
def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)) elementwise, like ``torch.sigmoid``.

    Computed as (1 + tanh(x / 2)) / 2, the same function: tanh never overflows, so very
    negative x gives 0 rather than 1 / inf, and the gradient s(1 - s) stays finite.
    """
    return torch.tanh(x * 0.5).mul(0.5).add_(0.5)  # add_ in place: one fewer tensor


# ---------------------------------------------------------------------------------------
# normalisation and regularisation


@reference
def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation (Ioffe & Szegedy 2015), like ``F.batch_norm``.

    x: (N, C) or (N, C, H, W); statistics are per channel C, over N (and H, W).
    training: normalise with the batch mean and (biased) variance,
        x_hat = (x - mean_B) / sqrt(var_B + eps), y = weight * x_hat + bias,
        and update the running statistics in place:
        running = (1 - momentum) * running + momentum * batch  (the variance unbiased).
    evaluation: normalise with running_mean and running_var instead.
    """
    _check_tensor(x, "x", (2, 4))
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum={momentum!r}: must be in [0, 1]")
    if eps <= 0:
        raise ValueError(f"eps={eps!r}: must be > 0")
    c = x.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(
                f"{name}: expected shape ({c},) for {c} channels, got {tuple(t.shape)}"
            )
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    shape = (1, c) if x.dim() == 2 else (1, c, 1, 1)
    if training:
        count = x.numel() // c
        if count < 2:
            raise ValueError(
                f"x: shape {tuple(x.shape)} has one value per channel; training "
                "mode needs at least two to compute a variance"
            )
        # biased variance (divide by m) to normalise, as in the paper's algorithm
        var, mean = torch.var_mean(x, dim=dims, correction=0)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():  # the running estimate of the variance is unbiased
                running_mean.mul_(1 - momentum).add_(momentum * mean)
                running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean, running_var: evaluation mode needs both")
        mean, var = running_mean, running_var
    # y = (x - mean) / sqrt(var + eps) * weight + bias, folded into one scale and shift
    # per channel so the big tensor x is read once: y = x * scale + shift
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return torch.addcmul(shift.view(shape), x, scale.view(shape))


@reference
def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout, like ``F.dropout``: zero each value with probability p, scale the
    rest by 1 / (1 - p) so the expected output equals the input; identity when not training.

    On the CPU the mask is drawn exactly as torch draws it, so the same seed gives the same
    mask as ``F.dropout``.
    """
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: dropout probability must be in [0, 1]")
    if not training or p == 0:
        return x
    if p == 1:
        return x * torch.zeros_like(x)
    keep = torch.empty_like(x).bernoulli_(1 - p)
    return x * keep.div_(1 - p)


@reference
def local_response_norm(
    x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Local response normalisation across channels, like ``F.local_response_norm``.

    x: (N, C, ...) -> same shape. Each value is divided by a power of the sum of squares
    over ``size`` neighbouring channels (zero beyond the first and last channel):
    ``b_c = a_c / (k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} a_c'^2) ** beta``.
    PyTorch divides ``alpha`` by ``size``; AlexNet's paper does not, so its alpha=1e-4 with
    n=5 is ``alpha=5e-4`` here.
    """
    _check_tensor(x, "x", (3, 4, 5))
    positive_int("size", size)
    squares = F.pad(x * x, (0, 0) * (x.ndim - 2) + (size // 2, (size - 1) // 2))  # pad C
    window_sum = squares.unfold(1, size, 1).sum(-1)  # (N, C, ...): sum over `size` channels
    return x / (k + alpha / size * window_sum).pow(beta)
