"""ResNet (He et al. 2016, "Deep Residual Learning for Image Recognition").

A residual block computes ``relu(F(x) + shortcut(x))``: its layers only have to learn
the *residual* ``F(x) = H(x) - x`` of the mapping ``H`` they stand for. If more depth
does not help, a block can push ``F`` towards zero and pass its input through, so a
deeper network is at least as easy to optimise as a shallower one. That is what lets
ResNets go to 152 layers where "plain" stacks of the same layers train worse as they
get deeper.

The network, as in the lecture:
- a stem: one 7x7 conv (stride 2) and a 3x3 max pool, 224 -> 56;
- four stages of residual blocks (``layer1`` ... ``layer4``, the paper's conv2_x ...
  conv5_x); each later stage halves the resolution with a stride of 2 in its first
  block and doubles the channels;
- batch norm after every conv, no dropout, and no fully connected layers except the
  last one: global average pooling, then one linear classifier.

``BasicBlock`` (two 3x3 convs) builds ResNet-18/34, ``Bottleneck`` (1x1 reduce, 3x3,
1x1 expand) builds ResNet-50/101/152. The module layout (conv1, bn1, conv2, bn2, [conv3,
bn3], shortcut conv, shortcut bn; stem; layer1..4; fc) registers parameters in the same
order as torchvision's ``resnet*``, so ``cnncourse.grading.copy_weights`` moves
torchvision's weights into these models and they then compute the same outputs.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._checks import positive_int
from ._common import init_weights

__all__ = [
    "BlockFactory",
    "projection_shortcut",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet_small",
]

# A block factory: (in_channels, out_channels, stride) -> block module. ResNet calls it
# once per block, so BasicBlock, Bottleneck and ResNeXtBlock all plug into one ResNet.
BlockFactory = Callable[[int, int, int], nn.Module]


def _check_stride(stride: object) -> None:
    if isinstance(stride, bool) or stride not in (1, 2):
        raise ValueError(f"stride={stride!r}: expected 1 or 2")


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The shortcut of a residual block: identity if shapes agree, else 1x1 conv + BN.

    The sum ``F(x) + shortcut(x)`` needs both terms in the same shape. When a block
    changes the channel count or the resolution, a strided 1x1 conv (no bias, BN after
    it) projects ``x`` to the new shape: the paper's option (B), as in torchvision.
    """
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()  # no parameters, so the registration order is unaffected
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def _shortcut(in_channels: int, out_channels: int, stride: int, residual: bool) -> nn.Module | None:
    """The block's shortcut, or None for a *plain* block (``residual=False``).

    A plain block is the same layers with no sum: the paper's "plain" networks, which
    have no projection convolutions either, so plain and residual networks differ only
    by the shortcuts (and the few parameters of the projections).
    """
    if not isinstance(residual, bool):
        raise ValueError(f"residual={residual!r}: expected True or False")
    return projection_shortcut(in_channels, out_channels, stride) if residual else None


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN after each, plus a shortcut (ResNet-18/34 and CIFAR ResNets).

    Input (N, in_channels, H, W) -> output (N, out_channels, H / stride, W / stride).
    The first conv carries the stride. The shortcut is the identity when the shape is
    unchanged, otherwise a 1x1 conv with the same stride followed by BN.
    ``residual=False`` drops the shortcut: ``relu(F(x))``, a block of a plain network.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *, residual: bool = True
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        _check_stride(stride)
        self.residual = residual
        # Convs feeding a BN need no bias: BN subtracts the mean and adds its own shift.
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, out, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (N, out, H/s, W/s): F(x), no ReLU before the sum
        if self.residual:
            out += self.shortcut(x)  # (N, out, H/s, W/s): F(x) + x
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch F (zeroed by ``zero_init_residual``)."""
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 conv (reduce) -> 3x3 conv -> 1x1 conv (expand), BN after each, plus a shortcut.

    Input (N, in_channels, H, W) -> output (N, out_channels, H / stride, W / stride),
    with ``out_channels = expansion * width`` (4 * width by default). The 1x1 convs let
    the costly 3x3 conv work on ``width`` channels instead of ``4 * width``: a block of
    ResNet-50 costs about as much as a BasicBlock of ResNet-34 while being deeper.

    ``groups > 1`` splits the 3x3 conv into groups (ResNeXt's paths, see
    :class:`cnncourse.models.resnext.ResNeXtBlock`); ``width`` must then be divisible
    by ``groups``. ``residual=False`` drops the shortcut (a plain block).

    Difference from the paper: the stride sits on the 3x3 conv ("ResNet v1.5", as in
    torchvision). He et al. put it on the first 1x1 conv, which then simply skips
    three quarters of its input positions; striding the 3x3 conv instead loses less
    information, costs a little more compute and is slightly more accurate.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        groups: int = 1,
        expansion: int = 4,
        *,
        residual: bool = True,
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("width", width)
        _check_stride(stride)
        positive_int("groups", groups)
        positive_int("expansion", expansion)
        if width % groups:
            raise ValueError(f"width={width}: expected a multiple of groups={groups}")
        out_channels = width * expansion
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, width, H, W): reduce channels
        out = self.relu(self.bn2(self.conv2(out)))  # (N, width, H/s, W/s): v1.5 stride here
        out = self.bn3(self.conv3(out))  # (N, 4*width, H/s, W/s): expand channels, F(x)
        if self.residual:
            out += self.shortcut(x)  # (N, 4*width, H/s, W/s): F(x) + x
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch F (zeroed by ``zero_init_residual``)."""
        return self.bn3


