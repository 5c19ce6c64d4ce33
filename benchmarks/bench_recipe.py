"""Time to accuracy: the fast recipe (cnncourse.train.fast) against fit's default recipe.

    .venv/bin/python benchmarks/bench_recipe.py [--quick] [--target 0.9] [--budget 240]
                                                [--threads N] [--data sprites]

Three runs on the same data (default: the offline sprites, 10,000 training and 1,000
validation images, 3x32x32), each stopped at the end of the first epoch whose validation
accuracy reaches ``--target``; fit's runs for at most ``--budget`` seconds of training, the
fast recipe's for the ``--epochs`` its schedule is planned over:

1. ``fit`` default: resnet_small, Adam at lr 1e-3, batch 128, plain cross-entropy, no
   augmentation, no schedule (what the notebooks call with no options);
2. the fast recipe on the same resnet_small: SGD-Nesterov with a one-cycle schedule per
   step, label smoothing 0.2, flip-and-translate on the batch, data held as one tensor;
3. the fast recipe on its own network, FastNet (whitening stem, three conv groups; widths
   ``--widths``, smaller than airbench's 64/256/256 because a CPU is 100x slower than a GPU);
4. fit's default recipe on that FastNet (whitened the same way): rows 2 and 4 tell how much
   of the gain is the schedule and how much the network.

Times count training only, not evaluation, as the speed records do (fit's per-epoch time
includes its validation pass; it is taken off by timing that pass separately). ratio = the
recipe's time to target / fit's. With no GPU the whole run is a CPU measurement: on a
GPU the fast recipe also gains channels_last, bf16 autocast and (optionally) compile, which
this table cannot show. Run it on an idle machine: both cores are in use.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from cnncourse import models
from cnncourse.data import load_dataset
from cnncourse.shapes import count_params
from cnncourse.train import evaluate, fit
from cnncourse.train.fast import FastNet, train_fast


def _fit_default(train, val, stop_at: float, budget: float, batch: int, net=None) -> dict:
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    net = net or _fresh("resnet_small", train)
    loader = DataLoader(
        train, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    val_loader = DataLoader(val, batch_size=2 * batch)
    # One epoch per call, with one optimizer for the whole run (fit builds Adam only when
    # none is given, so passing ours keeps its state from call to call).
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    curve, spent = [], 0.0
    while spent < budget:
        tic = time.perf_counter()
        fit(net, loader, None, 1, optimizer=optimizer, device="cpu", progress=False, verbose=False)
        spent += time.perf_counter() - tic
        acc = evaluate(net, val_loader, device="cpu")["acc"]
        curve.append((spent, acc))
        print(f"  epoch {len(curve)}: val acc {acc:.3f}, {spent:.1f}s", flush=True)
        if acc >= stop_at:
            break
    return dict(curve=curve, params=count_params(net))


def _fast(train, val, stop_at, epochs, batch, lr, model=None, widths=(64, 256, 256)) -> dict:
    # The one-cycle schedule is planned for ``epochs``; the run stops after the first epoch
    # that reaches ``stop_at`` (the rest would only have lowered the rate further).
    torch.manual_seed(0)
    r = train_fast(
        train, val, model=model and _fresh(model, train), epochs=epochs, batch_size=batch,
        lr=lr, widths=widths, target=stop_at, device="cpu", verbose=False,
    )  # fmt: skip
    for row in r.history:
        print(f"  epoch {row['epoch']}: val acc {row['val_acc']:.3f}, {row['seconds']:.1f}s")
    return dict(
        curve=[(h["seconds"], h["val_acc"]) for h in r.history], params=count_params(r.model)
    )


def _fresh(name: str, train):
    return getattr(models, name)(num_classes=len(train.classes), in_channels=train.image_shape[0])


def _time_to(curve: list[tuple[float, float]], level: float) -> tuple[float, int] | None:
    """Training seconds and epochs at the first epoch whose accuracy reached ``level``."""
    for epoch, (seconds, acc) in enumerate(curve, 1):
        if acc >= level:
            return seconds, epoch
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="sprites")
    p.add_argument("--num-train", type=int, default=10_000)
    p.add_argument("--levels", type=float, nargs="+", default=(0.5, 0.9), help="accuracies")
    p.add_argument("--budget", type=float, default=240.0, help="fit's seconds of training")
    p.add_argument("--epochs", type=float, default=5.0, help="the fast recipe's schedule")
    p.add_argument("--widths", type=int, nargs=3, default=(32, 64, 64))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="a smoke run: 2,000 images, 40 s")
    args = p.parse_args(argv)
    if args.quick:
        args.num_train, args.budget, args.epochs, args.levels = 2000, 40.0, 6.0, (0.2, 0.4)
    if args.threads:
        torch.set_num_threads(args.threads)
    levels = sorted(args.levels)
    train = load_dataset(args.data, "train", num_samples=args.num_train)
    val = load_dataset(args.data, "val")
    cpu = platform.processor() or platform.machine()
    print(
        f"{args.data}: {len(train):,} training / {len(val):,} validation images "
        f"{'x'.join(map(str, train.image_shape))}; time to val acc "
        f"{', '.join(f'{v:.0%}' for v in levels)}\n"
        f"CPU: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
        f"torch {torch.__version__}, Python {sys.version.split()[0]}",
        flush=True,
    )
    runs = []
    print(f"1. fit default (resnet_small, Adam 1e-3, batch 128; at most {args.budget:.0f}s)")
    runs.append(
        ("fit default", "resnet_small", _fit_default(train, val, levels[-1], args.budget, 128))
    )
    plan = f"{args.epochs:g} epochs planned, batch 256"
    print(f"2. fast recipe on resnet_small ({plan}, lr 0.4)", flush=True)
    small = _fast(train, val, levels[-1], args.epochs, 256, 0.4, "resnet_small")
    runs.append(("fast recipe", "resnet_small", small))
    widths = tuple(args.widths)
    name = "FastNet" + "/".join(map(str, widths))
    print(f"3. fast recipe on {name} ({plan}, lr 1.0)", flush=True)
    ours = _fast(train, val, levels[-1], args.epochs, 256, 1.0, None, widths)
    runs.append(("fast recipe", name, ours))
    print(f"4. fit default on {name}, whitened (at most {args.budget:.0f}s)", flush=True)
    torch.manual_seed(0)
    net = FastNet(len(train.classes), train.image_shape[0], widths).whiten(train.images[:5000])
    runs.append(("fit default", name, _fit_default(train, val, levels[-1], args.budget, 128, net)))

    head = f"{'recipe':<12} {'model':<18} {'params':>9} {'best acc':>8}"
    for v in levels:
        head += f" | {f'to {v:.0%}: s (epochs)':>20} {'ratio':>5}"
    print("\n" + head)
    base = runs[0][2]["curve"]
    for recipe, model, r in runs:
        line = f"{recipe:<12} {model:<18} {r['params']:>9,} {max(a for _, a in r['curve']):>8.3f}"
        for v in levels:
            hit, ref = _time_to(r["curve"], v), _time_to(base, v)
            cell = f"{hit[0]:.1f} ({hit[1]})" if hit else "not reached"
            ratio = f"{hit[0] / ref[0]:.2f}" if hit and ref else "-"
            line += f" | {cell:>20} {ratio:>5}"
        print(line)
    print(
        "ratio = seconds to that accuracy / fit default's; '-' where either did not reach it "
        f"(fit stopped after {base[-1][0]:.0f}s of training)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
