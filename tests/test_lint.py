"""`make lint` is clean: ruff over the library, tests, benchmarks and notebook sources."""

from __future__ import annotations

import subprocess

import pytest
from conftest import BIN, ROOT

RUFF = BIN / "ruff"
pytestmark = pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed in this venv")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check():
    result = _ruff("check", "cnncourse", "tests", "benchmarks", "solutions")
    assert result.returncode == 0, f"ruff check found problems (`make lint`):\n{result.stdout}"


def test_ruff_format():
    result = _ruff("format", "--check", "cnncourse", "tests", "benchmarks")
    assert result.returncode == 0, (
        f"ruff format would change files (run `.venv/bin/ruff format`):\n{result.stdout}"
    )
