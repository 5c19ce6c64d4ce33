"""cnncourse.grading: checks fail with messages that say what differs; forbid catches ops."""

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse import grading


def msg(pattern: str) -> re.Pattern:
    """A pattern for a failure message, whose lines are wrapped: a space matches any run of
    whitespace, a line break included."""
    return re.compile(pattern.replace(" ", r"\s+"), re.S | re.I)


def test_check_tensor_reports_type_shape_dtype_then_values():
    ref = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(AssertionError, match=msg("out: expected a torch.Tensor, got list")):
        grading.check_tensor([1, 2], ref, "out")
    with pytest.raises(AssertionError, match=msg(r"expected shape \(2, 2\), got \(4,\)")):
        grading.check_tensor(ref.flatten(), ref, "out")
    with pytest.raises(AssertionError, match=msg("expected dtype torch.float32, got .*float64")):
        grading.check_tensor(ref.double(), ref, "out")
    bad = ref.clone()
    bad[1, 0] = 3.5
    with pytest.raises(
        AssertionError, match=msg(r"1 of 4 values differ.*index \(1, 0\): expected 3, got 3.5")
    ):
        grading.check_tensor(bad, ref, "out")
    with pytest.raises(AssertionError, match=msg("NaN")):
        grading.check_tensor(ref / 0 * 0, ref, "out")
    grading.check_tensor(ref + 1e-7, ref, "out")  # within tolerance
    grading.check_close(ref.double(), ref, "out")  # dtype not checked


def test_check_number():
    grading.check_number(55, 55, "conv1 size")
    grading.check_number(torch.tensor(27), 27)
    with pytest.raises(
        AssertionError, match=msg("^Check the padding.\nconv1 size: expected 55, got 54")
    ):
        grading.check_number(54, 55, "conv1 size", hint="check the padding")
    with pytest.raises(AssertionError, match=msg("expected a number, got str")):
        grading.check_number("55", 55)
    with pytest.raises(AssertionError, match=msg("expected a number, got bool")):
        grading.check_number(True, 1)


def test_run_exercise_explains_not_implemented():
    def todo(x):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match=msg("todo: not implemented yet")):
        grading.run_exercise(todo, 1)
    assert grading.run_exercise(lambda x: x + 1, 1) == 2

    def outer(x):  # written, but calls a helper that is still a stub
        return todo(x) + 1

    with pytest.raises(AssertionError, match=msg("write todo first.*outer: it calls todo")):
        grading.run_exercise(outer, 1)


def test_run_exercise_catches_inputs_changed_in_place():
    def shift(x, running):
        running.add_(1)  # allowed: named in may_change
        x -= x.max()
        return x

    x, running = torch.tensor([1.0, 2.0]), torch.zeros(2)
    with pytest.raises(AssertionError, match=msg("shift: it changed its argument x in place")):
        grading.run_exercise(shift, x, running, may_change=("running",))
    assert torch.equal(running, torch.ones(2))
    nan = torch.tensor([float("nan"), 1.0])
    grading.run_exercise(lambda x: x * 2, nan)  # NaN equals NaN here

    class Scale(torch.nn.Module):  # called through forward(*args, **kwargs)
        def forward(self, x):
            return x.mul_(2)

    with pytest.raises(AssertionError, match=msg("Scale: it changed its argument #0 in place")):
        grading.run_exercise(Scale(), torch.ones(2), name="Scale")


def test_messages_are_wrapped_for_nbgrader_validate():
    with pytest.raises(AssertionError) as info:
        grading.check_number(1, 2, "a" * 30, hint="word " * 40)
    lines = str(info.value).splitlines()
    assert len(lines) > 2 and all(len(line) <= grading.MESSAGE_WIDTH for line in lines)
    assert lines[0].startswith("Word word") and lines[-1].endswith("expected 2, got 1")


def test_with_reference_swaps_helpers_and_notes_the_student_slip(capsys):
    namespace = {"size": lambda n: n - 1}  # the student's helper, off by one

    def uses_size(n):
        return namespace["size"](n) * 2

    with grading.with_reference(namespace, size=lambda n: n, probes={"size": [(3,)]}):
        assert uses_size(3) == 6
    assert "note: your size(3,) differs from the reference" in capsys.readouterr().out
    assert uses_size(3) == 4  # restored
    with grading.with_reference(namespace, loops=grading.banned("loops", "fast", "too slow")):
        with pytest.raises(grading.ForbiddenCallError, match=msg("too slow.\nfast calls loops")):
            namespace["loops"]()
    assert "loops" not in namespace


