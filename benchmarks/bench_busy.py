"""One notebook executed on a quiet machine and beside a busy process, as time ratios.

Run: ``make bench`` or
``.venv/bin/python benchmarks/bench_busy.py [NOTEBOOK] [--busy python,torch] [--no-baseline]``.

A student's laptop is rarely idle: a browser tab, a second notebook or a parallel grader
keeps a core busy. By default torch's OpenMP threads spin while they wait for work, and
beside a busy process on 2 cores they lose the core they wait for; beside another
program whose threads spin too, training gets tens of times slower. The course sets
``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep) when the venv's python starts, before
any cell imports torch (see the Makefile's install rule).

Each row executes the notebook with nbclient in a kernel, as the tests do: once quiet,
then beside each busy process, which is killed afterwards:

- ``python``: a pure-Python loop that keeps one core busy (a browser tab, a build);
- ``torch``: a LeNet training loop with torch's default threading (a notebook or grader
  outside the course's venv).

The first row is the ``python3`` kernel as a student, nbclient and nbgrader start it; this
script passes it no ``OMP_WAIT_POLICY``, so what it shows is the course's own setting. Its
goal is a busy / quiet ratio of at most 1.5. The second row drops the variable inside the
kernel before torch loads (torch's default), to show what the setting buys; its busy runs
are stopped at ``--stop-at`` times its quiet time, to keep ``make bench`` short. Comparing
the two rows' quiet column shows what the setting costs on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = ROOT / "solutions" / "01_components" / "01_components.ipynb"
FALLBACK_NOTEBOOK = ROOT / "solutions" / "00_welcome" / "00_welcome.ipynb"
GOAL = 1.5
# Drops OMP_WAIT_POLICY before torch loads: the venv's start-up hook has set it by then
# (an empty value would not do: OpenMP complains about it on stderr).
UNSET = "import os; os.environ.pop('OMP_WAIT_POLICY', None)"
DEFAULT_KERNEL = "cnncourse-omp-default"
DEFAULT_KERNEL_ARGV = [
    sys.executable,
    "-c",
    f"{UNSET}; import runpy; "
    "runpy.run_module('ipykernel_launcher', run_name='__main__', alter_sys=True)",
    "-f",
    "{connection_file}",
]
TORCH_LOOP = f"""{UNSET}
import torch
from cnncourse.models import lenet5
model, x, y = lenet5(), torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
while True:
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
"""
BUSY = {"python": "while True: pass", "torch": TORCH_LOOP}
# What OpenMP read when torch loaded; cnncourse knows when the variable came too late.
REPORT_POLICY = """import os, sys
_u = getattr(sys.modules.get("cnncourse"), "utils", None)
print(_u.omp_wait_policy() if hasattr(_u, "omp_wait_policy")
      else os.environ.get("OMP_WAIT_POLICY", "unset"))"""


def load_notebook(path: Path) -> tuple[nbformat.NotebookNode, Path]:
    """The notebook at ``path``; built from its percent-format ``.py`` source if only that
    exists; the welcome notebook if neither does."""
    if path.exists():
        return nbformat.read(path, as_version=4), path
    source = path.with_suffix(".py")
    if source.exists():
        try:
            from cnncourse.authoring import build_notebook
        except ImportError:  # an older checkout: plain jupytext reads the same format
            import jupytext

            return jupytext.read(source), source
        return build_notebook(source), source
    if path != FALLBACK_NOTEBOOK:
        print(f"{path} not found: using {FALLBACK_NOTEBOOK.relative_to(ROOT)}")
        return load_notebook(FALLBACK_NOTEBOOK)
    raise SystemExit(f"{path} not found, nor its .py source")


def run_one(notebook: str, cwd: str, kernel: str, pid_file: str) -> None:
    """Child process: execute one notebook, print its time and the kernel's wait policy."""
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_POLICY))

    def note_kernel(**_: object) -> None:  # lets the parent kill the kernel if it stops us
        Path(pid_file).write_text(str(getattr(client.km.provisioner, "pid", "")))

    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name=kernel,
        resources={"metadata": {"path": cwd}},
        on_notebook_start=note_kernel,
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    policy = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    print(json.dumps({"seconds": seconds, "policy": policy}))


