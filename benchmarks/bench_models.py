"""Speed of cnncourse.models, as ratio tables against torchvision (run: make bench).

    .venv/bin/python benchmarks/bench_models.py [--quick] [--models resnet18,vgg]
                                                [--threads N] [--repeats N]

Table 1, ours against torchvision: for every model torchvision also has, the time of a
forward pass (eval mode, no_grad) and of a forward + backward pass (train mode, loss =
mean of the logits, no optimizer step), measured in the same run, interleaved (ours,
theirs, ours, theirs, ...) so that both see the same machine load, after warm-up; the
median of the repeats is shown. ratio = ours / torchvision; the goal is <= 1.0 within
noise (the models run the same layers, so a ratio far from 1 points at a needless copy,
reshape or layer). GoogLeNet is timed but not compared: torchvision's is the later
variant with batch norm and different channel counts (a different architecture).

Inputs: batch 2 at 112x112 by default (224x224 for AlexNet, whose stride-4 stem makes
it cheap), so the whole run takes a few minutes on a 2-core CPU; the models end in an
adaptive pool, so they accept that size. Change with --size / --batch.

Table 2, the small variants (cnncourse.models.SMALL_MODELS, for 3x32x32 inputs):
parameters, images per second for forward (eval) and forward + backward (train) at
batch 128, and the implied seconds per epoch of 10,000 training images.

Timings are wall-clock on whatever else the machine is doing: run it on an idle machine
and compare ratios, not absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn


@dataclass(frozen=True)
class Pair:
    family: str  # module in cnncourse.models
    name: str  # our function and torchvision's: both have the same name
    size: int | None = None  # input side; None: --size
    same_architecture: bool = True
    tv_kwargs: tuple[tuple[str, object], ...] = ()


# Models torchvision also has, in course order. Add a line to benchmark another one.
PAIRS = [
    Pair("alexnet", "alexnet", size=224),
    *(Pair("vgg", f"vgg{d}{bn}") for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    # torchvision's GoogLeNet has batch norm and other channel counts: timed, not compared.
    Pair(
        "googlenet",
        "googlenet",
        same_architecture=False,
        tv_kwargs=(("aux_logits", False), ("init_weights", True)),
    ),
    *(Pair("resnet", f"resnet{d}") for d in (18, 34, 50, 101, 152)),
    Pair("resnext", "resnext50_32x4d"),
    Pair("resnext", "resnext101_32x8d"),
]
QUICK = {"alexnet", "vgg11", "resnet18", "resnet50", "resnext50_32x4d"}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load(module: str, function: str) -> Callable[..., nn.Module]:
    """``cnncourse.models.<module>.<function>``, imported only when needed."""
    return getattr(importlib.import_module(f"cnncourse.models.{module}"), function)


def small_models() -> dict[str, Callable[..., nn.Module]]:
    from cnncourse.models import SMALL_MODELS

    return dict(SMALL_MODELS)


def scalar_loss(out) -> torch.Tensor:
    """Mean of the logits; sums the means of all outputs for models returning a tuple."""
    if isinstance(out, torch.Tensor):
        return out.float().mean()
    return sum(t.float().mean() for t in out if isinstance(t, torch.Tensor))


def forward_eval(model: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def forward_backward(model: nn.Module, x: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    scalar_loss(model(x)).backward()


def interleaved_medians(
    step: Callable[[nn.Module, torch.Tensor], None],
    models: list[nn.Module],
    x: torch.Tensor,
    repeats: int,
    warmup: int,
) -> list[float]:
    """Median seconds of ``step(model, x)`` per model, run in turn (a, b, a, b, ...)."""
    for _ in range(warmup):
        for model in models:
            step(model, x)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for i, model in enumerate(models):
            start = time.perf_counter()
            step(model, x)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def selected(pair_or_family: str, family: str, wanted: set[str] | None) -> bool:
    return wanted is None or pair_or_family in wanted or family in wanted


def bench_pairs(args: argparse.Namespace, wanted: set[str] | None) -> None:
    pairs = [p for p in PAIRS if selected(p.name, p.family, wanted)]
    if args.quick and wanted is None:
        pairs = [p for p in pairs if p.name in QUICK]
    if not pairs:
        return
    print("\nours vs torchvision: milliseconds per call, median; ratio = ours / torchvision")
    head = (
        f"{'model':<18} {'input':>11} | {'eval ours':>9} {'tv':>9} {'ratio':>6} | "
        f"{'train ours':>10} {'tv':>9} {'ratio':>6}"
    )
    print(head)
    print("-" * len(head))
    ratios: list[tuple[float, float]] = []
    for p in pairs:
        size = p.size or args.size
        try:
            ours_fn = load(p.family, p.name)
        except (ImportError, AttributeError) as err:
            print(f"{p.name:<18} skipped: {err}")
            continue
        torch.manual_seed(0)
        ours = ours_fn(num_classes=1000, in_channels=3)
        theirs = getattr(torchvision.models, p.name)(weights=None, **dict(p.tv_kwargs))
        x = torch.randn(args.batch, 3, size, size)
        ours.eval(), theirs.eval()
        ev = interleaved_medians(forward_eval, [ours, theirs], x, args.repeats, args.warmup)
        ours.train(), theirs.train()
        tr = interleaved_medians(forward_backward, [ours, theirs], x, args.repeats, args.warmup)
        if p.same_architecture:
            ratios.append((ev[0] / ev[1], tr[0] / tr[1]))
            r_ev, r_tr = f"{ev[0] / ev[1]:6.2f}", f"{tr[0] / tr[1]:6.2f}"
        else:
            r_ev = r_tr = "  n/a "
        note = "" if p.same_architecture else "  (different architecture)"
        print(
            f"{p.name:<18} {f'{args.batch}x3x{size}x{size}':>11} | "
            f"{ev[0] * 1e3:9.1f} {ev[1] * 1e3:9.1f} {r_ev} | "
            f"{tr[0] * 1e3:10.1f} {tr[1] * 1e3:9.1f} {r_tr}{note}",
            flush=True,
        )
        del ours, theirs
        gc.collect()
    if ratios:
        geo = [statistics.geometric_mean(col) for col in zip(*ratios, strict=True)]
        print(f"{'geometric mean':<30} | {'':20}{geo[0]:6.2f} | {'':21}{geo[1]:6.2f}")


def bench_small(args: argparse.Namespace, wanted: set[str] | None) -> None:
    families = {p.name: p.family for p in PAIRS}
    chosen = {}
    for family, factory in small_models().items():
        names = {family, getattr(factory, "__name__", family)}
        if wanted is None or names & wanted or family in {families.get(w) for w in wanted}:
            chosen[family] = factory
    if not chosen:
        return
    batch = args.small_batch
    print(
        f"\nsmall variants: batch {batch} of 3x32x32, images/second (median); "
        "s/epoch = 10,000 images forward + backward"
    )
    head = (
        f"{'family':<10} {'model':<16} {'params':>10} | "
        f"{'eval img/s':>10} {'train img/s':>11} | {'s/epoch':>7}"
    )
    print(head)
    print("-" * len(head))
    x = torch.randn(batch, 3, 32, 32)
    for family, factory in chosen.items():
        torch.manual_seed(0)
        model = factory(num_classes=10, in_channels=3)
        params = sum(p.numel() for p in model.parameters())
        model.eval()
        (ev,) = interleaved_medians(forward_eval, [model], x, args.repeats, args.warmup)
        model.train()
        (tr,) = interleaved_medians(forward_backward, [model], x, args.repeats, args.warmup)
        print(
            f"{family:<10} {getattr(factory, '__name__', family):<16} {params:>10,} | "
            f"{batch / ev:10.0f} {batch / tr:11.0f} | {10_000 / batch * tr:7.1f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 models, fewer repeats (<1 min)")
    parser.add_argument(
        "--models",
        help="comma-separated model or family names (resnet18,vgg,resnext,...); default all",
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--repeats", type=int, help="timed repeats per measurement (default 3; 2 with --quick)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--size", type=int, default=112, help="input side, table 1")
    parser.add_argument("--batch", type=int, default=2, help="batch size, table 1")
    parser.add_argument("--small-batch", type=int, default=128, help="batch size, table 2")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    wanted = {w.strip() for w in args.models.split(",") if w.strip()} if args.models else None

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"python {platform.python_version()}, {torch.get_num_threads()} threads "
        f"({os.cpu_count()} CPUs: {cpu_name()}), device cpu"
    )
    run = "quick" if args.quick else "full"
    print(f"{run} run: median of {args.repeats} repeats after {args.warmup} warm-up round(s)")
    start = time.perf_counter()
    bench_pairs(args, wanted)
    bench_small(args, wanted)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