@pytest.mark.parametrize(
    "call",
    [
        lambda x: torch.softmax(x, -1),
        lambda x: F.softmax(x, -1),
        lambda x: x.softmax(-1),
        lambda x: torch.special.softmax(x, -1),
    ],
)
def test_forbid_catches_every_spelling(call):
    x = torch.randn(2, 3)
    with pytest.raises(grading.ForbiddenCallError, match=msg("my_softmax calls .*softmax")):
        with grading.forbid(
            torch.softmax,
            F.softmax,
            torch.Tensor.softmax,
            torch.special.softmax,
            exercise="my_softmax",
        ):
            call(x)


def test_forbid_allows_other_ops_and_ends_with_the_block():
    x = torch.randn(2, 3)
    with grading.forbid(torch.softmax, F.conv2d):
        y = x.exp() / x.exp().sum(-1, keepdim=True)
    torch.testing.assert_close(y, torch.softmax(x, -1))  # allowed again after the block


def test_forbid_catches_wrapped_cnncourse_references_even_when_imported_by_name():
    @grading.reference
    def double(x):
        return 2 * x

    double.__module__ = "cnncourse.fake"
    alias = double  # like `from cnncourse.layers import conv2d`
    assert alias(2) == 4
    with pytest.raises(grading.ForbiddenCallError, match=msg("exercise_x calls")):
        with grading.forbid(double, exercise="exercise_x"):
            alias(3)
    assert alias(3) == 6


def test_copy_weights_pairs_tensors_by_position_and_names_mismatches():
    from torch import nn

    src = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LazyLinear(3))
    src(torch.randn(2, 1, 5, 5))  # materialise the lazy layer
    src[1].running_mean.normal_()

    class Named(nn.Module):  # other names, same order and shapes
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm2d(2)
            self.fc = nn.Linear(18, 3)

        def forward(self, x):
            return self.fc(self.bn(self.conv(x)).flatten(1))

    dst = grading.copy_weights(src, Named())
    src.eval()
    dst.eval()
    x = torch.randn(4, 1, 5, 5)
    torch.testing.assert_close(dst(x), src(x))
    torch.testing.assert_close(dst.bn.running_mean, src[1].running_mean)

    wider = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3))
    with pytest.raises(AssertionError, match=msg(r"weight #0: the reference's 0.weight has shape")):
        grading.copy_weights(src, wider)
    # a missing bias shifts every later tensor by one: caught where the shapes part ways
    no_bias = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    with pytest.raises(AssertionError, match=msg(r"running_var has shape \(2,\) but yours")):
        grading.copy_weights(src, no_bias)
    with pytest.raises(
        AssertionError, match=msg("the reference has 9 parameter and buffer tensors, yours has 2")
    ):
        grading.copy_weights(src, nn.Sequential(nn.Conv2d(1, 2, 3)))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([1, 2], "expected a dict"),
        ({}, "no row 'C1'"),
        ({"C1": (None, None)}, "not filled in yet"),
        ({"C1": ((6, 28, 28),)}, "expected a pair"),
        ({"C1": ([6, 28, 28], 156)}, "tuple of ints"),
        ({"C1": ((6, 28.0, 28), 156)}, "tuple of ints"),
        ({"C1": ((6, 28, 28), 156.0)}, "should be an int"),
        ({"C1": ((6, 28, 28), True)}, "should be an int"),
    ],
)
def test_table_row_says_what_is_wrong_with_the_format(table, message):
    with pytest.raises(AssertionError, match=message):
        grading.table_row(table, "C1", table_name="LENET_TABLE")


def test_table_row_returns_a_well_formed_row():
    assert grading.table_row({"F5": ((120,), 48120)}, "F5") == ((120,), 48120)


def test_table_row_with_macs_takes_triples():
    row = ((96, 55, 55), 34944, 105415200)
    assert grading.table_row({"conv1": row}, "conv1", macs=True) == row
    for entry, message in [
        (((96, 55, 55), 34944), "expected a triple"),
        ((None, None, None), "not filled in yet"),
        (((96, 55, 55), 34944, 1.5e8), "multiply-accumulates should be an int"),
    ]:
        with pytest.raises(AssertionError, match=message):
            grading.table_row({"conv1": entry}, "conv1", macs=True)


