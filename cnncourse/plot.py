"""Plots the notebooks use: training curves, image grids, filters and feature maps.

Every function returns the matplotlib ``Figure`` (so tests and notebooks can inspect or
save it) and draws nothing else; Jupyter shows the figure automatically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .shapes import conv_output_size
from .train import History

__all__ = [
    "plot_history",
    "show_images",
    "show_filters",
    "show_feature_maps",
    "bar_chart",
    "conv_volume",
    "ILSVRC_WINNERS",
    "IlsvrcEntry",
    "ilsvrc_chart",
    "cost_chart",
]


def plot_history(histories: History | Mapping[str, History], title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed).

    Pass one :class:`~cnncourse.train.History`, or a dict ``{label: history}`` to
    compare runs on the same axes (e.g. ReLU against sigmoid).
    """
    runs = {"": histories} if isinstance(histories, History) else dict(histories)
    if not runs:
        raise ValueError("histories: expected a History or a non-empty dict of them")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    for i, (label, h) in enumerate(runs.items()):
        color = f"C{i}"
        epochs = range(1, h.epochs + 1)
        prefix = f"{label} " if label else ""
        ax_loss.plot(epochs, h.train_loss, "-o", color=color, label=f"{prefix}train")
        ax_acc.plot(epochs, h.train_acc, "-o", color=color, label=f"{prefix}train")
        if h.val_loss:
            ax_loss.plot(epochs, h.val_loss, "--s", color=color, label=f"{prefix}val")
            ax_acc.plot(epochs, h.val_acc, "--s", color=color, label=f"{prefix}val")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    ncols = ncols or min(n, 8)
    return math.ceil(n / ncols), ncols


def _as_image(t: torch.Tensor):
    """(C, H, W) tensor -> something imshow takes: (H, W) for 1 channel, (H, W, 3) for 3."""
    t = t.detach().float().cpu()
    if t.ndim == 3 and t.shape[0] == 1:
        return t[0].numpy()
    if t.ndim == 3 and t.shape[0] == 3:
        return t.permute(1, 2, 0).numpy()
    if t.ndim == 2:
        return t.numpy()
    raise ValueError(f"images: expected (C, H, W) with C in (1, 3), got {tuple(t.shape)}")


