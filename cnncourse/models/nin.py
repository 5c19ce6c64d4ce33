"""Network in Network (Lin, Chen and Yan 2013): mlpconv blocks and global average pooling.

An mlpconv block is a convolution followed by two 1x1 convolutions: a small multilayer
perceptron slid over every position, shared across the image. The last block emits one
map per class and global average pooling turns each map into a logit, so there are no
dense layers and the head has no parameters of its own apart from that block.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import positive_int
from ._common import init_weights

__all__ = ["NiNBlock", "NiN", "nin", "nin_small"]


class NiNBlock(nn.Sequential):
    """mlpconv: conv(kernel_size, stride, padding) + two 1x1 convs, each followed by ReLU.

    (N, in_channels, H, W) -> (N, out_channels, H', W') with H' = (H + 2p - k) // s + 1.
    The conv and the first 1x1 conv have ``mid_channels`` outputs (default
    ``out_channels``); only the last 1x1 conv maps to ``out_channels``, which is how the
    final block of the ImageNet model goes 384 -> 1024 -> 1024 -> 1000.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        mid_channels: int | None = None,
    ) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("mid_channels", mid)
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size, stride, padding),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel_size=1),  # the "cccp" layers of the original code
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=1),
            nn.ReLU(inplace=True),
        )


# (out_channels, kernel_size, stride, padding) of the mlpconv blocks before the head, each
# followed by 3x3/2 max pooling, and the width of the head's block before its class maps.
_IMAGENET = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
_SMALL = ((24, 5, 2, 2), (64, 3, 1, 1), (96, 3, 1, 1))  # ImageNet widths / 4


class NiN(nn.Module):
    """NiN for ImageNet: (N, in_channels, 224, 224) -> logits (N, num_classes).

    The paper reports CIFAR-10/100, SVHN and MNIST models only; the default ``blocks``
    give the ImageNet model the authors released with the Caffe Model Zoo
    ("nin_imagenet", 7,595,176 parameters for 1000 classes):

    ===========================================  ======================
    block                                        output at 224x224
    ===========================================  ======================
    mlpconv 96@11x11/4, 1x1 96, 1x1 96           (N, 96, 54, 54)
    max pool 3x3/2                               (N, 96, 27, 27)
    mlpconv 256@5x5 pad 2, 1x1 256, 1x1 256      (N, 256, 27, 27)
    max pool 3x3/2                               (N, 256, 13, 13)
    mlpconv 384@3x3 pad 1, 1x1 384, 1x1 384      (N, 384, 13, 13)
    max pool 3x3/2                               (N, 384, 6, 6)
    dropout 0.5                                  (N, 384, 6, 6)
    mlpconv 1024@3x3 pad 1, 1x1 1024, 1x1 C      (N, num_classes, 6, 6)
    global average pool                          (N, num_classes)
    ===========================================  ======================

    Pooling rounds up (``ceil_mode=True``) as Caffe does, which gives the released model's
    27-13-6 sizes; rounding down would give 26-12-5. As in the released model, a ReLU
    follows the class maps too, so the logits are never negative.

    The common Dive into Deep Learning version simplifies this: its pooling rounds down
    and its last block goes straight from 384 to num_classes maps (3x3 conv + two 1x1
    convs), without the 1024-wide stage.

    ``forward_features`` returns the maps before the dropout, (N, 384, 6, 6) at 224x224;
    ``head`` is dropout, the last mlpconv block and global average pooling.

    Args:
        blocks: (out_channels, kernel_size, stride, padding) per mlpconv block before
            the head; head_channels: width of the head's block before its class maps.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        blocks: tuple[tuple[int, int, int, int], ...] = _IMAGENET,
        head_channels: int = 1024,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        layers: list[nn.Module] = []
        for out_channels, kernel_size, stride, padding in blocks:
            layers += [
                NiNBlock(in_channels, out_channels, kernel_size, stride, padding),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            NiNBlock(in_channels, num_classes, 3, padding=1, mid_channels=head_channels),
            nn.AdaptiveAvgPool2d(1),  # one average per class map
            nn.Flatten(),
        )
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 384, 6, 6) at 224x224

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (N, 384, 6, 6)
        return self.head(x)  # (N, num_classes)


def nin(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> NiN:
    """The authors' ImageNet NiN (see :class:`NiN`), 7,595,176 parameters for 1000 classes."""
    return NiN(num_classes, in_channels, dropout)


def nin_small(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> NiN:
    """NiN at CIFAR scale: (N, in_channels, 32, 32) -> logits (N, num_classes).

    The ImageNet model at a quarter of its widths (96-256-384-1024 -> 24-64-96-256), with
    a 5x5/2 first convolution in place of 11x11/4: mlpconv 24@5x5/2 (16x16), pool -> 8,
    mlpconv 64@3x3 (8x8), pool -> 4, mlpconv 96@3x3 (4x4), pool -> 2, dropout, mlpconv
    256@3x3 -> 256 -> num_classes (2x2), global average pooling.
    """
    return NiN(num_classes, in_channels, dropout, blocks=_SMALL, head_channels=256)
