"""Generic tests over every assignment in solutions/ (none are listed by hand):

- each solution notebook, built from its text source, executes top to bottom without
  error, and its graded cells write nothing to stderr;
- notebooks/ is exactly what `make release` makes from the sources (the build, then
  `nbgrader generate_assignment`);
- an nbgrader round trip in a temporary course folder: the solution scores full marks,
  the untouched release scores zero, a submission with one plausible mistake loses exactly
  the points of the cells that test it, and autograding finishes well inside its timeout.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from conftest import RELEASE, ROOT, SOLUTIONS, assignments, solution_notebook, tool_env
from nbclient import NotebookClient
from test_wrong_answers import ROUND_TRIP, wrong_submission

from cnncourse.authoring import build_all

pytestmark = pytest.mark.notebooks
ASSIGNMENTS = assignments()
# Times are collected for the summary printed at the end of the run (see conftest.py).
TIMINGS: dict[str, float] = {}


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_executes(assignment, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    nb = solution_notebook(assignment)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(SOLUTIONS / assignment)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the cell and traceback on failure
    TIMINGS[f"execute {assignment}"] = time.perf_counter() - start
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            stderr = [o for o in cell.get("outputs", []) if o.get("name") == "stderr"]
            assert not stderr, (
                f"{assignment}: graded cell {cell.metadata.nbgrader.grade_id!r} wrote to "
                f"stderr, which costs students its points: {stderr[0]['text'][:300]}"
            )


def _nbgrader(course: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["nbgrader", *args, "--log-level=WARN"], cwd=course, env=tool_env(),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A throwaway course folder with this repo's config and sources, built and released
    as `make release` does."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(SOLUTIONS, course / "solutions", ignore=shutil.ignore_patterns("*.ipynb"))
    build_all(course / "solutions")
    for assignment in ASSIGNMENTS:
        _nbgrader(course, "generate_assignment", assignment, "--force")
    return course


def _tree_diff(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__", ".ipynb_checkpoints"])
    problems = [f"only in {left.name}: {n}" for n in cmp.left_only]
    problems += [f"only in the fresh release: {n}" for n in cmp.right_only]
    problems += [f"differs: {n}" for n in cmp.diff_files + cmp.funny_files]
    for sub in cmp.common_dirs:
        problems += [f"{sub}/{p}" for p in _tree_diff(left / sub, right / sub)]
    return problems


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_in_sync_with_solutions(course, assignment):
    ours, fresh = RELEASE / assignment, course / "notebooks" / assignment
    assert ours.is_dir(), f"notebooks/{assignment} is missing: run `make release`"
    problems = _tree_diff(ours, fresh)
    assert not problems, (
        f"notebooks/{assignment} is out of date with its source solutions/{assignment}/"
        f"{assignment}.py ({'; '.join(problems)}): run `make release` and commit notebooks/"
    )


def test_no_release_without_a_source():
    stray = sorted({p.name for p in RELEASE.iterdir() if p.is_dir()} - set(ASSIGNMENTS))
    assert not stray, f"notebooks/ has assignments with no source in solutions/: {stray}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_round_trip(course, assignment):
    from nbgrader.api import Gradebook

    submissions = {
        "solution_student": course / "solutions" / assignment,  # instructor version
        "blank_student": course / "notebooks" / assignment,  # untouched release
    }
    for student, source in submissions.items():
        dest = course / "submitted" / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        for nb in _notebooks(source):
            shutil.copy(nb, dest / nb.name)
        (dest / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    # A third student hands in the solution with one plausible mistake (test_wrong_answers).
    wrong = None
    if assignment in ROUND_TRIP:
        wrong_nb, wrong = wrong_submission(assignment)
        dest = course / "submitted" / "wrong_student" / assignment
        dest.mkdir(parents=True, exist_ok=True)
        (path,) = _notebooks(course / "solutions" / assignment)
        nbformat.write(wrong_nb, dest / path.name)
        (dest / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")

    start = time.perf_counter()
    _nbgrader(course, "autograde", assignment, "--force", timeout=600)
    TIMINGS[f"autograde {assignment} ({3 if wrong else 2} submissions)"] = (
        time.perf_counter() - start
    )

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        max_score = gb.find_assignment(assignment).max_score
        full = gb.find_submission(assignment, "solution_student")
        blank = gb.find_submission(assignment, "blank_student")
        assert max_score > 0, f"{assignment} has no autograded points"
        failing = [
            f"{g.name} ({g.score}/{g.max_score})"
            for nb in full.notebooks
            for g in nb.grades
            if g.score != g.max_score
        ]
        assert full.score == max_score, f"solution scored {full.score}/{max_score}; lost: {failing}"
        assert blank.score == 0, f"untouched release scored {blank.score}/{max_score}"
        if wrong is not None:
            sub = gb.find_submission(assignment, "wrong_student")
            grades = {g.name: (g.score, g.max_score) for n in sub.notebooks for g in n.grades}
            lost = {name for name, (score, top) in grades.items() if score != top}
            kept = sum(top for name, (_, top) in grades.items() if name not in wrong.fails)
            assert lost == wrong.fails and sub.score == kept, (
                f"with the wrong answer {wrong.name!r} the autograder took points from "
                f"{sorted(lost)} (expected {sorted(wrong.fails)}) and gave {sub.score}/{max_score}"
            )


def test_validate_shows_the_whole_message(course, tmp_path):
    """`nbgrader validate`, which students run before submitting, prints the hint and the
    values in full (nbgrader cuts each line at Validator.width - 3 characters)."""
    assignment = "01_components"
    nb, wrong = wrong_submission(assignment)
    assert wrong.name == "output_size_padding_once"
    path = course / f"validate_{assignment}.ipynb"
    nbformat.write(nb, path)
    start = time.perf_counter()
    result = subprocess.run(
        ["nbgrader", "validate", str(path)], cwd=course, env=tool_env(),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    TIMINGS["validate 01_components (one wrong answer)"] = time.perf_counter() - start
    out = " ".join(result.stdout.split())
    assert "VALIDATION FAILED ON 1 CELL(S)" in out, result.stdout[-3000:]
    for phrase in (
        "Padding adds P zeros on *each* side, so the padded length is I + 2P.",
        "conv_output_size(12, kernel_size=3, stride=1, padding=1): expected 12, got 11",
    ):
        assert phrase in out, f"validate does not show {phrase!r}:\n{result.stdout[-3000:]}"
    assert "..." not in result.stdout.split("AssertionError")[-1].split("\n")[0]
