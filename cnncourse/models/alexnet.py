"""AlexNet (Krizhevsky, Sutskever and Hinton 2012): five convolutions, three dense layers.

Three variants share one layout (conv1, pool, conv2, pool, conv3, conv4, conv5, pool,
then dropout-dense-ReLU twice and a linear classifier) and differ in their sizes:

========================  ===================  ===================  =======================
conv (out@kernel/stride)  "paper", 227x227     "torchvision", 224   "small", 32x32
========================  ===================  ===================  =======================
conv1                     96@11/4 -> 55        64@11/4 pad 2 -> 55  24@5/1 pad 2 -> 32
pool1 3x3/2               -> 27                -> 27                -> 15
conv2                     256@5 pad 2 -> 27    192@5 pad 2          48@5 pad 2
pool2 3x3/2               -> 13                -> 13                -> 7
conv3, conv4, conv5 3x3   384, 384, 256        384, 256, 256        64, 64, 48
pool5 3x3/2               -> 6                 -> 6                 -> 3
dense                     9216-4096-4096-C     9216-4096-4096-C     432-256-256-C
parameters                62,378,344 (C=1000)  61,100,840 (C=1000)  302,218 (C=10)
========================  ===================  ===================  =======================
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn

from .._checks import positive_int
from ._common import init_weights

__all__ = ["ALEXNET_LAYERS", "AlexNet", "alexnet", "alexnet_rows", "alexnet_small"]

# Per variant: (out_channels, kernel_size, stride, padding) of conv1..conv5, the spatial
# size the head pools to, the width of the two hidden dense layers, and whether local
# response normalisation follows conv1 and conv2.
_VARIANTS = {
    "paper": {
        "convs": ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1)),
        "pool_size": 6,
        "hidden": 4096,
        "lrn": True,
    },
    "torchvision": {
        "convs": ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)),
        "pool_size": 6,
        "hidden": 4096,
        "lrn": False,
    },
    "small": {
        "convs": ((24, 5, 1, 2), (48, 5, 1, 2), (64, 3, 1, 1), (64, 3, 1, 1), (48, 3, 1, 1)),
        "pool_size": 3,
        "hidden": 256,
        "lrn": False,
    },
}
_POOL_AFTER = (0, 1, 4)  # max pooling follows conv1, conv2 and conv5
_GROUPED = (1, 3, 4)  # conv2, conv4 and conv5 saw only their own GPU's half of the maps


class AlexNet(nn.Module):
    """AlexNet: (N, in_channels, H, W) -> logits (N, num_classes); see the module table.

    ``variant="paper"`` follows Krizhevsky et al. (2012): 96-256-384-384-256 kernels,
    227x227 input (the paper says 224, but only 227 gives its 55x55 conv1 output:
    (227 - 11) / 4 + 1 = 55), ReLU, then local response normalisation after conv1 and
    conv2 (k=2, n=5, alpha=1e-4, beta=0.75 in the paper's formula; PyTorch divides alpha
    by n, hence ``alpha=5e-4`` below). Ungrouped it has 62,378,344 parameters (the
    lecture's "62M"); ``two_tower=True`` splits conv2, conv4 and conv5 into two groups as
    the paper's two GPUs did, which leaves 60,965,224 (the paper's "60 million").

    ``variant="torchvision"`` is ``torchvision.models.alexnet``, a single-tower AlexNet
    that torchvision bases on the "one weird trick" paper (Krizhevsky 2014):
    64-192-384-256-256 kernels, conv1 padding 2, no LRN, 61,100,840 parameters; its
    weights copy over by position and give the same outputs.

    ``variant="small"`` keeps the layout at CIFAR scale (5x5 stride-1 stem) for 32x32 input.

    ``variant`` may also be a mapping with the keys of the table above: ``convs`` (five
    ``(out_channels, kernel_size, stride, padding)``), ``pool_size``, ``hidden`` and
    ``lrn``: the same layout with other sizes (the notebook's exercises are graded on such).

    All variants average-pool the last feature map to a fixed size before the dense layers
    (as torchvision does), so other input sizes work; at 227 ("paper") or 224
    ("torchvision") that pooling does nothing. Dropout precedes the two hidden dense layers.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        variant: str | Mapping = "torchvision",
        dropout: float = 0.5,
        two_tower: bool = False,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        positive_int("in_channels", in_channels)
        if isinstance(variant, Mapping):
            cfg = _custom_config(variant)
        elif variant not in _VARIANTS:
            raise ValueError(f"variant={variant!r}: expected one of {list(_VARIANTS)}")
        else:
            cfg = _VARIANTS[variant]
        if two_tower and variant != "paper":
            raise ValueError(
                f"two_tower=True: only variant='paper' had two towers, not {variant!r}"
            )

        layers: list[nn.Module] = []
        channels = in_channels
        for i, (out_channels, kernel_size, stride, padding) in enumerate(cfg["convs"]):
            groups = 2 if two_tower and i in _GROUPED else 1
            layers += [
                nn.Conv2d(channels, out_channels, kernel_size, stride, padding, groups=groups),
                nn.ReLU(inplace=True),
            ]
            if cfg["lrn"] and i < 2:
                layers.append(nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0))
            if i in _POOL_AFTER:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))  # overlapping pooling
            channels = out_channels
        self.features = nn.Sequential(*layers)

        size, hidden = cfg["pool_size"], cfg["hidden"]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(size),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # paper (N, 3, 227, 227) -> (N, 256, 6, 6); small (N, 3, 32, 32) -> (N, 48, 3, 3)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (N, C, 6, 6) at 224/227 input
        return self.head(x)  # (N, num_classes)


