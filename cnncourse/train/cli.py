"""``python -m cnncourse.train``: train a reference model on one device, or on many with torchrun.

One process on the best device (CUDA, then MPS, then the CPU)::

    python -m cnncourse.train --model resnet18 --data cifar10 --epochs 30 --batch-size 512

The same command under ``torchrun --nproc_per_node=N`` (one node) or ``torchrun --nnodes=M
...`` (several) runs data-parallel with PyTorch's own engine: every process holds the whole
model wrapped in ``DistributedDataParallel``, which averages the gradients across processes
(NCCL on CUDA, gloo on the CPU) before each optimiser step. ``--batch-size`` is the global
batch: each of the N processes takes ``batch_size / N`` of it. The training order comes from
one ``DistributedSampler`` permutation per epoch (``set_epoch``), dealt out round-robin, so
step k of an N-process run sees exactly the images of step k of a one-process run; with no
batch norm, dropout or augmentation (whose draws differ per process) the weights agree up to
float rounding (tests/test_train_cli.py checks 2 processes against 1). Losses and accuracies
are summed over processes; only rank 0 prints and writes checkpoints.

Checkpoints (``--checkpoint DIR``): after every epoch rank 0 replaces ``DIR/last.pt`` (model,
optimiser, schedule, loss scaler, history; written to a temporary file and renamed, so a kill
never leaves half a file) and ``DIR/history.json``. ``--resume`` continues from ``last.pt``;
every random draw of an epoch is seeded from (seed, epoch, rank), so a resumed run ends with
the same weights as one never interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from .. import data as datasets
from .. import models
from ..shapes import count_params
from ..utils import get_device
from . import _autocast, _decay_groups, _progress
from . import _to_device as _to

__all__ = ["Config", "MODELS", "main", "run"]

# Every model builder cnncourse.models exports: lenet5, alexnet, vgg11 ... resnext_small.
MODELS = tuple(
    n for n in models.__all__ if n[0].islower() and n != "init_weights" and n in vars(models)
)
# torchvision's ImageNet statistics, for image folders (whose statistics nobody has measured).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Config:
    """Everything one run depends on; the command line fills it (see ``--help``)."""

    model: str
    data: str = "sprites"
    data_root: str | None = None
    download: bool = False
    num_train: int | None = None
    num_val: int | None = None
    image_size: int | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    augment: bool = True
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True

    # What must match between a checkpoint and the run that resumes it (the rest, such as
    # --workers, --device or the number of processes, may change).
    SAME_ON_RESUME = (
        "model", "data", "num_train", "num_val", "image_size", "epochs", "batch_size", "lr",
        "optimizer", "momentum", "weight_decay", "label_smoothing", "schedule",
        "warmup_epochs", "augment", "seed",
    )  # fmt: skip

    def check(self) -> None:
        """Raise ``ValueError`` naming the first flag whose value cannot work."""
        if self.model not in MODELS:
            raise ValueError(
                f"--model {self.model!r}: unknown model; choose one of {', '.join(MODELS)}"
            )
        for flag in ("epochs", "batch_size", "num_train", "num_val", "image_size"):
            value = getattr(self, flag)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"--{flag.replace('_', '-')} {value}: expected a positive int")
        for flag in ("lr",):
            if not getattr(self, flag) > 0:
                raise ValueError(f"--{flag} {getattr(self, flag)}: expected a positive number")
        for flag in ("momentum", "weight_decay", "warmup_epochs", "workers"):
            if getattr(self, flag) < 0:
                value = getattr(self, flag)
                raise ValueError(f"--{flag.replace('_', '-')} {value}: expected a number >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"--label-smoothing {self.label_smoothing}: expected a number in [0, 1)"
            )
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"--optimizer {self.optimizer!r}: expected sgd, adam or adamw")
        if self.schedule not in ("cosine", "onecycle", "constant"):
            raise ValueError(f"--schedule {self.schedule!r}: expected cosine, onecycle or constant")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ValueError(f"--device {self.device!r}: expected auto, cpu, cuda or mps")
        if self.resume and not self.checkpoint:
            raise ValueError("--resume: needs --checkpoint DIR (the folder holding last.pt)")


# --------------------------------------------------------------------------- processes


@dataclass
class World:
    """Where this process stands: its rank among ``size`` processes, and its device."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, *values: float) -> list[float]:
        """The sums of ``values`` over all processes (float64, so counts stay exact)."""
        t = torch.tensor(values, dtype=torch.float64, device=self._reduce_device)
        if self.distributed:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def same_buffers(self, net: nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm running statistics): each rank's
        last training step updated them from its own part of the batch."""
        if self.distributed:
            for buffer in net.buffers():
                dist.broadcast(buffer, src=0)

    @property
    def _reduce_device(self) -> torch.device:
        # NCCL reduces only CUDA tensors; gloo only CPU ones.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def start_world(device: str) -> World:
    """This process's rank and device, joining torchrun's process group when there is one.

    torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and MASTER_ADDR/PORT); without them this
    is a single process. On CUDA each process takes GPU ``LOCAL_RANK`` of its node.
    """
    if device == "auto":
        chosen = get_device()
    elif device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU here")
    else:
        chosen = torch.device(device)
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return World(device=chosen)
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank}: this node has {torch.cuda.device_count()} GPUs; "
                "start at most that many processes per node (torchrun --nproc_per_node)"
            )
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
        backend = "nccl"
    elif chosen.type == "mps":
        raise ValueError("--device mps: PyTorch has no multi-process backend for MPS; use one")
    else:
        backend = "gloo"
    dist.init_process_group(backend, rank=rank, world_size=size)
    return World(rank, local_rank, size, chosen)


def say(world: World, *args, **kwargs) -> None:
    """print, on rank 0 only (every process would repeat the same line)."""
    if world.main:
        print(*args, **kwargs, flush=True)


# --------------------------------------------------------------------------- data


def load_data(cfg: Config, world: World) -> tuple[Dataset, Dataset, Dataset | None, dict]:
    """Train, validation and (when the dataset has one) test sets, and what they hold.

    ``--data`` is a name :func:`cnncourse.data.load_dataset` knows (held in memory), or a
    folder in ImageNet's layout, ``train/<class>/*.jpg`` and ``val/<class>/*.jpg`` (read
    from disk by torchvision's ImageFolder, ``--workers`` processes per rank).
    """
    path = Path(cfg.data).expanduser()
    if path.is_dir():
        return _image_folder(path, cfg)
    if os.sep in cfg.data or cfg.data.startswith("."):
        raise ValueError(
            f"--data {cfg.data!r}: no such folder; give a folder with train/ and val/ "
            f"subfolders, or a dataset name: {', '.join(datasets.OFFLINE_DATASETS)} (offline) "
            f"or {', '.join(datasets.ONLINE_DATASETS)}"
        )
    try:
        spec = datasets._spec(cfg.data)
    except ValueError as err:
        raise ValueError(f"--data {cfg.data!r}:{str(err).split(':', 1)[1]}") from None
    kwargs = dict(seed=cfg.seed, image_size=cfg.image_size, root=cfg.data_root)
    if cfg.download and not spec.offline:
        # One download per node: local rank 0 fetches, the others wait and read its files.
        if world.local_rank == 0:
            datasets.load_dataset(cfg.data, "train", download=True, num_samples=1, **kwargs)
            datasets.load_dataset(cfg.data, "test", download=True, num_samples=1, **kwargs)
        world.barrier()
    kwargs["download"] = False
    train = datasets.load_dataset(cfg.data, "train", num_samples=cfg.num_train, **kwargs)
    val = datasets.load_dataset(cfg.data, "val", num_samples=cfg.num_val, **kwargs)
    test = datasets.load_dataset(cfg.data, "test", num_samples=cfg.num_val, **kwargs)
    if cfg.augment:
        # Shift by up to an eighth of the side (4 pixels at 32x32) and mirror.
        train.transform = datasets.RandomCropFlip(padding=max(1, train.images.shape[-1] // 8))
    info = dict(classes=len(train.classes), shape=train.image_shape, name=train.name)
    return train, val, test, info


def _image_folder(path: Path, cfg: Config) -> tuple[Dataset, Dataset, None, dict]:
    from torchvision import datasets as tv
    from torchvision import transforms as T

    missing = [s for s in ("train", "val") if not (path / s).is_dir()]
    if missing:
        raise ValueError(
            f"--data {str(path)!r}: has no {' or '.join(s + '/' for s in missing)} folder; an "
            "image folder holds train/<class>/*.jpg and val/<class>/*.jpg (ImageNet's layout)"
        )
    size = cfg.image_size or 224
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()] if cfg.augment else [
        T.Resize(size), T.CenterCrop(size)
    ]  # fmt: skip
    val_tf = [T.Resize(round(size * 256 / 224)), T.CenterCrop(size)]
    train = tv.ImageFolder(path / "train", T.Compose([*train_tf, T.ToTensor(), normalize]))
    val = tv.ImageFolder(path / "val", T.Compose([*val_tf, T.ToTensor(), normalize]))
    if train.classes != val.classes:
        raise ValueError(f"--data {str(path)!r}: train/ and val/ hold different class folders")
    # ImageFolder lists the images class by class: a subset is a seeded random draw.
    if cfg.num_train:
        train = _random_subset(train, cfg.num_train, cfg.seed)
    if cfg.num_val:
        val = _random_subset(val, cfg.num_val, cfg.seed)
    return train, val, None, dict(classes=len(val.classes), shape=(3, size, size), name=path.name)


def _random_subset(dataset: Dataset, n: int, seed: int) -> Subset:
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:n].tolist())


def _loaders(cfg: Config, world: World, train: Dataset) -> tuple[DataLoader, DistributedSampler]:
    # One permutation per epoch (seed + epoch), dealt out round-robin: rank r takes positions
    # r, r + N, r + 2N, ... Its k-th batch of B/N then holds positions k*B ... (k+1)*B - 1
    # together with the other ranks', the k-th batch of a single process. drop_last on both
    # keeps every step a full global batch, so no rank waits on a short one.
    sampler = DistributedSampler(
        train, num_replicas=world.size, rank=world.rank, shuffle=True, seed=cfg.seed,
        drop_last=True,
    )  # fmt: skip
    loader = DataLoader(
        train, batch_size=cfg.batch_size // world.size, sampler=sampler, drop_last=True,
        num_workers=cfg.workers, pin_memory=world.device.type == "cuda",
        persistent_workers=cfg.workers > 0,
    )  # fmt: skip
    return loader, sampler


def _shard(dataset: Dataset, world: World, batch_size: int, workers: int) -> DataLoader:
    """This rank's share of an evaluation set: every N-th example, none repeated, none lost
    (DistributedSampler would pad the last batch with repeats and count them twice)."""
    part = Subset(dataset, range(world.rank, len(dataset), world.size))
    return DataLoader(part, batch_size=batch_size, num_workers=workers)


# --------------------------------------------------------------------------- model


def build_model(cfg: Config, info: dict) -> nn.Module:
    """The reference model, after checking on the meta device (no memory, no compute) that it
    takes the data's images: a full-size AlexNet on 32x32 images shrinks to nothing."""
    build = getattr(models, cfg.model)
    channels, size = info["shape"][0], info["shape"][1:]
    kwargs = dict(num_classes=info["classes"], in_channels=channels)
    if "image_size" in inspect.signature(build).parameters:  # lenet5 sizes its F5 layer
        kwargs["image_size"] = size[0]
    try:
        with torch.device("meta"):
            build(**kwargs).eval()(torch.empty(2, *info["shape"]))
    except (RuntimeError, ValueError) as err:
        small = [m for m in MODELS if m.endswith("_small")]
        raise ValueError(
            f"--model {cfg.model}: does not take {channels}x{size[0]}x{size[1]} images "
            f"({str(err).splitlines()[0]}); pass --image-size (224 for the full-size "
            f"ImageNet models) or use a model for small images: lenet5, {', '.join(small)}"
        ) from None
    return build(**kwargs)


