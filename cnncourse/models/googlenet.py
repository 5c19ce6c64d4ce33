"""GoogLeNet (Szegedy et al. 2014, "Going deeper with convolutions"): stacked Inception modules.

An Inception module runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side
on the same input and concatenates their outputs along the channels. 1x1 "reduce"
convolutions in front of the 3x3 and 5x5 branches (and after the pool) shrink the
channels first, which is what keeps the 22-layer network at about 7M parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .._checks import positive_int
from ._common import init_weights

__all__ = [
    "INCEPTION_CONFIGS",
    "BasicConv2d",
    "Inception",
    "InceptionAux",
    "NaiveInception",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "googlenet",
    "googlenet_small",
]

# Table 1 of the paper: in_channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
# Each module's output has #1x1 + #3x3 + #5x5 + pool proj channels.
INCEPTION_CONFIGS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),  # -> 256
    "3b": (256, 128, 128, 192, 32, 96, 64),  # -> 480
    "4a": (480, 192, 96, 208, 16, 48, 64),  # -> 512
    "4b": (512, 160, 112, 224, 24, 64, 64),  # -> 512
    "4c": (512, 128, 128, 256, 24, 64, 64),  # -> 512
    "4d": (512, 112, 144, 288, 32, 64, 64),  # -> 528
    "4e": (528, 256, 160, 320, 32, 128, 128),  # -> 832
    "5a": (832, 256, 160, 320, 32, 128, 128),  # -> 832
    "5b": (832, 384, 192, 384, 48, 128, 128),  # -> 1024
}


class BasicConv2d(nn.Sequential):
    """Conv + ReLU, or with ``batch_norm`` conv (no bias: batch norm's shift replaces
    it) + batch norm + ReLU, as in torchvision's GoogLeNet."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        batch_norm: bool = False,
    ) -> None:
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=not batch_norm
        )
        norm = [nn.BatchNorm2d(out_channels, eps=0.001)] if batch_norm else []
        super().__init__(conv, *norm, nn.ReLU(inplace=True))


class NaiveInception(nn.Module):
    """The naive Inception module (the paper's figure 2a): (N, in_channels, H, W) ->
    (N, ch1x1 + ch3x3 + ch5x5 + in_channels, H, W).

    Four branches on the same input, each padded to keep H x W: 1x1 conv; 3x3 conv
    (pad 1); 5x5 conv (pad 2), each with a bias and a ReLU; and a 3x3 max pool (stride 1,
    pad 1), which keeps all in_channels. Concatenated along the channels in that order.
    Without the 1x1 reductions of :class:`Inception`, the pool branch passes every input
    channel on, so stacked modules grow deeper at every step.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int) -> None:
        super().__init__()
        widths = {"in_channels": in_channels, "ch1x1": ch1x1, "ch3x3": ch3x3, "ch5x5": ch5x5}
        for name, value in widths.items():
            positive_int(name, value)
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = BasicConv2d(in_channels, ch3x3, 3, padding=1)
        self.branch3 = BasicConv2d(in_channels, ch5x5, 5, padding=2)
        self.branch4 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (N, out_channels, H, W)


class Inception(nn.Module):
    """Inception module: (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).

    Four branches, each padded to keep H x W so their outputs stack along channels:
    1x1 conv; 1x1 reduce then 3x3 (pad 1); 1x1 reduce then 5x5 (pad 2); 3x3 max pool
    (stride 1, pad 1) then 1x1 projection. ReLU after every convolution.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        widths = {"in_channels": in_channels, "ch1x1": ch1x1, "ch3x3red": ch3x3red}
        widths |= {"ch3x3": ch3x3, "ch5x5red": ch5x5red, "ch5x5": ch5x5, "pool_proj": pool_proj}
        for name, value in widths.items():
            positive_int(name, value)
        bn = batch_norm
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1, batch_norm=bn)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1, batch_norm=bn),
            BasicConv2d(ch3x3red, ch3x3, 3, padding=1, batch_norm=bn),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1, batch_norm=bn),
            BasicConv2d(ch5x5red, ch5x5, 5, padding=2, batch_norm=bn),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            BasicConv2d(in_channels, pool_proj, 1, batch_norm=bn),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (N, out_channels, H, W)


