"""From-scratch layers (cnncourse.layers) against torch's native ops, as time ratios.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_layers.py [--quick] [--threads N]``.

Each row times ours and torch's op on the same tensors, alternating between the two so
both see the same machine state, and prints the median of several repeats. A ratio of
1.00 means as fast as torch; 2.00 means twice as slow. The goal for ``conv2d`` is a
geometric mean within 1.5x of ``F.conv2d`` over the convolution shapes below.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812

from cnncourse import layers

# (name, input shape, weight shape, stride, padding, groups): shapes from the course's nets
CONV_SHAPES = [
    ("LeNet conv1 5x5", (128, 1, 32, 32), (6, 1, 5, 5), 1, 0, 1),
    ("LeNet conv2 5x5", (128, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),
    ("AlexNet conv1 11x11/4", (8, 3, 227, 227), (96, 3, 11, 11), 4, 0, 1),
    ("VGG 3x3, 64ch 56x56", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1),
    ("VGG 3x3, 256ch 28x28", (8, 256, 28, 28), (256, 256, 3, 3), 1, 1, 1),
    ("ResNet 3x3/2, 128->256", (8, 128, 28, 28), (256, 128, 3, 3), 2, 1, 1),
    ("1x1 bottleneck 256->64", (8, 256, 56, 56), (64, 256, 1, 1), 1, 0, 1),
    ("ResNeXt 3x3, 32 groups", (8, 128, 56, 56), (128, 4, 3, 3), 1, 1, 32),
]


def timeit(fn: Callable[[], object], min_time: float) -> float:
    """Seconds per call: loop until at least ``min_time`` has passed."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def compare(ours: Callable, theirs: Callable, repeats: int, min_time: float) -> tuple[float, float]:
    """Median seconds per call of each, measured alternately."""
    a, b = [], []
    for _ in range(repeats):
        a.append(timeit(ours, min_time))
        b.append(timeit(theirs, min_time))
    return statistics.median(a), statistics.median(b)


def backward(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    return lambda: fn().sum().backward()


def row(name: str, fwd: tuple[float, float], both: tuple[float, float] | None) -> list[float]:
    cells = [
        f"{name:<26}",
        f"{fwd[0] * 1e3:9.2f}",
        f"{fwd[1] * 1e3:9.2f}",
        f"{fwd[0] / fwd[1]:6.2f}",
    ]
    ratios = [fwd[0] / fwd[1]]
    if both:
        cells += [f"{both[0] * 1e3:10.2f}", f"{both[1] * 1e3:10.2f}", f"{both[0] / both[1]:6.2f}"]
        ratios.append(both[0] / both[1])
    print("  ".join(cells), flush=True)
    return ratios


def geomean(xs: list[float]) -> float:
    return math.exp(sum(map(math.log, xs)) / len(xs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about a minute)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, min_time = (3, 0.05) if args.quick else (5, 0.2)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, float32, times in ms (median of {repeats})"
    )
    header = [
        "shape".ljust(26),
        "ours fwd",
        "torch fwd",
        " ratio",
        "ours f+b",
        "torch f+b",
        " ratio",
    ]
    print("\nconv2d: layers.conv2d against F.conv2d")
    print("  ".join(header))
    fwd_ratios, both_ratios = [], []
    for name, xs, ws, stride, pad, groups in CONV_SHAPES:
        x = torch.randn(xs, requires_grad=True)
        w = torch.randn(ws, requires_grad=True)
        b = torch.randn(ws[0], requires_grad=True)

        def ours(x=x, w=w, b=b, s=stride, p=pad, g=groups):
            return layers.conv2d(x, w, b, s, p, groups=g)

        def theirs(x=x, w=w, b=b, s=stride, p=pad, g=groups):
            return F.conv2d(x, w, b, s, p, groups=g)

        torch.testing.assert_close(ours(), theirs(), rtol=1e-3, atol=1e-3)
        with torch.no_grad():
            fwd = compare(ours, theirs, repeats, min_time)
        both = compare(backward(ours), backward(theirs), repeats, min_time)
        f, fb = row(name, fwd, both)
        fwd_ratios.append(f)
        both_ratios.append(fb)
    print(
        f"{'geometric mean':<26}  {'':9}  {'':9}  {geomean(fwd_ratios):6.2f}  "
        f"{'':10}  {'':10}  {geomean(both_ratios):6.2f}"
    )

    print("\nother layers against their torch twins")
    print("  ".join(header))
    x_img = torch.randn(32, 64, 56, 56, requires_grad=True)
    x_vec = torch.randn(256, 4096, requires_grad=True)
    w_fc, b_fc = torch.randn(4096, 4096, requires_grad=True), torch.randn(4096, requires_grad=True)
    bn_w, bn_b = torch.rand(64, requires_grad=True), torch.randn(64, requires_grad=True)
    rm, rv, rm2, rv2 = torch.zeros(64), torch.ones(64), torch.zeros(64), torch.ones(64)
    others = [
        (
            "max_pool2d 3x3/2",
            lambda: layers.max_pool2d(x_img, 3, 2),
            lambda: F.max_pool2d(x_img, 3, 2),
        ),
        ("max_pool2d 2x2/2", lambda: layers.max_pool2d(x_img, 2), lambda: F.max_pool2d(x_img, 2)),
        (
            "avg_pool2d 3x3/1 pad 1",
            lambda: layers.avg_pool2d(x_img, 3, 1, 1),
            lambda: F.avg_pool2d(x_img, 3, 1, 1),
        ),
        (
            "global_avg_pool2d",
            lambda: layers.global_avg_pool2d(x_img),
            lambda: F.adaptive_avg_pool2d(x_img, 1),
        ),
        (
            "linear 4096->4096",
            lambda: layers.linear(x_vec, w_fc, b_fc),
            lambda: F.linear(x_vec, w_fc, b_fc),
        ),
        ("relu", lambda: layers.relu(x_img), lambda: F.relu(x_img)),
        ("sigmoid", lambda: layers.sigmoid(x_img), lambda: torch.sigmoid(x_img)),
        (
            "batch_norm (training)",
            lambda: layers.batch_norm(x_img, rm, rv, bn_w, bn_b, True),
            lambda: F.batch_norm(x_img, rm2, rv2, bn_w, bn_b, True),
        ),
        (
            "batch_norm (eval)",
            lambda: layers.batch_norm(x_img, rm, rv, bn_w, bn_b, False),
            lambda: F.batch_norm(x_img, rm2, rv2, bn_w, bn_b, False),
        ),
        ("dropout p=0.5", lambda: layers.dropout(x_img, 0.5), lambda: F.dropout(x_img, 0.5)),
    ]
    for name, ours, theirs in others:
        with torch.no_grad():
            fwd = compare(ours, theirs, repeats, min_time)
        row(name, fwd, compare(backward(ours), backward(theirs), repeats, min_time))


if __name__ == "__main__":
    main()
