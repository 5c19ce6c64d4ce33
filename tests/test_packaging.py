"""Packaging: pyproject.toml and environment.yml list the same packages and Python version,
the Makefile's install step is idempotent, the top-level files, folders and CI entry point
exist (with ``make lab`` and ``make test`` named in the README and grading outputs
git-ignored), the README's table lists every assignment with its points, the release has
no solution or hidden-test markers, and the solution notebooks are stored without outputs."""

from __future__ import annotations

import re
import subprocess

import tomllib
import yaml
from conftest import ROOT, assignments, solution_notebook

# conda spells some packages differently from PyPI.
CONDA_NAMES = {"torch": "pytorch"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    expected = {CONDA_NAMES.get(n, n): spec for n, spec in map(_split, pip_reqs)}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    conda.pop("python", None)
    conda.pop("pip", None)
    missing = sorted(set(expected) - set(conda))
    extra = sorted(set(conda) - set(expected))
    assert not missing and not extra, f"environment.yml lacks {missing}, has extra {extra}"
    differing = {n: (expected[n], conda[n]) for n in expected if expected[n] != conda[n]}
    assert not differing, f"version ranges differ (pyproject, environment.yml): {differing}"
    # The package itself is installed from the checkout by pip.
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def test_python_versions_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_python = next(
        d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")
    )
    assert conda_python.removeprefix("python") == project["requires-python"]


def test_second_install_is_a_no_op():
    # `make -q` exits 0 when the target is up to date: nothing would be reinstalled.
    result = subprocess.run(
        ["make", "-q", ".venv/.installed"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, "make would reinstall .venv although pyproject.toml is unchanged"


def test_layout_and_ci_entry_point():
    for path in (
        "README.md",
        "environment.yml",
        "pyproject.toml",
        "Makefile",
        "nbgrader_config.py",
        ".ci/run",
        "cnncourse",
        "solutions",
        "notebooks",
    ):
        assert (ROOT / path).exists(), path
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert assignments()[0] == "00_welcome"
    ignored = (ROOT / ".gitignore").read_text().split()
    for name in ("gradebook.db", "submitted/", "autograded/", "feedback/", ".venv/"):
        assert name in ignored, name


def test_readme_lists_every_assignment_with_its_points():
    readme = (ROOT / "README.md").read_text()
    listed = dict(re.findall(r"^\| `(\d\d_\w+)` \|.*\| (\d+) \|$", readme, flags=re.M))
    for assignment in assignments():
        nb = solution_notebook(assignment)
        points = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)
        assert assignment in listed, f"README's notebook table has no row for {assignment}"
        assert int(listed[assignment]) == points, (
            f"README gives {assignment} {listed[assignment]} points; its test cells add up "
            f"to {points}"
        )


def test_release_has_no_answers():
    for nb in (ROOT / "notebooks").rglob("*.ipynb"):
        text = nb.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{nb.relative_to(ROOT)} contains {marker!r}"


def test_solution_sources_have_no_outputs():
    for nb in (ROOT / "solutions").rglob("*.ipynb"):
        assert '"output_type"' not in nb.read_text(), f"{nb.relative_to(ROOT)}: clear its outputs"
