"""cnncourse.grading cannot be fooled at run time by what a solution cell can do.

Solution cells run in the kernel before the locked test cells. Each test here tries one
trick a determined student could put in a solution (a tensor subclass that lies, numbers
that lie, patched torch functions, a patched check, a private spelling of a forbidden op)
and shows the check still fails, with a message that says why; and that honest answers
and honest from-scratch code still pass.
"""

import builtins
import math
import re
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from cnncourse import grading, layers


def msg(pattern: str) -> re.Pattern:
    """A pattern for a wrapped failure message: a space matches any run of whitespace."""
    return re.compile(pattern.replace(" ", r"\s+"), re.S | re.I)


REF = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
WRONG = REF + 1


class Liar(torch.Tensor):
    """Every difference is zero and nothing is ever "any": each comparison passes."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func in (torch.sub, torch.Tensor.sub, torch.Tensor.__sub__):
            return torch.zeros_like(out)
        if func in (torch.any, torch.Tensor.any):
            return torch.tensor(False)
        return out


class DispatchLiar(torch.Tensor):
    """A wrapper subclass answering every aten op with zeros, below torch functions."""

    @staticmethod
    def __new__(cls, elem):
        return torch.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return torch.zeros(())


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class LyingInt(int):
    """Holds one value, claims another, and equals everything."""

    def __eq__(self, other):
        return True

    __hash__ = int.__hash__

    def __int__(self):
        return 55

    def __index__(self):
        return 55

    def __float__(self):
        return 55.0


class LyingFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__

    def __float__(self):
        return 55.0


# --- exact types ---------------------------------------------------------------------------


def test_a_tensor_subclass_is_refused_before_any_of_its_methods_runs():
    liar = WRONG.as_subclass(Liar)
    assert not (liar - REF).any()  # the trick works on the tensor's own methods...
    subclass = msg(r"out: expected a plain torch.Tensor, got Liar \(a subclass\): return an")
    with pytest.raises(AssertionError, match=subclass):  # ...but not in the checks
        grading.check_tensor(liar, REF, "out")
    with pytest.raises(AssertionError, match=subclass):
        grading.check_close(liar, REF, "out")
    with pytest.raises(AssertionError, match=subclass):
        grading.check_shape(liar, (2, 2), "out")
    with pytest.raises(AssertionError, match=msg(r"got Liar \(a subclass\)")):
        grading.check_number(torch.tensor(54.0).as_subclass(Liar), 55)
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(AssertionError, match=msg(r"got Liar \(a subclass\)")):
        grading.check_grads((x * 3).as_subclass(Liar), x * 2, {"x": x})


def test_a_dispatch_subclass_is_refused_even_relabelled_as_a_plain_tensor():
    liar = DispatchLiar(WRONG)
    with pytest.raises(AssertionError, match=msg(r"got DispatchLiar \(a subclass\)")):
        grading.check_tensor(liar, REF, "out")
    liar.__class__ = torch.Tensor  # type() now says Tensor; the dispatch key stays
    assert type(liar) is torch.Tensor
    with pytest.raises(AssertionError, match=msg("hands its operations to Python")):
        grading.check_tensor(liar, REF, "out")


def test_plain_tensors_and_parameters_pass():
    grading.check_tensor(REF.clone(), REF, "out")
    grading.check_tensor(torch.nn.Parameter(REF.clone()), REF, "out")
    grading.check_close(REF.double().requires_grad_(), REF, "out")
    with pytest.raises(AssertionError, match=msg(r"1 of 4 values differ.*expected 4, got 5")):
        grading.check_tensor(REF + torch.tensor([[0.0, 0.0], [0.0, 1.0]]), REF, "out")


def test_numbers_that_lie_are_read_through_their_base_type():
    with pytest.raises(AssertionError, match=msg("expected a number, got AlwaysEqual")):
        grading.check_number(AlwaysEqual(), 55)
    with pytest.raises(AssertionError, match=msg("size: expected 55, got 54$")):
        grading.check_number(LyingInt(54), 55, "size")
    with pytest.raises(AssertionError, match=msg("expected 55, got 54.0$")):
        grading.check_number(LyingFloat(54.0), 55)
    with pytest.raises(AssertionError, match=msg("expected 55, got 54.5")):
        grading.check_number(LyingFloat(54.5), 55, rel=1e-3)
    with pytest.raises(AssertionError, match=msg("expected 10000000000000000, got 1000000000")):
        grading.check_number(10**16 + 1, 10**16)  # equal as floats, not as ints
    # honest answers: ints, floats, numpy's float64 (a float), one-element tensors
    grading.check_number(LyingInt(55), 55)  # its real value is right
    grading.check_number(np.float64(55.0), 55)
    grading.check_number(27.5, np.float64(27.5))
    grading.check_number(torch.tensor(27), np.int64(27))
    grading.check_number(torch.nn.Parameter(torch.tensor(0.5)), 0.5)
    with pytest.raises(AssertionError, match=msg("expected a number, got bool")):
        grading.check_number(np.True_ == np.True_ and True, 1)


def test_shape_answers_and_table_rows_take_exact_ints_only():
    expected = (6, 28, 28)
    for lie in (AlwaysEqual(), (AlwaysEqual(), 28, 28), (LyingInt(6), 28, 28), (6.0, 28, 28)):
        with pytest.raises(AssertionError, match=msg(r"C1: expected output shape \(6, 28, 28\), "
                                                     "a tuple of ints")):  # fmt: skip
            grading.check_shape_answer(lie, expected, "C1")
    with pytest.raises(AssertionError, match=msg(r"^Use //.\nC1: .* a tuple of ints, got tensor")):
        grading.check_shape_answer(torch.tensor([6, 28, 28]), expected, "C1", hint="use //")
    for honest in ((6, 28, 28), [6, 28, 28], torch.Size([6, 28, 28])):
        grading.check_shape_answer(honest, torch.Size(expected), "C1")
    for row, message in [
        (((AlwaysEqual(), 28, 28), 156), "tuple of ints"),
        (((LyingInt(6), 28, 28), 156), "tuple of ints"),
        (((6, 28, 28), LyingInt(156)), "should be an int"),
        (AlwaysEqual(), "expected a pair"),
    ]:
        with pytest.raises(AssertionError, match=message):
            grading.table_row({"C1": row}, "C1")
    assert grading.window_shape((LyingInt(6), 28, 28), 2, 2) is None


def test_a_dict_subclass_cannot_answer_differently_each_time():
    class Shifty(dict):
        def __getitem__(self, key):
            return ((6, 28, 28), 156)

        def __contains__(self, key):
            return True

    table = Shifty(C1=((6, 32, 32), 156))
    assert grading.table_row(table, "C1") == ((6, 32, 32), 156)  # what it really holds
    with pytest.raises(AssertionError, match="no row 'C3'"):
        grading.table_row(table, "C3")


# --- captured references -------------------------------------------------------------------


def test_patched_torch_does_not_change_what_the_checks_compute():
    patched = {
        (torch.Tensor, "any"): lambda self, *a, **k: torch.tensor(False),
        (torch.Tensor, "all"): lambda self, *a, **k: torch.tensor(True),
        (torch.Tensor, "__sub__"): lambda self, other: torch.zeros_like(self),
        (torch.Tensor, "__eq__"): lambda self, other: torch.ones_like(self, dtype=torch.bool),
        (torch, "isnan"): lambda x: torch.zeros_like(x, dtype=torch.bool),
        (torch, "equal"): lambda a, b: True,
        (torch, "abs"): lambda x: torch.zeros_like(x),
        (torch.autograd, "grad"): lambda *a, **k: (torch.zeros(3),),
        (torch.testing, "assert_close"): lambda *a, **k: None,
        (math, "isclose"): lambda *a, **k: True,
    }
    saved = {key: getattr(*key) for key in patched}
    try:
        for (owner, name), value in patched.items():
            setattr(owner, name, value)
        with pytest.raises(AssertionError, match=msg("4 of 4 values differ")):
            grading.check_tensor(WRONG, REF, "out")
        with pytest.raises(AssertionError, match=msg("NaN")):
            grading.check_tensor(REF / 0 * 0, REF, "out")
        with pytest.raises(AssertionError, match=msg("expected 55, got 54.5")):
            grading.check_number(54.5, 55)

        def shift(x):
            x.add_(1)  # changes its input in place
            return x

        with pytest.raises(AssertionError, match=msg("changed its argument x in place")):
            grading.run_exercise(shift, torch.ones(2))
        x = torch.randn(3, requires_grad=True)
        with pytest.raises(AssertionError, match=msg("gradient with respect to x")):
            grading.check_grads(x * 3, x * 2, {"x": x})
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)
    assert (WRONG - REF).any()  # torch is itself again


def test_patched_builtins_do_not_change_what_the_checks_see():
    saved, said = (builtins.all, builtins.isinstance, builtins.type), []
    try:  # nothing but the checks runs while builtins lie (pytest itself would trip on it)
        builtins.all = lambda iterable: True
        builtins.isinstance = lambda obj, kind: True
        builtins.type = lambda obj: int
        for check in (
            lambda: grading.table_row({"C1": ((6, 28.0, 28), 156)}, "C1"),
            lambda: grading.check_tensor([1, 2], REF, "out"),
            lambda: grading.check_tensor(WRONG.as_subclass(Liar), REF, "out"),
        ):
            try:
                check()
            except AssertionError as err:
                said.append(str(err))
    finally:
        builtins.all, builtins.isinstance, builtins.type = saved
    assert len(said) == 3, said
    assert "tuple of ints" in said[0] and "got list" in said[1] and "(a subclass)" in said[2]


def test_a_patched_shape_attribute_does_not_hide_a_wrong_shape():
    saved = torch.Tensor.shape
    try:
        torch.Tensor.shape = property(lambda self: torch.Size([2, 2]))
        with pytest.raises(AssertionError, match=msg(r"expected shape \(2, 2\), got \(4,\)")):
            grading.check_tensor(WRONG.flatten(), REF, "out")
    finally:
        del torch.Tensor.shape  # TensorBase's own attribute shows through again
    assert torch.Tensor.shape is saved and WRONG.flatten().shape == (4,)


def test_a_mode_left_switched_on_is_refused():
    class Echo(TorchFunctionMode):  # could hand the reference computation the student's answer
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with Echo(), pytest.raises(AssertionError, match=msg(r"a torch mode \(Echo\) is still")):
        grading.check_tensor(REF.clone(), REF, "out")
    with Echo(), pytest.raises(AssertionError, match=msg(r"a torch mode \(Echo\)")):
        grading.check_number(55, 55)
    with torch._C.DisableTorchFunction():
        with pytest.raises(AssertionError, match=msg("DisableTorchFunction is still")):
            grading.check_tensor(REF.clone(), REF, "out")
        with pytest.raises(AssertionError, match=msg("DisableTorchFunction is still")):
            with grading.forbid("softmax", exercise="softmax"):
                pass
    with torch._C._DisableTorchDispatch():
        with pytest.raises(AssertionError, match=msg("_DisableTorchDispatch is still")):
            grading.check_tensor(REF.clone(), REF, "out")
    with torch.device("cpu"):  # a device context is a mode too, and harmless
        grading.check_tensor(REF.clone(), REF, "out")


# --- a read-only module --------------------------------------------------------------------


def test_the_checks_cannot_be_replaced():
    with pytest.raises(AttributeError, match="cnncourse.grading is read-only"):
        grading.check_tensor = lambda *a, **k: None
    with pytest.raises(AttributeError, match="read-only"):
        grading.forbid = None
    with pytest.raises(AttributeError, match="read-only"):
        del grading.check_number
    with pytest.raises(AttributeError, match="read-only"):
        grading.__class__ = types.ModuleType
    with pytest.raises(AttributeError, match="read-only"):
        grading.brand_new = 1
    with pytest.raises(AttributeError, match="read-only"):
        grading._Forbid.__torch_function__ = lambda self, func, *a, **k: None
    from cnncourse.grading import check_tensor

    with pytest.raises(AssertionError):
        check_tensor(WRONG, REF)


def test_lock_modules_locks_other_modules_and_leaves_submodule_imports_working():
    module = types.ModuleType("cnncourse_locked_example")
    module.value = 1
    import sys

    sys.modules[module.__name__] = module
    try:
        grading.lock_modules(module.__name__)
        with pytest.raises(AttributeError, match="cnncourse_locked_example is read-only"):
            module.value = 2
        module.child = types.ModuleType("cnncourse_locked_example.child")  # as import does
        assert module.value == 1 and module.child.__name__.endswith("child")
        # a test cell may ban a reference for a while (04_vgg bans shapes.receptive_field)...
        module.value = grading.banned("value", "ex")
        module.value = 1  # ...and put it back, but nothing else
        with pytest.raises(AttributeError, match="read-only"):
            module.value = lambda: None
        with pytest.raises(AttributeError, match="read-only"):
            module.value = 2
    finally:
        del sys.modules[module.__name__]


def test_references_have_their_signature_but_no_unguarded_way_in():
    import inspect

    assert not hasattr(layers.conv2d, "__wrapped__")
    assert "stride" in inspect.signature(layers.conv2d).parameters
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with pytest.raises(grading.ForbiddenCallError, match=msg("conv2d calls cnncourse.layers")):
        with grading.forbid("conv", exercise="conv2d"):
            layers.conv2d(x, w)


def test_forbid_refuses_to_run_when_torch_cannot_push_its_guard():
    saved = TorchFunctionMode.__enter__
    try:
        TorchFunctionMode.__enter__ = lambda self: self  # the guard would never be pushed
        with pytest.raises(AssertionError, match=msg("forbid could not switch its guard on")):
            with grading.forbid("softmax"):
                pass
        with pytest.raises(AssertionError, match=msg("limit_calls could not switch")):
            with grading.limit_calls(10):
                pass
    finally:
        TorchFunctionMode.__enter__ = saved


# --- private spellings in forbid -----------------------------------------------------------

X = torch.randn(2, 3, 6, 6)
W = torch.randn(4, 3, 3, 3)


def _disabled(call):
    def run(*args):
        with torch._C.DisableTorchFunction():
            return call(*args)

    return run


def _disabled_subclass(call):
    def run(*args):
        with torch._C.DisableTorchFunctionSubclass():
            return call(*args)

    return run


def _softmax_1(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 1)


with warnings.catch_warnings():  # torch.jit.script is deprecated, and still there
    warnings.simplefilter("ignore", FutureWarning)
    _scripted_softmax = torch.jit.script(_softmax_1)


PRIVATE_SPELLINGS = {
    "softmax": [
        lambda x: torch._softmax(x, 1, False),
        lambda x: torch.ops.aten._softmax.default(x, 1, False),
        lambda x: torch.ops.aten.softmax.int(x, 1),
        lambda x: torch._log_softmax(x, 1, False),
        _disabled(lambda x: F.softmax(x, 1)),
        _disabled(lambda x: x.log_softmax(1)),
        _disabled_subclass(lambda x: F.softmax(x, 1)),
        _scripted_softmax,  # TorchScript runs ops without torch functions
        lambda x: F.scaled_dot_product_attention(x, x, x),
    ],
    "conv": [
        lambda x: torch._C._VariableFunctions.conv2d(x, W),
        lambda x: torch.ops.aten.convolution(x, W, None, [1, 1], [0, 0], [1, 1], False, [0], 1),
        lambda x: torch.ops.aten.conv2d.default(x, W),
        lambda x: torch._convolution(
            x, W, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, False, False, True, True
        ),
        _disabled(lambda x: F.conv2d(x, W)),
        _disabled(lambda x: torch.nn.Conv2d(3, 4, 3)(x)),
    ],
    "linear": [
        _disabled(lambda x: torch._C._nn.linear(x.flatten(1), torch.ones(2, 108), torch.ones(2))),
        lambda x: torch.ops.aten.addmm(torch.ones(2), x.flatten(1), torch.ones(108, 2)),
    ],
    "activation": [
        lambda x: torch.ops.aten.relu.default(x),
        _disabled(lambda x: torch.sigmoid(x)),
        _disabled(lambda x: x.tanh()),
    ],
    "max_pool": [
        lambda x: torch.ops.aten.max_pool2d_with_indices(x, [2, 2]),
        _disabled(lambda x: F.max_pool2d(x, 2)),
    ],
    "avg_pool": [
        lambda x: torch._C._nn.avg_pool2d(x, 2),
        _disabled(lambda x: F.adaptive_avg_pool2d(x, 3)),
    ],
    "norm": [
        lambda x: torch.ops.aten._native_batch_norm_legit(
            x, None, None, torch.zeros(3), torch.ones(3), True, 0.1, 1e-5
        ),
        _disabled(lambda x: F.batch_norm(x, None, None, training=True)),
        _disabled(lambda x: F.layer_norm(x, (6,))),
    ],
    "dropout": [lambda x: torch.native_dropout(x, 0.5, True)],
}
CASES = [(family, i) for family, calls in PRIVATE_SPELLINGS.items() for i in range(len(calls))]


def test_every_family_has_private_spellings():
    assert set(PRIVATE_SPELLINGS) == set(grading.OP_FAMILIES)


@pytest.mark.parametrize(("family", "i"), CASES, ids=[f"{f}-{i}" for f, i in CASES])
def test_forbid_catches_private_spellings(family, i):
    call = PRIVATE_SPELLINGS[family][i]
    call(X)  # a working call outside the block
    # TorchScript turns an error raised inside it into a RuntimeError, and drops its message
    said = None if call is _scripted_softmax else msg("^Write it yourself.*\nex calls")
    with pytest.raises((grading.ForbiddenCallError, RuntimeError), match=said):
        with grading.forbid(family, exercise="ex"):
            call(X)


def test_the_dispatch_layer_names_the_private_spelling():
    with pytest.raises(
        grading.ForbiddenCallError,
        match=msg(r"softmax_stable calls aten._softmax \(a private spelling of the op this "
                  r"exercise asks you to write yourself\)"),
    ):  # fmt: skip
        with grading.forbid("softmax", exercise="softmax_stable"):
            torch._softmax(X, 1, False)


# What honest from-scratch solutions produce, forward and backward: never forbidden.
HONEST = {
    "softmax": lambda x: (
        (x - x.amax(1, keepdim=True)).exp()
        / (x - x.amax(1, keepdim=True)).exp().sum(1, keepdim=True)
    ),
    "conv": lambda x: (
        (W.view(4, -1) @ F.unfold(x, 3)).view(2, 4, 4, 4)
        + torch.einsum("oc,nchw->nohw", W[:, :, 0, 0], x)[..., 1:-1, 1:-1]
    ),
    "linear": lambda x: x.flatten(1) @ torch.ones(2, 108).T + torch.ones(2),
    "activation": lambda x: (
        x.clamp(min=0)
        + torch.where(x > 0, x, 0)
        + torch.maximum(x, torch.zeros(()))
        + 1 / (1 + torch.exp(-x))
    ),
    "max_pool": lambda x: (
        x.unfold(2, 2, 2).unfold(3, 2, 2).amax((-1, -2))
        + x.as_strided((2, 3, 3, 3, 2, 2), (108, 36, 12, 2, 6, 1)).amax((-1, -2))
    ),
    "avg_pool": lambda x: x.unfold(2, 2, 2).unfold(3, 2, 2).mean((-1, -2)) + x.mean((2, 3), True),
    "norm": lambda x: (
        (x - x.mean((0, 2, 3), keepdim=True))
        / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
        + torch.var_mean(x, (0, 2, 3), keepdim=True)[0]
    ),
    "dropout": lambda x: (
        x * (torch.rand_like(x) > 0.5) / 0.5
        + x * torch.bernoulli(torch.full_like(x, 0.5))
        + x * torch.empty_like(x).bernoulli_(0.5)
    ),
}


@pytest.mark.parametrize("family", grading.OP_FAMILIES)
def test_forbid_allows_honest_from_scratch_code_forward_and_backward(family):
    x = X.clone().requires_grad_()
    with grading.forbid(family, exercise="ex"):
        HONEST[family](x).sum().backward()
    assert x.grad is not None


LAYERS = {  # each cnncourse reference, from scratch, under the aten ops of its own family
    "conv": lambda x: layers.conv2d(x, W, torch.ones(4), stride=2, padding=1),
    "max_pool": lambda x: layers.max_pool2d(x, 2),
    "avg_pool": lambda x: layers.avg_pool2d(x, 2) + layers.global_avg_pool2d(x)[..., None, None],
    "norm": lambda x: layers.batch_norm(x, torch.zeros(3), torch.ones(3), torch.ones(3),
                                        torch.zeros(3), True, 0.1, 1e-5)
    + layers.local_response_norm(x, 3),
    "linear": lambda x: layers.linear(x.flatten(1), torch.ones(2, 108), torch.ones(2)),
    "activation": lambda x: layers.relu(x),  # its sigmoid is written with tanh, banned here
    "dropout": lambda x: layers.dropout(x, 0.5, True),
}  # fmt: skip


@pytest.mark.parametrize("family", sorted(LAYERS))
def test_the_references_pass_the_dispatch_layer(family):
    x = X.clone().requires_grad_()
    with grading._ForbidAten(grading._ATEN_FAMILIES[family], "ex"):
        LAYERS[family](x).sum().backward()
    assert x.grad is not None


def test_the_reference_backward_may_run_inside_a_forbid_block():
    x = X.clone().requires_grad_()
    expected = F.batch_norm(x, None, None, training=True)  # computed outside, as test cells do
    with grading.forbid("norm", exercise="batch_norm"):
        expected.sum().backward()


def test_limit_calls_counts_the_same_inside_forbid():
    def solution(x, w):
        return torch.einsum("oc,nchw->nohw", w, x) + 1.0

    x, w = torch.randn(2, 3, 4, 5), torch.randn(6, 3)
    with grading.limit_calls(100) as alone:
        solution(x, w)
    with grading.forbid("conv"), grading.limit_calls(100) as guarded:
        solution(x, w)
    assert alone.calls == guarded.calls == 2
