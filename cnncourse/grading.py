"""Helpers that nbgrader test cells call.

Each check raises ``AssertionError`` with a message that says what was expected, what
came back and where they differ, so a failing test cell reads like feedback rather than
a bare traceback. ``forbid`` catches calls to the torch op an exercise asks students to
write themselves.
"""

from __future__ import annotations

import functools
import inspect
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch.overrides import TorchFunctionMode, resolve_name

__all__ = [
    "OP_FAMILIES",
    "ForbiddenCallError",
    "MESSAGE_WIDTH",
    "banned",
    "check_tensor",
    "check_close",
    "check_grads",
    "check_shape",
    "check_module",
    "check_number",
    "check_raises",
    "check_shape_answer",
    "copy_weights",
    "fail",
    "forbid",
    "limit_calls",
    "note_differs",
    "op_family",
    "random_batch_norm",
    "randomise_weights",
    "reference",
    "run_exercise",
    "table_row",
    "window_shape",
    "with_reference",
    "wrap_message",
]


class ForbiddenCallError(AssertionError):
    """The solution called an operation the exercise asks to implement by hand."""


# `nbgrader validate` (and its JupyterLab button) cuts every line of a message at
# Validator.width - 3 characters; nbgrader_config.py sets the width to 120, and messages
# are wrapped to lines that fit beside "    AssertionError: ".
MESSAGE_WIDTH = 96


def wrap_message(message: str) -> str:
    """``message`` broken into lines of at most :data:`MESSAGE_WIDTH` characters."""
    lines = []
    for paragraph in message.split("\n"):
        lines += textwrap.wrap(
            paragraph, MESSAGE_WIDTH, break_long_words=False, break_on_hyphens=False
        ) or [""]
    return "\n".join(lines)


def fail(name: str, message: str, hint: str = "") -> None:
    """Raise the ``AssertionError`` a test cell reports: the hint (what to fix) first, then
    ``name: message`` (what differs), wrapped to :data:`MESSAGE_WIDTH`."""
    text = f"{name}: {message}"
    if hint:
        hint = hint[:1].upper() + hint[1:] + ("" if hint[-1] in ".?!" else ".")
        text = f"{hint}\n{text}"
    raise AssertionError(wrap_message(text))


_fail = fail


def run_exercise(
    fn: Callable, *args, name: str | None = None, may_change: Iterable[str] = (), **kwargs
):
    """Call the student's ``fn`` and return what it returns, failing readably when

    - ``fn``, or a function it calls, still raises ``NotImplementedError`` (the message
      names the function that raised);
    - ``fn`` changes a tensor argument in place, unless that argument's name is in
      ``may_change`` (batch norm's running statistics, say).
    """
    label = name or getattr(fn, "__name__", "your function")
    before = _tensor_arguments(fn, args, kwargs, set(may_change))
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError as err:
        raised = _raising_function(err)
        if raised is not None and raised != getattr(fn, "__name__", raised):
            _fail(label, f"it calls {raised}, which is not implemented yet",
                  hint=f"write {raised} first (replace its `raise NotImplementedError()`) "
                       "and run its cell again")  # fmt: skip
        _fail(label, "not implemented yet",
              hint="replace `raise NotImplementedError()` with your solution and run its "
                   "cell again")  # fmt: skip
    for arg, (tensor, copy) in before.items():
        same = tensor.shape == copy.shape and bool(
            ((tensor == copy) | (tensor.isnan() & copy.isnan())).all()
        )
        if not same:
            _fail(label, f"it changed its argument {arg} in place",
                  hint="leave the inputs alone: work on a copy or use operations that return "
                       "a new tensor (x = x - m, not x -= m or x.sub_(m))")  # fmt: skip
    return result


