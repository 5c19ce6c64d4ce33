"""Plausible wrong answers lose points, and only where they should.

Each assignment keeps the mistakes students really make (padding counted once, a missing
bias, pooling at the wrong stride, batch norm that always uses the batch's statistics...)
beside its source, in ``solutions/<NN_topic>/wrong_answers.py`` (see
``cnncourse.authoring.wrong_answer``). Each one replaces the solution region of its cell
in the instructor notebook; the test cells then run in a kernel in grading mode and are
scored with nbgrader's own rule (`nbgrader.utils.determine_grade`: an error or any stderr
output gives zero). The test checks that

- exactly the listed test cells lose their points (a test cell that also fails for an
  unrelated exercise would punish a student twice for one mistake, or hide a bug), and
- the failure message contains a phrase that helps the student find the mistake.

Only the setup cell, the solution cells and the graded test cells run (the notebook
conventions require test cells to depend on nothing else), so one kernel per notebook
checks every wrong answer in seconds. The first wrong answer of each notebook also goes
through a real `nbgrader autograde` (see `wrong_submission`, used by test_notebooks.py).
"""

from __future__ import annotations

import os
import re

import nbformat
import pytest
from conftest import SOLUTIONS, assignments, solution_notebook
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade, is_solution

from cnncourse.authoring import WrongAnswer, wrong_answers_in

pytestmark = pytest.mark.notebooks

ASSIGNMENTS = assignments()


def _wrong_answers(assignment: str) -> list[WrongAnswer]:
    path = SOLUTIONS / assignment / "wrong_answers.py"
    return wrong_answers_in(path) if path.is_file() else []


WRONG_ANSWERS = {a: _wrong_answers(a) for a in ASSIGNMENTS}
CASES = [(a, w) for a in ASSIGNMENTS for w in WRONG_ANSWERS[a]]


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _error_text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
        elif out.output_type == "stream" and out.name == "stderr":
            parts.append(out.text)
    return "\n".join(parts)


class GradingKernel:
    """One kernel in grading mode that runs a notebook's setup, solution and test cells."""

    def __init__(self, assignment: str) -> None:
        self.nb = solution_notebook(assignment)
        self.client = NotebookClient(
            self.nb, timeout=120, kernel_name="python3", allow_errors=True,
            resources={"metadata": {"path": str(SOLUTIONS / assignment)}},
        )  # fmt: skip
        self.index = {_grade_id(c): i for i, c in enumerate(self.nb.cells) if _grade_id(c)}
        self.solutions = [g for g, i in self.index.items() if is_solution(self.nb.cells[i])]
        self.tests = [g for g, i in self.index.items() if is_grade(self.nb.cells[i])]
        # nbclient stores the executed cell back into the notebook: keep the originals.
        self.sources = {g: self.nb.cells[i].source for g, i in self.index.items()}

    def run(self, grade_id: str, source: str | None = None):
        """Execute a cell, with ``source`` in place of its own if given."""
        i = self.index[grade_id]
        source = self.sources[grade_id] if source is None else source
        cell = nbformat.from_dict({**self.nb.cells[i], "source": source, "outputs": []})
        return self.client.execute_cell(cell, i)

    def scores(self) -> dict[str, tuple[float, float, str]]:
        """Run every test cell; grade_id -> (score, max score, error text)."""
        result = {}
        for grade_id in self.tests:
            cell = self.run(grade_id)
            score, max_score = determine_grade(cell)
            result[grade_id] = (score, max_score, _error_text(cell))
        return result


@pytest.fixture(scope="module")
def kernels():
    """grading-mode kernels, started on first use and shut down after the module."""
    started: dict[str, tuple[GradingKernel, object]] = {}

    def get(assignment: str) -> GradingKernel:
        if assignment not in started:
            gk = GradingKernel(assignment)
            previous = os.environ.get("NBGRADER_EXECUTION")
            os.environ["NBGRADER_EXECUTION"] = "autograde"  # the kernel inherits it
            try:
                ctx = gk.client.setup_kernel()
                ctx.__enter__()
            finally:
                if previous is None:
                    os.environ.pop("NBGRADER_EXECUTION")
                else:
                    os.environ["NBGRADER_EXECUTION"] = previous
            gk.run("setup")
            for grade_id in gk.solutions:
                gk.run(grade_id)
            baseline = gk.scores()
            lost = {g: s for g, s in baseline.items() if s[0] != s[1]}
            assert not lost, f"{assignment}: the solution itself loses points: {lost}"
            started[assignment] = (gk, ctx)
        return started[assignment][0]

    yield get
    for _, ctx in started.values():
        ctx.__exit__(None, None, None)


@pytest.mark.parametrize(("assignment", "answer"), CASES, ids=[f"{a}:{w.name}" for a, w in CASES])
def test_wrong_answer_loses_points(kernels, assignment, answer):
    gk = kernels(assignment)
    assert answer.cell in gk.solutions, f"{assignment} has no solution cell {answer.cell!r}"
    assert answer.fails <= set(gk.tests), f"unknown test cells: {answer.fails - set(gk.tests)}"
    original = gk.sources[answer.cell]
    try:
        gk.run(answer.cell, answer.apply(original))
        scores = gk.scores()
    finally:
        gk.run(answer.cell)  # put the right answer back for the next case
    lost = {g for g, (score, max_score, _) in scores.items() if score != max_score}
    assert lost == answer.fails, (
        f"{answer.name}: expected exactly {sorted(answer.fails)} to lose points, "
        f"got {sorted(lost)}; errors: { {g: scores[g][2][-300:] for g in lost} }"
    )
    assert all(scores[g][0] == 0 for g in answer.fails), "a failing cell gave partial credit"
    # Messages are wrapped to fit `nbgrader validate`: match across line breaks, any case.
    said = " ".join("\n".join(scores[g][2] for g in sorted(answer.fails)).split())
    assert re.search(answer.says, said, flags=re.I), (
        f"{answer.name}: the failure messages do not say {answer.says!r}; they said: {said[-800:]}"
    )


def test_every_exercise_has_a_wrong_answer():
    """A new exercise needs at least one wrong answer here, so its tests are shown to bite."""
    missing = []
    for assignment in ASSIGNMENTS:
        nb = solution_notebook(assignment)
        cells = [c for c in nb.cells if is_solution(c) and not is_grade(c)]
        covered = {w.cell for w in WRONG_ANSWERS[assignment]}
        missing += [f"{assignment}:{_grade_id(c)}" for c in cells if _grade_id(c) not in covered]
    assert not missing, (
        f"solution cells with no wrong answer in their assignment's wrong_answers.py: {missing}"
    )


# One wrong answer per notebook also goes through a real `nbgrader autograde`, as a third
# submission in test_notebooks.py's round trip: only its test cells may lose points.
ROUND_TRIP = {a: WRONG_ANSWERS[a][0] for a in ASSIGNMENTS if WRONG_ANSWERS.get(a)}


def wrong_submission(assignment: str) -> tuple[nbformat.NotebookNode, WrongAnswer]:
    """The instructor notebook with the first wrong answer for it swapped in."""
    answer = ROUND_TRIP[assignment]
    nb = solution_notebook(assignment)
    for cell in nb.cells:
        if _grade_id(cell) == answer.cell:
            cell.source = answer.apply(cell.source)
    return nb, answer