def _bottleneck(in_channels: int, out_channels: int, stride: int) -> Bottleneck:
    """Block factory for ResNet-50/101/152: a stage's output is 4x its bottleneck width."""
    return Bottleneck(in_channels, out_channels // 4, stride)


class ResNet(nn.Module):
    """A stem, stages of residual blocks, and a global-average-pool + linear head.

    ``forward(x) == head(forward_features(x))``:
    - ``forward_features``: (N, in_channels, H, W) -> feature maps (N, widths[-1], H', W'),
      e.g. (N, 2048, 7, 7) for ResNet-50 at 224x224 (H' = H / 32);
    - ``head``: global average pool -> flatten -> linear: -> logits (N, num_classes).
      The pool is adaptive, so any input size large enough for the strides works.

    Args:
        make_block: ``(in_channels, out_channels, stride) -> block``, called once per
            block (``BasicBlock``, ``_bottleneck``, or a ResNeXt block factory).
        layers: number of blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        widths: output channels per stage, e.g. (256, 512, 1024, 2048) for ResNet-50.
            The first stage keeps the resolution, each later one halves it.
        num_classes, in_channels: classifier outputs and input image channels.
        stem_channels: output channels of the stem conv (64 in all ImageNet ResNets).
        small_input: CIFAR-style stem for 32x32 images: a 3x3 conv with stride 1 and no
            max pool (He et al. 2016, section 4.2), instead of the 7x7 stride-2 conv and
            3x3 stride-2 max pool that shrink a 224x224 image to 56x56.
        zero_init_residual: start the last BN of every residual branch at weight 0, so
            each block begins as the identity (Goyal et al. 2017; torchvision's flag of
            the same name). Off by default, as in torchvision.
    """

    def __init__(
        self,
        make_block: BlockFactory,
        layers: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        stem_channels: int = 64,
        small_input: bool = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        positive_int("stem_channels", stem_channels)
        layers, widths = tuple(layers), tuple(widths)
        if not layers or len(layers) != len(widths):
            raise ValueError(
                f"layers={layers!r}, widths={widths!r}: expected two non-empty sequences of "
                "equal length (blocks and output channels per stage)"
            )
        for i, (n, w) in enumerate(zip(layers, widths, strict=True)):
            positive_int(f"layers[{i}]", n)
            positive_int(f"widths[{i}]", w)

        if small_input:
            stem = OrderedDict(
                conv=nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(stem_channels),
                relu=nn.ReLU(inplace=True),
            )
        else:
            stem = OrderedDict(
                conv=nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False),
                bn=nn.BatchNorm2d(stem_channels),
                relu=nn.ReLU(inplace=True),
                pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        self.stem = nn.Sequential(stem)

        # Stages are attributes layer1, layer2, ... as in torchvision and the paper's figures.
        self.num_stages = len(layers)
        channels = stem_channels
        for i, (num_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2  # the stem already downsampled before stage 1
            blocks = [make_block(channels, width, stride)]
            blocks += [make_block(width, width, 1) for _ in range(num_blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            channels = width

        self.head = nn.Sequential(
            OrderedDict(
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(1),
                fc=nn.Linear(channels, num_classes),
            )
        )
        self.num_features = channels  # channels of forward_features' output

        init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "last_bn"):
                    nn.init.zeros_(m.last_bn().weight)

    def stages(self) -> list[nn.Sequential]:
        """The stages ``[layer1, layer2, ...]`` in order."""
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # Shapes for a 224x224 input to an ImageNet ResNet; C = 64, 128, 256, 512 with
        # BasicBlocks (ResNet-18/34), four times that with Bottlenecks (ResNet-50 and up).
        x = self.stem(x)  # (N, 64, 56, 56): 7x7 conv stride 2 -> 112, max pool -> 56
        # layer1 (N, C1, 56, 56) -> layer2 (N, C2, 28, 28) -> layer3 (N, C3, 14, 14)
        # -> layer4 (N, C4, 7, 7)
        for stage in self.stages():
            x = stage(x)
        return x  # (N, C4, 7, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (N, C4, 7, 7)
        return self.head(x)  # (N, num_classes)


def _imagenet_resnet(
    make_block: BlockFactory,
    layers: Sequence[int],
    expansion: int,
    num_classes: int,
    in_channels: int,
) -> ResNet:
    widths = [w * expansion for w in (64, 128, 256, 512)]
    return ResNet(make_block, layers, widths, num_classes, in_channels)


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18: BasicBlocks (2, 2, 2, 2); 11.7M parameters, 1.8 G multiply-adds at 224."""
    return _imagenet_resnet(BasicBlock, (2, 2, 2, 2), 1, num_classes, in_channels)


def resnet34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-34: BasicBlocks (3, 4, 6, 3); 21.8M parameters, 3.7 G multiply-adds at 224."""
    return _imagenet_resnet(BasicBlock, (3, 4, 6, 3), 1, num_classes, in_channels)


def resnet50(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-50: Bottlenecks (3, 4, 6, 3); 25.6M parameters.

    v1.5 (stride on the 3x3 conv, see :class:`Bottleneck`): 4.1 G multiply-adds at
    224x224, against 3.8 G in the paper's table 1 with the stride on the first 1x1 conv.
    """
    return _imagenet_resnet(_bottleneck, (3, 4, 6, 3), 4, num_classes, in_channels)


def resnet101(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-101 (v1.5): Bottlenecks (3, 4, 23, 3); 44.5M parameters, 7.8 G multiply-adds."""
    return _imagenet_resnet(_bottleneck, (3, 4, 23, 3), 4, num_classes, in_channels)


def resnet152(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-152 (v1.5): Bottlenecks (3, 8, 36, 3); 60.2M parameters, 11.5 G multiply-adds."""
    return _imagenet_resnet(_bottleneck, (3, 8, 36, 3), 4, num_classes, in_channels)


def resnet_small(
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    blocks_per_stage: int = 1,
    widths: Sequence[int] = (16, 32, 64),
    residual: bool = True,
) -> ResNet:
    """A CIFAR-style ResNet for 3x32x32 inputs: ResNet-8 by default, 78K parameters.

    The family of He et al. 2016, section 4.2: depth ``6 * blocks_per_stage + 2`` (3
    gives their ResNet-20, 0.27M parameters). A 3x3 stem conv with 16 channels (stride 1,
    no max pool: the image is already small), three stages of ``blocks_per_stage``
    BasicBlocks with 16, 32, 64 channels at 32x32, 16x16, 8x8, then global average
    pooling and a linear layer. ``forward_features`` returns (N, 64, 8, 8) for a 32x32
    input. One block per stage keeps an epoch of 10,000 images to seconds on a laptop CPU.

    ``widths`` sets the stages' channels (the stem has as many as the first stage).
    ``residual=False`` gives the paper's *plain* twin: the same layers with no shortcuts
    (and so none of the 1x1 projections), for the degradation experiment of its figure 1.

    Difference from the paper: the shortcuts between stages are 1x1 projections
    (option B) rather than the paper's parameter-free zero padding (option A).
    """
    positive_int("blocks_per_stage", blocks_per_stage)
    widths = tuple(widths)
    if len(widths) != 3:
        raise ValueError(f"widths={widths!r}: expected three stage widths")
    return ResNet(
        functools.partial(BasicBlock, residual=residual),
        (blocks_per_stage,) * 3,
        widths,
        num_classes,
        in_channels,
        stem_channels=widths[0],
        small_input=True,
    )
