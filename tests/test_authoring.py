"""The text sources of the assignments and the tools that build notebooks from them."""

from __future__ import annotations

import difflib
import json

import nbformat
import pytest
from conftest import RELEASE, SOLUTIONS, assignments, solution_notebook
from nbgrader.utils import is_grade, is_solution

from cnncourse.authoring import (
    NBGRADER_DEFAULTS,
    _bodies,
    build_notebook,
    replace_solution,
    source_path,
    to_source,
    wrong_answer,
    wrong_answers_in,
    wrong_edit,
)

ASSIGNMENTS = assignments()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_builds_a_valid_nbgrader_notebook(assignment):
    nb = solution_notebook(assignment)
    nbformat.validate(nb)
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids), f"{assignment}: duplicate cell ids"
    graded = [c for c in nb.cells if "nbgrader" in c.metadata]
    assert graded, f"{assignment}: no nbgrader cells"
    for cell in graded:
        meta = cell.metadata.nbgrader
        assert set(NBGRADER_DEFAULTS) <= set(meta), f"{cell.id}: defaults not filled in"
        assert cell.id == meta.grade_id
        if is_grade(cell):
            assert meta.points > 0 and meta.locked, f"{cell.id}: a test cell needs points, locked"
    assert nb.cells[0].cell_type == "markdown", "a notebook opens with its learning goals"
    assert any(is_solution(c) for c in nb.cells)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_sources_hold_no_control_characters(assignment):
    """A backslash lost on the way into a file ("\\approx" written as "\\a" + "pprox")
    leaves a control character that renders as nothing in the notebook's LaTeX."""
    for path in sorted((SOLUTIONS / assignment).glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            bad = [c for c in line if ord(c) < 32 and c != "\t"]
            assert not bad, f"{path.name}:{number} holds control character {bad[0]!r}: {line!r}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_is_in_canonical_form(assignment):
    """Writing the built notebook back gives the source: nothing is lost or reformatted."""
    path = source_path(SOLUTIONS / assignment)
    assert to_source(build_notebook(path)) == path.read_text(encoding="utf-8")


def test_one_line_change_is_a_one_line_change_in_the_notebook():
    path = source_path(SOLUTIONS / ASSIGNMENTS[-1])
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    # the first line of a markdown cell in the middle of the notebook
    i = 1 + next(i for i in range(len(lines) // 2, len(lines)) if lines[i] == "# %% [markdown]\n")
    changed = "".join(lines[:i] + [lines[i].rstrip("\n") + " (edited)\n"] + lines[i + 1 :])
    before = nbformat.writes(build_notebook(text)).splitlines()
    after = nbformat.writes(build_notebook(changed)).splitlines()
    diff = [d for d in difflib.unified_diff(before, after, n=0, lineterm="") if d[:1] in "+-"]
    diff = [d for d in diff if not d.startswith(("+++", "---"))]
    assert len(diff) == 2, f"expected one line out and one in, got {diff}"
    assert "(edited)" in json.loads(diff[1][1:].strip().rstrip(","))


def test_release_carries_no_source_and_no_wrong_answers():
    for assignment in ASSIGNMENTS:
        names = {p.name for p in (RELEASE / assignment).iterdir()}
        assert names == {f"{assignment}.ipynb"}, f"notebooks/{assignment} holds {sorted(names)}"
        assert (SOLUTIONS / assignment / "wrong_answers.py").is_file(), (
            f"solutions/{assignment} has no wrong_answers.py"
        )


def test_metadata_must_name_the_cell():
    with pytest.raises(ValueError, match="grade_id"):
        build_notebook('# %% nbgrader={"solution": true}\nx = 1\n')


def test_bodies_drop_the_docstring_and_keep_leading_comments():
    text = '''
def a(x):
    """Docstring."""
    return x


def b(x):
    # why this is wrong
    y = x + 1
    return y


class C:
    n = 1

    def f(self):
        return self.n
'''
    bodies = _bodies(text)
    assert bodies["a"] == "return x"
    assert bodies["b"] == "# why this is wrong\ny = x + 1\nreturn y"
    assert bodies["C"] == "n = 1\n\ndef f(self):\n    return self.n"
    with pytest.raises(ValueError, match="named 'a'"):
        _bodies(text + "\n\ndef a():\n    pass\n")


def test_wrong_answer_needs_a_failing_cell():
    with pytest.raises(ValueError, match="fails"):
        wrong_answer("cell", fails=set(), says="x")


def test_replace_solution_keeps_indentation_and_picks_the_region():
    cell = (
        "def f(x):\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n"
        "def g(x):\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION\n"
    )
    out = replace_solution(cell, "y = x\nreturn y", region=1)
    assert "def g(x):\n    y = x\n    return y\n" in out and "return 1" in out
    with pytest.raises(ValueError, match="region=2"):
        replace_solution(cell, "pass", region=2)


def test_wrong_edit_changes_only_the_solution_region(tmp_path):
    cell = "x = 1  # keep\ndef f():\n    ### BEGIN SOLUTION\n    x = 1\n    return x\n"
    cell += "    ### END SOLUTION\n"
    path = tmp_path / "wrong_answers.py"
    path.write_text(
        "from cnncourse.authoring import wrong_edit\n\n"
        "off_by_one = wrong_edit('f', fails={'test_f'}, says='x', replace=[('x = 1', 'x = 2')])\n"
        "stale = wrong_edit('f', fails={'test_f'}, says='x', replace=[('y = 1', 'y = 2')])\n"
    )
    off_by_one, stale = wrong_answers_in(path)
    assert off_by_one.name == "off_by_one" and off_by_one.fails == {"test_f"}
    assert off_by_one.apply(cell) == cell.replace("    x = 1", "    x = 2")  # not line 1
    with pytest.raises(ValueError, match="no longer contains 'y = 1'"):
        stale.apply(cell)
    with pytest.raises(ValueError, match="replace"):
        wrong_edit("f", fails={"t"}, says="x", replace=[])
