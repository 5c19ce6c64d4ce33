"""cnncourse.layers against their torch twins: forward values and gradients, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from cnncourse import grading, layers

# derandomize: CI sees the same examples every run; the examples still cover the space
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
F64 = {"dtype": torch.float64}


def grads(out: torch.Tensor, inputs, seed: int = 0):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad(out, inputs, g)


def assert_same(ours, theirs, inputs_ours, inputs_theirs, **tol):
    torch.testing.assert_close(ours, theirs, **tol)
    for a, b in zip(grads(ours, inputs_ours), grads(theirs, inputs_theirs), strict=True):
        torch.testing.assert_close(a, b, **tol)


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


# ---------------------------------------------------------------------------------------
# conv2d


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    # 16+ channels per group take the shifted-matmul path (stride 1, groups 1)
    cin = draw(st.sampled_from([1, 2, 3, 5, 16, 20])) * groups
    cout = draw(st.integers(1, 4)) * groups
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    assume(dilation[0] * (kh - 1) + 1 <= h + 2 * padding[0])
    assume(dilation[1] * (kw - 1) + 1 <= w + 2 * padding[1])
    return {
        "x": (draw(st.integers(1, 3)), cin, h, w),
        "weight": (cout, cin // groups, kh, kw),
        "bias": draw(st.booleans()),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "seed": draw(st.integers(0, 2**16)),
    }


@SETTINGS
@given(conv_cases())
def test_conv2d_matches_torch_forward_and_backward(case):
    gen = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["x"], generator=gen, **F64, requires_grad=True)
    w = torch.randn(case["weight"], generator=gen, **F64, requires_grad=True)
    b = torch.randn(case["weight"][0], generator=gen, **F64, requires_grad=True)
    b = b if case["bias"] else None
    geo = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    params = [t for t in (x, w, b) if t is not None]
    theirs_in = [leaf(t) for t in params]
    ours = layers.conv2d(x, w, b, **geo)
    theirs = F.conv2d(theirs_in[0], theirs_in[1], theirs_in[2] if b is not None else None, **geo)
    assert_same(ours, theirs, params, theirs_in, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, groups",
    [
        ((2, 3, 32, 32), (6, 3, 5, 5), 1, 0, 1),  # LeNet conv1 (im2col)
        ((2, 3, 35, 35), (8, 3, 11, 11), 4, 0, 1),  # AlexNet conv1 geometry
        ((2, 32, 12, 12), (16, 32, 3, 3), 1, 1, 1),  # VGG 3x3 (shifted path)
        ((2, 32, 12, 12), (16, 32, 1, 1), 1, 0, 1),  # 1x1 (matrix product path)
        ((2, 32, 12, 12), (32, 4, 3, 3), 2, 1, 8),  # grouped, strided
    ],
)
def test_conv2d_float32_and_gradcheck(x_shape, w_shape, stride, padding, groups):
    torch.manual_seed(0)
    x, w, b = torch.randn(x_shape), torch.randn(w_shape), torch.randn(w_shape[0])
    torch.testing.assert_close(
        layers.conv2d(x, w, b, stride, padding, groups=groups),
        F.conv2d(x, w, b, stride, padding, groups=groups),
        rtol=1e-4,
        atol=1e-4,
    )
    # gradcheck in float64 on one small image: numerical against analytical gradients
    kh, kw = w_shape[2:]
    # (few output channels keep it fast; 16+ input channels keep the same code path)
    x64 = torch.randn(1, x_shape[1], kh + 2, kw + 2, **F64, requires_grad=True)
    w64 = torch.randn(2 * groups, *w_shape[1:], **F64, requires_grad=True)
    b64 = torch.randn(2 * groups, **F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, k, c: layers.conv2d(a, k, c, stride, padding, groups=groups),
        (x64, w64, b64),
        fast_mode=True,
    )


def test_conv2d_never_calls_the_torch_convolution():
    x, w = torch.randn(1, 16, 8, 8), torch.randn(4, 16, 3, 3)
    with grading.forbid(F.conv2d, torch.conv2d, F.unfold, F.conv_transpose2d, exercise="layers"):
        for kw in ({}, {"stride": 2}, {"groups": 4, "weight": torch.randn(4, 4, 3, 3)}):
            weight = kw.pop("weight", w)
            layers.conv2d(x, weight, **kw).sum()
        layers.conv2d(x, torch.randn(4, 16, 1, 1))


def test_references_can_be_forbidden():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with grading.forbid(layers.conv2d, exercise="conv2d"):
        with pytest.raises(grading.ForbiddenCallError, match="cnncourse.layers.conv2d"):
            layers.conv2d(x, w)
        layers.max_pool2d(x, 2)  # not forbidden


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: layers.conv2d(torch.randn(3, 8, 8), torch.randn(2, 3, 3, 3)),
            r"x: expected a 4-D",
        ),
        (lambda: layers.conv2d(torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3)), r"weight: expected"),
        (
            lambda: layers.conv2d(torch.randn(1, 3, 4, 4), torch.randn(2, 3, 5, 5)),
            r"kernel_size.*5.*4",
        ),
        (
            lambda: layers.conv2d(torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3), stride=0),
            r"stride=0: must be >= 1",
        ),
        (
            lambda: layers.conv2d(torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3), padding=-1),
            r"padding=-1",
        ),
        (
            lambda: layers.conv2d(torch.randn(1, 6, 8, 8), torch.randn(4, 3, 3, 3), groups=4),
            r"groups=4: in_channels \(6\).*divisible",
        ),
        (
            lambda: layers.conv2d(torch.randn(1, 6, 8, 8), torch.randn(4, 2, 3, 3), groups=2),
            r"weight: shape \(4, 2, 3, 3\) expects 4 input channels.*x has 6",
        ),
        (
            lambda: layers.conv2d(torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3), torch.ones(3)),
            r"bias: expected shape \(2,\)",
        ),
        (lambda: layers.max_pool2d(torch.randn(1, 1, 2, 2), 3), r"kernel_size.*3.*2"),
        (lambda: layers.max_pool2d(torch.randn(1, 1, 8, 8), 2, stride=0), r"stride=0"),
        (lambda: layers.avg_pool2d(torch.randn(1, 1, 8, 8), 2, padding=2), r"padding=2.*half"),
        (lambda: layers.linear(torch.randn(4, 5), torch.randn(3, 6)), r"x: last dimension is 5"),
        (lambda: layers.dropout(torch.randn(3), p=1.5), r"p=1.5"),
        (lambda: layers.local_response_norm(torch.randn(2, 3), 2), r"x: expected a 3-D"),
        (lambda: layers.local_response_norm(torch.randn(1, 3, 4, 4), 0), r"size"),
        (
            lambda: layers.batch_norm(torch.randn(4, 3, 2), None, None, training=True),
            r"x: expected",
        ),
        (
            lambda: layers.batch_norm(
                torch.randn(1, 3), torch.zeros(3), torch.ones(3), training=True
            ),
            r"at least two",
        ),
        (
            lambda: layers.batch_norm(torch.randn(4, 3), torch.zeros(2), torch.ones(3)),
            r"running_mean: expected shape \(3,\)",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
        layers.conv2d([[1.0]], torch.randn(1, 1, 1, 1))
    with pytest.raises(TypeError, match=r"stride=1.5"):
        layers.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2), stride=1.5)


# ---------------------------------------------------------------------------------------
# pooling


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h, w = draw(st.integers(k[0], 10)), draw(st.integers(k[1], 10))
    return {
        "shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w),
        "kernel_size": k,
        "stride": s,
        "padding": p,
        "ceil_mode": draw(st.booleans()),
        "relu": draw(st.booleans()),  # many exact ties at zero: which max gets the gradient?
        "seed": draw(st.integers(0, 2**16)),
    }


@SETTINGS
@given(pool_cases(), st.booleans())
def test_pools_match_torch(case, count_include_pad):
    x = torch.randn(case["shape"], generator=torch.Generator().manual_seed(case["seed"]), **F64)
    x = (x.relu() if case["relu"] else x).requires_grad_()
    x2 = leaf(x)
    geo = {k: case[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
    assert_same(layers.max_pool2d(x, **geo), F.max_pool2d(x2, **geo), [x], [x2])
    assert_same(
        layers.avg_pool2d(x, **geo, count_include_pad=count_include_pad),
        F.avg_pool2d(x2, **geo, count_include_pad=count_include_pad),
        [x],
        [x2],
    )


def test_global_avg_pool_matches_adaptive_pool():
    x = torch.randn(3, 5, 7, 6, **F64, requires_grad=True)
    x2 = leaf(x)
    assert_same(layers.global_avg_pool2d(x), F.adaptive_avg_pool2d(x2, 1), [x], [x2])


def test_pools_never_call_torch_pools():
    x = torch.randn(1, 2, 9, 9)
    banned = (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, torch.max_pool2d)
    with grading.forbid(*banned, exercise="layers"):
        layers.max_pool2d(x, 3, 2, 1, ceil_mode=True)
        layers.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        layers.global_avg_pool2d(x)


# ---------------------------------------------------------------------------------------
# dense layer and activations


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    torch.manual_seed(0)
    x, w = (
        torch.randn(shape, **F64, requires_grad=True),
        torch.randn(4, 7, **F64, requires_grad=True),
    )
    b = torch.randn(4, **F64, requires_grad=True) if bias else None
    ins = [t for t in (x, w, b) if t is not None]
    theirs_in = [leaf(t) for t in ins]
    theirs = F.linear(theirs_in[0], theirs_in[1], theirs_in[2] if bias else None)
    with grading.forbid(F.linear, exercise="layers"):
        ours = layers.linear(x, w, b)
    assert_same(ours, theirs, ins, theirs_in)


def test_relu_and_sigmoid_match_torch_including_edges():
    x = torch.cat(
        [torch.randn(50, **F64) * 5, torch.tensor([0.0, -0.0, 1e3, -1e3, 40.0, -40.0], **F64)]
    )
    x.requires_grad_()
    x2 = leaf(x)
    with grading.forbid(F.relu, torch.relu, torch.sigmoid, F.sigmoid, exercise="layers"):
        ours_relu, ours_sig = layers.relu(x), layers.sigmoid(x)
    assert_same(ours_relu, F.relu(x2), [x], [x2])  # gradient at exactly 0 is 0, as in torch
    assert_same(ours_sig, torch.sigmoid(x2), [x], [x2])
    assert torch.isfinite(grads(layers.sigmoid(x), [x])[0]).all()  # no overflow at +-1000


# ---------------------------------------------------------------------------------------
# batch norm and dropout


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch_and_updates_running_stats(shape, affine):
    torch.manual_seed(0)
    x = (torch.randn(shape, **F64) * 3 + 2).requires_grad_()
    w = torch.rand(3, **F64).add(0.5).requires_grad_() if affine else None
    b = torch.randn(3, **F64).requires_grad_() if affine else None
    rm, rv = torch.randn(3, **F64), torch.rand(3, **F64) + 0.5
    rm2, rv2 = rm.clone(), rv.clone()
    ins = [t for t in (x, w, b) if t is not None]
    theirs_in = [leaf(t) for t in ins]
    ours = layers.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2, eps=1e-3)
    theirs = F.batch_norm(
        theirs_in[0], rm2, rv2, *(theirs_in[1:] if affine else (None, None)),
        training=True, momentum=0.2, eps=1e-3,
    )  # fmt: skip
    assert_same(ours, theirs, ins, theirs_in)
    torch.testing.assert_close(rm, rm2)
    torch.testing.assert_close(rv, rv2)  # the running variance uses the unbiased estimate


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_nn_module_in_both_modes(training):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4, momentum=0.1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    bn.train(training)
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    for step in range(3):  # a few steps: the running statistics must keep agreeing
        x = torch.randn(6, 4, 5, 5) * (step + 1)
        with grading.forbid(F.batch_norm, torch.batch_norm, exercise="layers"):
            ours = layers.batch_norm(x, rm, rv, bn.weight, bn.bias, training, 0.1, bn.eps)
        torch.testing.assert_close(ours, bn(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(rm, bn.running_mean)
        torch.testing.assert_close(rv, bn.running_var)


def test_batch_norm_training_without_running_stats():
    x = torch.randn(5, 3, 4, 4, **F64)
    torch.testing.assert_close(
        layers.batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True)
    )


def test_dropout_draws_the_same_mask_as_torch_on_cpu():
    x = torch.randn(1000, **F64, requires_grad=True)
    x2 = leaf(x)
    torch.manual_seed(7)
    with grading.forbid(F.dropout, torch.dropout, exercise="layers"):
        ours = layers.dropout(x, p=0.3)
    torch.manual_seed(7)
    theirs = F.dropout(x2, p=0.3)
    assert_same(ours, theirs, [x], [x2])


def test_dropout_statistics_and_edge_cases():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = layers.dropout(x, p=0.25)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.25) < 0.01  # about p are dropped
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))  # inverted scaling
    assert abs(y.mean().item() - 1) < 0.01  # expectation preserved
    assert layers.dropout(x, 0.5, training=False) is x
    assert torch.equal(layers.dropout(x, 0.0), x)
    assert torch.equal(layers.dropout(x, 1.0), torch.zeros_like(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_layers_run_on_cuda_like_torch():
    dev = torch.device("cuda")
    # cuDNN convolutions default to TF32 (10-bit mantissa); compare in full float32
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        _compare_on(dev)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def _compare_on(dev: torch.device) -> None:
    x = torch.randn(2, 32, 12, 12, device=dev)
    for w, kw in (
        (torch.randn(8, 32, 3, 3, device=dev), {"padding": 1}),  # shifted path
        (torch.randn(8, 4, 3, 3, device=dev), {"groups": 8, "stride": 2}),  # im2col path
        (torch.randn(8, 32, 1, 1, device=dev), {}),  # 1x1
    ):
        ours, theirs = layers.conv2d(x, w, **kw), F.conv2d(x, w, **kw)
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(layers.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1))


@pytest.mark.parametrize("size", [1, 2, 5, 8])
@pytest.mark.parametrize("shape", [(2, 7, 5, 4), (1, 3, 6), (2, 4, 3, 3, 2)])
def test_local_response_norm_matches_torch(shape, size):
    x = leaf(torch.randn(*shape, **F64) * 3)
    x2 = leaf(x.detach().clone())
    with grading.forbid(F.local_response_norm, exercise="layers"):
        ours = layers.local_response_norm(x, size, alpha=1e-2, beta=0.75, k=2.0)
    theirs = F.local_response_norm(x2, size, alpha=1e-2, beta=0.75, k=2.0)
    assert_same(ours, theirs, [x], [x2])
    # AlexNet's constants, float32, as nn.LocalResponseNorm applies them
    x = torch.randn(2, 96, 6, 6) * 50
    lrn = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    torch.testing.assert_close(layers.local_response_norm(x, 5, 5e-4, 0.75, 2.0), lrn(x))