def test_check_shape_answer_names_common_slips():
    grading.check_shape_answer((6, 28, 28), (6, 28, 28), "C1")
    with pytest.raises(AssertionError, match=msg("leave out the batch dimension")):
        grading.check_shape_answer((1, 6, 28, 28), (6, 28, 28), "C1")
    with pytest.raises(AssertionError, match=msg("channels first")):
        grading.check_shape_answer((28, 28, 6), (6, 28, 28), "C1")
    with pytest.raises(AssertionError, match=msg(r"No padding.\nC1: expected output shape "
                                                 r"\(6, 28, 28\), got \(6, 32, 32\)")):  # fmt: skip
        grading.check_shape_answer((6, 32, 32), (6, 28, 28), "C1", hint="no padding")


# One ordinary call of each family, written the way a student would.
FAMILY_CALLS = {
    "conv": lambda x: F.conv2d(x, torch.ones(1, 3, 1, 1)),
    "max_pool": lambda x: F.max_pool2d(x, 2),
    "avg_pool": lambda x: x.mean(dim=(2, 3)) + F.avg_pool2d(x, 2).sum(),
    "norm": lambda x: F.batch_norm(x, None, None, training=True),
    "softmax": lambda x: x.softmax(dim=1),
    "linear": lambda x: F.linear(x.flatten(1), torch.ones(2, 48)),
    "activation": lambda x: torch.sigmoid(x),
    "dropout": lambda x: F.dropout(x, 0.5),
}


def test_every_family_has_a_sample_call():
    assert set(FAMILY_CALLS) == set(grading.OP_FAMILIES)


@pytest.mark.parametrize("family", grading.OP_FAMILIES)
def test_forbid_by_family_name(family):
    x = torch.randn(2, 3, 4, 4)
    with grading.forbid(family, exercise="ex"):
        with pytest.raises(grading.ForbiddenCallError, match=msg("ex calls")):
            FAMILY_CALLS[family](x)
    FAMILY_CALLS[family](x)  # allowed again after the block
    ops = grading.op_family(family)
    refs = [f for f in ops if getattr(f, "__module__", "").startswith("cnncourse")]
    assert refs or family == "softmax", f"{family}: its cnncourse reference is not banned"


def test_op_family_names_the_families():
    with pytest.raises(ValueError, match=msg("name='convolution'.*conv, max_pool")):
        grading.op_family("convolution")


def test_check_grads_names_the_gradient_that_is_missing_or_differs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, generator=gen, requires_grad=True)
    w = torch.randn(3, 3, generator=gen, requires_grad=True)
    grading.check_grads(x @ w, x @ w, {"x": x, "w": w, "bias": None}, "x @ w", generator=gen)
    with pytest.raises(AssertionError, match=msg("no gradient reaches w")):
        grading.check_grads(x @ w.detach(), x @ w, {"x": x, "w": w}, "x @ w")
    with pytest.raises(AssertionError, match=msg("no gradient reaches x")):
        with torch.no_grad():
            out = x @ w
        grading.check_grads(out, x @ w, {"x": x, "w": w}, "x @ w")
    # right values for x's gradient, wrong for w's: the message names w
    wrong = x @ w.detach() + x.detach() @ (w * 2) - (x.detach() @ w).detach() * 2
    with pytest.raises(AssertionError, match=msg("gradient with respect to w, x @ w: 9 of 9")):
        grading.check_grads(wrong + (x @ w).detach() * 0, x @ w, {"x": x, "w": w}, "x @ w")
    # separate copies on each side, as for a module and its reference
    x2 = x.detach().clone().requires_grad_(True)
    grading.check_grads(x2 * 2, x * 2, {"input": (x2, x)}, "double")


def test_check_raises_wants_the_error_and_the_argument_name():
    def f(size, stride=1):
        if stride < 1:
            raise ValueError(f"stride={stride}: must be positive")
        if size < 0:
            raise ValueError("bad")
        return size

    grading.check_raises(f, 3, stride=0, argument="stride")
    with pytest.raises(AssertionError, match=msg(r"name the argument 'size'.\nf\(-1\): raised")):
        grading.check_raises(f, -1, argument="size")
    with pytest.raises(AssertionError, match=msg(r"f\(3\): should raise ValueError: too small")):
        grading.check_raises(f, 3, why="too small")
    # another exception is not the promised one: said so, with what was raised instead
    with pytest.raises(
        AssertionError,
        match=msg(
            r"^Check the arguments .*f\('3'\): should raise ValueError: a str; it raised "
            r"TypeError \('<' not supported"
        ),
    ):
        grading.check_raises(f, "3", why="a str")


