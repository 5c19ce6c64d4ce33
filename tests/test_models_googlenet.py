"""cnncourse.models.googlenet.NaiveInception, the module without 1x1 reductions.

The expected values come from outside the module: the parameter count from the layer
sizes written out here, the output from torch.nn.functional applied by hand to the
module's own weights, and the lecture's 28x28x672.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse import models
from cnncourse.models.googlenet import NaiveInception


def naive_params(c_in: int, n1: int, n3: int, n5: int) -> int:
    """Weights and biases of the three convolutions; the pool has none."""
    return (c_in * 1 + 1) * n1 + (c_in * 9 + 1) * n3 + (c_in * 25 + 1) * n5


def test_lecture_example_is_28x28x672():
    with torch.device("meta"):
        block = NaiveInception(256, 128, 192, 96)
        out = block(torch.empty(1, 256, 28, 28))
    assert tuple(out.shape) == (1, 672, 28, 28)
    assert block.out_channels == 672 == 128 + 192 + 96 + 256


@pytest.mark.parametrize(
    ("c_in", "n1", "n3", "n5", "shape"),
    [(3, 4, 5, 6, (2, 3, 9, 7)), (7, 1, 2, 3, (1, 7, 1, 1)), (256, 128, 192, 96, (1, 256, 5, 4))],
)
def test_output_shape_and_parameter_count(c_in, n1, n3, n5, shape):
    block = NaiveInception(c_in, n1, n3, n5).eval()
    with torch.no_grad():
        out = block(torch.randn(shape))
    assert tuple(out.shape) == (shape[0], n1 + n3 + n5 + c_in, *shape[2:])
    assert block.out_channels == n1 + n3 + n5 + c_in
    assert sum(p.numel() for p in block.parameters()) == naive_params(c_in, n1, n3, n5)


def test_equals_the_computation_written_with_functional_ops():
    torch.manual_seed(0)
    block = NaiveInception(5, 3, 4, 2)
    with torch.no_grad():  # biases away from zero, so a missing one shows
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (5, 5)]
    x = torch.randn(2, 5, 8, 6, dtype=torch.float64)
    block.double()
    expected = torch.cat(
        [
            F.relu(F.conv2d(x, convs[0].weight, convs[0].bias)),
            F.relu(F.conv2d(x, convs[1].weight, convs[1].bias, padding=1)),
            F.relu(F.conv2d(x, convs[2].weight, convs[2].bias, padding=2)),
            F.max_pool2d(x, 3, stride=1, padding=1),
        ],
        dim=1,
    )
    torch.testing.assert_close(block(x), expected)
    # the pool branch passes the input's channels on unchanged in number, maxed over 3x3
    assert torch.equal(block(x)[:, 9:], F.max_pool2d(x, 3, 1, 1))


def test_gradients_reach_input_and_every_parameter():
    block = NaiveInception(3, 2, 2, 2)
    x = torch.randn(1, 3, 6, 6, requires_grad=True)
    block(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0, 1, 1, 1), "in_channels"),
        ((3, -1, 1, 1), "ch1x1"),
        ((3, 1, 0, 1), "ch3x3"),
        ((3, 1, 1, 2.0), "ch5x5"),
        ((3, True, 1, 1), "ch1x1"),
    ],
)
def test_bad_widths_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        NaiveInception(*args)


def test_exported_from_models():
    assert models.NaiveInception is NaiveInception
    assert "NaiveInception" in models.__all__


def test_auxiliary_classifiers_start_near_a_uniform_guess():
    # Each head's first loss should be close to ln(num_classes), as the main classifier's
    # is: a classifier initialised like a hidden layer starts with confident random logits
    # (3.4 and 3.7 here; 20 and more without batch norm, whose features are larger).
    torch.manual_seed(0)
    model = models.googlenet(num_classes=10, aux_logits=True, batch_norm=True).train()
    with torch.no_grad():
        out = model(torch.randn(8, 3, 224, 224))
    target = torch.arange(8) % 10
    for name, logits in zip(("logits", "aux1", "aux2"), out, strict=True):
        loss = F.cross_entropy(logits, target).item()
        assert abs(loss - math.log(10)) < 0.5, f"{name}: first loss {loss:.2f}"
