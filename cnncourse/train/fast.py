"""A fast CIFAR-10 recipe for one GPU, after the public speed records.

Keller Jordan's airbench (94% CIFAR-10 test accuracy in about 3-4 s on an A100) and
tysam-code's hlb-CIFAR10 (about 10 s) show how far a small network and a careful schedule
go. This module keeps their main ideas, in a form small enough to read:

- **A small, wide, shallow network** (:class:`FastNet`): a 2x2 *whitening* convolution whose
  fixed filters decorrelate the pixels of each 2x2 patch (computed from the training images,
  not learnt), then three groups of conv-pool-BN-GELU-conv-BN-GELU at 64, 256 and 256
  channels, a global max pool and a bias-free linear head whose output is scaled down (1/9)
  so the first steps do not saturate the softmax.
- **The whole dataset on the device**: no DataLoader and no worker processes; each batch is
  an index into one tensor, and augmentation runs on the batch, on the device.
- **Flip and translate** augmentation (mirror half the images, shift by up to 2 pixels with
  reflected borders), drawn from a seeded generator.
- **Label smoothing** 0.2, **SGD with Nesterov momentum**, and a **one-cycle-like schedule**
  stepped every batch: linear warm-up over the first 20% of the steps, linear decay after.
- **channels_last and bf16/fp16 autocast** on CUDA, optional ``torch.compile``, and
  **test-time augmentation**: the logits of each image and its mirror image are averaged.

The numbers it reaches, and where they were measured, are in the README ("Beyond one
machine"); ``benchmarks/bench_recipe.py`` measures it against :func:`cnncourse.train.fit`'s
default recipe. Run it with ``python -m cnncourse.train.fast --data cifar10``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .. import data as datasets
from ..utils import get_device
from . import _autocast, _decay_groups

__all__ = ["FastNet", "FastResult", "batch_flip_translate", "train_fast", "whitening_filters"]


# --------------------------------------------------------------------------- the network


def whitening_filters(images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """2x2 convolution filters that whiten the 2x2 patches of ``images`` (N, C, H, W).

    The covariance of the C*4 pixel values of a patch has eigenvectors v_i and eigenvalues
    l_i; the filter v_i / sqrt(l_i + eps) maps a patch onto one decorrelated direction with
    unit variance. Returns the C*4 filters and their negatives, shape (2*C*4, C, 2, 2): with
    both signs, a ReLU-like activation after them loses nothing.
    """
    if images.ndim != 4 or min(images.shape[-2:]) < 2:
        raise ValueError(f"images: expected (N, C, H, W) with H, W >= 2, got {tuple(images.shape)}")
    c = images.shape[1]
    # unfold orders each patch channel-major, then row, then column: the layout of a conv
    # weight (out, C, 2, 2), so an eigenvector reshapes straight into a filter.
    patches = F.unfold(images.double(), kernel_size=2).transpose(1, 2).reshape(-1, c * 4)
    eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(patches.T))
    filters = eigenvectors.T / (eigenvalues.clamp(min=0) + eps).sqrt()[:, None]
    filters = filters.reshape(c * 4, c, 2, 2).float()
    return torch.cat([filters, -filters])


class _ConvGroup(nn.Sequential):
    """conv -> max pool (halves the side) -> BN -> GELU -> conv -> BN -> GELU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c_out, momentum=0.4),
            nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out, momentum=0.4),
            nn.GELU(),
        )