class InceptionAux(nn.Module):
    """Auxiliary classifier on a 14x14 map: (N, in_channels, H, W) -> (N, num_classes).

    Paper: 5x5/3 average pool (14x14 -> 4x4), 1x1 conv 128 + ReLU, dense 1024 + ReLU,
    70% dropout, linear classifier. The pooling here is adaptive to 4x4 (as in
    torchvision), which is the same size at 224x224 input and lets smaller inputs through.
    """

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool = False) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),  # (N, in_channels, 4, 4)
            BasicConv2d(in_channels, 128, 1, batch_norm=batch_norm),  # (N, 128, 4, 4)
            nn.Flatten(),  # (N, 2048)
            nn.Linear(128 * 4 * 4, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.7),
            nn.Linear(1024, num_classes),  # (N, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GoogLeNetOutputs(NamedTuple):
    """What GoogLeNet returns in training mode with ``aux_logits=True``."""

    logits: torch.Tensor
    aux1: torch.Tensor  # from the classifier after inception 4a
    aux2: torch.Tensor  # from the classifier after inception 4d


class GoogLeNet(nn.Module):
    """GoogLeNet as in Table 1 of the paper: (N, in_channels, 224, 224) -> (N, num_classes).

    Stem: 7x7/2 conv 64 (112x112), 3x3/2 max pool (56), LRN, 1x1 conv 64, 3x3 conv 192,
    LRN, 3x3/2 max pool (28x28x192); inception 3a, 3b (28x28x480), max pool (14), 4a-4e
    (14x14x832), max pool (7), 5a, 5b (7x7x1024); global average pool, 40% dropout,
    linear. Max pools round up (``ceil_mode``, as Caffe did) so 112 -> 56 -> 28 -> 14 -> 7.
    In training mode with ``aux_logits=True`` the forward pass returns
    :class:`GoogLeNetOutputs` (logits, aux1, aux2); in eval mode, or without aux
    classifiers, just the logits. The paper adds the auxiliary losses with weight 0.3.

    ``batch_norm=True`` puts batch norm after every convolution (removing the conv biases
    and the LRN layers), as Inception v2 and torchvision do.

    Differences from ``torchvision.models.googlenet``: its "5x5" branch uses 3x3
    convolutions (a bug kept for compatibility with its weights, pytorch/vision#906), it
    always has batch norm, its last stage pool is 2x2/2, its dropout default is 0.2,
    and ``transform_input`` re-normalises inputs for the ported weights. Its parameter
    count therefore differs from ours with ``batch_norm=True`` by exactly the 16 extra
    weights per (reduce channel, output channel) pair of every 5x5 branch.

    ``cifar_stem`` and ``width_divisor`` are for :func:`googlenet_small`.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.4,
        cifar_stem: bool = False,
        width_divisor: int = 1,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        positive_int("width_divisor", width_divisor)
        if any(c % width_divisor for cfg in INCEPTION_CONFIGS.values() for c in cfg):
            raise ValueError(f"width_divisor={width_divisor}: must divide every width in Table 1")
        d, bn = width_divisor, batch_norm
        self.aux_logits = aux_logits

        # The stem shrinks 224 -> 28 (three stride-2 steps). For 32x32 input conv1 is a
        # 3x3 at stride 1 instead of 7x7/2, so the stem shrinks 32 -> 8.
        k, s, p = (3, 1, 1) if cifar_stem else (7, 2, 3)
        lrn = [] if bn else [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)]
        self.stem = nn.Sequential(
            BasicConv2d(in_channels, 64 // d, k, stride=s, padding=p, batch_norm=bn),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            *lrn,
            BasicConv2d(64 // d, 64 // d, 1, batch_norm=bn),  # 1x1 reduce
            BasicConv2d(64 // d, 192 // d, 3, padding=1, batch_norm=bn),
            *lrn,
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )

        def inception(name: str) -> Inception:
            return Inception(*(c // d for c in INCEPTION_CONFIGS[name]), batch_norm=bn)

        self.inception3a, self.inception3b = inception("3a"), inception("3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a, self.inception4b = inception("4a"), inception("4b")
        self.inception4c, self.inception4d = inception("4c"), inception("4d")
        self.inception4e = inception("4e")
        self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception5a, self.inception5b = inception("5a"), inception("5b")

        self.aux1 = InceptionAux(512 // d, num_classes, bn) if aux_logits else None
        self.aux2 = InceptionAux(528 // d, num_classes, bn) if aux_logits else None
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(1024 // d, num_classes),
        )
        init_weights(self)
        # init_weights starts only the last linear layer (the main classifier) small. The
        # auxiliary heads end in classifiers too: start them small as well, so that their
        # first losses are near ln(num_classes), not those of confident random guesses.
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                nn.init.normal_(aux.layers[-1].weight, std=0.01)

    def _stages(
        self, x: torch.Tensor, with_aux: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        aux1 = aux2 = None
        x = self.stem(x)  # (N, 192, 28, 28)
        x = self.inception3a(x)  # (N, 256, 28, 28)
        x = self.inception3b(x)  # (N, 480, 28, 28)
        x = self.maxpool3(x)  # (N, 480, 14, 14)
        x = self.inception4a(x)  # (N, 512, 14, 14)
        if with_aux:
            aux1 = self.aux1(x)  # (N, num_classes)
        x = self.inception4b(x)  # (N, 512, 14, 14)
        x = self.inception4c(x)  # (N, 512, 14, 14)
        x = self.inception4d(x)  # (N, 528, 14, 14)
        if with_aux:
            aux2 = self.aux2(x)  # (N, num_classes)
        x = self.inception4e(x)  # (N, 832, 14, 14)
        x = self.maxpool4(x)  # (N, 832, 7, 7)
        x = self.inception5a(x)  # (N, 832, 7, 7)
        x = self.inception5b(x)  # (N, 1024, 7, 7)
        return x, aux1, aux2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._stages(x, with_aux=False)[0]  # (N, 1024, 7, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        with_aux = self.aux_logits and self.training
        x, aux1, aux2 = self._stages(x, with_aux)  # (N, 1024, 7, 7)
        logits = self.head(x)  # (N, num_classes)
        return GoogLeNetOutputs(logits, aux1, aux2) if with_aux else logits


def googlenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = False,
    batch_norm: bool = False,
    dropout: float = 0.4,
) -> GoogLeNet:
    """GoogLeNet for 224x224 input (see :class:`GoogLeNet`)."""
    return GoogLeNet(num_classes, in_channels, aux_logits, batch_norm, dropout)


def googlenet_small(
    num_classes: int = 10, in_channels: int = 3, batch_norm: bool = True
) -> GoogLeNet:
    """GoogLeNet for (N, in_channels, 32, 32) input: every width of Table 1 divided by 8.

    The stem's first convolution is a 3x3 at stride 1 (instead of 7x7/2), so the stem
    takes 32x32 to 8x8; then the paper's nine Inception modules at an eighth of their
    widths (3a/3b at 8x8, 4a-4e at 4x4, 5a/5b at 2x2, 128 channels out), global average
    pooling and a linear classifier. Batch norm is on by default: without it the deep
    stack of concatenated branches trains slowly under the package's He (``fan_in``)
    initialisation, although its activations keep a standard deviation of about 2 from
    module to module (on 1,024 sprites images, 4 epochs of Adam at lr 1e-3 leave its loss
    at chance, 2.30, while with batch norm it is already falling).
    """
    return GoogLeNet(
        num_classes, in_channels, batch_norm=batch_norm, cifar_stem=True, width_divisor=8
    )
