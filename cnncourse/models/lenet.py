"""LeNet-5 (LeCun et al. 1998): two 5x5 convolutions with subsampling, then three dense layers."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import positive_int
from ._common import init_weights

__all__ = ["LeNet5", "lenet5"]

_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    """LeNet-5 for 32x32 images: input (N, in_channels, 32, 32) -> logits (N, num_classes).

    C1 6@5x5 -> 28x28, S2 2x2/2 -> 14x14, C3 16@5x5 -> 10x10, S4 2x2/2 -> 5x5,
    then dense 400 -> 120 -> 84 -> num_classes. All convolutions run at stride 1 with no
    padding, so the input must be 32x32 (resize 28x28 MNIST digits to 32, as the paper pads).

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
    ) -> None:
        super().__init__()
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
            nn.Linear(16 * 5 * 5, 120),  # C5: a 5x5 conv over a 5x5 map is a dense layer
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
    num_classes: int = 10, in_channels: int = 1, activation: str = "tanh", pool: str = "avg"
) -> LeNet5:
    """LeNet-5 for 32x32 inputs (see :class:`LeNet5`); it doubles as its own small variant."""
    return LeNet5(num_classes, in_channels, activation, pool)
