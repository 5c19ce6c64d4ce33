"""Helpers that nbgrader test cells call.

Each check raises ``AssertionError`` with a message that says what was expected, what
came back and where they differ, so a failing test cell reads like feedback rather than
a bare traceback. ``forbid`` catches calls to the torch op an exercise asks students to
write themselves.

Solution cells run in the same kernel before the locked test cells, so the checks are
written not to be fooled by what a solution can do at run time: they accept only plain
tensors and real numbers, which they convert themselves; they compute with torch
functions captured when this module is imported, with torch functions and dispatch modes
switched off; this module refuses attribute assignment; and ``forbid`` watches the aten
ops at the dispatcher too, whatever their Python spelling. What Python cannot stop
(``vars(module)``, ``sys.modules``, ``torch._C`` internals) is left to the instructor's
tamper scan.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from math import isclose

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._device import DeviceContext
from torch.utils._python_dispatch import TorchDispatchMode

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
    "lock_modules",
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

# The functions of this module look builtins up in this copy, taken at import: a solution
# cell that sets `builtins.type` or `builtins.isinstance` does not change what they see.
__builtins__ = dict(vars(builtins))

# torch as the checks see it, captured at import. The C base class of torch.Tensor is
# immutable and torch._C._VariableFunctions (torch.isnan, torch.equal, ...) read-only, so
# `torch.Tensor.any = ...` or `torch.isnan = ...` in a solution cell cannot reach a check
# that calls through them. The checks never call a tensor's own methods or operators:
# `a - b` looks __sub__ up on torch.Tensor, which a solution can reassign.
_T = torch._C.TensorBase
_VF = torch._C._VariableFunctions
_Tensor, _Parameter, _Size, _FLOAT64 = torch.Tensor, torch.nn.Parameter, torch.Size, torch.float64
_dtype, _device, _grad_fn = _T.dtype.__get__, _T.device.__get__, _T.grad_fn.__get__
_autograd_grad = torch.autograd.grad
_no_torch_function = torch._C.DisableTorchFunction
_no_torch_dispatch = torch._C._DisableTorchDispatch
_dispatch_keys, _PYTHON_KEY = torch._C._dispatch_keys, torch._C.DispatchKey.Python
_python_key_excluded = torch._C._dispatch_tls_is_dispatch_key_excluded
_torch_function_off = torch._C._is_torch_function_all_disabled
_function_modes = (torch._C._len_torch_function_stack, torch._C._get_function_stack_at)
_dispatch_modes = (torch._C._len_torch_dispatch_stack, torch._C._get_dispatch_stack_at)


@contextmanager
def _plain():
    """Inside, torch runs its own kernels only: no ``__torch_function__`` (of a subclass or a
    mode, forbid's and limit_calls' included, so the checks' own calls are not counted) and
    no ``__torch_dispatch__`` (of a mode a solution cell left switched on)."""
    with _no_torch_function(), _no_torch_dispatch():
        yield


class _Sealed(type):
    """A class whose attributes cannot be reassigned once it is made: the guards below must
    keep their ``__torch_function__``. (``type.__setattr__`` still can: the tamper scan's.)"""

    def __init__(cls, *args):
        super().__init__(*args)
        type.__setattr__(cls, "_sealed", True)

    def __setattr__(cls, name, value):
        if getattr(cls, "_sealed", False):
            raise AttributeError(f"{cls.__name__} is read-only: test cells rely on it")
        super().__setattr__(name, value)

    def __delattr__(cls, name):
        raise AttributeError(f"{cls.__name__} is read-only: test cells rely on it")


class ForbiddenCallError(AssertionError):
    """The solution called an operation the exercise asks to implement by hand."""


# `nbgrader validate` (and its JupyterLab button) cuts every line of a message at
# Validator.width - 3 characters; nbgrader_config.py sets the width to 120, and messages
# are wrapped to lines that fit beside "    AssertionError: ".
MESSAGE_WIDTH = 96


# `__tracebackhide__ = True` in a check: IPython leaves its frame out of a failure's traceback,
# so a student reads their own cell's line and the message, not this module's code.


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
    __tracebackhide__ = True
    text = f"{name}: {message}"
    if hint:
        hint = hint[:1].upper() + hint[1:] + ("" if hint[-1] in ".?!" else ".")
        text = f"{hint}\n{text}"
    raise AssertionError(wrap_message(text))


_fail = fail


def _plain_tensor(value, name: str):
    """``value`` if it is an ordinary tensor or ``nn.Parameter``, judged by its exact type:
    ``isinstance`` also takes a subclass, whose ``__torch_function__`` can make every
    comparison pass, and an object whose ``__class__`` lies."""
    __tracebackhide__ = True
    kind = type(value)
    if kind is not _Tensor and kind is not _Parameter:
        if issubclass(kind, _Tensor):
            _fail(name, f"expected a plain torch.Tensor, got {kind.__name__} (a subclass): "
                  "return an ordinary tensor")  # fmt: skip
        _fail(name, f"expected a torch.Tensor, got {kind.__name__}")
    if _dispatch_keys(value).has(_PYTHON_KEY):  # a __torch_dispatch__ subclass, relabelled
        _fail(name, "expected a plain torch.Tensor, got one that hands its operations to "
              "Python (__torch_dispatch__): return an ordinary tensor")  # fmt: skip
    _check_torch_untouched(name)
    return value


def _check_torch_untouched(name: str) -> None:
    """Fail while torch is not in its usual state: a torch function or dispatch mode other
    than forbid's, limit_calls' or ``with torch.device(...)``'s still switched on (left on
    by a solution cell, it could hand the test cell's reference computation the student's
    answer), or torch functions or Python dispatch switched off (which would blind
    :func:`forbid`)."""
    __tracebackhide__ = True
    (n_fn, fn_at), (n_disp, disp_at) = _function_modes, _dispatch_modes
    modes = [fn_at(i) for i in range(n_fn())] + [disp_at(i) for i in range(n_disp())]
    others = [type(m).__name__ for m in modes if type(m) not in _OUR_MODES]
    what = f"a torch mode ({', '.join(others)})" if others else ""
    if not what and _torch_function_off():
        what = "torch._C.DisableTorchFunction"
    if not what and _python_key_excluded(_PYTHON_KEY):
        what = "torch._C._DisableTorchDispatch"
    if what:
        _fail(
            name,
            f"{what} is still switched on, so torch does not compute what this test expects",
            hint="switch off whatever your code switches on before it returns",
        )


def _exact_number(value) -> int | float | None:
    """``value`` as an exact int or float, or None if it is not a number (bool is not).
    Subclasses of int and float (numpy's float64 is one) are read through the base type's
    own slot, so one that overrides ``__eq__``, ``__float__`` or ``__index__`` cannot lie."""
    kind = type(value)
    if kind is bool:
        return None
    if issubclass(kind, int):
        return int.__index__(value)
    if issubclass(kind, float):
        return float.__float__(value)
    return None


def _first_index(mask) -> tuple[int, ...]:
    """The index of the first True in a bool tensor (call inside ``_plain()``)."""
    return tuple(_T.tolist(_T.select(_VF.nonzero(mask), 0, 0)))


def run_exercise(
    fn: Callable, *args, name: str | None = None, may_change: Iterable[str] = (), **kwargs
):
    """Call the student's ``fn`` and return what it returns, failing readably when

    - ``fn``, or a function it calls, still raises ``NotImplementedError`` (the message
      names the function that raised);
    - ``fn`` changes a tensor argument in place, unless that argument's name is in
      ``may_change`` (batch norm's running statistics, say).
    """
    __tracebackhide__ = True
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
        with _plain():  # NaN equals NaN here
            nan = _VF.logical_and(_VF.isnan(tensor), _VF.isnan(copy))
            same = _T.size(tensor) == _T.size(copy) and _T.item(
                _VF.all(_VF.logical_or(_VF.eq(tensor, copy), nan))
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
    with _plain():
        return {
            k: (v, _T.clone(_T.detach(v)))
            for k, v in bound.items()
            if isinstance(v, _Tensor) and k not in may_change
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
    """``actual`` is a plain tensor of shape ``expected_shape``."""
    __tracebackhide__ = True
    _plain_tensor(actual, name)
    expected_shape = tuple(expected_shape)
    if tuple(_T.size(actual)) != expected_shape:
        _fail(name, f"expected shape {expected_shape}, got {tuple(_T.size(actual))}")


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

    ``actual`` must be a plain ``torch.Tensor`` (or ``nn.Parameter``), not a subclass. The
    message for a value mismatch names how many entries differ, the largest difference and
    the first index where it happens.
    """
    __tracebackhide__ = True
    check_shape(actual, _T.size(expected), name)
    if check_dtype and _dtype(actual) != _dtype(expected):
        _fail(name, f"expected dtype {_dtype(expected)}, got {_dtype(actual)}")
    with _plain():
        a = _T.to(_T.detach(actual), "cpu", _FLOAT64)
        e = _T.to(_T.detach(expected), "cpu", _FLOAT64)
        nan_a, nan_e = _VF.isnan(a), _VF.isnan(e)
        if not _VF.equal(nan_a, nan_e):
            _fail(
                name,
                "NaN where none is expected (or the reverse), first at index "
                f"{_first_index(_VF.logical_xor(nan_a, nan_e))}; "
                "look for a division by zero or an exp that overflows",
            )
        a, e = _VF.masked_fill(a, nan_a, 0), _VF.masked_fill(e, nan_e, 0)
        diff = _VF.abs(_VF.sub(a, e))
        bad = _VF.gt(diff, _VF.add(_VF.mul(_VF.abs(e), rtol), atol))
        if _T.item(_VF.any(bad)):
            first = _first_index(bad)
            _fail(
                name,
                f"{_T.item(_VF.sum(bad))} of {_T.numel(bad)} values differ from the reference "
                f"(largest difference {_T.item(_VF.max(diff)):.3g}); first at index {first}: "
                f"expected {_T.item(_T.__getitem__(e, first)):.6g}, "
                f"got {_T.item(_T.__getitem__(a, first)):.6g}",
            )


def check_close(
    actual, expected, name: str = "output", *, rtol: float = 1e-4, atol: float = 1e-5
) -> None:
    """:func:`check_tensor` without the dtype check (for float32 vs float64 answers)."""
    __tracebackhide__ = True
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
    """A numeric answer (a size, a count); exact unless tolerances are given.

    ``actual`` may be an int, a float (numpy's float64 too) or a one-element plain tensor;
    the comparison is made on the value read from it, whatever its class says.
    """
    __tracebackhide__ = True
    _check_torch_untouched(name)
    got = actual
    if issubclass(type(actual), _Tensor) and _T.numel(_plain_tensor(actual, name)) == 1:
        with _plain():
            got = _T.item(actual)
    got = _exact_number(got)
    if got is None:
        _fail(name, f"expected a number, got {type(actual).__name__} ({actual!r})")
    want = _exact_number(expected)
    if want is None:  # the test's own answer: a numpy or torch scalar is fine here
        want = expected.item()
    if type(got) is int and type(want) is int and not (rel or abs_tol):
        same = got == want  # exact, also beyond the 2**53 a float holds
    else:
        same = isclose(got, want, rel_tol=rel, abs_tol=abs_tol)
    if not same:
        _fail(name, f"expected {want!r}, got {got!r}", hint=hint)


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
    __tracebackhide__ = True
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
    __tracebackhide__ = True
    pairs = {k: (v if isinstance(v, tuple) else (v, v)) for k, v in inputs.items() if v is not None}
    pairs = {k: v for k, v in pairs.items() if v[0] is not None}
    with _plain():
        weight = _VF.randn(_T.size(expected), generator=generator, dtype=_dtype(expected))
        weight = _T.to(weight, _device(expected))
    theirs = _autograd_grad(expected, [r for _, r in pairs.values()], weight)
    is_tensor = issubclass(type(actual), _Tensor)
    if is_tensor:
        _plain_tensor(actual, name)  # a subclass fails here
    if not is_tensor or _grad_fn(actual) is None:
        first = next(iter(pairs))
        _fail(name, f"no gradient reaches {first}: {_KEEP_THE_GRAPH}")
    with _plain():
        weight = _T.to(weight, _dtype(actual))
    mine = _autograd_grad(actual, [m for m, _ in pairs.values()], weight, allow_unused=True)
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
    __tracebackhide__ = True
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
    """An exact int: not a bool, and not an int subclass that could lie in ``__eq__``."""
    return type(value) is int


def table_row(
    table, row: str, *, table_name: str = "the table", macs: bool = False
) -> tuple[tuple[int, ...], int] | tuple[tuple[int, ...], int, int]:
    """The ``(output shape, parameter count)`` a student wrote in one row of a layer table,
    or with ``macs=True`` the ``(output shape, parameter count, multiply-accumulates)``.

    Layer tables are dicts ``{layer: (shape, params)}`` (or ``(shape, params, macs)``)
    whose skeleton holds ``None``s. Checks the format only and says what is missing, so
    visible tests can call it without giving the answer away. The row returned is made of
    exact tuples and ints, so the test cell's own comparisons with it cannot be fooled.
    """
    if not isinstance(table, dict):
        raise AssertionError(f"{table_name}: expected a dict, got {type(table).__name__}")
    # dict's own methods: a dict subclass could answer differently each time it is asked
    if not dict.__contains__(table, row):
        raise AssertionError(f"{table_name} has no row {row!r}: keep the keys of the skeleton")
    entry = dict.__getitem__(table, row)
    size, what = (3, "a triple (output shape, number of parameters, MACs)") if macs else (
        2, "a pair (output shape, number of parameters)")  # fmt: skip
    if type(entry) is not tuple or len(entry) != size:
        _fail(f"row {row}", f"expected {what}, got {entry!r}")
    if any(v is None for v in entry):
        fields = "output shape, number of parameters" + (", MACs" if macs else "")
        raise AssertionError(f"row {row} is not filled in yet: replace the Nones with ({fields})")
    shape, params = entry[:2]
    if type(shape) is not tuple or not shape or not all(_is_int(v) for v in shape):
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
    if not (type(shape) is tuple and len(shape) == 3 and all(_is_int(v) for v in shape)):
        return None
    out = (
        channels or shape[0],
        (shape[1] - kernel_size) // stride + 1,
        (shape[2] - kernel_size) // stride + 1,
    )
    return out if min(out) >= 1 else None


def check_shape_answer(actual, expected: Iterable[int], name: str, hint: str = "") -> None:
    """A shape the student worked out by hand (a tuple, list or ``torch.Size`` of ints),
    without the batch dim.

    Recognises two common slips and says so instead of ``hint``: writing the batch
    dimension, and putting the channels last.
    """
    __tracebackhide__ = True
    expected = tuple(int(v) for v in expected)
    if type(actual) not in (tuple, list, _Size) or not all(_is_int(v) for v in actual):
        _fail(
            name,
            f"expected output shape {expected}, a tuple of ints, got {actual!r}",
            hint=hint or "write each size as an int (// keeps it an int, / does not)",
        )
    actual = tuple(actual)  # compared as exact ints from here on
    if actual == expected:
        return
    if len(actual) == len(expected) + 1 and actual[1:] == expected:
        hint = "leave out the batch dimension"
    elif len(actual) == len(expected) > 1 and actual == expected[1:] + expected[:1]:
        hint = "write the channels first: (C, H, W)"
    _fail(name, f"expected output shape {expected}, got {actual}", hint=hint)


# Each family's torch spellings, captured at import (a later `F.conv2d = ...` does not
# unban the real one); _op_families adds the cnncourse references, imported on first use
# (cnncourse.layers imports this module).
_TORCH_FAMILIES: dict[str, tuple[Callable, ...]] = {
    "conv": (F.conv1d, F.conv2d, F.conv3d, F.conv_transpose2d, torch.convolution),
    "max_pool": (F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices,
                 F.adaptive_max_pool2d, F.max_pool1d, F.max_pool3d),
    "avg_pool": (F.avg_pool2d, torch.avg_pool1d, F.adaptive_avg_pool2d, F.avg_pool1d,
                 F.avg_pool3d),
    "norm": (F.batch_norm, torch.batch_norm, F.instance_norm, F.layer_norm, F.group_norm,
             torch.native_batch_norm, F.local_response_norm),
    "softmax": (torch.softmax, F.softmax, torch.Tensor.softmax, torch.special.softmax,
                torch.log_softmax, F.log_softmax, torch.Tensor.log_softmax,
                F.scaled_dot_product_attention),
    "linear": (F.linear, torch.addmm),
    "activation": (torch.sigmoid, torch.Tensor.sigmoid, F.sigmoid, torch.relu,
                   torch.Tensor.relu, F.relu, torch.tanh, torch.Tensor.tanh, F.tanh),
    "dropout": (F.dropout, torch.dropout, F.dropout2d),
}  # fmt: skip

# The same families at the dispatcher: the aten ops that only these ops produce, below
# every Python spelling (torch._softmax, torch.ops.aten._softmax.default, torch._C._nn.linear,
# a call under DisableTorchFunction, a TorchScript function). Found by running each public
# op, forward and backward, on the CPU under a logging TorchDispatchMode (torch 2.14), plus
# the private kernels of other backends that a solution could call by name; composite ops
# (aten.conv2d, aten.batch_norm...) are not listed, as the dispatcher shows only what they
# decompose into. Backward ops are not listed either: the reference's backward may run
# inside a forbid block. What honest from-scratch code produces stays allowed, so some
# spellings cannot be told apart here and only the first layer catches them: a bias-free
# F.linear is aten.mm like `x @ w.T`, F.dropout on the CPU is bernoulli_ and mul like a
# hand-made mask, F.adaptive_avg_pool2d(x, 1) is a mean, F.local_response_norm is
# avg_pool3d and arithmetic.
_ATEN_NAMES = {
    "conv": "convolution _convolution convolution_overrideable conv_tbc mkldnn_convolution "
            "cudnn_convolution cudnn_convolution_transpose cudnn_convolution_relu "
            "cudnn_convolution_add_relu miopen_convolution miopen_convolution_transpose "
            "miopen_depthwise_convolution miopen_convolution_relu miopen_convolution_add_relu "
            "_slow_conv2d_forward slow_conv3d_forward slow_conv_dilated2d slow_conv_dilated3d "
            "slow_conv_transpose2d slow_conv_transpose3d _conv_depthwise2d conv_depthwise3d "
            "_nnpack_spatial_convolution mps_convolution",
    "max_pool": "max_pool2d_with_indices max_pool3d_with_indices adaptive_max_pool2d "
                "adaptive_max_pool3d mkldnn_max_pool2d mkldnn_max_pool3d quantized_max_pool1d "
                "quantized_max_pool2d quantized_max_pool3d _mps_max_pool2d",
    "avg_pool": "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d "
                "adaptive_avg_pool3d _adaptive_avg_pool2d _adaptive_avg_pool3d "
                "mkldnn_adaptive_avg_pool2d",
    "norm": "native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training "
            "_native_batch_norm_legit_functional _batch_norm_with_update "
            "_batch_norm_with_update_functional _batch_norm_no_update cudnn_batch_norm "
            "miopen_batch_norm batch_norm_elemt batch_norm_stats native_layer_norm "
            "native_group_norm",
    "softmax": "softmax _softmax log_softmax _log_softmax _safe_softmax _masked_softmax "
               "_sparse_softmax _sparse_log_softmax "
               # attention kernels take a softmax inside
               "_scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_flash_attention "
               "_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention "
               "_scaled_dot_product_fused_attention_overrideable _flash_attention_forward "
               "_scaled_dot_product_attention_math_for_mps _efficient_attention_forward "
               "_native_multi_head_attention",
    "linear": "linear addmm addmm_ _addmm_activation mkldnn_linear _mps_linear",
    "activation": "relu relu_ sigmoid sigmoid_ tanh tanh_",
    "dropout": "native_dropout _fused_dropout",
}  # fmt: skip
# {family: {overload packet: "aten.name"}}, for the ops this build of torch has
_ATEN_FAMILIES = {
    family: {p: f"aten.{n}" for n in names.split() if (p := getattr(torch.ops.aten, n, None))}
    for family, names in _ATEN_NAMES.items()
}


def _op_families() -> dict[str, tuple[Callable, ...]]:
    from . import layers

    references = {
        "conv": (layers.conv2d,),
        "max_pool": (layers.max_pool2d,),
        "avg_pool": (layers.avg_pool2d, layers.global_avg_pool2d),
        "norm": (layers.batch_norm, layers.local_response_norm),
        "linear": (layers.linear,),
        "activation": (layers.relu, layers.sigmoid),
        "dropout": (layers.dropout,),
    }
    return {k: ops + references.get(k, ()) for k, ops in _TORCH_FAMILIES.items()}


# The names test cells pass to `forbid` instead of spelling out every variant of an op.
OP_FAMILIES = ("conv", "max_pool", "avg_pool", "norm", "softmax", "linear", "activation",
               "dropout")  # fmt: skip


def op_family(name: str) -> tuple[Callable, ...]:
    """Every spelling of one kind of op, and its cnncourse reference: what ``forbid(name)``
    bans (and, at the dispatcher, the aten ops they reach). ``name`` is one of
    :data:`OP_FAMILIES`."""
    families = _op_families()
    if name not in families:
        raise ValueError(f"name={name!r}: expected one of {', '.join(OP_FAMILIES)}")
    return families[name]


class _Forbid(TorchFunctionMode, metaclass=_Sealed):
    """forbid's first layer: sees each torch function, Tensor method and F op by the name
    the student called, before torch decomposes it."""

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


class _ForbidAten(TorchDispatchMode, metaclass=_Sealed):
    """forbid's second layer: sees every aten op at the dispatcher, whatever its Python
    spelling, also under ``DisableTorchFunction``, which hides calls from the first."""

    def __init__(self, banned: dict, exercise: str) -> None:
        super().__init__()
        self.banned = banned
        self.exercise = exercise

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # no torch._dynamo wrapper: an import, and a cost
        return False  # on every op, for a mode that never meets torch.compile

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = self.banned.get(func.overloadpacket)
        if name is not None:
            raise ForbiddenCallError(
                wrap_message(
                    f"Write it yourself from basic tensor operations.\n{self.exercise} calls "
                    f"{name} (a private spelling of the op this exercise asks you to write "
                    "yourself)"
                )
            )
        return func(*args, **(kwargs or {}))


# Reference functions in cnncourse that an exercise may forbid are wrapped by
# `reference`; `forbid` marks them as banned for the duration of a test block.
_banned_references: ContextVar[dict[Callable, str] | None] = ContextVar(
    "_banned_references", default=None
)
_references: set[Callable] = set()  # every wrapper `reference` made


def reference(fn: Callable) -> Callable:
    """Mark a cnncourse reference implementation so test cells can forbid calling it.

    The wrapper costs one context-variable lookup per call. It survives
    ``from cnncourse.layers import conv2d``, which patching the module would not. It has
    ``fn``'s name, docstring and signature but no ``__wrapped__``, through which a solution
    could call ``fn`` unguarded.
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

    wrapper.__signature__ = inspect.signature(fn)
    del wrapper.__wrapped__
    _references.add(wrapper)
    return wrapper


@contextmanager
def _switched_on(mode, stack, label: str):
    """``with mode:``, checking that the mode really is on top of its stack: a solution cell
    could have patched the Python code torch pushes modes with."""
    length, at = stack
    mode.__enter__()
    if not (length() and at(length() - 1) is mode):
        raise AssertionError(
            wrap_message(
                f"Leave torch's mode machinery alone.\n{label} could not switch its guard on: "
                "torch.overrides or torch.utils._python_dispatch was changed"
            )
        )
    try:
        yield mode
    finally:
        mode.__exit__(None, None, None)


@contextmanager
def forbid(*funcs: Callable | str, exercise: str = "your solution"):
    """Fail any call, inside the block, to the functions in ``funcs``.

    A string names a whole family of ops (see :func:`op_family`): ``forbid("conv")``
    bans ``F.conv2d``, ``torch.convolution``, ``cnncourse.layers.conv2d`` and their kin.

    Two layers watch the block. torch functions and Tensor methods are caught through
    ``torch.overrides.TorchFunctionMode``, so ``torch.softmax(x)``, ``F.softmax(x)`` and
    ``x.softmax()`` are all seen, however the student spells the call; cnncourse
    references wrapped with :func:`reference` are caught too. For a family, a
    ``TorchDispatchMode`` also sees the aten ops only that family produces
    (``aten._softmax``), which private spellings (``torch._softmax``,
    ``torch.ops.aten._softmax.default``) and calls under ``DisableTorchFunction`` reach.
    """
    _check_torch_untouched(exercise)
    aten = {p: n for f in funcs if isinstance(f, str) for p, n in _ATEN_FAMILIES[f].items()}
    torch_funcs: dict[Callable, str] = {}
    refs = dict(_banned_references.get() or {})
    funcs = [g for f in funcs for g in (op_family(f) if isinstance(f, str) else (f,))]
    for f in funcs:
        if f in _references:
            refs[f] = exercise
            continue
        try:
            torch_funcs[f] = resolve_name(f) or getattr(f, "__qualname__", repr(f))
        except Exception:  # noqa: BLE001 -- resolve_name is only defined for torch callables
            torch_funcs[f] = getattr(f, "__qualname__", repr(f))
    low = _ForbidAten(aten, exercise)
    low = _switched_on(low, _dispatch_modes, "forbid") if aten else nullcontext()
    token = _banned_references.set(refs)
    try:
        with _switched_on(_Forbid(torch_funcs, exercise), _function_modes, "forbid"), low:
            yield
    finally:
        _banned_references.reset(token)


class _CallCounter(TorchFunctionMode, metaclass=_Sealed):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


# The modes the checks accept while they run (see _check_torch_untouched).
_OUR_MODES = (_Forbid, _ForbidAten, _CallCounter, DeviceContext)


@contextmanager
def limit_calls(max_calls: int, exercise: str = "your solution", what: str = ""):
    """Fail when the block makes more than ``max_calls`` torch calls: "vectorised" enforced.

    Every torch function, ``torch.nn.functional`` op and Tensor method or operator counts
    once (``x[i]``, ``x @ w``, ``x.sum()``...), however deep in the student's code, but not
    the calls those make themselves. A solution written with whole-tensor operations makes
    a handful whatever the input size; a Python loop over pixels or channels makes at least
    one per iteration. ``what`` describes the input ("an 8×9 map") for the message.
    """
    with _switched_on(_CallCounter(), _function_modes, "limit_calls") as counter:
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


class _ReadOnlyModule(types.ModuleType):
    """A module whose attributes cannot be set or deleted, but for what ``_may_set`` allows.

    Test cells import the checks when they run (``from cnncourse.grading import
    check_tensor``), so ``grading.check_tensor = lambda *a, **k: None`` in a solution cell
    would turn off every later check. This stops that easy patch (and ``importlib.reload``,
    which sets ``__name__`` first) only: ``vars(module)``, ``types.ModuleType.__setattr__``
    and ``sys.modules`` get round it, and the instructor's tamper scan flags those. A test
    that must replace a name can use ``monkeypatch.setitem(vars(module), name, value)``.
    """

    def __setattr__(self, name: str, value) -> None:
        if not _may_set(self, name, value):
            raise AttributeError(_read_only(self))
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(_read_only(self))


def _read_only(module) -> str:
    return f"{module.__name__} is read-only: test cells rely on its checks and references"


# {module name: its namespace when it was locked}
_originals: dict[str, Mapping[str, object]] = {}


def _may_set(module, name: str, value) -> bool:
    """What a read-only module still takes, all judged by identity: a submodule, which the
    import system adds on first import; a :func:`banned` stand-in, which a test cell puts in
    place of a reference the graded code must not call (``shapes.conv_macs``), and the
    value the name had when the module was locked, which puts the reference back."""
    if name[:2] == "__":
        return False
    if name not in vars(module):
        return isinstance(value, types.ModuleType)
    is_stand_in = type(value) is types.FunctionType and value.__code__ is _STAND_IN_CODE
    return is_stand_in or value is _originals[module.__name__].get(name)


def lock_modules(*names: str) -> None:
    """Make the modules ``names`` (those already imported) refuse attribute assignment and
    deletion, as this one does: see ``_ReadOnlyModule``."""
    for name in names:
        module = sys.modules.get(name)
        if type(module) is types.ModuleType:
            _originals[name] = types.MappingProxyType(dict(vars(module)))
            module.__class__ = _ReadOnlyModule


_STAND_IN_CODE = banned("", "").__code__  # every stand-in runs this code, which only raises
lock_modules(__name__)