def _tensor_arguments(fn, args, kwargs, may_change: set[str]) -> dict:
    """{argument name: (tensor, a copy of it)} for the tensor arguments of a call."""
    try:
        signature = inspect.signature(fn)
        bound = dict(signature.bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):  # no signature: name the arguments by position
        bound = {f"#{i}": a for i, a in enumerate(args)} | kwargs
    else:  # spread *args and **kwargs (an nn.Module's forward is called through them)
        for name, param in signature.parameters.items():
            if name in bound and param.kind is param.VAR_POSITIONAL:
                bound |= {f"#{i}": a for i, a in enumerate(bound.pop(name))}
            elif name in bound and param.kind is param.VAR_KEYWORD:
                bound |= bound.pop(name)
    return {
        k: (v, v.detach().clone())
        for k, v in bound.items()
        if isinstance(v, torch.Tensor) and k not in may_change
    }


def _raising_function(err: BaseException) -> str | None:
    """The name of the function whose ``raise`` the exception came from."""
    tb = err.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_code.co_name
    return None if name.startswith("<") else name


def check_shape(actual, expected_shape: Iterable[int], name: str = "output") -> None:
    """``actual`` is a tensor of shape ``expected_shape``."""
    if not isinstance(actual, torch.Tensor):
        _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}")
    expected_shape = tuple(expected_shape)
    if tuple(actual.shape) != expected_shape:
        _fail(name, f"expected shape {expected_shape}, got {tuple(actual.shape)}")


def check_tensor(
    actual,
    expected: torch.Tensor,
    name: str = "output",
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    check_dtype: bool = True,
) -> None:
    """Type, then shape, then dtype, then values within ``atol + rtol * |expected|``.

    The message for a value mismatch names how many entries differ, the largest
    difference and the first index where it happens.
    """
    check_shape(actual, expected.shape, name)
    if check_dtype and actual.dtype != expected.dtype:
        _fail(name, f"expected dtype {expected.dtype}, got {actual.dtype}")
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if not torch.equal(nan_a, nan_e):
        where = tuple(int(i) for i in (nan_a ^ nan_e).nonzero()[0])
        _fail(
            name,
            f"NaN where none is expected (or the reverse), first at index {where}; "
            "look for a division by zero or an exp that overflows",
        )
    a, e = a.masked_fill(nan_a, 0), e.masked_fill(nan_e, 0)
    diff = (a - e).abs()
    bad = diff > atol + rtol * e.abs()
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        _fail(
            name,
            f"{int(bad.sum())} of {bad.numel()} values differ from the reference "
            f"(largest difference {diff.max().item():.3g}); first at index {first}: "
            f"expected {e[first].item():.6g}, got {a[first].item():.6g}",
        )


def check_close(
    actual, expected, name: str = "output", *, rtol: float = 1e-4, atol: float = 1e-5
) -> None:
    """:func:`check_tensor` without the dtype check (for float32 vs float64 answers)."""
    check_tensor(actual, expected, name, rtol=rtol, atol=atol, check_dtype=False)


def check_number(
    actual,
    expected: float,
    name: str = "answer",
    *,
    rel: float = 0.0,
    abs_tol: float = 0.0,
    hint: str = "",
) -> None:
    """A numeric answer (a size, a count); exact unless tolerances are given."""
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        _fail(name, f"expected a number, got {type(actual).__name__} ({actual!r})")
    if not math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_tol):
        _fail(name, f"expected {expected!r}, got {actual!r}", hint=hint)