class FastNet(nn.Module):
    """airbench's network, in outline: (N, C, 32, 32) -> whiten (N, 8C, 31, 31) -> groups at
    ``widths`` (15, 7, 3 pixels) -> global max pool -> (N, num_classes) logits.

    Call :meth:`whiten` with training images before training; the whitening filters stay
    fixed after (they are a buffer-like parameter with ``requires_grad=False``), only their
    bias is learnt.
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (64, 256, 256)
    ) -> None:
        super().__init__()
        if len(widths) != 3 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths={widths!r}: expected three positive ints")
        white = 2 * in_channels * 4
        self.whiten_conv = nn.Conv2d(in_channels, white, 2, padding=0)
        self.whiten_conv.weight.requires_grad_(False)
        groups, c = [], white
        for w in widths:
            groups.append(_ConvGroup(c, w))
            c = w
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c, num_classes, bias=False)
        self.scale = 1 / 9  # airbench's logit scale: small logits while the head is random

    @torch.no_grad()
    def whiten(self, images: torch.Tensor) -> FastNet:
        """Set the whitening filters from (a sample of) the training images; returns self."""
        weight = whitening_filters(images.to(self.whiten_conv.weight.device))
        if weight.shape != self.whiten_conv.weight.shape:
            raise ValueError(
                f"images: {images.shape[1]} channels, but this FastNet takes "
                f"{self.whiten_conv.in_channels}"
            )
        self.whiten_conv.weight.copy_(weight)
        self.whiten_conv.bias.zero_()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten_conv(x))
        return self.groups(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        x = torch.amax(x, dim=(2, 3))  # global max pool: (N, C, h, w) -> (N, C)
        return self.head(x) * self.scale


# --------------------------------------------------------------------------- augmentation


def batch_flip_translate(
    x: torch.Tensor, shift: int = 2, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror each image of the batch with probability 1/2 and shift it by up to ``shift``
    pixels each way, the uncovered border filled by reflection. One gather on the device,
    with no per-image Python loop and no host synchronisation."""
    if x.ndim != 4:
        raise ValueError(f"x: expected (N, C, H, W), got shape {tuple(x.shape)}")
    if not isinstance(shift, int) or shift < 0 or shift >= min(x.shape[-2:]):
        raise ValueError(f"shift={shift!r}: expected an int >= 0 smaller than the image side")
    n, _, h, w = x.shape
    dev = x.device
    flip = torch.rand(n, device=dev, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if shift == 0:
        return x
    padded = F.pad(x, (shift,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * shift + 1, (n, 1), device=dev, generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n, 1), device=dev, generator=generator)
    rows = (torch.arange(h, device=dev) + dy)[:, None, :, None]  # (N, 1, H, 1)
    cols = (torch.arange(w, device=dev) + dx)[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=dev)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    return padded[batch, channel, rows, cols]


# --------------------------------------------------------------------------- training


@dataclass
class FastResult:
    """What :func:`train_fast` measured.

    ``history`` has one row per epoch (``epoch``, ``train_loss``, ``val_acc``, ``seconds``:
    training time so far). Times count training steps only, not evaluation, as the speed
    records do; ``time_to_target`` is the training time after the first epoch whose
    validation accuracy reached ``target`` (``None`` if none did).
    """

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    val_acc: float = 0.0
    target: float | None = None
    time_to_target: float | None = None
    epochs_to_target: int | None = None
    device: str = "cpu"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_tta(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000,
    tta: bool = True, amp: bool = False, channels_last: bool = False,
) -> float:  # fmt: skip
    """Accuracy on (images, labels) already on the model's device; with ``tta`` the logits
    of each image and of its mirror image are averaged."""
    model.eval()
    device = images.device
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            logits = model(x).float()
            if tta:
                logits = logits + model(x.flip(-1)).float()
        correct += (logits.argmax(1) == labels[i : i + batch_size]).sum()
    return correct.item() / len(images)


def train_fast(
    train: datasets.ImageDataset,
    val: datasets.ImageDataset,
    *,
    model: nn.Module | None = None,
    epochs: float = 10.0,
    batch_size: int = 1024,
    lr: float = 1.0,
    momentum: float = 0.85,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.2,
    warmup: float = 0.2,
    shift: int = 2,
    widths: Sequence[int] = (64, 256, 256),
    target: float | None = None,
    tta: bool = True,
    amp: bool | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    device: str | torch.device | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> FastResult:
    """Train ``model`` (default: a :class:`FastNet` of ``widths``, whitened on ``train``) with
    the fast recipe; stop early once the validation accuracy reaches ``target``.

    ``epochs`` may be fractional (the last epoch is cut short). ``lr`` is the peak learning
    rate for the batch-mean loss; weight decay skips biases and batch-norm parameters.
    ``amp`` and ``channels_last`` default to on with CUDA and off elsewhere. Validation runs
    after every epoch (with the mirror-image test-time augmentation if ``tta``).
    """
    if not isinstance(train, datasets.ImageDataset) or not isinstance(val, datasets.ImageDataset):
        raise ValueError(
            "train, val: expected cnncourse ImageDatasets (the recipe keeps their images "
            "tensors on the device), e.g. cnncourse.data.load_dataset('cifar10', 'train')"
        )
    if not epochs > 0:
        raise ValueError(f"epochs={epochs!r}: expected a positive number")
    if not isinstance(batch_size, int) or not 0 < batch_size <= len(train):
        raise ValueError(
            f"batch_size={batch_size!r}: expected a positive int at most the {len(train)} "
            "training images"
        )
    if not lr > 0:
        raise ValueError(f"lr={lr!r}: expected a positive number")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup={warmup!r}: expected the warm-up fraction, in [0, 1)")
    if target is not None and not 0 < target <= 1:
        raise ValueError(f"target={target!r}: expected an accuracy in (0, 1]")
    device = get_device(device)
    cuda = device.type == "cuda"
    amp = cuda if amp is None else bool(amp) and cuda
    channels_last = cuda if channels_last is None else bool(channels_last)

    torch.manual_seed(seed)
    g = torch.Generator(device=device if device.type in ("cpu", "cuda") else "cpu")
    g.manual_seed(seed)
    x_train = train.images.to(device)
    y_train = train.labels.to(device)
    x_val, y_val = val.images.to(device), val.labels.to(device)
    if model is None:
        model = FastNet(len(train.classes), train.image_shape[0], widths).to(device)
        model.whiten(x_train[:5000])
    else:
        model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    optimizer = torch.optim.SGD(
        _decay_groups(model), lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay
    )
    steps_per_epoch = len(train) // batch_size
    total = max(1, math.ceil(epochs * steps_per_epoch))
    warm = max(1, round(warmup * total))

    def factor(step: int) -> float:  # one-cycle: up linearly, then down linearly to 0
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / (total - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    fp16 = amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    step_fn = torch.compile(model) if compile else model

    result = FastResult(model=model, target=target, device=str(device))
    step, trained = 0, 0.0
    for epoch in range(math.ceil(epochs)):
        model.train()
        _sync(device)
        tic = time.perf_counter()
        order = torch.randperm(len(train), device=g.device, generator=g).to(device)
        loss_sum = torch.zeros((), device=device)
        n_steps = 0
        for k in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[k * batch_size : (k + 1) * batch_size]
            x = batch_flip_translate(
                x_train[idx], shift, g if g.device.type == device.type else None
            )
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, amp):
                loss = loss_fn(step_fn(x).float(), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach()
            step += 1
            n_steps += 1
        _sync(device)
        trained += time.perf_counter() - tic
        acc = evaluate_tta(model, x_val, y_val, tta=tta, amp=amp, channels_last=channels_last)
        row = dict(
            epoch=epoch + 1, train_loss=(loss_sum / max(1, n_steps)).item(), val_acc=acc,
            seconds=trained,
        )  # fmt: skip
        result.history.append(row)
        if verbose:
            print(
                f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} | val acc {acc:.4f} | "
                f"{trained:.1f}s training",
                flush=True,
            )
        if target is not None and result.time_to_target is None and acc >= target:
            result.time_to_target, result.epochs_to_target = trained, epoch + 1
            break
    result.train_seconds, result.val_acc = trained, result.history[-1]["val_acc"]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cnncourse.train.fast",
        description="The fast one-GPU recipe (FastNet, after airbench) on a cnncourse dataset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", default="cifar10", help="a cnncourse dataset name")
    p.add_argument("--data-root", default=None, help="torchvision datasets' folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--epochs", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--target", type=float, default=0.94, help="stop at this test accuracy")
    p.add_argument("--widths", type=int, nargs=3, default=(64, 256, 256))
    p.add_argument("--compile", action="store_true", help="torch.compile (slow first steps)")
    p.add_argument("--num-train", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    try:
        kw = dict(seed=args.seed, root=args.data_root, download=args.download)
        train = datasets.load_dataset(args.data, "train", num_samples=args.num_train, **kw)
        # The records report the official test split: so does this command.
        test = datasets.load_dataset(args.data, "test", **kw)
        r = train_fast(
            train, test, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            target=args.target, widths=tuple(args.widths), compile=args.compile,
            device=args.device, seed=args.seed,
        )  # fmt: skip
    except (ValueError, datasets.DatasetUnavailableError) as err:
        print(f"python -m cnncourse.train.fast: error: {err}", file=sys.stderr)
        return 2
    reached = (
        f"{args.target:.0%} after {r.epochs_to_target} epochs, {r.time_to_target:.2f}s"
        if r.time_to_target is not None
        else f"{args.target:.0%} not reached"
    )
    print(f"{train.name} on {r.device}: test acc {r.val_acc:.4f}; {reached} of training")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
