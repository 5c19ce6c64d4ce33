"""Tools for the people who write the course: notebooks from text sources, wrong answers.

Each assignment has one source a person edits, ``solutions/<NN_topic>/<NN_topic>.py``,
in jupytext's percent format: ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown
cell whose lines are comments, and nbgrader's cell metadata sits in the cell header in a
short form that leaves out nbgrader's defaults::

    # %% nbgrader={"grade_id": "softmax", "solution": true}
    # %% nbgrader={"grade": true, "grade_id": "test_softmax_values", "locked": true, "points": 5}

:func:`build_notebook` turns a source into the notebook nbgrader reads, filling the
defaults back in and giving every cell a stable id (its ``grade_id``, else ``md-NN`` or
``code-NN`` by position), so a one-line change to the source is a one-line change to the
notebook. ``python -m cnncourse.authoring build`` writes ``solutions/*/*.ipynb`` (the
Makefile's ``release`` and ``grade`` targets call it).

:func:`wrong_answer` marks a function (or class) in an assignment's ``wrong_answers.py``
as a plausible mistake for one solution region; its body replaces the region, and the
test suite checks that exactly the listed test cells lose their points.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "NBGRADER_DEFAULTS",
    "WrongAnswer",
    "apply_edits",
    "build_notebook",
    "build_all",
    "source_path",
    "wrong_answer",
    "wrong_answers_in",
    "wrong_edit",
    "replace_solution",
    "to_source",
]

# What nbgrader writes for a cell that has no role; the sources leave these out.
NBGRADER_DEFAULTS = {
    "grade": False,
    "locked": False,
    "schema_version": 3,
    "solution": False,
    "task": False,
}
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"},
}
FORMAT = "py:percent"


def source_path(assignment_dir: str | Path) -> Path:
    """The text source of an assignment folder: ``<folder>/<folder name>.py``."""
    folder = Path(assignment_dir)
    path = folder / f"{folder.name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no text source {path.name} (see CONTRIBUTING.md)")
    return path


def build_notebook(source: str | Path) -> nbformat.NotebookNode:
    """The nbgrader notebook for a percent-format source file (or its text).

    Only nbgrader metadata survives (jupytext's own cell metadata is dropped); code
    cells have no outputs. Ids are stable: the grade_id if the cell has one, else
    ``md-NN`` / ``code-NN`` with NN the 1-based position of the cell.
    """
    import jupytext

    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    nb = jupytext.reads(text, fmt=FORMAT)
    cells = []
    for i, cell in enumerate(nb.cells, start=1):
        grader = cell.metadata.get("nbgrader")
        metadata = {"nbgrader": {**NBGRADER_DEFAULTS, **grader}} if grader else {}
        if grader and "grade_id" not in grader:
            raise ValueError(f"{source}: cell {i} has nbgrader metadata but no grade_id")
        kind = "md" if cell.cell_type == "markdown" else "code"
        cell_id = grader["grade_id"] if grader else f"{kind}-{i:02d}"
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=metadata, id=cell_id)
        else:
            new = nbformat.v4.new_code_cell(cell.source, metadata=metadata, id=cell_id)
        cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells, metadata=NOTEBOOK_METADATA)
    out.nbformat, out.nbformat_minor = 4, 5
    nbformat.validate(out)
    return out


def to_source(nb: nbformat.NotebookNode) -> str:
    """The percent-format text of a notebook (to convert an existing ``.ipynb`` once)."""
    import jupytext

    nb = nbformat.from_dict(nb)
    nb.metadata = {}
    for cell in nb.cells:
        grader = cell.metadata.get("nbgrader")
        cell.metadata = {}
        if grader:
            short = {
                k: grader[k] for k in sorted(grader) if NBGRADER_DEFAULTS.get(k, ...) != grader[k]
            }
            cell.metadata["nbgrader"] = short
    text = jupytext.writes(nb, fmt=FORMAT)
    # jupytext opens with a YAML header (its version, the kernelspec): the build supplies
    # both, so the source starts with the first cell.
    return re.sub(r"\A# ---\n(#.*\n)*?# ---\n\n", "", text)


def _write_if_changed(path: Path, nb: nbformat.NotebookNode) -> bool:
    text = nbformat.writes(nb) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def build_all(solutions: str | Path = "solutions", names: Iterable[str] = ()) -> list[Path]:
    """Write ``<folder>/<folder>.ipynb`` for every assignment (or those in ``names``).

    Returns the notebooks that changed.
    """
    root = Path(solutions)
    folders = [root / n for n in names] or sorted(
        p for p in root.iterdir() if p.is_dir() and p.name[:2].isdigit()
    )
    changed = []
    for folder in folders:
        nb = build_notebook(source_path(folder))
        target = folder / f"{folder.name}.ipynb"
        if _write_if_changed(target, nb):
            changed.append(target)
    return changed


# --------------------------------------------------------------------------- wrong answers

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class WrongAnswer:
    """One plausible mistake in solution region ``region`` of cell ``cell``: ``code``
    replaces the region, or, for a small slip, ``edits`` change the solution inside it."""

    name: str  # the function's (or variable's) name: the test id
    cell: str  # grade_id of the solution cell
    code: str  # the wrong solution region, unindented ("" when given as edits)
    fails: frozenset[str]  # grade_ids of the test cells that must score zero
    says: str  # a regex the failure messages must match
    region: int = 0  # which solution region of the cell, if it has several
    edits: tuple[tuple[str, str], ...] = ()  # (old, new) pairs applied to the solution

    def apply(self, source: str) -> str:
        """The cell ``source`` with this mistake in place of its solution region."""
        if self.edits:
            return apply_edits(source, self.edits, self.region)
        return replace_solution(source, self.code, self.region)


def wrong_answer(
    cell: str, *, fails: Iterable[str], says: str, region: int = 0
) -> Callable[[Callable], Callable]:
    """Mark a function or class in a ``wrong_answers.py`` as a wrong answer for a solution cell.

    Its body (without a leading docstring) is the code that replaces the solution region;
    the function is never called. Write it as the student would fill the region: a
    function body for a function exercise, a class body for a module, plain statements
    (in a function of no arguments) for a region at the top level of a cell.
    :func:`wrong_answers_in` reads the bodies from the file.
    """
    fails = frozenset([fails] if isinstance(fails, str) else fails)
    if not fails:
        raise ValueError("fails: name at least one test cell that must lose its points")

    def mark(obj: Callable) -> Callable:
        obj.__wrong_answer__ = {"cell": cell, "fails": fails, "says": says, "region": region}
        return obj

    return mark


class _Edit:
    """What :func:`wrong_edit` returns: marks, read by :func:`wrong_answers_in`."""

    def __init__(self, **marks) -> None:
        self.__wrong_answer__ = marks


def wrong_edit(
    cell: str,
    *,
    fails: Iterable[str],
    says: str,
    replace: Iterable[tuple[str, str]],
    region: int = 0,
) -> _Edit:
    """A wrong answer that is the solution with a small slip: each ``(old, new)`` pair in
    ``replace`` swaps every ``old`` inside the solution region for ``new``. Assign it to a
    name, which becomes the test id::

        lenet_c1_without_bias = wrong_edit(
            "lenet_module", fails={...}, says="biases",
            replace=[("kernel_size=5),  # C1", "kernel_size=5, bias=False),  # C1")],
        )

    The test fails, naming the text, when the solution no longer contains an ``old``.
    """
    fails = frozenset([fails] if isinstance(fails, str) else fails)
    edits = tuple((str(old), str(new)) for old, new in replace)
    if not fails or not edits:
        raise ValueError("fails and replace: name a test cell and at least one (old, new) pair")
    return _Edit(cell=cell, fails=fails, says=says, region=region, edits=edits)


def apply_edits(source: str, edits: Iterable[tuple[str, str]], region: int = 0) -> str:
    """``source`` with each ``(old, new)`` pair applied inside solution region ``region``."""
    pattern = rf"^[ \t]*{re.escape(BEGIN)}\n.*?^[ \t]*{re.escape(END)}[^\n]*"
    matches = list(re.finditer(pattern, source, flags=re.M | re.S))
    if len(matches) <= region:
        raise ValueError(f"region={region}: the cell has {len(matches)} solution region(s)")
    match = matches[region]
    body = match.group(0)
    for old, new in edits:
        if old not in body:
            raise ValueError(f"the solution region no longer contains {old!r}: update the edit")
        body = body.replace(old, new)
    return source[: match.start()] + body + source[match.end() :]


def _bodies(text: str) -> dict[str, str]:
    """The body of every top-level function and class in ``text``, dedented, without a
    leading docstring but with comment lines above the first statement."""
    lines = text.splitlines()
    bodies = {}
    for node in ast.parse(text).body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        if node.name in bodies:
            raise ValueError(f"two definitions are named {node.name!r}")
        body = node.body
        first = body[0]
        is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if is_doc and isinstance(first.value.value, str):
            start = first.end_lineno  # 0-based index of the line after the docstring
        else:
            start = first.lineno - 1
            while start - 1 > node.lineno - 1 and lines[start - 1].strip().startswith("#"):
                start -= 1
        bodies[node.name] = textwrap.dedent("\n".join(lines[start : node.end_lineno])).strip("\n")
    return bodies


def wrong_answers_in(path: str | Path) -> list[WrongAnswer]:
    """The wrong answers a ``wrong_answers.py`` file defines, in file order."""
    import importlib.util

    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"_wrong_answers_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        bodies = _bodies(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    found = []
    for name, obj in vars(module).items():
        marks = getattr(obj, "__wrong_answer__", None)
        if marks is None:
            continue
        if isinstance(obj, _Edit):
            found.append(WrongAnswer(name=name, code="", **marks))
            continue
        if not bodies.get(name):
            raise ValueError(f"{path}: {name} needs a body besides its docstring")
        found.append(WrongAnswer(name=name, code=bodies[name], **marks))
    return found


def replace_solution(source: str, code: str, region: int = 0) -> str:
    """Swap solution region number ``region`` of a cell for ``code``, indented like it."""
    pattern = rf"^([ \t]*){re.escape(BEGIN)}\n.*?^[ \t]*{re.escape(END)}[^\n]*"
    matches = list(re.finditer(pattern, source, flags=re.M | re.S))
    if len(matches) <= region:
        raise ValueError(f"region={region}: the cell has {len(matches)} solution region(s)")
    match = matches[region]
    body = textwrap.indent(code, match.group(1))
    return source[: match.start()] + body + source[match.end() :]


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnncourse.authoring", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write solutions/*/*.ipynb from the .py sources")
    build.add_argument("assignments", nargs="*", help="folder names (default: all)")
    build.add_argument("--solutions", default="solutions")
    convert = sub.add_parser("convert", help="write the .py source of an existing .ipynb")
    convert.add_argument("notebook", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        changed = build_all(args.solutions, args.assignments)
        for path in changed:
            print(f"built {path}")
        return 0
    nb = nbformat.read(args.notebook, as_version=4)
    target = args.notebook.with_suffix(".py")
    target.write_text(to_source(nb), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
