"""LeNet-5 (LeCun et al. 1998): two 5x5 convolutions with subsampling, then three dense layers."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import positive_int
from ..shapes import summary
from ._common import init_weights

__all__ = ["LENET5_LAYERS", "LeNet5", "lenet5", "lenet5_flat_features", "lenet5_rows"]

_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


# The paper's names of the layers that have an output shape of their own, in order.
LENET5_LAYERS = ("C1", "S2", "C3", "S4", "F5", "F6", "F7")


def lenet5_flat_features(image_size: int) -> int:
    """How many values S4 leaves of an image_size x image_size input: F5's inputs (400 at 32).

    Raises ``ValueError`` naming ``image_size`` below 16, where a window no longer fits.
    """
    positive_int("image_size", image_size)
    side = image_size
    for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):  # C1, S2, C3, S4
        side = (side - kernel) // stride + 1
        if side < 1:
            raise ValueError(f"image_size={image_size}: too small for LeNet-5 (at least 16)")
    return 16 * side * side


class LeNet5(nn.Module):
    """LeNet-5: input (N, in_channels, image_size, image_size) -> logits (N, num_classes).

    At 32x32: C1 6@5x5 -> 28x28, S2 2x2/2 -> 14x14, C3 16@5x5 -> 10x10, S4 2x2/2 -> 5x5,
    then dense 400 -> 120 -> 84 -> num_classes. All convolutions run at stride 1 with no
    padding; F5 is sized for ``image_size`` (default 32: resize 28x28 MNIST digits to 32,
    as the paper pads), see :func:`lenet5_flat_features`.

    Differences from the paper, all common simplifications: every C3 map sees all six S2
    maps (the paper's sparse connection table leaves some out), S2/S4 are plain average or
    max pooling (the paper's subsampling has a trainable coefficient and bias per map), and
    the output is a linear layer instead of Gaussian RBF units. For 1x32x32 input and ten
    classes this gives 61,706 parameters; the paper's version has about 60,000.

    Args:
        activation: "tanh" (the paper's squashing function), "sigmoid" or "relu".
        pool: "avg" (close to the paper's subsampling) or "max".
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "tanh",
        pool: str = "avg",
        *,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        flat = lenet5_flat_features(image_size)
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: expected one of {list(_ACTIVATIONS)}")
        if pool not in _POOLS:
            raise ValueError(f"pool={pool!r}: expected one of {list(_POOLS)}")
        act, pooling = _ACTIVATIONS[activation], _POOLS[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1: (N, 6, 28, 28)
            act(),
            pooling(kernel_size=2, stride=2),  # S2: (N, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # C3: (N, 16, 10, 10)
            act(),
            pooling(kernel_size=2, stride=2),  # S4: (N, 16, 5, 5)
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),  # C5: at 32x32 a 5x5 conv over a 5x5 map, a dense layer
            act(),
            nn.Linear(120, 84),  # F6: (N, 84)
            act(),
            nn.Linear(84, num_classes),
        )
        init_weights(self, nonlinearity=activation)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 16, 5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (N, 16, 5, 5)
        return self.head(x)  # (N, num_classes)


def lenet5(
    num_classes: int = 10,
    in_channels: int = 1,
    activation: str = "tanh",
    pool: str = "avg",
    *,
    image_size: int = 32,
) -> LeNet5:
    """LeNet-5 for 32x32 inputs (see :class:`LeNet5`); it doubles as its own small variant."""
    return LeNet5(num_classes, in_channels, activation, pool, image_size=image_size)


def lenet5_rows(in_channels: int = 1, image_size: int = 32, num_classes: int = 10) -> dict:
    """LeNet-5's layer table measured by :func:`cnncourse.shapes.summary`: ``{"C1": row,
    ..., "F7": row}`` (output shape, parameters, MACs, receptive field of each layer)."""
    model = lenet5(num_classes, in_channels, image_size=image_size)
    rows = summary(model, (in_channels, image_size, image_size), verbose=False)
    rows = [r for r in rows if r.kind in ("Conv2d", "AvgPool2d", "Linear")]
    return dict(zip(LENET5_LAYERS, rows, strict=True))