def show_images(
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    *,
    predictions: Sequence[int] | torch.Tensor | None = None,
    dataset=None,
    ncols: int | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of images with their labels (and predictions, red where wrong).

    ``images`` is (N, C, H, W). Pass the ``dataset`` they came from to undo its
    normalisation (and take its class names); otherwise values are rescaled to [0, 1].
    """
    if images.ndim != 4:
        raise ValueError(f"images: expected (N, C, H, W), got shape {tuple(images.shape)}")
    if dataset is not None:
        images = dataset.denormalize(images)
        classes = classes or dataset.classes
    else:
        lo, hi = images.min(), images.max()
        images = (images - lo) / (hi - lo + 1e-8)
    nrows, ncols = _grid(len(images), ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.6 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(_as_image(images[i]), cmap="gray", vmin=0, vmax=1)
        if labels is not None:
            name = lambda k: classes[int(k)] if classes is not None else str(int(k))  # noqa: E731
            text, color = name(labels[i]), "black"
            if predictions is not None:
                wrong = int(predictions[i]) != int(labels[i])
                text = f"{name(predictions[i])} ({text})" if wrong else text
                color = "red" if wrong else "green"
            ax.set_title(text, fontsize=8, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_filters(
    weight: torch.Tensor, *, ncols: int | None = None, title: str | None = None
) -> Figure:
    """Convolution filters ``weight`` of shape (out_channels, in_channels, kH, kW).

    Filters with 3 input channels are drawn in colour, others one grey tile per filter
    (the first input channel). Each filter is scaled to its own min-max range.
    """
    if weight.ndim != 4:
        raise ValueError(f"weight: expected (out, in, kH, kW), got shape {tuple(weight.shape)}")
    w = weight.detach().float().cpu()
    w = w if w.shape[1] == 3 else w[:, :1]
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - lo) / (hi - lo + 1e-8)
    nrows, ncols = _grid(len(w), ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.0 * ncols, 1.0 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(w):
            ax.imshow(_as_image(w[i]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_feature_maps(
    maps: torch.Tensor, *, ncols: int | None = None, max_maps: int = 32, title: str | None = None
) -> Figure:
    """Activation maps of one image: (C, H, W), or (1, C, H, W). Shows up to ``max_maps``."""
    if maps.ndim == 4:
        if maps.shape[0] != 1:
            raise ValueError(f"maps: expected one image, got a batch of {maps.shape[0]}")
        maps = maps[0]
    if maps.ndim != 3:
        raise ValueError(f"maps: expected (C, H, W), got shape {tuple(maps.shape)}")
    maps = maps[:max_maps].detach().float().cpu()
    nrows, ncols = _grid(len(maps), ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.3 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(maps):
            ax.imshow(maps[i].numpy(), cmap="viridis")
            ax.set_title(str(i), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def bar_chart(
    values: Mapping[str, float], *, ylabel: str = "", title: str | None = None, log: bool = False
) -> Figure:
    """One bar per entry, labelled with its value (parameter counts, MACs, accuracies)."""
    if not values:
        raise ValueError("values: expected a non-empty mapping")
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(values)), 3.2))
    bars = ax.bar(list(values), list(values.values()), color=[f"C{i}" for i in range(len(values))])
    ax.bar_label(bars, labels=[f"{v:,.3g}" for v in values.values()], fontsize=8)
    ax.set(ylabel=ylabel, title=title or "")
    if log:
        ax.set_yscale("log")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def _card(
    ax, x: float, y: float, rows: int, cols: int, face: str, edge: str = "0.45", z: float = 2
) -> None:
    """One channel drawn as a grid of rows x cols unit cells, lower-left corner at (x, y),
    at depth ``z`` (cards with a higher z hide those below)."""
    ax.add_patch(plt.Rectangle((x, y), cols, rows, fc=face, ec=edge, lw=1.2, zorder=z))
    for r in range(1, rows):
        ax.plot([x, x + cols], [y + r, y + r], color="0.75", lw=0.6, zorder=z)
    for c in range(1, cols):
        ax.plot([x + c, x + c], [y, y + rows], color="0.75", lw=0.6, zorder=z)


def conv_volume(
    in_channels: int = 3,
    size: int = 6,
    kernel_size: int = 3,
    out_channels: int = 2,
    *,
    stride: int = 1,
) -> Figure:
    """A convolution over a 3-D volume: channels drawn as stacked cards.

    The input has ``in_channels`` maps of ``size`` x ``size``; each of the ``out_channels``
    filters is ``kernel_size`` x ``kernel_size`` x ``in_channels`` (as deep as the input),
    and its dot product with one window through the whole depth gives one number of its
    output map. Filter j and what it makes are drawn in colour Cj. The figure has an
    opaque white background, so it reads the same in light and dark themes.
    """
    for name, value in (("in_channels", in_channels), ("size", size),
                        ("kernel_size", kernel_size), ("out_channels", out_channels)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive int")
    if out_channels > 10:
        raise ValueError(f"out_channels={out_channels}: draw at most 10 filters")
    out = conv_output_size(size, kernel_size, stride)  # ValueError if it does not fit
    k, off = kernel_size, 0.45  # offset between stacked cards
    depth_in = (in_channels - 1) * off
    row, col = (min(1, out - 1),) * 2  # the output position whose window is shown
    fig, ax = plt.subplots(figsize=(10, 4.2), facecolor="white")
    ax.set_facecolor("white")

    # Input: in_channels cards, the first in front; the window through all of them.
    for d in range(in_channels):
        _card(ax, d * off, d * off, size, size, face="#eef2f7", z=2 * (in_channels - d))
    # The window through the whole depth: a box from the front card to the back one.
    wx, wy = col * stride, size - row * stride - k
    ax.add_patch(plt.Rectangle((wx, wy), k, k, fill=False, ec="black", lw=2.2, zorder=50))
    ax.add_patch(plt.Rectangle((wx + depth_in, wy + depth_in), k, k, fill=False, ec="black",
                               lw=1.2, ls="--", zorder=50))  # fmt: skip
    for cx, cy in ((wx, wy), (wx + k, wy), (wx, wy + k), (wx + k, wy + k)):
        ax.plot([cx, cx + depth_in], [cy, cy + depth_in], color="black", lw=1.2, zorder=50)
    window_mid = (wx + k / 2, wy + k / 2)

    # Filters: stacked vertically, each in_channels cards deep.
    fx = size + depth_in + 2.5
    step = k + depth_in + 1.0
    top = max(size + depth_in, out_channels * step - 1.0)
    filter_mids = []
    for j in range(out_channels):
        y = top - (j + 1) * step + 1.0
        for d in range(in_channels):
            _card(
                ax,
                fx + d * off,
                y + d * off,
                k,
                k,
                face="white",
                edge=f"C{j}",
                z=2 * (in_channels - d),
            )
        filter_mids.append((fx + k / 2, y + k / 2))

    # Output: one map per filter, the value at (row, col) filled in the filter's colour.
    ox = fx + k + depth_in + 2.5
    for j in range(out_channels):
        x0 = y0 = j * off
        z = 2 * (out_channels - j)
        _card(ax, ox + x0, y0, out, out, face="white", z=z)
        # drawn above every card, so the value of each map shows through the stack
        ax.add_patch(plt.Rectangle((ox + x0 + col, y0 + out - 1 - row), 1, 1, fc=f"C{j}",
                                   ec="black", lw=1, zorder=60 - j))  # fmt: skip

    arrow = dict(arrowstyle="->", color="0.35", lw=1.2, shrinkA=4, shrinkB=4)
    for j, (mx, my) in enumerate(filter_mids):
        ax.annotate("", xy=(mx - k / 2, my), xytext=window_mid, arrowprops=arrow, zorder=99)
        target = (ox + j * off + col + 0.5, j * off + out - 0.5 - row)
        ax.annotate("", xy=target, xytext=(mx + k / 2 + depth_in, my), zorder=99,
                    arrowprops={**arrow, "color": f"C{j}"})  # fmt: skip

    label = dict(ha="center", va="top", fontsize=9, color="black")
    ax.text(
        size / 2 + depth_in / 2,
        -0.6,
        f"input: {in_channels} channels\n{in_channels} × {size} × {size}",
        **label,
    )
    ax.text(
        fx + (k + depth_in) / 2,
        min(-0.6, top - out_channels * step + 0.4),
        f"{out_channels} filters, each\n{in_channels} × {k} × {k}",
        **label,
    )
    ax.text(
        ox + (out + (out_channels - 1) * off) / 2,
        -0.6,
        f"output: {out_channels} maps\n{out_channels} × {out} × {out}",
        **label,
    )
    ax.set_title(
        f"each filter is as deep as the input ({in_channels} channels) and makes one map; "
        f"{out_channels} filters make {out_channels} maps",
        fontsize=10, color="black",
    )  # fmt: skip
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.margins(0.04)
    ax.axis("off")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# ImageNet (ILSVRC) classification results by year


class IlsvrcEntry(NamedTuple):
    year: int
    name: str  # the architecture, or the team for the pre-CNN entries
    top5: float  # top-5 error on the ILSVRC test set, in percent
    layers: int | None  # weight layers (None: not a deep network)
    source: str


_RUSSAKOVSKY = "Russakovsky et al. 2015, ImageNet Large Scale Visual Recognition Challenge, IJCV"

# The classification winners (and VGG, second in 2014) as the lecture charts them.
ILSVRC_WINNERS: tuple[IlsvrcEntry, ...] = (
    IlsvrcEntry(2010, "NEC-UIUC", 28.2, None, _RUSSAKOVSKY + " (Lin et al., SIFT/LBP + SVM)"),
    IlsvrcEntry(2011, "XRCE", 25.8, None, _RUSSAKOVSKY + " (Sanchez & Perronnin, Fisher vectors)"),
    IlsvrcEntry(
        2012, "AlexNet", 16.4, 8, "Krizhevsky et al. 2012, Table 2 (15.3% with extra data)"
    ),
    IlsvrcEntry(2013, "ZFNet", 11.7, 8, _RUSSAKOVSKY + " (Clarifai, Zeiler & Fergus)"),
    IlsvrcEntry(2014, "VGG", 7.3, 19, "Simonyan & Zisserman 2015, Table 7 (2nd in 2014)"),
    IlsvrcEntry(2014, "GoogLeNet", 6.7, 22, "Szegedy et al. 2015, Table 2"),
    IlsvrcEntry(2015, "ResNet", 3.57, 152, "He et al. 2016, Table 5"),
)
# One trained annotator (Andrej Karpathy) on 1,500 test images: Russakovsky et al. 2015, 6.4.
HUMAN_TOP5 = 5.1


def ilsvrc_chart(highlight: str | Sequence[str] | None = None) -> Figure:
    """Top-5 error of the ILSVRC classification winners by year, with the human figure.

    ``highlight`` names the architecture(s) to colour (e.g. ``"VGG"``); the others are grey.
    Each bar is labelled with its error and, for deep networks, its number of layers.
    """
    names = [e.name for e in ILSVRC_WINNERS]
    wanted = [highlight] if isinstance(highlight, str) else list(highlight or [])
    unknown = [h for h in wanted if h not in names]
    if unknown:
        raise ValueError(f"highlight={unknown[0]!r}: expected one of {', '.join(names)}")
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    x = range(len(ILSVRC_WINNERS))
    colours = ["C3" if e.name in wanted else ("0.55" if wanted else "C0") for e in ILSVRC_WINNERS]
    bars = ax.bar(x, [e.top5 for e in ILSVRC_WINNERS], color=colours)
    labels = [
        f"{e.top5:g}%\n" + (f"{e.layers} layers" if e.layers else "shallow") for e in ILSVRC_WINNERS
    ]
    ax.bar_label(bars, labels=labels, fontsize=8)
    ax.axhline(HUMAN_TOP5, color="C2", ls="--", lw=1.2)
    ax.text(-0.4, HUMAN_TOP5 + 0.6, f"human {HUMAN_TOP5}%", color="C2", fontsize=8)
    ax.set_xticks(list(x), [f"{e.year}\n{e.name}" for e in ILSVRC_WINNERS], fontsize=8)
    ax.set(ylabel="top-5 error (%)", ylim=(0, 34), title="ImageNet classification (ILSVRC)")
    fig.tight_layout()
    return fig


def _winner(name: str) -> IlsvrcEntry | None:
    """The ILSVRC entry for ``name``, or for its family: the part before the first "-"."""
    by_name = {e.name: e for e in ILSVRC_WINNERS}
    return by_name.get(name) or by_name.get(name.split("-")[0])


def cost_chart(costs: Mapping[str, tuple[int, int]]) -> Figure:
    """What a network costs against how well it did: multiply-accumulates per image (x, log
    scale) against ILSVRC top-5 error (y), one marker per network, its area proportional
    to the network's parameters, labelled with all three numbers.

    ``costs`` maps a network's name to ``(parameters, MACs per image)``, e.g. from
    :func:`cnncourse.shapes.summary`. Its top-5 error comes from :data:`ILSVRC_WINNERS`,
    found by the name or by its part before the first "-" ("VGG-16" -> "VGG"). Those are
    the competition entries' errors (ensembles, many crops per image). The figure has an
    opaque white background, so it reads the same in light and dark themes.

    Raises ``ValueError`` naming ``costs`` for an empty mapping, a name that is not an
    ILSVRC entry, or a value that is not a pair of positive ints.
    """
    if not isinstance(costs, Mapping) or not costs:
        raise ValueError("costs: expected a non-empty {name: (parameters, MACs)} mapping")
    rows = []
    for name, value in costs.items():
        entry = _winner(str(name))
        if entry is None:
            known = ", ".join(e.name for e in ILSVRC_WINNERS)
            raise ValueError(f"costs[{name!r}]: not an ILSVRC entry; expected one of {known}")
        ok = isinstance(value, (tuple, list)) and len(value) == 2
        if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                             for v in value):  # fmt: skip
            raise ValueError(
                f"costs[{name!r}]={value!r}: expected (parameters, MACs), two positive ints"
            )
        rows.append((str(name), value[0], value[1], entry.top5))
    biggest = max(r[1] for r in rows)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), facecolor="white")
    ax.set_facecolor("white")
    ax.scatter(
        [r[2] / 1e9 for r in rows],
        [r[3] for r in rows],
        s=[2500 * r[1] / biggest for r in rows],  # area proportional to the parameters
        c=[f"C{i}" for i in range(len(rows))],
        alpha=0.6,
        edgecolors="black",
        zorder=3,
    )
    for name, params, macs, top5 in rows:
        below = math.sqrt(2500 * params / biggest / math.pi) + 4  # the marker's radius, in pt
        ax.annotate(
            f"{name}\n{params / 1e6:.1f}M parameters\n{macs / 1e9:.2f} GMACs, {top5:g}%",
            (macs / 1e9, top5), xytext=(0, -below), textcoords="offset points", ha="center",
            va="top", fontsize=8, color="black", zorder=4,
        )  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lo, hi = min(r[2] for r in rows) / 1e9, max(r[2] for r in rows) / 1e9
    ax.set_xlim(lo / 2.5, hi * 2.5)
    ax.set_ylim(0, max(r[3] for r in rows) * 1.35 + 1)
    ax.set_xlabel("multiply-accumulates per image (billions, log scale)", color="black")
    ax.set_ylabel("ILSVRC top-5 error (%)", color="black")
    ax.set_title("cost against error; marker area: parameters", color="black")
    ax.tick_params(colors="black", which="both")
    for spine in ax.spines.values():
        spine.set_color("black")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
