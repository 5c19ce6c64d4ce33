"""shapes.summary() on every model of cnncourse.models: rows, totals, MACs, heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnncourse import models, shapes

# (constructor, input size): ImageNet models at the size their papers use where the
# network needs it, else at 64x64 to keep the suite quick; small variants at 32x32
CASES = [
    ("lenet5", (1, 32, 32)),
    ("alexnet", (3, 64, 64)),
    ("vgg11", (3, 64, 64)),
    ("vgg16_bn", (3, 64, 64)),
    ("nin", (3, 224, 224)),
    ("googlenet", (3, 224, 224)),
    ("resnet18", (3, 64, 64)),
    ("resnet50", (3, 64, 64)),
    ("resnext50_32x4d", (3, 64, 64)),
] + [(f"small:{name}", (3, 32, 32)) for name in models.SMALL_MODELS]


def build(name: str, num_classes: int) -> nn.Module:
    if name.startswith("small:"):
        fn = models.SMALL_MODELS[name.removeprefix("small:")]
        in_channels = 3
    else:
        fn = getattr(models, name)
        in_channels = 1 if name == "lenet5" else 3
    return fn(num_classes=num_classes, in_channels=in_channels).eval()


@pytest.mark.parametrize("name, size", CASES, ids=[c[0] for c in CASES])
def test_summary_rows_add_up_for_every_model(name, size):
    torch.manual_seed(0)
    model = build(name, num_classes=7)
    rows = shapes.summary(model, size, verbose=False)
    assert rows, f"{name}: summary found no layers"
    # every parameter appears in exactly one row, and the total is the model's count
    assert sum(r.params for r in rows) == rows.total_params == shapes.count_params(model)
    # the last row is the classifier, emitting num_classes scores
    assert rows[-1].output_shape in {(7,), (7, 1, 1)}, rows[-1]
    # MACs: two FLOPs each, as torch's own FlopCounterMode counts convolutions and matmuls
    x = torch.zeros(2, *size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    assert out.shape == (2, 7)
    assert 2 * rows.total_macs * 2 == counter.get_total_flops()
    # every convolution runs once, so each has its row
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    conv_rows = [r for r in rows if r.kind == "Conv2d"]
    assert len(conv_rows) == len(convs)


def test_summary_of_lenet5_is_the_classic_table():
    rows = shapes.summary(models.lenet5(), (1, 32, 32), verbose=False)
    weighted = [(r.kind, r.output_shape, r.params) for r in rows if r.params]
    assert weighted == [
        ("Conv2d", (6, 28, 28), 156),
        ("Conv2d", (16, 10, 10), 2_416),
        ("Linear", (120,), 48_120),
        ("Linear", (84,), 10_164),
        ("Linear", (10,), 850),
    ]
    assert rows.total_params == 61_706


def test_summary_of_paper_alexnet_reproduces_the_lecture():
    rows = shapes.summary(models.alexnet(variant="paper"), (3, 227, 227), verbose=False)
    conv1 = next(r for r in rows if r.kind == "Conv2d")
    assert conv1.output_shape == (96, 55, 55) and conv1.params == 34_944
    pool1 = next(r for r in rows if r.kind == "MaxPool2d")
    assert pool1.output_shape == (96, 27, 27) and pool1.params == 0
    assert conv1.receptive_field == 11 and pool1.receptive_field == 11 + 2 * 4
