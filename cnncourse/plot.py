"""Plots the notebooks use: training curves, image grids, filters and feature maps.

Every function returns the matplotlib ``Figure`` (so tests and notebooks can inspect or
save it) and draws nothing else; Jupyter shows the figure automatically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .train import History

__all__ = ["plot_history", "show_images", "show_filters", "show_feature_maps", "bar_chart"]


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
