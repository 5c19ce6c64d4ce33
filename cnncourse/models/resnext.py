"""ResNeXt (Xie et al. 2017, "Aggregated Residual Transformations for Deep Neural Networks").

ResNeXt widens the residual block with many parallel paths, as an Inception module
does, but gives every path the same shape: 1x1 conv (reduce to ``d`` channels), 3x3
conv, 1x1 conv (back to the block's output), with the path outputs summed. The number
of paths is the *cardinality* ``C``; "32x4d" means C = 32 paths of width d = 4 in the
first stage.

Because the paths are identical, the block can be computed as one ordinary bottleneck
whose 3x3 conv is a *grouped* convolution with ``groups = C``: the C first-layer 1x1
convs stack into one 1x1 conv with ``C * d`` outputs; the grouped 3x3 conv keeps each
path's ``d`` channels separate; and the C last-layer 1x1 convs followed by their sum are
exactly one 1x1 conv over all ``C * d`` channels (the paper's figure 3, forms a to c).

Why the paths: a grouped 3x3 conv has ``C`` times fewer weights and multiply-adds
than a dense one on the same channels, so for the budget of a ResNet block the paths
can be wider in total, which is more accurate: ResNeXt-50 (32x4d) has the parameters
and compute of ResNet-50 and a lower ImageNet error (22.2% vs 23.9% top-1 in the paper).

The models reuse :class:`~cnncourse.models.resnet.ResNet` with :class:`ResNeXtBlock` as
the block, and register parameters in the same order as torchvision's ``resnext*``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._checks import positive_int
from .resnet import ResNet, _check_stride, projection_shortcut

__all__ = [
    "ResNeXtBlock",
    "resnext_block_factory",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext_small",
]


class ResNeXtBlock(nn.Module):
    """A residual block with ``cardinality`` parallel paths, realised by a grouped conv.

    Input (N, in_channels, H, W) -> output (N, out_channels, H / stride, W / stride).

    Args:
        in_channels, out_channels: channels of the block's input and output.
        cardinality: number of paths C; the groups of the 3x3 conv.
        bottleneck_width: channels per path d *in this block*. The group width, i.e. the
            channels of the grouped conv, is ``cardinality * bottleneck_width``. In
            ResNeXt-50 (32x4d), d = 4 in the first stage and doubles with every stage
            (4, 8, 16, 32) as the output channels double (256 ... 2048).
        stride: 1, or 2 to halve the resolution (on the 3x3 conv, as in torchvision's
            ResNet v1.5; see :class:`~cnncourse.models.resnet.Bottleneck`).

    Layers: 1x1 conv in -> C*d, 3x3 grouped conv C*d -> C*d (groups=C), 1x1 conv
    C*d -> out, BN after each, ReLU after the first two and after the sum with the
    shortcut (identity, or 1x1 conv + BN when the shape changes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cardinality: int,
        bottleneck_width: int,
        stride: int = 1,
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("cardinality", cardinality)
        positive_int("bottleneck_width", bottleneck_width)
        _check_stride(stride)
        self.cardinality = cardinality
        self.bottleneck_width = bottleneck_width
        group_width = cardinality * bottleneck_width  # all paths side by side

        # The first 1x1 convs of all C paths, stacked: each path gets its own d channels.
        self.conv1 = nn.Conv2d(in_channels, group_width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(group_width)
        # groups=C: output channels [i*d, (i+1)*d) only see input channels [i*d, (i+1)*d),
        # so the C paths stay separate here.
        self.conv2 = nn.Conv2d(
            group_width,
            group_width,
            kernel_size=3,
            stride=stride,
            padding=1,
            groups=cardinality,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(group_width)
        # The purpose of the last 1x1 conv: it *merges the paths*. Each output channel is
        # a weighted sum over all C*d channels, which equals applying each path's own
        # 1x1 conv (d -> out) and adding the C results (the "aggregation" of the paper).
        # It also restores the channel count from C*d to out_channels, so the branch
        # can be added to the shortcut, and mixes information across paths, which the
        # grouped conv alone never does.
        self.conv3 = nn.Conv2d(group_width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, C*d, H, W): C paths of d channels
        out = self.relu(self.bn2(self.conv2(out)))  # (N, C*d, H/s, W/s): per-path 3x3 conv
        out = self.bn3(self.conv3(out))  # (N, out, H/s, W/s): paths merged (summed)
        out += self.shortcut(x)  # (N, out, H/s, W/s): F(x) + x
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch F (zeroed by ``zero_init_residual``)."""
        return self.bn3


def resnext_block_factory(
    cardinality: int, base_width: int, base_channels: int = 256
) -> Callable[[int, int, int], ResNeXtBlock]:
    """Blocks for :class:`ResNet` whose path width grows with the stage's output channels.

    A block with ``out_channels`` outputs gets
    ``bottleneck_width = base_width * out_channels // base_channels``: ``base_width`` (the
    "d" of "32x4d") in the first stage, which has ``base_channels`` outputs, and twice as
    much in each later stage, so the grouped conv always has half as many channels
    (x4d) or as many (x8d) as the block's output, as in the paper and torchvision.
    """
    positive_int("cardinality", cardinality)
    positive_int("base_width", base_width)
    positive_int("base_channels", base_channels)

    def make_block(in_channels: int, out_channels: int, stride: int) -> ResNeXtBlock:
        width = base_width * out_channels // base_channels
        return ResNeXtBlock(in_channels, out_channels, cardinality, width, stride)

    return make_block


_IMAGENET_WIDTHS = (256, 512, 1024, 2048)  # stage outputs, as in ResNet-50


def resnext50_32x4d(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNeXt-50 (32x4d): blocks (3, 4, 6, 3), 32 paths of width 4, 8, 16, 32.

    25.0M parameters (ResNet-50: 25.6M), 4.2 G multiply-adds at 224x224 (ResNet-50:
    4.1 G). Stride on the 3x3 conv, as in torchvision and the authors' code.
    """
    make_block = resnext_block_factory(cardinality=32, base_width=4)
    return ResNet(make_block, (3, 4, 6, 3), _IMAGENET_WIDTHS, num_classes, in_channels)


def resnext101_32x8d(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNeXt-101 (32x8d): blocks (3, 4, 23, 3), 32 paths of width 8, 16, 32, 64.

    88.8M parameters, 16.4 G multiply-adds at 224x224 (the width used by torchvision
    and by Mahajan et al. 2018; the paper's own ResNeXt-101 tables use 32x4d and 64x4d).
    """
    make_block = resnext_block_factory(cardinality=32, base_width=8)
    return ResNet(make_block, (3, 4, 23, 3), _IMAGENET_WIDTHS, num_classes, in_channels)


def resnext_small(
    num_classes: int = 10, in_channels: int = 3, *, blocks_per_stage: int = 1
) -> ResNet:
    """A CIFAR-style ResNeXt for 3x32x32 inputs, the ResNeXt twin of ``resnet_small``.

    The same stem and stages as :func:`~cnncourse.models.resnet.resnet_small` (a 3x3
    stem conv with 16 channels, stride 1, no max pool; stages of 16, 32, 64 output
    channels at 32x32, 16x16, 8x8; global average pooling and a linear layer), with
    ResNeXtBlocks of cardinality 8 instead of BasicBlocks: 8 paths of width 2, 4, 8,
    so the grouped conv has as many channels as the block's output (the ratio of
    32x8d). ``forward_features`` returns (N, 64, 8, 8) for a 32x32 input.

    Sized for speed on a CPU, where grouped convolutions run far below their
    multiply-add count: at 32x32 resolution a grouped 3x3 conv can take longer than
    the dense one it replaces (the FLOP savings pay off on large layers and GPUs).
    """
    positive_int("blocks_per_stage", blocks_per_stage)
    make_block = resnext_block_factory(cardinality=8, base_width=2, base_channels=16)
    return ResNet(
        make_block,
        (blocks_per_stage,) * 3,
        (16, 32, 64),
        num_classes,
        in_channels,
        stem_channels=16,
        small_input=True,
    )
