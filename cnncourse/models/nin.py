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

    With ``batch_norm`` each conv is followed by batch norm before its ReLU (and has no
    bias: batch norm's shift replaces it). ``final_relu=False`` ends the block with the
    last 1x1 conv alone (no batch norm or ReLU after it): for class maps that must be free
    to go negative.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        mid_channels: int | None = None,
        batch_norm: bool = False,
        final_relu: bool = True,
    ) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("mid_channels", mid)

        def after(channels: int, last: bool = False) -> list[nn.Module]:
            if last and not final_relu:
                return []
            norm = [nn.BatchNorm2d(channels)] if batch_norm else []
            return [*norm, nn.ReLU(inplace=True)]

        last_bias = not batch_norm or not final_relu
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size, stride, padding, bias=not batch_norm),
            *after(mid),
            nn.Conv2d(mid, mid, kernel_size=1, bias=not batch_norm),  # the "cccp" layers
            *after(mid),
            nn.Conv2d(mid, out_channels, kernel_size=1, bias=last_bias),
            *after(out_channels, last=True),
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
    ``head`` is dropout, the last mlpconv block and global average pooling;
    ``class_maps(x)`` the head's maps before the pooling (one per class: the class
    activation maps).

    Args:
        blocks: (out_channels, kernel_size, stride, padding) per mlpconv block before
            the head; head_channels: width of the head's block before its class maps.
        batch_norm: batch norm after every convolution but the one that makes the class
            maps (not in the paper; what makes :func:`nin_small` train quickly).
        class_relu: a ReLU after the class maps, as in the released model. Without it
            the logits can be negative.
        final_pool: the max pool after the last block before the head; without it the
            class maps keep that block's size (larger class activation maps).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        blocks: tuple[tuple[int, int, int, int], ...] = _IMAGENET,
        head_channels: int = 1024,
        batch_norm: bool = False,
        class_relu: bool = True,
        final_pool: bool = True,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        if not blocks:
            raise ValueError("blocks: expected at least one mlpconv block")
        layers: list[nn.Module] = []
        for i, (out_channels, kernel_size, stride, padding) in enumerate(blocks):
            layers.append(
                NiNBlock(in_channels, out_channels, kernel_size, stride, padding,
                         batch_norm=batch_norm)
            )  # fmt: skip
            if final_pool or i < len(blocks) - 1:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            NiNBlock(
                in_channels,
                num_classes,
                3,
                padding=1,
                mid_channels=head_channels,
                batch_norm=batch_norm,
                final_relu=class_relu,
            ),  # fmt: skip
            nn.AdaptiveAvgPool2d(1),  # one average per class map
            nn.Flatten(),
        )
        init_weights(self)
        if not class_relu:
            # The class maps are the classifier: start them small, as init_weights does
            # for a last dense layer, so the first predictions are close to uniform.
            nn.init.normal_(self.head[1][-1].weight, std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 384, 6, 6) at 224x224

    def class_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_classes, h, w): the head's maps before global average pooling."""
        return self.head[:2](self.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (N, 384, 6, 6)
        return self.head(x)  # (N, num_classes)


def nin(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> NiN:
    """The authors' ImageNet NiN (see :class:`NiN`), 7,595,176 parameters for 1000 classes."""
    return NiN(num_classes, in_channels, dropout)


def nin_small(
    num_classes: int = 10,
    in_channels: int = 3,
    dropout: float = 0.0,
    batch_norm: bool = True,
    class_relu: bool = False,
) -> NiN:
    """NiN at CIFAR scale: (N, in_channels, 32, 32) -> logits (N, num_classes).

    The ImageNet model at a quarter of its widths (96-256-384-1024 -> 24-64-96-256), with
    a 5x5/2 first convolution in place of 11x11/4: mlpconv 24@5x5/2 (16x16), pool -> 8,
    mlpconv 64@3x3 (8x8), pool -> 4, mlpconv 96@3x3 (4x4), then the head at 4x4 (no third
    pool, so the class maps have 4x4 cells): mlpconv 256@3x3 -> 256 -> num_classes,
    global average pooling.

    Unlike the paper's recipe, it has batch norm after every convolution, no ReLU on the
    class maps and no dropout by default. With the paper's recipe
    (``batch_norm=False, class_relu=True, dropout=0.5``) Adam at lr 1e-3 kills it on
    ``sprites`` within the first epoch: every class map falls below zero, the ReLU after
    it outputs 0, all ten logits are 0 for every image, the loss sits at exactly ln 10
    and no gradient flows (notebook 05 measures this). Without that ReLU it stays alive
    but near chance for the first few hundred steps; batch norm gets it learning.
    """
    return NiN(
        num_classes, in_channels, dropout, blocks=_SMALL, head_channels=256,
        batch_norm=batch_norm, class_relu=class_relu, final_pool=False,
    )  # fmt: skip
