"""Class throughput of `cnncourse-grade` against plain `nbgrader autograde`, in one run.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_grading.py [--students N]
[--assignments 00_welcome,05_nin] [--jobs 1,2]``.

A temporary course gets every assignment, released as `make release` does, and N students
per assignment (even ones hand in the solution, odd ones the untouched release, so both a
full run and a run of failing tests are in the mix). The same submissions are then graded

- the old way, ``nbgrader autograde <assignment> --force`` once per assignment, as `make
  grade` did: one kernel at a time, no sandbox;
- with ``cnncourse-grade --jobs J`` for each J, sandboxed. The reference solutions'
  calibration (their per-cell times set the time limits) runs once before, and is timed
  on its own: it is cached, so a class pays it once per change of the notebooks.

Each row prints submissions per minute and the ratio against plain nbgrader. Feedback is
left out of both (nbgrader's autograde does not write it either). The last lines model
more cores from the measured times: each submission needs ``K`` seconds of kernel (one
core) and ``H`` seconds of the grader's own serial work (cleaning, scoring, gradebook
writes), so J jobs on C cores grade at most ``min(J, C) / (K + H)`` per second, and never
more than ``1 / H``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NBGRADER_EXECUTION", None)
    return env


def _run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return time.perf_counter() - start


def make_course(folder: Path, assignments: list[str], students: int) -> int:
    from cnncourse.authoring import build_all

    shutil.copy(ROOT / "nbgrader_config.py", folder)
    for a in assignments:
        shutil.copytree(ROOT / "solutions" / a, folder / "solutions" / a,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))  # fmt: skip
    build_all(folder / "solutions")
    for a in assignments:
        _run(["nbgrader", "generate_assignment", a, "--force", "--log-level=ERROR"], folder)
    for i in range(students):
        for a in assignments:
            src = folder / ("solutions" if i % 2 == 0 else "notebooks") / a / f"{a}.ipynb"
            dest = folder / "submitted" / f"student{i:02d}" / a
            dest.mkdir(parents=True)
            shutil.copy(src, dest)
            (dest / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    return students * len(assignments)


def _reset(folder: Path) -> None:
    shutil.rmtree(folder / "autograded", ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--students", type=int, default=2, help="students per assignment (2)")
    p.add_argument("--assignments", default="", help="comma-separated (default: all)")
    p.add_argument("--jobs", default="1,2", help="cnncourse-grade --jobs values (1,2)")
    args = p.parse_args()
    assignments = [a for a in args.assignments.split(",") if a] or sorted(
        d.name for d in (ROOT / "solutions").iterdir() if d.is_dir() and d.name[:2].isdigit()
    )
    jobs = [int(j) for j in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = Path(tmp)
        n = make_course(course, assignments, args.students)
        print(f"{n} submissions: {len(assignments)} assignments x {args.students} students, "
              f"{os.cpu_count()} cores")  # fmt: skip
        rows = []
        plain = sum(
            _run(["nbgrader", "autograde", a, "--force", "--log-level=ERROR"], course)
            for a in assignments
        )
        rows.append(("nbgrader autograde, per assignment", plain))
        _reset(course)
        grade = [sys.executable, "-m", "cnncourse.grade", "--quiet", "--no-feedback"]
        first = course / "submitted" / "student00"
        calib = _run([*grade, "--student", first.name, "--jobs", str(max(jobs))], course)
        _reset(course)
        kernel = host = start = 0.0
        for j in jobs:
            seconds = _run([*grade, "--jobs", str(j)], course)
            rows.append((f"cnncourse-grade --jobs {j}", seconds))
            with open(course / "grading-report.csv") as f:
                report = list(csv.DictReader(f))
            if j == 1:
                kernel = sum(float(r["kernel_seconds"]) for r in report) / len(report)
                start = sum(float(r["start_seconds"]) for r in report) / len(report)
                host = sum(float(r["seconds"]) - float(r["kernel_seconds"])
                           for r in report) / len(report)  # fmt: skip
            _reset(course)
    print(f"{'grader':<40} {'seconds':>8} {'per minute':>11} {'vs nbgrader':>12}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds:8.1f} {60 * n / seconds:11.1f} {plain / seconds:11.2f}x")
    print(f"(calibration of the reference solutions, once, cached: {calib:.1f} s)")
    if kernel:
        print(f"per submission with --jobs 1: {kernel:.2f} s in the kernel, of which "
              f"{start:.2f} s starting it (torch import included), and {host:.2f} s of the "
              "grader's own serial work")  # fmt: skip
        for cores in (2, 4, 8, 16, 32):
            rate = min(cores / (kernel + host), 1 / host) if host > 0 else cores / kernel
            print(f"  model, {cores:2d} cores, --jobs {cores:2d}: {60 * rate:7.1f} per minute")


if __name__ == "__main__":
    main()
