"""Shape calculus: output sizes, parameter counts, multiply-accumulates, receptive fields.

The lecture keeps asking "why is the output 55?", "how many parameters?", "how many
operations?". These functions answer with the general formula; ``summary`` applies them
to every layer of a real model. Sizes may be an int or an ``(h, w)`` pair: give ints and
you get an int back, give any pair and you get a pair.

"Operations" here means multiply-accumulates (MACs), as in the lecture's Inception
arithmetic: a k x k convolution producing one output value does C_in/groups * k * k of them.
One MAC is two FLOPs (a multiply and an add), which is how ``FlopCounterMode`` counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ._checks import positive_int

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "conv_params",
    "linear_params",
    "batch_norm_params",
    "conv_macs",
    "linear_macs",
    "receptive_field",
    "count_params",
    "summary",
    "LayerRow",
    "Summary",
    "Size",
]

Size = int | tuple[int, int]


# ---------------------------------------------------------------------------------------
# argument checks


def _as_pair(value, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"{name}={value!r}: expected an int or an (h, w) pair of ints")
    if min(pair) < minimum:
        raise ValueError(f"{name}={value!r}: must be >= {minimum}")
    return int(pair[0]), int(pair[1])


def _result(pair: tuple[int, int], *args) -> Size:
    """An int when every size-like argument was an int, else the (h, w) pair."""
    return pair[0] if all(isinstance(a, int) for a in args) else pair


# ---------------------------------------------------------------------------------------
# output sizes


def conv_output_size(
    size: Size, kernel_size: Size, stride: Size = 1, padding: Size = 0, dilation: Size = 1
) -> Size:
    """Spatial output size of a convolution: floor((n + 2p - d(k - 1) - 1) / s) + 1.

    AlexNet's first layer: ``conv_output_size(227, 11, stride=4) == 55``, because
    (227 - 11) / 4 + 1 = 55. Raises ``ValueError`` when the (dilated) kernel does not fit
    in the padded input, or a stride or kernel is below 1.
    """
    n = _as_pair(size, "size", 1)
    k = _as_pair(kernel_size, "kernel_size", 1)
    s = _as_pair(stride, "stride", 1)
    p = _as_pair(padding, "padding", 0)
    d = _as_pair(dilation, "dilation", 1)
    out = tuple(_axis_out(*args, False) for args in zip(n, k, s, p, d, "HW", strict=True))
    return _result(out, size, kernel_size, stride, padding, dilation)


def pool_output_size(
    size: Size,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
) -> Size:
    """Spatial output size of max or average pooling; ``stride`` defaults to the kernel size.

    Same formula as a convolution, rounded up instead of down when ``ceil_mode`` is true
    (GoogLeNet's pools), except that a last window starting inside the right padding is
    dropped, as torch does. AlexNet's first pool: ``pool_output_size(55, 3, stride=2) == 27``.
    """
    n = _as_pair(size, "size", 1)
    k = _as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _as_pair(stride, "stride", 1)
    p = _as_pair(padding, "padding", 0)
    d = _as_pair(dilation, "dilation", 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"padding={padding!r}: must be at most half of kernel_size={kernel_size!r}"
        )
    out = tuple(_axis_out(*args, ceil_mode) for args in zip(n, k, s, p, d, "HW", strict=True))
    return _result(
        out, size, kernel_size, kernel_size if stride is None else stride, padding, dilation
    )


def _axis_out(n: int, k: int, s: int, p: int, d: int, axis: str, ceil_mode: bool) -> int:
    span = d * (k - 1) + 1  # a dilated kernel covers this many input pixels
    if span > n + 2 * p:
        raise ValueError(
            f"kernel_size: the {'dilated ' if d > 1 else ''}kernel spans {span} pixels along "
            f"{axis} but the padded input has only {n} + 2*{p} = {n + 2 * p}"
        )
    if not ceil_mode:
        return (n + 2 * p - span) // s + 1
    out = math.ceil((n + 2 * p - span) / s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


# ---------------------------------------------------------------------------------------
# parameters and multiply-accumulates


def conv_params(
    in_channels: int, out_channels: int, kernel_size: Size, bias: bool = True, groups: int = 1
) -> int:
    """Learnable parameters of a convolution: C_out * (C_in / groups * kH * kW) + C_out bias.

    AlexNet conv1: ``conv_params(3, 96, 11) == 34_944``, the lecture's "(11*11*3 + 1)*96 = 35K".
    """
    weights = _filter_size(in_channels, out_channels, kernel_size, groups)  # per filter
    return out_channels * weights + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Learnable parameters of a fully connected layer: out * in + out bias."""
    n_in = positive_int("in_features", in_features)
    n_out = positive_int("out_features", out_features)
    return n_out * n_in + (n_out if bias else 0)


def batch_norm_params(num_features: int, affine: bool = True) -> int:
    """Learnable parameters of batch norm: a scale and a shift per channel (2C).

    The running mean and variance are buffers: saved with the model, never trained.
    """
    return 2 * positive_int("num_features", num_features) if affine else 0


def conv_macs(
    in_channels: int, out_channels: int, kernel_size: Size, output_size: Size, groups: int = 1
) -> int:
    """Multiply-accumulates of one convolution on one image (bias not counted).

    Every one of the H_out * W_out * C_out outputs is a dot product of length
    C_in / groups * kH * kW. The lecture's 5x5 example, 200 -> 32 channels at 32x32:
    ``conv_macs(200, 32, 5, 32) == 163_840_000`` ("~163M operations").
    """
    weights = _filter_size(in_channels, out_channels, kernel_size, groups)
    h, w = _as_pair(output_size, "output_size", 1)
    return h * w * out_channels * weights


def linear_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a fully connected layer on one input vector: in * out."""
    return positive_int("in_features", in_features) * positive_int("out_features", out_features)


def _filter_size(in_channels: int, out_channels: int, kernel_size: Size, groups: int) -> int:
    """Weights in one filter, C_in / groups * kH * kW, after checking every argument."""
    c_in = positive_int("in_channels", in_channels)
    c_out = positive_int("out_channels", out_channels)
    g = positive_int("groups", groups)
    if c_in % g or c_out % g:
        raise ValueError(
            f"groups={g}: in_channels ({c_in}) and out_channels ({c_out}) must both be "
            "divisible by groups"
        )
    kh, kw = _as_pair(kernel_size, "kernel_size", 1)
    return c_in // g * kh * kw


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters in ``module`` (shared parameters counted once)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------------------------------
# receptive field


def receptive_field(layers: Iterable) -> Size:
    """Receptive field (in input pixels) of one output unit of a stack of layers.

    ``layers`` holds ``(kernel_size, stride)`` or ``(kernel_size, stride, dilation)``
    tuples, or modules (``nn.Sequential`` is walked; convolutions and pools use their
    kernel, stride and dilation; other modules such as ReLU or batch norm are 1 x 1).
    Going up the stack, each layer widens the field by (k_eff - 1) * jump, where jump is
    the product of the strides below it: r = 1 + sum_l (k_eff_l - 1) * prod_{i<l} s_i.

    Three 3x3 stride-1 convolutions see 7 x 7, like one 7x7 convolution:
    ``receptive_field([(3, 1)] * 3) == 7``.
    """
    rf, jump, all_int = [1, 1], [1, 1], True
    for i, layer in enumerate(_flatten_layers(layers)):
        k, s, d = _layer_geometry(layer, i)
        all_int &= all(isinstance(v, int) for v in (k, s, d))
        k, s, d = (
            _as_pair(k, "kernel_size", 1),
            _as_pair(s, "stride", 1),
            _as_pair(d, "dilation", 1),
        )
        for a in range(2):
            rf[a] += (d[a] * (k[a] - 1)) * jump[a]
            jump[a] *= s[a]
    return rf[0] if all_int and rf[0] == rf[1] else (rf[0], rf[1])


def _flatten_layers(layers) -> Iterable:
    if isinstance(layers, nn.Sequential):
        for m in layers:
            yield from _flatten_layers(m)
    elif isinstance(layers, nn.Module):
        yield layers
    elif isinstance(layers, (list, tuple)) and not _is_spec(layers):
        for item in layers:
            yield from _flatten_layers(item)
    else:
        yield layers


def _is_spec(item) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) in (2, 3)
        and not isinstance(item[0], nn.Module)
        and not (
            isinstance(item[0], tuple) and len(item[0]) in (2, 3) and isinstance(item[0][0], tuple)
        )
    )


def _square(v):
    """Modules store (3, 3) even when built with 3: give back the int for square pairs."""
    return v[0] if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1] else v


def _layer_geometry(layer, index: int):
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k = layer.kernel_size
        s = layer.stride or k  # pools built with stride=None use the kernel size
        d = getattr(layer, "dilation", 1)
        return _square(k), _square(s), _square(d)
    if isinstance(layer, nn.Module):
        if any(isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) for m in layer.modules()):
            raise ValueError(
                f"layers[{index}]: {type(layer).__name__} contains convolutions or pools but is "
                "not an nn.Sequential; list its layers, or use summary() for branching models"
            )
        return 1, 1, 1  # pointwise: activations, batch norm, dropout
    if isinstance(layer, tuple) and len(layer) in (2, 3):
        return layer if len(layer) == 3 else (*layer, 1)
    raise TypeError(
        f"layers[{index}]={layer!r}: expected a (kernel_size, stride[, dilation]) tuple or an "
        "nn.Module"
    )


# ---------------------------------------------------------------------------------------
# summary of a whole model


@dataclass
class LayerRow:
    """One executed leaf module. Shapes and MACs are per input image (no batch dimension)."""

    name: str  # qualified name in the model, e.g. "features.0" or "layer1.0.conv1"
    kind: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # e.g. (96, 55, 55)
    params: int  # parameters owned by this module (0 for a repeated call of a shared module)
    macs: int  # multiply-accumulates for one image (convolutions and linear layers)
    receptive_field: Size | None  # input pixels one output unit sees (None: not traced)


class Summary(list):
    """The rows of :func:`summary`, plus totals; ``str()`` gives the table."""

    def __init__(self, rows: list[LayerRow], input_shape: tuple[int, ...], total_params: int):
        super().__init__(rows)
        self.input_shape = input_shape
        self.total_params = total_params
        self.total_macs = sum(r.macs for r in rows)

    def table(self) -> str:
        header = ("layer", "type", "output shape", "params", "MACs", "RF")
        lines = [header] + [
            (
                r.name,
                r.kind,
                str(tuple(r.output_shape)),
                f"{r.params:,}",
                f"{r.macs:,}",
                "-" if r.receptive_field is None else _fmt_size(r.receptive_field),
            )
            for r in self
        ]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        right = {3, 4, 5}

        def fmt(line) -> str:
            cells = [
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        rule = "-" * len(fmt(lines[0]))
        out = [f"input {self.input_shape}", rule, fmt(lines[0]), rule, *map(fmt, lines[1:]), rule]
        out.append(
            f"total params: {self.total_params:,}    total MACs per image: {self.total_macs:,}"
        )
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"<Summary: {len(self)} layers, {self.total_params:,} params, "
            f"{self.total_macs:,} MACs per image>"
        )


def _fmt_size(v: Size) -> str:
    return str(v) if isinstance(v, int) else f"{v[0]}x{v[1]}"


def summary(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    verbose: bool = True,
    device: torch.device | str | None = None,
) -> Summary:
    """Run one input through ``model`` and describe every leaf module it executes.

    input_size: (C, H, W) or (N, C, H, W). Rows come in execution order, so branches of an
    Inception module or a residual block appear in the order ``forward`` runs them; a module
    used twice appears twice (its parameters counted once). Each row has the output shape,
    the module's own parameters, its multiply-accumulates and the receptive field of its
    output (followed through concatenations and residual additions: the largest field of
    the inputs). Prints the table when ``verbose``; returns the rows as a :class:`Summary`.
    The model is run in eval mode without gradients and left in the mode it was in.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    size = tuple(input_size) if isinstance(input_size, (tuple, list, torch.Size)) else None
    if (
        size is None
        or len(size) not in (3, 4)
        or not all(isinstance(v, int) and v > 0 for v in size)
    ):
        raise ValueError(
            f"input_size={input_size!r}: expected (C, H, W) or (N, C, H, W) positive ints"
        )
    if len(size) == 3:
        size = (1, *size)
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.zeros(size, device=device, dtype=dtype)

    names = {m: name for name, m in model.named_modules()}
    rows: list[LayerRow] = []
    seen: set[int] = set()
    tracker = _FieldTracker(x)

    def hook(module: nn.Module, inputs, output) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(out, torch.Tensor):
            return
        own = list(module.parameters(recurse=not list(module.children())))
        params = sum(p.numel() for p in own if id(p) not in seen)
        seen.update(id(p) for p in own)
        rows.append(
            LayerRow(
                name=names.get(module, type(module).__name__) or type(module).__name__,
                kind=type(module).__name__,
                output_shape=tuple(out.shape[1:]),
                params=params,
                macs=_module_macs(module, inputs, out),
                receptive_field=tracker.field(out),
            )
        )

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if not list(m.children()) or list(m.parameters(recurse=False))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tracker:
            model(x)
    except Exception as err:
        raise ValueError(
            f"input_size={tuple(input_size)}: the model failed on an input of shape {size}: {err}"
        ) from err
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    result = Summary(rows, size[1:], count_params(model))
    if verbose:
        print(result.table())
    return result


def _module_macs(module: nn.Module, inputs, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        c_out, c_per_group, kh, kw = module.weight.shape
        return out[0].numel() * c_per_group * kh * kw
    if isinstance(module, nn.Linear):
        return out[0].numel() * module.in_features
    return 0


class _FieldTracker(TorchFunctionMode):
    """Follows the receptive field (and jump, the input stride) of every tensor computed.

    Convolutions and pools grow the field by (k_eff - 1) * jump and multiply the jump by
    their stride; any other op gives its output the largest field of its tensor inputs
    (concatenation, residual addition, activations). An op that removes the spatial grid
    (global pooling, flatten) makes each output see the whole input.
    """

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.info: dict[int, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {}
        self.keep: list[torch.Tensor] = []  # holds tensors alive so their ids stay unique
        self._set(x, (1, 1), (1, 1), tuple(x.shape[2:]))

    def _set(self, t: torch.Tensor, rf, jump, grid) -> None:
        self.info[id(t)] = (rf, jump, grid)
        self.keep.append(t)

    def field(self, t: torch.Tensor) -> Size | None:
        entry = self.info.get(id(t))
        if entry is None:
            return None
        rf = entry[0]
        return rf[0] if rf[0] == rf[1] else rf

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [a for a in _walk(args) + _walk(list(kwargs.values())) if id(a) in self.info]
        if not tensors:
            return out
        src = max(tensors, key=lambda t: self.info[id(t)][0])
        rf, jump, grid = self.info[id(src)]
        geometry = _op_geometry(func, args, kwargs)
        for o in _walk(out if isinstance(out, (tuple, list)) else [out]):
            if geometry is not None and o.dim() == 4:
                k, s, d = geometry
                new_rf = tuple(rf[a] + d[a] * (k[a] - 1) * jump[a] for a in range(2))
                self._set(o, new_rf, (jump[0] * s[0], jump[1] * s[1]), tuple(o.shape[2:]))
            elif o.dim() == 4 and tuple(o.shape[2:]) == (1, 1) and grid != (1, 1):
                # global pooling: one output sees every input position
                self._set(o, _whole(rf, jump, grid), jump, (1, 1))
            elif o.dim() == 4:
                self._set(o, rf, jump, tuple(o.shape[2:]))
            elif src.dim() == 4 or grid == (1, 1):
                self._set(o, _whole(rf, jump, grid), jump, (1, 1))
        return out


def _whole(rf, jump, grid) -> tuple[int, int]:
    return tuple(rf[a] + (grid[a] - 1) * jump[a] for a in range(2))


def _walk(items) -> list[torch.Tensor]:
    found = []
    for item in items:
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list)):
            found.extend(_walk(item))
    return found


_CONV = {torch.conv2d, torch.nn.functional.conv2d}
_POOL_NAMES = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d"}


def _op_geometry(func, args, kwargs):
    """(kernel, stride, dilation) pairs of a convolution or pooling call, else None."""
    name = getattr(func, "__name__", "")
    if func in _CONV or name == "conv2d":
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
        dilation = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
        return tuple(weight.shape[2:]), _torch_pair(stride), _torch_pair(dilation)
    if name in _POOL_NAMES:
        kernel = _torch_pair(args[1] if len(args) > 1 else kwargs["kernel_size"])
        stride = args[2] if len(args) > 2 else kwargs.get("stride")
        stride = kernel if stride is None or stride == [] or stride == () else _torch_pair(stride)
        dilation = 1
        if name != "avg_pool2d":
            dilation = args[4] if len(args) > 4 else kwargs.get("dilation", 1)
        return kernel, stride, _torch_pair(dilation)
    if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        x = args[0]
        out = _torch_pair(args[1] if len(args) > 1 else kwargs["output_size"])
        size = tuple(x.shape[-2:])
        out = tuple(size[a] if out[a] is None else out[a] for a in range(2))
        if out == (1, 1) or out == size:
            return None  # global pooling or identity: handled as a generic op
        # windows are exactly in/out wide when out divides in; otherwise at most one wider
        kernel = tuple(-(-size[a] // out[a]) + (size[a] % out[a] != 0) for a in range(2))
        return kernel, tuple(max(1, size[a] // out[a]) for a in range(2)), (1, 1)
    return None


def _torch_pair(v) -> tuple[int, int]:
    """An (h, w) pair from an argument as torch passes it: int, [k] or [h, w], unchecked."""
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])
