"""Shared fixtures: where things are, and how to run the venv's command-line tools."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import matplotlib
import pytest

matplotlib.use("Agg")  # no display in CI

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
RELEASE = ROOT / "notebooks"
# The venv's bin folder: nbgrader shells out to `alembic` and kernels, so it must be on PATH.
BIN = Path(sys.executable).parent


def assignments() -> list[str]:
    """Every assignment folder in solutions/ (NN_topic), in course order."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name[:2].isdigit())


def solution_notebook(assignment: str):
    """The instructor notebook of an assignment, built from its text source."""
    from cnncourse.authoring import build_notebook, source_path

    return build_notebook(source_path(SOLUTIONS / assignment))


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: the venv's bin first on PATH, no grading flag leaking in."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NBGRADER_EXECUTION", None)
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    env.update(extra)
    return env


@dataclass
class Lab:
    """A running JupyterLab server: its address, token and log file."""

    base: str
    token: str
    log: Path

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(self.url(path), timeout=10) as response:
            return response.status, response.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(tmp_path: Path, target: str = "lab", *make_args: str, timeout: float = 90):
    """`make <target> <make_args>` headless on a free port with a private Jupyter config and
    runtime folder (nothing of the user's ~/.jupyter), until the block ends."""
    port, token = free_port(), "cnncourse-test-token"
    args = (
        f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
        f"--IdentityProvider.token={token}"
    )
    folder = tmp_path / f"jupyter-{target}"
    env = tool_env(
        JUPYTER_RUNTIME_DIR=str(folder / "runtime"), JUPYTER_CONFIG_DIR=str(folder / "config")
    )
    env.pop("JUPYTER_CONFIG_PATH", None)
    folder.mkdir(parents=True, exist_ok=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, folder / "lab.log")
    with open(lab.log, "w") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", target, *make_args, f"LAB_ARGS={args}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    lab.get("api/status")
                    break
                except (URLError, ConnectionError, OSError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        tail = lab.log.read_text()[-3000:]
                        pytest.fail(f"`make {target}` did not serve on port {port}:\n{tail}")
                    time.sleep(0.5)
            yield lab
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def pytest_terminal_summary(terminalreporter):
    """Print notebook execution and autograding times (they go into closing notes)."""
    try:
        from test_notebooks import TIMINGS
    except ImportError:
        return
    if TIMINGS:
        terminalreporter.section("notebook timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f}s  {name}")