def _custom_config(cfg: Mapping) -> dict:
    """A variant given as a mapping, checked: five conv specs, pool_size, hidden, lrn."""
    missing = {"convs", "pool_size", "hidden", "lrn"} - set(cfg)
    if missing:
        raise ValueError(f"variant: the mapping lacks {sorted(missing)}")
    convs = tuple(tuple(c) for c in cfg["convs"])
    if len(convs) != 5 or any(len(c) != 4 for c in convs):
        raise ValueError(
            "variant: 'convs' must hold five (out_channels, kernel_size, stride, padding)"
        )
    for c in convs:
        for name, v in zip(("out_channels", "kernel_size", "stride"), c[:3], strict=True):
            positive_int(name, v)
    positive_int("pool_size", cfg["pool_size"])
    positive_int("hidden", cfg["hidden"])
    return {"convs": convs, "pool_size": cfg["pool_size"], "hidden": cfg["hidden"],
            "lrn": bool(cfg["lrn"])}  # fmt: skip


# The rows of AlexNet's layer table, in the order of the network.
ALEXNET_LAYERS = (
    "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8",
)  # fmt: skip


@functools.lru_cache(maxsize=32)
def alexnet_rows(
    convs: tuple = _VARIANTS["paper"]["convs"],
    hidden: int = 4096,
    num_classes: int = 1000,
    in_channels: int = 3,
    image_size: int = 227,
) -> dict:
    """AlexNet's layer table measured by :func:`cnncourse.shapes.summary`: ``{"conv1": row,
    ..., "fc8": row}`` (output shape, parameters, MACs per image, receptive field) for the
    layout with these five ``(out_channels, kernel_size, stride, padding)`` convolutions,
    3x3/2 max pooling after conv1, conv2 and conv5, and dense layers of ``hidden`` units
    reading pool5's maps flattened (the head's adaptive pooling set to pool5's size, so it
    does nothing). Cached: the rows are shared, do not change them.
    """
    from ..shapes import conv_output_size, pool_output_size, summary

    size = image_size
    for i, (_, k, s, p) in enumerate(convs):
        size = conv_output_size(size, k, s, p)
        if i in _POOL_AFTER:
            size = pool_output_size(size, 3, stride=2)
    cfg = {"convs": convs, "pool_size": size, "hidden": hidden, "lrn": False}
    with torch.device("meta"):  # shapes only: no memory, no weight initialisation
        model = AlexNet(num_classes, in_channels, cfg)
    rows = summary(model, (in_channels, image_size, image_size), verbose=False)
    rows = [r for r in rows if r.kind in ("Conv2d", "MaxPool2d", "Linear")]
    return dict(zip(ALEXNET_LAYERS, rows, strict=True))


def alexnet(
    num_classes: int = 1000,
    in_channels: int = 3,
    variant: str = "torchvision",
    dropout: float = 0.5,
    two_tower: bool = False,
) -> AlexNet:
    """AlexNet for ImageNet-size input: ``variant`` "torchvision" (224) or "paper" (227)."""
    return AlexNet(num_classes, in_channels, variant, dropout, two_tower)


def alexnet_small(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet's layout at CIFAR scale, for (N, in_channels, 32, 32) input."""
    return AlexNet(num_classes, in_channels, "small", dropout)
