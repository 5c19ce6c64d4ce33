"""VGG (Simonyan and Zisserman 2014): blocks of 3x3 convolutions, each closed by 2x2 max pooling.

Every convolution is 3x3 at stride 1 with padding 1, so it keeps the spatial size; each
block halves it. Two stacked 3x3 convolutions see a 5x5 window and three see 7x7, with
fewer parameters (3 * 9C^2 against 49C^2) and more non-linearities than one big kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import positive_int
from ._common import init_weights

__all__ = [
    "VGG_CONFIGS",
    "VGGBlock",
    "VGG",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vgg_small",
]

# (number of 3x3 convolutions, output channels) per block: configurations A, B, D and E of
# the paper's Table 1, named by their number of weight layers (convolutions + 3 dense).
VGG_CONFIGS: dict[str, tuple[tuple[int, int], ...]] = {
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
    "vgg_small": ((1, 16), (1, 32), (2, 64), (2, 128)),
}


class VGGBlock(nn.Sequential):
    """``num_convs`` x (3x3 conv pad 1 [+ batch norm] + ReLU), then 2x2 max pool stride 2.

    (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2). With ``batch_norm`` the
    convolutions keep their bias, as in torchvision (it is redundant before batch norm,
    but keeping it keeps the parameter counts and the weight order equal).
    """

    def __init__(
        self, num_convs: int, in_channels: int, out_channels: int, batch_norm: bool = False
    ) -> None:
        positive_int("num_convs", num_convs)
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        layers: list[nn.Module] = []
        for _ in range(num_convs):
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            in_channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        super().__init__(*layers)


class VGG(nn.Module):
    """A stack of :class:`VGGBlock` s and a three-layer dense head.

    Input (N, in_channels, H, W) -> features (N, C_last, H / 2^B, W / 2^B) for B blocks
    -> logits (N, num_classes). With the ImageNet configurations and 224x224 input the
    features are (N, 512, 7, 7) and the head is 25088 -> 4096 -> 4096 -> num_classes, with
    ReLU and dropout after both hidden layers.

    Same as ``torchvision.models.vgg*``: same layers in the same order (so torchvision's
    weights copy over by position), the same parameter counts, and torchvision's
    adaptive average pooling to 7x7 before the head, which the paper does not have (it
    lets other input sizes through and does nothing at 224x224). The paper trained
    without batch norm (it predates it); the ``_bn`` variants add it after every
    convolution, as torchvision does. The paper's configurations A-LRN and C (with 1x1
    convolutions) are not included.

    Args:
        config: (num_convs, out_channels) per block, e.g. ``VGG_CONFIGS["vgg16"]``.
        hidden: width of the two hidden dense layers; pool_size: side of the feature
            map the head flattens.
    """

    def __init__(
        self,
        config: Sequence[tuple[int, int]],
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        hidden: int = 4096,
        pool_size: int = 7,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        if not config:
            raise ValueError("config: expected at least one (num_convs, out_channels) block")
        blocks = []
        for num_convs, out_channels in config:
            blocks.append(VGGBlock(num_convs, in_channels, out_channels, batch_norm))
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pool_size),
            nn.Flatten(),
            nn.Linear(in_channels * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 512, 7, 7) for ImageNet configs at 224x224

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (N, 512, 7, 7)
        return self.head(x)  # (N, num_classes)


def _vgg(name: str, batch_norm: bool, num_classes: int, in_channels: int, dropout: float) -> VGG:
    return VGG(VGG_CONFIGS[name], num_classes, in_channels, batch_norm, dropout)


def vgg11(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A): 8 convolutions + 3 dense layers, 132,863,336 parameters."""
    return _vgg("vgg11", False, num_classes, in_channels, dropout)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 with batch norm after every convolution."""
    return _vgg("vgg11", True, num_classes, in_channels, dropout)


def vgg13(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration B): 10 convolutions + 3 dense layers."""
    return _vgg("vgg13", False, num_classes, in_channels, dropout)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 with batch norm after every convolution."""
    return _vgg("vgg13", True, num_classes, in_channels, dropout)


def vgg16(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D): 13 convolutions + 3 dense layers, 138,357,544 parameters."""
    return _vgg("vgg16", False, num_classes, in_channels, dropout)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm after every convolution."""
    return _vgg("vgg16", True, num_classes, in_channels, dropout)


def vgg19(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration E): 16 convolutions + 3 dense layers."""
    return _vgg("vgg19", False, num_classes, in_channels, dropout)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 with batch norm after every convolution."""
    return _vgg("vgg19", True, num_classes, in_channels, dropout)


def vgg_small(
    num_classes: int = 10, in_channels: int = 3, batch_norm: bool = False, dropout: float = 0.5
) -> VGG:
    """A four-block VGG for (N, in_channels, 32, 32) input: 32 -> 16 -> 8 -> 4 -> 2.

    Blocks (1, 16), (1, 32), (2, 64), (2, 128) (VGG-11's pattern, channels doubling per
    block), then 512 -> 256 -> 256 -> num_classes, with ``dropout`` after both hidden
    layers. Without batch norm it barely learns on short runs (notebook 04 shows why);
    ``batch_norm=True, dropout=0.0`` is the recipe that trains in a minute on a CPU.
    """
    return VGG(
        VGG_CONFIGS["vgg_small"], num_classes, in_channels, batch_norm, dropout, hidden=256,
        pool_size=2,
    )  # fmt: skip
