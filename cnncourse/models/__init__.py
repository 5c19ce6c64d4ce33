"""Reference CNN architectures, one file per family, checked against torchvision and papers.

Every model takes ``num_classes`` and ``in_channels``, splits ``forward_features`` from
its ``head``, and initialises its weights with :func:`init_weights`. ``SMALL_MODELS``
maps each family to a variant sized for 3x32x32 inputs (the offline ``sprites`` data).
"""

from ._common import init_weights
from .alexnet import AlexNet, alexnet, alexnet_small
from .googlenet import GoogLeNet, Inception, NaiveInception, googlenet, googlenet_small
from .lenet import LeNet5, lenet5
from .nin import NiN, NiNBlock, nin, nin_small
from .resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnet_small,
)
from .resnext import ResNeXtBlock, resnext50_32x4d, resnext101_32x8d, resnext_small
from .vgg import (
    VGG,
    VGG_CONFIGS,
    VGGBlock,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
    vgg_small,
)

# One small variant per family, for 3x32x32 inputs; each takes num_classes and in_channels.
SMALL_MODELS = {
    "lenet5": lenet5,
    "alexnet": alexnet_small,
    "vgg": vgg_small,
    "nin": nin_small,
    "googlenet": googlenet_small,
    "resnet": resnet_small,
    "resnext": resnext_small,
}

__all__ = [
    "init_weights",
    "SMALL_MODELS",
    "LeNet5",
    "lenet5",
    "AlexNet",
    "alexnet",
    "alexnet_small",
    "VGG",
    "VGGBlock",
    "VGG_CONFIGS",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vgg_small",
    "NiN",
    "NiNBlock",
    "nin",
    "nin_small",
    "GoogLeNet",
    "Inception",
    "NaiveInception",
    "googlenet",
    "googlenet_small",
    "ResNet",
    "BasicBlock",
    "Bottleneck",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet_small",
    "ResNeXtBlock",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext_small",
]
