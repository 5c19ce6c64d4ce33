"""Shared fixtures: where things are, and how to run the venv's command-line tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
