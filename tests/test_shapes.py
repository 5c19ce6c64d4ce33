"""cnncourse.shapes against real modules, FlopCounterMode, brute force and the lecture."""

from __future__ import annotations

import pytest
import torch
import torchvision
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnncourse import shapes

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True)


def flops(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


# ---------------------------------------------------------------------------------------
# output sizes, parameters and MACs against real modules


@st.composite
def geometries(draw):
    k = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    n = (draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    return n, k, s, p, d


@SETTINGS
@given(geometries(), st.integers(1, 3), st.booleans())
def test_conv_calculators_match_nn_conv2d(geometry, groups, bias):
    (h, w), k, s, p, d = geometry
    assume(all(d[a] * (k[a] - 1) + 1 <= (h, w)[a] + 2 * p[a] for a in range(2)))
    c_in, c_out = 2 * groups, 3 * groups
    conv = nn.Conv2d(c_in, c_out, k, s, p, d, groups=groups, bias=bias)
    with torch.no_grad():
        out = conv(torch.zeros(1, c_in, h, w))
    assert shapes.conv_output_size((h, w), k, s, p, d) == tuple(out.shape[2:])
    assert shapes.conv_params(c_in, c_out, k, bias, groups) == shapes.count_params(conv)
    macs = shapes.conv_macs(c_in, c_out, k, tuple(out.shape[2:]), groups)
    assert 2 * macs == flops(conv, torch.zeros(1, c_in, h, w))


@SETTINGS
@given(geometries(), st.booleans())
def test_pool_output_size_matches_nn_pools(geometry, ceil_mode):
    (h, w), k, s, p, d = geometry
    p = (min(p[0], k[0] // 2), min(p[1], k[1] // 2))
    assume(all(d[a] * (k[a] - 1) + 1 <= (h, w)[a] + 2 * p[a] for a in range(2)))
    x = torch.zeros(1, 1, h, w)
    out = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode)(x)
    assert shapes.pool_output_size((h, w), k, s, p, d, ceil_mode) == tuple(out.shape[2:])
    if d == (1, 1):
        out = nn.AvgPool2d(k, s, p, ceil_mode=ceil_mode)(x)
        assert shapes.pool_output_size((h, w), k, s, p, ceil_mode=ceil_mode) == tuple(out.shape[2:])


def test_int_in_int_out_pairs_in_pairs_out():
    assert shapes.conv_output_size(32, 5) == 28
    assert shapes.conv_output_size((32, 28), 5) == (28, 24)
    assert shapes.conv_output_size(32, (5, 3), padding=(0, 1)) == (28, 32)
    assert shapes.pool_output_size(28, 2) == 14  # the stride defaults to the kernel size
    assert shapes.pool_output_size(14, 2, ceil_mode=True) == 7
    assert shapes.pool_output_size(15, 2, ceil_mode=True) == 8


@pytest.mark.parametrize("bias", [True, False])
def test_linear_and_batch_norm_params_match_modules(bias):
    assert shapes.linear_params(400, 120, bias) == shapes.count_params(nn.Linear(400, 120, bias))
    assert 2 * shapes.linear_macs(400, 120) == flops(nn.Linear(400, 120, bias), torch.zeros(1, 400))
    bn = nn.BatchNorm2d(64)
    assert shapes.batch_norm_params(64) == shapes.count_params(bn) == 128
    assert shapes.batch_norm_params(64, affine=False) == shapes.count_params(
        nn.BatchNorm2d(64, affine=False)
    )


def test_count_params_counts_shared_weights_once_and_can_skip_frozen():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 2))
    assert shapes.count_params(model) == 20 + 10
    model[3].requires_grad_(False)
    assert shapes.count_params(model, trainable_only=True) == 20


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: shapes.conv_output_size(4, 5), ValueError, r"kernel_size.*spans 5.*4 \+ 2\*0 = 4"),
        (lambda: shapes.conv_output_size(8, 3, stride=0), ValueError, r"stride=0: must be >= 1"),
        (lambda: shapes.conv_output_size(8, 3, stride=-2), ValueError, r"stride=-2"),
        (lambda: shapes.conv_output_size(8, 3, padding=-1), ValueError, r"padding=-1"),
        (lambda: shapes.conv_output_size(8, 3, dilation=5), ValueError, r"dilated kernel spans 11"),
        (lambda: shapes.conv_output_size(0, 1), ValueError, r"size=0"),
        (lambda: shapes.conv_output_size(8, 2.5), TypeError, r"kernel_size=2.5"),
        (lambda: shapes.pool_output_size(8, 2, padding=2), ValueError, r"padding=2.*half"),
        (lambda: shapes.conv_params(6, 4, 3, groups=4), ValueError, r"groups=4: in_channels \(6\)"),
        (lambda: shapes.conv_params(0, 4, 3), ValueError, r"in_channels=0"),
        (lambda: shapes.conv_macs(8, 6, 3, 10, groups=4), ValueError, r"out_channels \(6\)"),
        (lambda: shapes.linear_params(10, -1), ValueError, r"out_features=-1"),
        (lambda: shapes.receptive_field([(3, 0)]), ValueError, r"stride=0"),
        (lambda: shapes.receptive_field(["conv"]), TypeError, r"layers\[0\]='conv'"),
        (lambda: shapes.summary(nn.Linear(3, 2), (3, 8)), ValueError, r"input_size=\(3, 8\)"),
        (lambda: shapes.summary(nn.Conv2d(3, 2, 3), (1, 8, 8)), ValueError, r"model failed"),
        (lambda: shapes.count_params("resnet"), TypeError, r"module: expected an nn.Module"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------
# receptive field against brute force: which input pixels move one output unit?


def brute_force_field(stack: nn.Sequential, size: int) -> tuple[int, int]:
    for m in stack:
        if isinstance(m, nn.Conv2d):
            nn.init.ones_(m.weight)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)  # ReLU passes
    out = stack.double()(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 2)), min_size=1, max_size=4
    )
)
def test_receptive_field_matches_brute_force(spec):
    stack = nn.Sequential(
        *(nn.Conv2d(1, 1, k, s, dilation=d, bias=False) for k, s, d in spec), nn.ReLU()
    )
    rf = shapes.receptive_field(spec)
    assert shapes.receptive_field(stack) == rf  # modules and tuples agree
    # an input big enough that the centre unit's field lies wholly inside it
    size = 2 * rf + 8
    assert brute_force_field(stack, size) == (rf, rf)