def check_raises(
    fn: Callable,
    *args,
    error: type[Exception] = ValueError,
    argument: str | None = None,
    why: str = "",
    **kwargs,
) -> None:
    """``fn(*args, **kwargs)`` raises ``error``, whose message names ``argument`` if given.

    ``why`` says why the call is bad ("a 7-wide filter does not fit in a 4-wide input");
    it is shown when nothing is raised.
    """
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    call = f"{getattr(fn, '__name__', 'your function')}({', '.join(shown)})"
    try:
        run_exercise(fn, *args, name=call, **kwargs)
    except error as err:
        if argument is not None and argument not in str(err):
            _fail(call, f"raised {error.__name__}({str(err)!r})",
                  hint=f"the message should name the argument {argument!r}")  # fmt: skip
    except AssertionError:  # run_exercise's own verdicts (not implemented, input changed)
        raise
    except Exception as err:  # noqa: BLE001 -- any other error is the wrong one
        _fail(call, f"should raise {error.__name__}" + (f": {why}" if why else "")
              + f"; it raised {type(err).__name__} ({err})",
              hint=f"check the arguments before using them, and raise {error.__name__} with a "
                   "message that names the bad argument")  # fmt: skip
    else:
        _fail(call, f"should raise {error.__name__}" + (f": {why}" if why else ""))