def test_random_batch_norm_differs_in_every_statistic():
    bn = grading.random_batch_norm(4, generator=torch.Generator().manual_seed(1))
    assert isinstance(bn, torch.nn.BatchNorm2d)
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var - 1):
        assert t.detach().abs().min() > 0 and len(set(t.tolist())) == 4
    assert isinstance(grading.random_batch_norm(3, ndim=2), torch.nn.BatchNorm1d)


def test_window_shape_follows_the_row_before():
    assert grading.window_shape((6, 28, 28), 2, 2) == (6, 14, 14)
    assert grading.window_shape((6, 15, 15), 5, 1, channels=16) == (16, 11, 11)
    assert grading.window_shape((6, 3, 3), 5) is None  # nothing left
    assert grading.window_shape((6, 28), 2, 2) is None and grading.window_shape(None, 2) is None
    assert grading.window_shape((6, 28.0, 28), 2, 2) is None


def test_limit_calls_passes_vectorised_code_and_fails_loops():
    x, w = torch.randn(2, 3, 4, 5), torch.randn(6, 3)

    def vectorised(x, w):
        return torch.einsum("oc,nchw->nohw", w, x) + 1.0

    def per_pixel(x, w):
        out = x.new_zeros(2, 6, 4, 5)
        for i in range(4):
            for j in range(5):
                out[:, :, i, j] = x[:, :, i, j] @ w.T + 1.0
        return out

    with grading.limit_calls(10, "conv1x1") as counter:
        expected = vectorised(x, w)
    assert 1 <= counter.calls <= 3
    with pytest.raises(
        AssertionError, match=msg(r"^Vectorise: .*conv1x1 made \d+ torch calls for a 4×5 map")
    ):
        with grading.limit_calls(10, "conv1x1", what="a 4×5 map"):
            got = per_pixel(x, w)
    torch.testing.assert_close(got, expected)  # the loop is right, just not vectorised


def test_randomise_weights_reaches_every_parameter_and_statistic():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(5, 2))
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    grading.randomise_weights(net, torch.Generator().manual_seed(1))
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        assert not torch.equal(v, fresh[k]), f"{k} was not randomised"
    assert net[1].running_var.min() >= 0.5  # a valid variance
    # He scale for the weights: std sqrt(2 / fan_in), fan_in = 3 * 3 * 3
    assert abs(net[0].weight.std().item() - (2 / 27) ** 0.5) < 0.15
    again = grading.randomise_weights(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(5, 2)),
        torch.Generator().manual_seed(1),
    )
    for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the generator fixes every value


def test_check_module_compares_outputs_statistics_and_gradients():
    gen = torch.Generator().manual_seed(0)

    def block(relu_first=True, detach=False):
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(3)

            def forward(self, x):
                y = self.bn(self.conv(x.detach() if detach else x))
                return torch.relu(y) if relu_first else y

        return Block()

    ref = grading.randomise_weights(block(), gen)
    x = torch.randn(2, 2, 5, 5, generator=gen, requires_grad=True)
    for train in (False, True):
        mine = grading.copy_weights(ref, block())
        grading.check_module(mine, ref, x, "Block()", train=train, grads=train, generator=gen)
    with pytest.raises(AssertionError, match=msg("the ReLU.* in eval mode .* values differ")):
        mine = grading.copy_weights(ref, block(relu_first=False))
        grading.check_module(mine, ref, x, "Block()", hint="the ReLU")
    with pytest.raises(AssertionError, match=msg("no gradient reaches the input")):
        mine = grading.copy_weights(ref, block(detach=True))
        grading.check_module(mine, ref, x, "Block()", train=True, grads=True, generator=gen)

    class Momentum(nn.Module):  # a batch norm whose running statistics move differently
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(3, momentum=0.5)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)))

    with pytest.raises(AssertionError, match=msg("buffer bn.running_mean")):
        mine = grading.copy_weights(ref, Momentum())
        grading.check_module(mine, ref, x.detach(), "Block()", train=True)
