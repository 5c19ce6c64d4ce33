"""torch's OpenMP threads must sleep, not spin, while they wait for work
(``OMP_WAIT_POLICY=PASSIVE``): beside one busy process on a 2-core laptop spinning makes
training up to 40x slower. OpenMP reads the variable once, when ``import torch`` loads it,
so it has to be in the environment before that: the venv made by ``make install`` sets it
in every python it starts (a .pth file in site-packages), which covers pytest, a plain
interpreter and the ``python3`` kernel that JupyterLab, nbclient and nbgrader start, even
when a notebook imports torch before cnncourse. ``import cnncourse`` sets it too, for
other installs, when it comes first. ``benchmarks/bench_busy.py`` measures the effect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT

import cnncourse
from cnncourse import utils

HOOK = Path(sysconfig.get_path("purelib")) / "cnncourse_omp.pth"
IN_REPO_VENV = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
needs_venv = pytest.mark.skipif(
    not IN_REPO_VENV,
    reason=f"not running in the repo's .venv (sys.prefix is {sys.prefix}): its start-up "
    "hook is what these tests check",
)
PRINT_POLICY = "import torch, os; print(os.environ.get('OMP_WAIT_POLICY'))"


def _env(**extra: str) -> dict[str, str]:
    """This environment without OMP_WAIT_POLICY: whatever sets it must be the course."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(extra)
    return env


def _python(code: str, *flags: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, *flags, "-c", code], env=_env(**env), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@needs_venv
def test_venv_python_starts_with_passive_wait_policy():
    assert HOOK.exists(), f"{HOOK} is missing: `make install` writes it (rm .venv/.installed)"
    assert _python(PRINT_POLICY) == "PASSIVE"
    # An explicit setting wins, so a student can still compare.
    assert _python(PRINT_POLICY, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


@needs_venv
def test_pytest_itself_runs_with_passive_wait_policy():
    assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"
    assert utils.omp_wait_policy() == "PASSIVE"
    assert utils.environment_report()["wait policy"].startswith("PASSIVE")


@needs_venv
def test_python3_kernel_starts_with_passive_wait_policy():
    """The kernelspec JupyterLab, nbclient and nbgrader use, with torch imported first."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=_env(), startup_timeout=60)
    try:
        outputs: list[str] = []

        def keep_stdout(msg: dict) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                outputs.append(msg["content"]["text"])

        code = (
            "import os, torch\nimport cnncourse\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), cnncourse.utils.omp_wait_policy())"
        )
        reply = kc.execute_interactive(code, output_hook=keep_stdout, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "".join(outputs).split() == ["PASSIVE", "PASSIVE"]


def _without_site(code: str) -> str:
    """Run ``code`` in a python that skips site-packages' .pth files (``-S``): an install
    without the venv's hook, such as conda's."""
    path = os.pathsep.join([str(ROOT), *(p for p in sys.path if p)])
    return _python(code, "-S", PYTHONPATH=path)


def test_importing_cnncourse_first_sets_passive():
    code = (
        "import os\nimport cnncourse, torch\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), cnncourse.utils.omp_wait_policy())"
    )
    assert _without_site(code).split() == ["PASSIVE", "PASSIVE"]


def test_torch_imported_first_without_the_hook_is_reported():
    code = (
        "import torch\nimport cnncourse\n"
        "print(cnncourse.utils.omp_wait_policy())\n"
        "print(cnncourse.utils.environment_report()['wait policy'])"
    )
    policy, note = _without_site(code).splitlines()
    assert policy == "default"
    assert "OMP_WAIT_POLICY=PASSIVE" in note  # says what to do about it


def test_omp_wait_policy_reads_the_environment(monkeypatch):
    monkeypatch.setattr(cnncourse, "_OMP_POLICY_TOO_LATE", False)
    for value, expected in [("passive", "PASSIVE"), (" ACTIVE ", "ACTIVE"), ("bogus", "default")]:
        monkeypatch.setenv("OMP_WAIT_POLICY", value)
        assert utils.omp_wait_policy() == expected
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert utils.omp_wait_policy() == "default"
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(cnncourse, "_OMP_POLICY_TOO_LATE", True)
    assert utils.omp_wait_policy() == "default"