def execute(
    notebook: Path, cwd: Path, kernel: str, env: dict[str, str], cap: float
) -> tuple[float | None, str]:
    """Seconds to execute the notebook in a child process (None when stopped at ``cap``)."""
    with tempfile.TemporaryDirectory() as tmp:
        pid_file = Path(tmp) / "kernel.pid"
        cmd = [sys.executable, __file__, "--run-one", str(notebook), str(cwd), kernel]
        cmd.append(str(pid_file))
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=cap)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if pid_file.exists() and pid_file.read_text().isdigit():
                try:  # the kernel has a session of its own (it would also exit by itself)
                    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return None, "?"
    if proc.returncode != 0:
        raise SystemExit(f"executing {notebook} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["policy"]


def beside(busy: str, run):
    """Call ``run()`` while a ``busy`` process (see BUSY) runs; kill it afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.Popen([sys.executable, "-c", BUSY[busy]], env=env)
    try:
        time.sleep(2.0 if busy == "torch" else 0.5)  # torch's import takes a moment
        return run()
    finally:
        proc.kill()
        proc.wait()


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all cores in use over ``seconds`` (Linux /proc/stat), else None."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK)
    parser.add_argument("--busy", default="python,torch", help="busy processes, of: python,torch")
    parser.add_argument("--no-baseline", action="store_true", help="skip torch's default row")
    parser.add_argument("--cap", type=float, default=300.0, help="stop any run after this many s")
    parser.add_argument(
        "--stop-at", type=float, default=2.0, help="stop the default row's busy runs at this ratio"
    )
    parser.add_argument("--run-one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(*args.run_one)
        return
    busy_kinds = [b.strip() for b in args.busy.split(",") if b.strip()]
    if unknown := set(busy_kinds) - set(BUSY):
        parser.error(f"--busy: unknown {sorted(unknown)}; choose from {sorted(BUSY)}")

    nb, source = load_notebook(args.notebook.resolve())
    drop = {"OMP_WAIT_POLICY", "NBGRADER_EXECUTION"}  # the kernel must get the first itself
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    name = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
    print(
        f"{name}: {sum(c.cell_type == 'code' for c in nb.cells)} code cells, "
        f"{os.cpu_count()} cores; seconds to execute (kernel start included), "
        "then beside each busy process and the ratio to quiet"
    )
    header = f"{'kernel':<38}{'policy':>9}{'cpu use':>8}{'quiet':>7}"
    for kind in busy_kinds:
        header += f"{'+' + kind:>8}{'ratio':>7}"
    print(header)

    table: dict[str, tuple[float | None, list[float | None]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        notebook = Path(tmp) / "notebook.ipynb"
        nbformat.write(nb, notebook)
        # Warm the caches (kernel start, imports) so that the first quiet run is not a cold one.
        warm = Path(tmp) / "warm.ipynb"
        first = next((c for c in nb.cells if c.cell_type == "code"), None)
        nbformat.write(nbformat.v4.new_notebook(cells=[first] if first else []), warm)
        execute(warm, source.parent, "python3", env, args.cap)
        spec_dir = Path(tmp) / "jupyter" / "kernels" / DEFAULT_KERNEL
        spec_dir.mkdir(parents=True)
        spec = {"argv": DEFAULT_KERNEL_ARGV, "display_name": DEFAULT_KERNEL, "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        rows = [("python3 (the course's setting)", "python3", env, None)]
        if not args.no_baseline:
            default_env = dict(env, JUPYTER_PATH=str(Path(tmp) / "jupyter"))
            label = "OMP_WAIT_POLICY unset (torch default)"
            rows.append((label, DEFAULT_KERNEL, default_env, args.stop_at))
        for label, kernel, kernel_env, stop_at in rows:

            def run(kernel=kernel, kernel_env=kernel_env, cap=args.cap):
                return execute(notebook, source.parent, kernel, kernel_env, cap)

            load = cpu_busy()
            quiet, policy = run()
            cap = min(args.cap, stop_at * quiet) if stop_at and quiet else args.cap
            busy = [beside(kind, lambda cap=cap: run(cap=cap))[0] for kind in busy_kinds]
            ratios = [b / quiet if b and quiet else None for b in busy]
            table[label] = quiet, ratios
            line = f"{label:<38}{policy:>9}"
            line += f"{load:8.0%}" if load is not None else f"{'?':>8}"
            line += f"{quiet:7.1f}" if quiet else f"{'>' + format(args.cap, '.0f'):>7}"
            for b, r in zip(busy, ratios, strict=True):
                if b is None:
                    at_least = cap / quiet if quiet else 0
                    line += f"{'>' + format(cap, '.0f'):>8}{'>' + format(at_least, '.1f'):>7}"
                else:
                    line += f"{b:8.1f}{r:7.2f}" if r else f"{b:8.1f}{'?':>7}"
            print(line, flush=True)

    quiet, ratios = next(iter(table.values()))
    met = all(r is not None and r <= GOAL for r in ratios)
    shown = ", ".join(f"{r:.2f}" if r else "?" for r in ratios)
    print(f"goal: busy / quiet <= {GOAL}x with the course's setting: {'met' if met else 'NOT met'}"
          f" ({shown})")  # fmt: skip
    if len(table) > 1 and quiet and (base := list(table.values())[1][0]):
        print(f"quiet, course's setting / torch default: {quiet / base:.2f}x")
    print("(cpu use: all cores, in the second before the row's quiet run; other load skews it)")


if __name__ == "__main__":
    main()