def _optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    groups = _decay_groups(model)  # no decay on biases and batch-norm parameters
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
            nesterov=cfg.momentum > 0,
        )  # fmt: skip
    opt = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return opt(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning rate at ``step`` (of ``total``) as a fraction of ``--lr``.

    Linear warm-up from 0 over ``warmup`` steps (large batches diverge without it), then
    ``cosine`` decay to 0, ``onecycle`` (linear decay to 0), or ``constant``.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = (step - warmup) / max(1, total - warmup)  # 0 -> 1 after the warm-up
    return 0.5 * (1 + math.cos(math.pi * t)) if schedule == "cosine" else 1.0 - t


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(folder: Path, state: dict) -> None:
    """Write ``folder/last.pt`` so that a kill at any moment leaves the old or the new one."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".last.pt.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / "last.pt")
    history = json.dumps({"config": state["config"], "epochs": state["history"]}, indent=1)
    (folder / ".history.json.tmp").write_text(history)
    os.replace(folder / ".history.json.tmp", folder / "history.json")


def load_checkpoint(folder: Path, cfg: Config) -> dict | None:
    """The state in ``folder/last.pt``, after checking that it belongs to this run."""
    path = folder / "last.pt"
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    saved = state["config"]
    for key in Config.SAME_ON_RESUME:
        if saved.get(key) != getattr(cfg, key):
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"{flag} {getattr(cfg, key)!r}: {path} was written with {flag} "
                f"{saved.get(key)!r}; resume with the same value, or start a new --checkpoint"
            )
    return state


def _checkpoint_state(folder: Path | None, cfg: Config, world: World) -> dict | None:
    """The state to resume from, read by rank 0 and sent to the others: on several nodes
    only rank 0's disk need hold the checkpoint. Every rank raises rank 0's error, if any."""
    if folder is None:
        return None
    state, error = None, None
    if world.main:
        try:
            if cfg.resume:
                state = load_checkpoint(folder, cfg)
            elif (folder / "last.pt").exists():
                raise ValueError(
                    f"--checkpoint {folder}: already holds last.pt; pass --resume to continue "
                    "that run, or choose another folder"
                )
        except ValueError as err:
            error = str(err)
    if world.distributed:
        box = [state, error]
        dist.broadcast_object_list(box, src=0)
        state, error = box
    if error is not None:
        raise ValueError(error)
    return state


# --------------------------------------------------------------------------- the run


def run(cfg: Config) -> dict:
    """Train as ``cfg`` says; returns ``{'history': [...], 'test': ..., 'world_size': ...}``."""
    cfg.check()
    world = start_world(cfg.device)
    try:
        result = _train(cfg, world)
        # No rank tears the group down while another is still in a collective: gloo aborts
        # the process ("terminate called without an active exception") when one does.
        world.barrier()
        return result
    finally:
        if world.distributed:
            dist.destroy_process_group()


def _train(cfg: Config, world: World) -> dict:
    if cfg.batch_size % world.size:
        raise ValueError(
            f"--batch-size {cfg.batch_size}: the global batch must split evenly over the "
            f"{world.size} processes (each takes batch_size / {world.size})"
        )
    folder = Path(cfg.checkpoint) if cfg.checkpoint else None
    state = _checkpoint_state(folder, cfg, world)
    device = world.device
    amp = cfg.amp and device.type in ("cuda", "cpu")
    if cfg.amp and not amp:
        say(world, f"note: --amp is not supported on {device.type}; training in float32")
    use_channels_last = cfg.channels_last

    torch.manual_seed(cfg.seed)  # the same initial weights in every process
    train, val, test, info = load_data(cfg, world)
    model = build_model(cfg, info)
    if cfg.sync_bn and world.distributed and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif cfg.sync_bn:
        say(world, "note: --sync-bn needs several CUDA processes; using plain batch norm")
    model.to(device)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(cfg, model)
    loader, sampler = _loaders(cfg, world, train)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(
            f"--batch-size {cfg.batch_size}: larger than the {len(train)} training images"
        )
    total = cfg.epochs * steps_per_epoch
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, cfg.schedule)
    )
    # float16 needs loss scaling so small gradients do not flush to zero; bf16 does not.
    fp16 = amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    history: list[dict] = []
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history, start_epoch = state["history"], state["epoch"]
        say(world, f"resuming {folder / 'last.pt'} after epoch {start_epoch}/{cfg.epochs}")
    elif cfg.resume:
        say(world, f"--resume: {folder} holds no last.pt yet; starting from epoch 1")

    net = model  # the plain module: its state_dict is what checkpoints hold
    if world.distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        model = torch.compile(model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    val_loader = _shard(val, world, cfg.batch_size // world.size * 2, cfg.workers)

    say(world, _banner(cfg, world, info, net, len(train), steps_per_epoch, amp))
    for epoch in range(start_epoch, cfg.epochs):
        # Every draw of the epoch (augmentation, dropout, loader workers' seeds) comes from
        # (seed, epoch, rank): a resumed epoch draws what the uninterrupted one drew.
        torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1009 + world.rank)
        sampler.set_epoch(epoch)
        model.train()
        bar = _progress(
            steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and world.main
        )
        tic = time.perf_counter()
        seen = 0
        loss_sum_t = torch.zeros((), device=device, dtype=torch.float64)
        correct_t = torch.zeros((), device=device, dtype=torch.int64)
        for x, y in loader:
            x, y = _to(x, device, use_channels_last), y.to(device, non_blocking=True)
            with _autocast(device, amp):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            scheduler.step()
            # Summed on the device: a .item() per step would wait for the GPU every step.
            loss_sum_t += loss.detach().double() * y.shape[0]
            correct_t += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - tic
        loss_sum, correct, seen = world.sum(loss_sum_t.item(), correct_t.item(), seen)
        world.same_buffers(net)
        val_loss, val_acc = evaluate_sharded(
            net, val_loader, loss_fn, world, amp, use_channels_last
        )
        row = dict(
            epoch=epoch + 1, train_loss=loss_sum / seen, train_acc=correct / seen,
            val_loss=val_loss, val_acc=val_acc, lr=lr,
            seconds=seconds, images_per_s=seen / seconds,
        )  # fmt: skip
        history.append(row)
        say(world, _epoch_line(row, cfg.epochs))
        if folder is not None and world.main:
            save_checkpoint(folder, {
                "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch + 1, "history": history, "config": dataclasses.asdict(cfg),
                "world_size": world.size, "torch": torch.__version__,
            })  # fmt: skip
        world.barrier()  # no process starts the next epoch while rank 0 is still saving

    result = {"history": history, "world_size": world.size, "device": str(device), "test": None}
    if test is not None and history:
        test_loader = _shard(test, world, cfg.batch_size // world.size * 2, cfg.workers)
        result["test"] = evaluate_sharded(net, test_loader, loss_fn, world, amp, use_channels_last)
    say(world, format_table(history, result["test"]))
    if folder is not None:
        say(world, f"checkpoint: {folder / 'last.pt'}")
    return result


@torch.no_grad()
def evaluate_sharded(model, loader, loss_fn, world: World, amp: bool, channels_last: bool):
    """Mean loss and accuracy over every rank's shard: each rank sums its part, then all
    the sums are added, so the numbers are those of one pass over the whole set.

    ``model`` is the plain module, not the DDP wrapper: DDP's forward broadcasts buffers, a
    collective every rank must join, and shards one example apart can differ by a batch.
    """
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = _to(x, world.device, channels_last), y.to(world.device)
        with _autocast(world.device, amp):
            logits = model(x)
        loss_sum += loss_fn(logits.float(), y).item() * y.shape[0]
        correct += (logits.argmax(1) == y).sum().item()
        seen += y.shape[0]
    loss_sum, correct, seen = world.sum(loss_sum, correct, seen)
    return loss_sum / max(seen, 1), correct / max(seen, 1)


# --------------------------------------------------------------------------- output


def _banner(cfg, world, info, net, n_train, steps, amp) -> str:
    c, h, w = info["shape"]
    where = str(world.device)
    if world.device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(world.device)})"
    elif world.device.type == "cpu":
        threads = _plural(torch.get_num_threads(), "thread")
        where += f" ({platform.processor() or platform.machine()}, {threads})"
    flags = [f for f, on in (("amp", amp), ("channels_last", cfg.channels_last),
                             ("compile", cfg.compile)) if on]  # fmt: skip
    return (
        f"{cfg.model}: {count_params(net):,} parameters | data {info['name']}: {n_train:,} "
        f"training images {c}x{h}x{w}, {info['classes']} classes\n"
        f"{_plural(world.size, 'process', 'es')} on {where} | global batch "
        f"{cfg.batch_size} ({cfg.batch_size // world.size} per process), {steps} steps per epoch"
        f" | {cfg.optimizer} lr {cfg.lr} {cfg.schedule} | {', '.join(flags) or 'float32'}"
    )


def _plural(n: int, word: str, suffix: str = "s") -> str:
    return f"{n} {word}{suffix if n != 1 else ''}"


def _epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, acc "
        f"{row['train_acc']:.3f} | val loss {row['val_loss']:.4f}, acc {row['val_acc']:.3f} | "
        f"{row['seconds']:.1f}s, {row['images_per_s']:,.0f} img/s"
    )


def format_table(history: list[dict], test: tuple[float, float] | None) -> str:
    """The run's epochs as a text table, with the best validation accuracy and the test set."""
    head = ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "time s", "img/s")
    rows = [
        (str(r["epoch"]), f"{r['train_loss']:.4f}", f"{r['train_acc']:.3f}",
         f"{r['val_loss']:.4f}", f"{r['val_acc']:.3f}", f"{r['lr']:.2e}",
         f"{r['seconds']:.1f}", f"{r['images_per_s']:,.0f}")
        for r in history
    ]  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True)) for line in (head, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if history:
        best = max(history, key=lambda r: r["val_acc"])
        total = sum(r["seconds"] for r in history)
        lines.append(
            f"best val acc {best['val_acc']:.3f} (epoch {best['epoch']}); "
            f"{total:.1f}s of training in the epochs listed"
        )
    if test is not None:
        lines.append(f"test loss {test[0]:.4f}, acc {test[1]:.3f}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    d = Config(model="")
    p = argparse.ArgumentParser(
        prog="python -m cnncourse.train",
        description="Train a cnncourse reference model. Runs as one process, or unchanged "
        "under torchrun --nproc_per_node=N (DistributedDataParallel; NCCL on CUDA, gloo on "
        "the CPU). See the README's 'Beyond one machine'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--model", required=True, metavar="NAME", help=f"one of: {', '.join(MODELS)}")
    a(
        "--data",
        default=d.data,
        help="a dataset name (offline: "
        f"{', '.join(datasets.OFFLINE_DATASETS)}; torchvision: "
        f"{', '.join(datasets.ONLINE_DATASETS)}) or a folder with train/<class>/ and val/<class>/",
    )
    a(
        "--data-root",
        default=None,
        help="torchvision datasets' folder (default: $CNNCOURSE_DATA or ~/.cache/cnncourse)",
    )
    a("--download", action="store_true", help="download a torchvision dataset that is missing")
    a("--num-train", type=int, default=None, help="use only this many training images")
    a("--num-val", type=int, default=None, help="use only this many validation/test images")
    a(
        "--image-size",
        type=int,
        default=None,
        help="resize images to this side (224 for "
        "the full-size models on 32x32 data; image folders default to 224)",
    )
    a("--epochs", type=int, default=d.epochs)
    a("--batch-size", type=int, default=d.batch_size, help="global batch, over all processes")
    a("--lr", type=float, default=d.lr, help="peak learning rate")
    a("--optimizer", default=d.optimizer, choices=("sgd", "adam", "adamw"))
    a("--momentum", type=float, default=d.momentum, help="SGD (Nesterov) momentum")
    a("--weight-decay", type=float, default=d.weight_decay)
    a("--label-smoothing", type=float, default=d.label_smoothing)
    a("--schedule", default=d.schedule, choices=("cosine", "onecycle", "constant"))
    a("--warmup-epochs", type=float, default=d.warmup_epochs, help="linear warm-up length")
    a("--no-augment", dest="augment", action="store_false", help="no random crops and flips")
    a("--seed", type=int, default=d.seed)
    a("--workers", type=int, default=d.workers, help="data-loading processes per rank")
    a("--device", default=d.device, choices=("auto", "cpu", "cuda", "mps"))
    a(
        "--amp",
        action="store_true",
        help="mixed precision: bf16 autocast (fp16 with loss scaling on GPUs without bf16)",
    )
    a(
        "--channels-last",
        action="store_true",
        help="NHWC memory layout (faster convolutions on tensor cores)",
    )
    a("--compile", action="store_true", help="torch.compile the model (slow first steps)")
    a("--sync-bn", action="store_true", help="batch-norm statistics over all GPUs' batches")
    a("--checkpoint", metavar="DIR", default=None, help="save DIR/last.pt after every epoch")
    a("--resume", action="store_true", help="continue from DIR/last.pt when it exists")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: parse, train, print the table. Returns the exit status."""
    args = parser().parse_args(argv)
    try:
        run(Config(**vars(args)))
    except (ValueError, datasets.DatasetUnavailableError) as err:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"python -m cnncourse.train: error: {err}", file=sys.stderr)
        return 2
    return 0