def check_grads(
    actual: torch.Tensor,
    expected: torch.Tensor,
    inputs: Mapping[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor | None] | None],
    name: str = "output",
    *,
    generator: torch.Generator | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Gradients of ``actual`` equal those of ``expected`` for every input and parameter.

    ``inputs`` maps a name ("x", "weight", "parameter conv1.weight") to the tensor both
    outputs were computed from, or to a pair (the student's tensor, the reference's) when
    each side has its own copy, as with a module and its reference. ``None`` entries (an
    absent bias) are skipped. Both outputs are multiplied by the same random tensor, so
    every output element matters, and the message names the first gradient that is
    missing or differs.
    """
    pairs = {k: (v if isinstance(v, tuple) else (v, v)) for k, v in inputs.items() if v is not None}
    pairs = {k: v for k, v in pairs.items() if v[0] is not None}
    weight = torch.randn(expected.shape, generator=generator, dtype=expected.dtype)
    weight = weight.to(expected.device)
    theirs = torch.autograd.grad(expected, [r for _, r in pairs.values()], weight)
    if not isinstance(actual, torch.Tensor) or actual.grad_fn is None:
        first = next(iter(pairs))
        _fail(name, f"no gradient reaches {first}: {_KEEP_THE_GRAPH}")
    mine = torch.autograd.grad(
        actual, [m for m, _ in pairs.values()], weight.to(actual.dtype), allow_unused=True
    )
    for key, m, r in zip(pairs, mine, theirs, strict=True):
        if m is None:
            _fail(name, f"no gradient reaches {key}: {_KEEP_THE_GRAPH}")
        check_tensor(m, r, f"gradient with respect to {key}, {name}", rtol=rtol, atol=atol,
                     check_dtype=False)  # fmt: skip


_KEEP_THE_GRAPH = (
    "keep every step a torch operation on the tensors you were given (no .item(), .numpy(), "
    ".data, .detach() or torch.no_grad() in the forward computation)"
)


def random_batch_norm(
    num_features: int,
    ndim: int = 4,
    *,
    momentum: float = 0.1,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> torch.nn.Module:
    """A ``BatchNorm2d`` (``ndim=4``) or ``BatchNorm1d`` (``ndim=2``) with random gamma,
    beta and running statistics, so a test can tell every one of them apart."""
    cls = torch.nn.BatchNorm2d if ndim == 4 else torch.nn.BatchNorm1d
    bn = cls(num_features, momentum=momentum).to(dtype)
    c, g = num_features, generator
    with torch.no_grad():
        bn.weight.copy_(torch.rand(c, generator=g, dtype=dtype) + 0.5)
        bn.bias.copy_(torch.randn(c, generator=g, dtype=dtype))
        bn.running_mean.copy_(torch.randn(c, generator=g, dtype=dtype))
        bn.running_var.copy_(torch.rand(c, generator=g, dtype=dtype) + 0.5)
    return bn


def randomise_weights(
    module: torch.nn.Module, generator: torch.Generator | None = None
) -> torch.nn.Module:
    """Random values in every parameter and batch norm statistic of ``module``, in place.

    Freshly initialised layers hide slips: a batch norm with weight 1, bias 0, mean 0 and
    variance 1 is nearly the identity in eval mode, and a zero bias is the same as no
    bias. Weights get He-scaled normal values (std sqrt(2 / fan_in)), biases and batch
    norm shifts std 0.2, batch norms also random scales and running statistics (as
    :func:`random_batch_norm`). Returns ``module``.
    """
    g = generator
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                c, dtype = m.num_features, m.weight.dtype
                m.weight.copy_(torch.rand(c, generator=g, dtype=dtype) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g, dtype=dtype) * 0.2)
                if m.track_running_stats:
                    m.running_mean.copy_(torch.randn(c, generator=g, dtype=dtype) * 0.2)
                    m.running_var.copy_(torch.rand(c, generator=g, dtype=dtype) + 0.5)
                continue
            for p in m.parameters(recurse=False):
                scale = (2 / p[0].numel()) ** 0.5 if p.dim() > 1 else 0.2
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def check_module(
    mine: torch.nn.Module,
    ref: torch.nn.Module,
    x: torch.Tensor,
    name: str,
    *,
    train: bool = False,
    grads: bool = False,
    generator: torch.Generator | None = None,
    hint: str = "",
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """The student's module computes what the reference does, given the same weights.

    Call it after :func:`copy_weights`. Puts both in train or eval mode, runs ``mine`` on
    ``x`` through :func:`run_exercise` (so an input changed in place fails) and ``ref`` on
    a copy, and compares the outputs; in train mode also the buffers afterwards (batch
    norm's running statistics); with ``grads`` the gradients of the input and of every
    parameter, pair by pair in registration order. ``hint`` goes with a value mismatch
    or a failed forward pass.
    """
    mine.train(train)
    ref.train(train)
    label = f"{name} in {'train' if train else 'eval'} mode on x of shape {tuple(x.shape)}"
    x_ref = x.detach().clone().requires_grad_(grads)
    try:
        out = run_exercise(lambda x: mine(x), x, name=label)
    except RuntimeError as err:
        _fail(label, f"the forward pass failed ({err})", hint=hint)
    expected = ref(x_ref)
    try:
        check_tensor(out, expected, label, rtol=rtol, atol=atol)
    except AssertionError as err:
        _fail(label, str(err).split(": ", 1)[-1], hint=hint)
    if train:
        for (n, b_mine), b_ref in zip(mine.named_buffers(), ref.buffers(), strict=False):
            check_tensor(b_mine, b_ref, f"{label}: buffer {n} after the forward pass",
                         rtol=rtol, atol=atol)  # fmt: skip
    if grads:
        pairs = {"the input": (x, x_ref)}
        for (n, p_mine), p_ref in zip(mine.named_parameters(), ref.parameters(), strict=False):
            pairs[f"parameter {n}"] = (p_mine, p_ref)
        check_grads(out, expected, pairs, label, generator=generator, rtol=rtol, atol=atol)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def table_row(
    table, row: str, *, table_name: str = "the table", macs: bool = False
) -> tuple[tuple[int, ...], int] | tuple[tuple[int, ...], int, int]:
    """The ``(output shape, parameter count)`` a student wrote in one row of a layer table,
    or with ``macs=True`` the ``(output shape, parameter count, multiply-accumulates)``.

    Layer tables are dicts ``{layer: (shape, params)}`` (or ``(shape, params, macs)``)
    whose skeleton holds ``None``s. Checks the format only and says what is missing, so
    visible tests can call it without giving the answer away.
    """
    if not isinstance(table, dict):
        raise AssertionError(f"{table_name}: expected a dict, got {type(table).__name__}")
    if row not in table:
        raise AssertionError(f"{table_name} has no row {row!r}: keep the keys of the skeleton")
    entry = table[row]
    size, what = (3, "a triple (output shape, number of parameters, MACs)") if macs else (
        2, "a pair (output shape, number of parameters)")  # fmt: skip
    if not isinstance(entry, tuple) or len(entry) != size:
        _fail(f"row {row}", f"expected {what}, got {entry!r}")
    if any(v is None for v in entry):
        fields = "output shape, number of parameters" + (", MACs" if macs else "")
        raise AssertionError(f"row {row} is not filled in yet: replace the Nones with ({fields})")
    shape, params = entry[:2]
    if not isinstance(shape, tuple) or not shape or not all(_is_int(v) for v in shape):
        _fail(
            f"row {row}",
            f"the output shape should be a tuple of ints such as (C, H, W) or (features,), "
            f"got {shape!r}",
        )
    if not _is_int(params):
        _fail(f"row {row}", f"the number of parameters should be an int, got {params!r}")
    if macs and not _is_int(entry[2]):
        _fail(f"row {row}", f"the number of multiply-accumulates should be an int, "
              f"got {entry[2]!r}")  # fmt: skip
    return entry


def window_shape(
    shape, kernel_size: int, stride: int = 1, channels: int | None = None
) -> tuple[int, int, int] | None:
    """The (C, H, W) a ``kernel_size`` window at ``stride`` (no padding) makes of a shape a
    student wrote, with ``channels`` channels if given: what a row of a layer table must be
    if the row before it is taken as right. None if ``shape`` is not a (C, H, W) tuple of
    ints or nothing would be left, so a later row is graded on its own merits, and one
    slip in a table costs one row."""
    if not (isinstance(shape, tuple) and len(shape) == 3 and all(_is_int(v) for v in shape)):
        return None
    out = (
        channels or shape[0],
        (shape[1] - kernel_size) // stride + 1,
        (shape[2] - kernel_size) // stride + 1,
    )
    return out if min(out) >= 1 else None


def check_shape_answer(actual, expected: Iterable[int], name: str, hint: str = "") -> None:
    """A shape the student worked out by hand (a tuple of ints), without the batch dim.

    Recognises two common slips and says so instead of ``hint``: writing the batch
    dimension, and putting the channels last.
    """
    expected = tuple(expected)
    actual = tuple(actual)
    if actual == expected:
        return
    if len(actual) == len(expected) + 1 and actual[1:] == expected:
        hint = "leave out the batch dimension"
    elif len(actual) == len(expected) > 1 and actual == expected[1:] + expected[:1]:
        hint = "write the channels first: (C, H, W)"
    _fail(name, f"expected output shape {expected}, got {actual}", hint=hint)


def _op_families() -> dict[str, tuple[Callable, ...]]:
    import torch.nn.functional as F

    from . import layers

    return {
        "conv": (F.conv1d, F.conv2d, F.conv3d, F.conv_transpose2d, torch.convolution,
                 layers.conv2d),
        "max_pool": (F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices,
                     F.adaptive_max_pool2d, F.max_pool1d, F.max_pool3d, layers.max_pool2d),
        "avg_pool": (F.avg_pool2d, torch.avg_pool1d, F.adaptive_avg_pool2d, F.avg_pool1d,
                     F.avg_pool3d, layers.avg_pool2d, layers.global_avg_pool2d),
        "norm": (F.batch_norm, torch.batch_norm, F.instance_norm, F.layer_norm, F.group_norm,
                 torch.native_batch_norm, layers.batch_norm, F.local_response_norm,
                 layers.local_response_norm),
        "softmax": (torch.softmax, F.softmax, torch.Tensor.softmax, torch.special.softmax,
                    torch.log_softmax, F.log_softmax, torch.Tensor.log_softmax),
        "linear": (F.linear, torch.addmm, layers.linear),
        "activation": (torch.sigmoid, torch.Tensor.sigmoid, F.sigmoid, torch.relu,
                       torch.Tensor.relu, F.relu, torch.tanh, torch.Tensor.tanh, F.tanh,
                       layers.relu, layers.sigmoid),
        "dropout": (F.dropout, torch.dropout, F.dropout2d, layers.dropout),
    }  # fmt: skip


# The names test cells pass to `forbid` instead of spelling out every variant of an op.
OP_FAMILIES = ("conv", "max_pool", "avg_pool", "norm", "softmax", "linear", "activation",
               "dropout")  # fmt: skip


def op_family(name: str) -> tuple[Callable, ...]:
    """Every spelling of one kind of op, and its cnncourse reference: what ``forbid(name)``
    bans. ``name`` is one of :data:`OP_FAMILIES`."""
    families = _op_families()
    if name not in families:
        raise ValueError(f"name={name!r}: expected one of {', '.join(OP_FAMILIES)}")
    return families[name]


class _Forbid(TorchFunctionMode):
    def __init__(self, banned: dict[Callable, str], exercise: str) -> None:
        super().__init__()
        self.banned = banned
        self.exercise = exercise

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.banned:
            raise ForbiddenCallError(
                wrap_message(
                    f"Write it yourself from basic tensor operations.\n{self.exercise} calls "
                    f"{self.banned[func]}, which this exercise asks you to replace"
                )
            )
        return func(*args, **(kwargs or {}))


# Reference functions in cnncourse that an exercise may forbid are wrapped by
# `reference`; `forbid` marks them as banned for the duration of a test block.
_banned_references: ContextVar[dict[Callable, str] | None] = ContextVar(
    "_banned_references", default=None
)


def reference(fn: Callable) -> Callable:
    """Mark a cnncourse reference implementation so test cells can forbid calling it.

    The wrapper costs one context-variable lookup per call. It survives
    ``from cnncourse.layers import conv2d``, which patching the module would not.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        banned = _banned_references.get()
        if banned and wrapper in banned:
            raise ForbiddenCallError(
                wrap_message(
                    f"Write your own version.\n{banned[wrapper]} calls "
                    f"{fn.__module__}.{fn.__name__}, the reference this exercise is graded against"
                )
            )
        return fn(*args, **kwargs)

    return wrapper


@contextmanager
def forbid(*funcs: Callable | str, exercise: str = "your solution"):
    """Fail any call, inside the block, to the functions in ``funcs``.

    A string names a whole family of ops (see :func:`op_family`): ``forbid("conv")``
    bans ``F.conv2d``, ``torch.convolution``, ``cnncourse.layers.conv2d`` and their kin.

    torch functions and Tensor methods are caught through
    ``torch.overrides.TorchFunctionMode``, so ``torch.softmax(x)``, ``F.softmax(x)`` and
    ``x.softmax()`` are all seen, however the student spells the call. cnncourse
    references wrapped with :func:`reference` are caught too.
    """
    torch_funcs: dict[Callable, str] = {}
    refs = dict(_banned_references.get() or {})
    funcs = [g for f in funcs for g in (op_family(f) if isinstance(f, str) else (f,))]
    for f in funcs:
        if hasattr(f, "__wrapped__") and getattr(f, "__module__", "").startswith("cnncourse"):
            refs[f] = exercise
            continue
        try:
            torch_funcs[f] = resolve_name(f) or getattr(f, "__qualname__", repr(f))
        except Exception:  # noqa: BLE001 -- resolve_name is only defined for torch callables
            torch_funcs[f] = getattr(f, "__qualname__", repr(f))
    token = _banned_references.set(refs)
    try:
        with _Forbid(torch_funcs, exercise):
            yield
    finally:
        _banned_references.reset(token)


class _CallCounter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


@contextmanager
def limit_calls(max_calls: int, exercise: str = "your solution", what: str = ""):
    """Fail when the block makes more than ``max_calls`` torch calls: "vectorised" enforced.

    Every torch function, ``torch.nn.functional`` op and Tensor method or operator counts
    once (``x[i]``, ``x @ w``, ``x.sum()``...), however deep in the student's code, but not
    the calls those make themselves. A solution written with whole-tensor operations makes
    a handful whatever the input size; a Python loop over pixels or channels makes at least
    one per iteration. ``what`` describes the input ("an 8×9 map") for the message.
    """
    counter = _CallCounter()
    with counter:
        yield counter
    if counter.calls > max_calls:
        raise AssertionError(
            wrap_message(
                "Vectorise: work on the whole tensor at once (reshape, matrix product, "
                "broadcasting), with no Python loop over its elements.\n"
                f"{exercise} made {counter.calls} torch calls"
                + (f" for {what}" if what else "")
                + f"; a vectorised solution needs at most {max_calls}"
            )
        )


@contextmanager
def with_reference(namespace: dict, *, probes: Mapping[str, Iterable[tuple]] = (), **helpers):
    """Inside the block, names in ``namespace`` (a test cell's ``globals()``) point to
    ``helpers``: the references for earlier exercises the graded one calls, so one slip
    costs the points of one exercise. Restored afterwards, even when a check fails.

    ``probes`` maps a helper's name to argument tuples for :func:`note_differs`.
    """
    for name, cases in dict(probes).items():
        note_differs(namespace, name, helpers[name], cases)
    saved = {k: namespace[k] for k in helpers if k in namespace}
    namespace.update(helpers)
    try:
        yield
    finally:
        for k in helpers:
            if k in saved:
                namespace[k] = saved[k]
            else:
                namespace.pop(k, None)


def note_differs(namespace: dict, name: str, reference: Callable, cases: Iterable[tuple]) -> bool:
    """Print a note (stdout costs no points) when the student's ``name`` in ``namespace``
    gives another answer than ``reference`` on ``cases``, or is not written yet: the test
    cell grades with the reference, and the note tells the student which function to fix.
    Returns whether they agree."""
    mine = namespace.get(name)
    for args in cases:
        try:
            same = mine is not None and mine(*args) == reference(*args)
        except Exception:  # noqa: BLE001 -- any failure of the student's helper counts
            same = False
        if not same:
            print(wrap_message(
                f"note: your {name}{args} differs from the reference, so this cell tests "
                f"with the reference {name}; your own code still calls yours: fix {name} "
                "(its test cell says how)"
            ))  # fmt: skip
            return False
    return True


def banned(name: str, exercise: str, why: str = "") -> Callable:
    """A stand-in for ``name`` that fails when called: put it in place with
    :func:`with_reference` to stop the graded ``exercise`` from calling ``name`` (a
    vectorised exercise calling the loop version, say)."""

    def stand_in(*args, **kwargs):
        raise ForbiddenCallError(
            wrap_message(f"{why or 'Do not call it here'}.\n{exercise} calls {name}")
        )

    stand_in.__name__ = name
    return stand_in


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> torch.nn.Module:
    """Copy every parameter and buffer of ``source`` into ``target`` by position.

    The two ``state_dict``s are paired in registration order, so the names may differ
    (``features.0.weight`` against ``stem.conv.weight``) but the shapes must agree one by
    one. This is how a student's module is checked by function: give it the reference's
    weights, then compare outputs. Returns ``target``.
    """
    src, dst = source.state_dict(), target.state_dict()
    src_items, dst_items = list(src.items()), list(dst.items())
    for i, ((s_name, s), (d_name, d)) in enumerate(zip(src_items, dst_items, strict=False)):
        if s.shape != d.shape:
            _fail(f"weight #{i}", f"the reference's {s_name} has shape {tuple(s.shape)} but "
                  f"yours ({d_name}) has {tuple(d.shape)}",
                  hint="check the layer sizes and their order")  # fmt: skip
    if len(src_items) != len(dst_items):
        _fail("your module", f"the reference has {len(src_items)} parameter and buffer "
              f"tensors, yours has {len(dst_items)}",
              hint="check for a missing or extra layer (or bias, or batch norm)")  # fmt: skip
    target.load_state_dict(
        {d_name: s for (_, s), (d_name, _) in zip(src_items, dst_items, strict=True)}
    )
    return target