def test_receptive_field_of_pools_and_pairs():
    assert shapes.receptive_field([nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3)]) == 8
    assert shapes.receptive_field([((3, 1), 1), ((1, 3), 1)]) == (3, 3)
    assert shapes.receptive_field([((3, 1), (1, 1))]) == (3, 1)
    with pytest.raises(ValueError, match="not an nn.Sequential"):
        shapes.receptive_field([torchvision.models.resnet18().layer1[0]])


# ---------------------------------------------------------------------------------------
# the lecture's worked numbers, by calling the calculators


def test_lecture_alexnet_first_conv_and_pool():
    assert shapes.conv_output_size(227, 11, stride=4) == 55  # (227 - 11) / 4 + 1 = 55
    assert shapes.conv_params(3, 96, 11) == 34_944  # (11*11*3 + 1) * 96 = "35K"
    assert shapes.pool_output_size(55, 3, stride=2) == 27  # (55 - 3) / 2 + 1 = 27
    assert shapes.count_params(nn.MaxPool2d(3, 2)) == 0  # "Zero!"


def test_lecture_three_3x3_convs_against_one_7x7():
    assert shapes.receptive_field([(3, 1)] * 3) == shapes.receptive_field([(7, 1)]) == 7
    c = 64  # 3 * (3^2 C^2) against 7^2 C^2 weights for C channels per layer
    three = 3 * shapes.conv_params(c, c, 3, bias=False)
    one = shapes.conv_params(c, c, 7, bias=False)
    assert (three, one) == (27 * c * c, 49 * c * c)
    assert three / one == pytest.approx(27 / 49)  # about 45% fewer


def test_lecture_1x1_convolution_use_case():
    # 32x32x200 -> 32x32x32 with 5x5 filters: (32*32*200) * (5*5*32) ~ 163M multiply-adds
    direct = shapes.conv_macs(200, 32, 5, output_size=32)
    assert direct == 32 * 32 * 200 * 5 * 5 * 32 == 163_840_000
    # The slide's picture of the 1x1 alternative carries no numbers; with a 16-channel
    # 1x1 bottleneck (the usual textbook choice) it is 3.3M + 13.1M, ten times cheaper.
    reduce = shapes.conv_macs(200, 16, 1, output_size=32)
    conv = shapes.conv_macs(16, 32, 5, output_size=32)
    assert (reduce, conv) == (3_276_800, 13_107_200)
    assert direct / (reduce + conv) == 10


def test_lecture_naive_inception_module():
    # input 28x28x256; branches 1x1/128, 3x3/192 (pad 1), 5x5/96 (pad 2), 3x3 max pool (pad 1)
    assert shapes.conv_output_size(28, 1) == 28
    assert shapes.conv_output_size(28, 3, padding=1) == 28
    assert shapes.conv_output_size(28, 5, padding=2) == 28
    assert shapes.pool_output_size(28, 3, stride=1, padding=1) == 28
    assert 128 + 192 + 96 + 256 == 672  # 28 x 28 x 672 after concatenation
    ops = [
        shapes.conv_macs(256, 128, 1, 28),
        shapes.conv_macs(256, 192, 3, 28),
        shapes.conv_macs(256, 96, 5, 28),
    ]
    assert ops == [25_690_112, 346_816_512, 481_689_600]
    assert sum(ops) == 854_196_224  # "Total: 854M ops"


def test_lecture_inception_with_bottlenecks():
    ops = [
        shapes.conv_macs(256, 64, 1, 28),  # 1x1, 64 before the 3x3
        shapes.conv_macs(256, 64, 1, 28),  # 1x1, 64 before the 5x5
        shapes.conv_macs(256, 128, 1, 28),  # 1x1, 128 branch
        shapes.conv_macs(64, 192, 3, 28),  # 3x3, 192 on 64 channels
        shapes.conv_macs(64, 96, 5, 28),  # 5x5, 96 on 64 channels
        shapes.conv_macs(256, 64, 1, 28),  # 1x1, 64 after the pool
    ]
    # The slide prints "Total: 358M ops", but its own six terms add up to 271M. (358M is
    # what you get if the 3x3 conv read 128 channels instead of 64: 271M + 86.7M.)
    assert sum(ops) == 271_351_808
    assert sum(ops) + shapes.conv_macs(64, 192, 3, 28) == pytest.approx(358e6, rel=1e-3)
    assert 854_196_224 / sum(ops) == pytest.approx(3.15, abs=0.01)  # the saving is ~3x


# ---------------------------------------------------------------------------------------
# summary


def test_summary_rows_of_a_small_network():
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    )  # fmt: skip
    rows = shapes.summary(model, (1, 32, 32), verbose=False)
    assert [r.kind for r in rows] == [type(m).__name__ for m in model]
    assert [r.output_shape for r in rows] == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5),
        (400,), (10,),
    ]  # fmt: skip
    assert [r.params for r in rows] == [156, 0, 0, 2416, 0, 0, 0, 4010]
    assert rows.total_params == shapes.count_params(model) == 6582
    assert [r.macs for r in rows] == [117_600, 0, 0, 240_000, 0, 0, 0, 4000]
    # the receptive field of each conv/pool row equals the calculator on the prefix
    for i, row in enumerate(rows[:6]):
        assert row.receptive_field == shapes.receptive_field(list(model[: i + 1]))
    assert rows[-1].receptive_field == 32  # 16 + (5 - 1) * 4: every fc unit sees it all


def test_summary_prints_a_table(capsys):
    rows = shapes.summary(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), (2, 3, 8, 8))
    printed = capsys.readouterr().out
    assert "Conv2d" in printed and "(8, 6, 6)" in printed and "total params: 224" in printed
    assert str(rows) == printed.rstrip("\n")
    assert "2 layers" in repr(rows)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "vgg11", "resnext50_32x4d"])
def test_summary_totals_match_flop_counter_and_numel(name):
    kwargs = {"init_weights": False, "aux_logits": False} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(**kwargs).eval()
    x = torch.zeros(2, 3, 64, 64)
    rows = shapes.summary(model, tuple(x.shape), verbose=False)
    assert rows.total_params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in rows) == rows.total_params  # every parameter in some row
    assert 2 * rows.total_macs * x.shape[0] == flops(model, x)
    with torch.no_grad():
        assert rows[-1].output_shape == tuple(model(x).shape[1:])


def test_summary_follows_branches_in_execution_order_and_residual_fields():
    model = torchvision.models.googlenet(init_weights=False, aux_logits=False)
    rows = shapes.summary(model, (3, 224, 224), verbose=False)
    names = [r.name for r in rows]
    branch_starts = [names.index(f"inception3a.branch{i}.0.conv") for i in range(2, 4)]
    assert names.index("inception3a.branch1.conv") < branch_starts[0] < branch_starts[1]
    assert names.index("inception3a.branch4.1.conv") < names.index("inception3b.branch1.conv")
    # ResNet-18's last block sees 435 x 435 input pixels (a known figure for this net)
    resnet = shapes.summary(torchvision.models.resnet18(), (3, 224, 224), verbose=False)
    last_conv = [r for r in resnet if r.kind == "Conv2d"][-1]
    assert last_conv.name == "layer4.1.conv2" and last_conv.receptive_field == 435
    # the shortcut's field is smaller, and the sum takes the larger one
    by_name = {r.name: r for r in resnet}
    assert (
        by_name["layer2.0.downsample.0"].receptive_field < by_name["layer2.0.conv2"].receptive_field
    )


def test_summary_counts_a_shared_module_once_and_restores_training_mode():
    shared = nn.Conv2d(4, 4, 3, padding=1)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), shared, nn.BatchNorm2d(4), shared)
    model.train()
    rows = shapes.summary(model, (3, 8, 8), verbose=False)
    assert [r.params for r in rows] == [16, 148, 8, 0]
    assert rows[3].macs == rows[1].macs > 0
    assert model.training
