"""Grade a whole class: every submission of every assignment, sandboxed, in parallel.

    cnncourse-grade [--jobs N] [--assignment A ...] [--student S ...] [--course DIR]

(also ``python -m cnncourse.grade``, and ``make grade``). For each submission in
``submitted/<student>/<assignment>/`` the grader

1. cleans the notebook as ``nbgrader autograde`` does (outputs cleared, locked and test
   cells restored from the gradebook, missing ones added back, points from the gradebook);
2. scans the code the student wrote for tampering (``cnncourse.tamper``), which flags the
   submission for review and never changes a score by itself;
3. executes it in its own sandboxed kernel (``cnncourse.sandbox``): no course folder, no
   network, limits on memory, processes, output and time. Time limits follow from the
   reference solution, run the same way first ("calibration", cached): each cell may take
   ``--cell-factor`` times what the solution's cell took (at least ``--cell-floor`` s),
   the notebook ``--notebook-factor`` times the solution's total (at least
   ``--notebook-floor`` s);
4. scores the test cells with nbgrader's own rule, after three defences: a warning a test
   cell printed on stderr is moved to stdout (a warning is not an error), a test cell that
   did not reach its last line without an error shown is failed (something swallowed its
   error), and an error whose traceback was hidden is shown;
5. writes the graded notebook to ``autograded/`` and the scores into the gradebook
   (nbgrader's API; only this process writes, one submission at a time, so parallel
   kernels never corrupt it), marks flagged notebooks "needs manual grade" with the
   reasons as a comment (formgrader shows both), and finally writes feedback for each
   student with the hidden tests' code removed and their messages kept.

A bad submission never stops the batch: whatever goes wrong is recorded against it. The
summary table at the end, ``grading-report.md`` and ``grading-report.csv`` list every
submission with its score and what was flagged.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor

from . import sandbox, tamper

CALIBRATION_LIMITS = {"cell": 300.0, "notebook": 1800.0}


@dataclass
class Settings:
    jobs: int
    cell_factor: float = 10.0
    cell_floor: float = 10.0
    notebook_factor: float = 5.0
    notebook_floor: float = 120.0
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    sandbox: bool = True
    feedback: bool = True


@dataclass
class Outcome:
    """One graded submission: its score and everything an instructor should know."""

    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    flags: list[str] = field(default_factory=list)  # for review: possible tampering
    notes: list[str] = field(default_factory=list)  # facts: dropped files, timeouts...
    seconds: float = 0.0
    kernel_seconds: float = 0.0  # in the sandbox (the rest is this process's own work)
    start_seconds: float = 0.0  # of kernel_seconds: starting the kernel, importing torch
    error: str = ""  # the grader could not grade it (recorded, batch goes on)


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


class Course:
    """An nbgrader course folder: its config, its gradebook and its folders."""

    def __init__(self, root: Path) -> None:
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        self.root = root.resolve()
        config = Config()
        if (self.root / "nbgrader_config.py").is_file():
            config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        self.config = config
        self.coursedir = CourseDirectory(config=config)
        self.coursedir.root = str(self.root)
        self.db_url = self.coursedir.db_url

    def folder(self, step: str, student: str, assignment: str) -> Path:
        return Path(self.coursedir.format_path(step, student, assignment))

    def gradebook(self):
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.coursedir.course_id)

    def notebooks(self) -> dict[str, list[str]]:
        """{assignment: [notebook names]} from the gradebook, in course order."""
        with self.gradebook() as gb:
            return {a.name: sorted(n.name for n in a.notebooks) for a in
                    sorted(gb.assignments, key=lambda a: a.name)}  # fmt: skip

    def source(self, assignment: str, notebook: str) -> Path:
        step = self.coursedir.source_directory
        return self.folder(step, ".", assignment) / f"{notebook}.ipynb"

    def data_files(self, assignment: str) -> list[Path]:
        """The files released with an assignment besides its notebooks: all a kernel gets."""
        release = self.folder(self.coursedir.release_directory, ".", assignment)
        if not release.is_dir():
            return []
        return sorted(p for p in release.iterdir() if p.is_file() and p.suffix != ".ipynb")


# --- cleaning, scoring, saving: nbgrader's own preprocessors ------------------------------


def _resources(course: Course, assignment: str, student: str, notebook: str) -> dict:
    return {"unique_key": notebook, "output_files_dir": f"{notebook}_files",
            "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                         "db_url": course.db_url}}  # fmt: skip


def _run_preprocessors(names: Iterable[type], nb, resources: dict, config):
    for cls in names:  # called, not .preprocess(): one not enabled in the config is skipped
        nb, resources = cls(config=config)(nb, resources)
    return nb, resources


def sanitize(course: Course, nb, resources: dict):
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        OverwriteCells,  # fmt: skip
        OverwriteKernelspec,
    )

    steps = (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)
    return _run_preprocessors(steps, nb, resources, course.config)


def save_grades(course: Course, nb, resources: dict):
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,  # fmt: skip
        SaveAutoGrades,
    )

    steps = (IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
             AssignLatePenalties, CheckCellMetadata)  # fmt: skip
    return _run_preprocessors(steps, nb, resources, course.config)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _key(cell, index: int) -> str:
    return _meta(cell).get("grade_id") or f"#{index}"


async def execute(course: Course, assignment: str, nb, s: Settings, cell_limits: dict,
                  notebook_limit: float) -> sandbox.NotebookRun:  # fmt: skip
    """Run ``nb`` in a sandbox; every test cell is checked for reaching its end and for
    replaced functions (``cnncourse.integrity``, snapshotted by the prelude's import, before
    any cell of the notebook runs)."""
    tests = [i for i, c in enumerate(nb.cells) if _meta(c).get("grade") and c.cell_type == "code"]
    tokens = {i: secrets.token_hex(8) for i in tests}
    check = {i: {"intact": f"__import__('cnncourse.integrity').integrity.report({t!r})"}
             for i, t in tokens.items()}  # fmt: skip
    run = await sandbox.execute_notebook(
        nb, limits=s.limits, cell_timeout=cell_limits, notebook_timeout=notebook_limit,
        check_completion=set(tests), expressions=check, prelude="import cnncourse",
        sandbox=s.sandbox, data=course.data_files(assignment),
    )  # fmt: skip
    for record in run.cells:
        if record.index not in tokens:
            continue
        got = record.expressions.pop("intact", None)
        if record.status == "ok" and record.completed:  # otherwise it was not evaluated
            expected = repr(f"intact {tokens[record.index]}")
            record.expressions["intact"] = "" if got == expected else (got or "no answer")
    return run


def apply_policy(nb, run: sandbox.NotebookRun) -> list[str]:
    """The defences applied to the outputs before scoring; returns the flags they raise."""
    flags = []
    runs = {c.index: c for c in run.cells}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not _meta(cell).get("grade"):
            continue
        for out in cell.get("outputs", []):  # a warning is not an error
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["name"] = "stdout"
        record = runs.get(index)
        if record is None:
            continue
        label = _key(cell, index)
        if record.hidden_error:
            flags.append(f"{label}: the test failed but its traceback was hidden (something "
                         "replaced IPython's error display)")  # fmt: skip
        replaced = record.expressions.get("intact")
        if replaced:
            flags.append(f"{label}: functions the tests rely on were replaced ({replaced})")
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="IntegrityError", evalue=replaced,
                traceback=[f"IntegrityError: code in this notebook replaced functions the tests "
                           f"use, so this test cannot be trusted ({replaced})"]))  # fmt: skip
        if record.status == "ok" and record.completed is False:
            flags.append(f"{label}: the test cell stopped before its last line without an "
                         "error (something intercepted its errors)")  # fmt: skip
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="IncompleteTest", evalue="the test did not run to its end",
                traceback=["IncompleteTest: this test cell did not reach its last line, yet "
                           "no error was reported: code earlier in the notebook intercepts "
                           "errors"]))  # fmt: skip
    return flags


def notebook_score(nb) -> tuple[float, float]:
    from nbgrader.utils import determine_grade, is_grade

    score = top = 0.0
    for cell in nb.cells:
        if is_grade(cell):
            got, most = determine_grade(cell)
            score, top = score + (got or 0), top + most
    return score, top


# --- calibration: the reference solution sets the time limits ----------------------------


def _fingerprint(nb) -> str:
    import torch

    from . import __version__

    h = hashlib.sha256(f"{__version__} {torch.__version__} {sys.version}".encode())
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.encode() + b"\0")
    return h.hexdigest()[:16]


@dataclass
class Reference:
    """The reference solution's time per cell (by grade id or position) and in total."""

    cells: dict[str, float]
    total: float
    score: float
    max_score: float

    def cell_limits(self, nb, s: Settings) -> dict[int, float]:
        return {i: max(s.cell_floor, s.cell_factor * self.cells.get(_key(c, i), 0.0))
                for i, c in enumerate(nb.cells) if c.cell_type == "code"}  # fmt: skip

    def notebook_limit(self, s: Settings) -> float:
        return max(s.notebook_floor, s.notebook_factor * self.total)


async def calibrate(course: Course, assignment: str, notebook: str, s: Settings,
                    cache: dict) -> Reference:  # fmt: skip
    path = course.source(assignment, notebook)
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    fp = _fingerprint(nb)
    entry = cache.get(f"{assignment}/{notebook}")
    if entry and entry.get("fingerprint") == fp:
        return Reference(entry["cells"], entry["total"], entry["score"], entry["max_score"])
    run = await execute(course, assignment, nb, s, {}, CALIBRATION_LIMITS["notebook"])
    apply_policy(nb, run)
    score, top = notebook_score(nb)
    ref = Reference({_key(nb.cells[r.index], r.index): round(r.seconds, 3) for r in run.cells},
                    round(run.seconds, 3), score, top)  # fmt: skip
    if not run.stopped and score == top:  # only a clean run is worth keeping
        cache[f"{assignment}/{notebook}"] = {"fingerprint": fp, **ref.__dict__}
    return ref


# --- one submission ---------------------------------------------------------------------


def _find_notebooks(folder: Path, expected: list[str], o: Outcome) -> dict[str, Path | None]:
    """{notebook: its file}: a lone notebook under another name is graded as the expected
    one (and noted); files that are not expected notebooks are left out (and noted)."""
    present = {p.stem: p for p in folder.glob("*.ipynb")} if folder.is_dir() else {}
    found = {n: present.pop(n, None) for n in expected}
    missing = [n for n, p in found.items() if p is None]
    if len(missing) == 1 and len(present) == 1:
        (path,) = present.values()
        found[missing[0]] = path
        present.clear()
        o.notes.append(f"graded {path.name} as {missing[0]}.ipynb (misnamed)")
    graded = set(found.values())
    extra = sorted(p.name for p in folder.iterdir() if p not in graded
                   and p.name != "timestamp.txt") if folder.is_dir() else []  # fmt: skip
    if extra:
        o.notes.append(f"left out of the sandbox: {', '.join(extra)}")
    o.notes += [f"no {n}.ipynb in the submission: scored 0" for n, p in found.items() if p is None]
    return found


def _record_flags(course: Course, assignment: str, student: str, notebook: str,
                  flags: list[str]) -> None:  # fmt: skip
    """Flagged work needs a person: formgrader lists the notebook as needing manual
    grading and shows the reasons as the comment on its first answer cell."""
    with course.gradebook() as gb:
        sub = gb.find_submission_notebook(notebook, assignment, student)
        for grade in sub.grades:
            grade.needs_manual_grade = True
        text = "FLAGGED FOR REVIEW by cnncourse-grade:\n" + "\n".join(f"- {f}" for f in flags)
        if sub.comments:
            sub.comments[0].auto_comment = text
        gb.db.commit()


async def grade_submission(course: Course, student: str, assignment: str, notebooks: list[str],
                           refs: dict[str, Reference], s: Settings) -> Outcome:  # fmt: skip
    o = Outcome(student, assignment)
    start = time.monotonic()
    submitted = course.folder(course.coursedir.submitted_directory, student, assignment)
    out_dir = course.folder(course.coursedir.autograded_directory, student, assignment)
    timestamp = course.coursedir.get_existing_timestamp(str(submitted))
    with course.gradebook() as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(
            assignment, student, **({"timestamp": timestamp} if timestamp else {})
        )
        o.max_score = sub.max_score
        for nb_row in sub.notebooks:  # start from zero: a notebook that is not graded stays 0
            for grade in nb_row.grades:
                grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    if (submitted / "timestamp.txt").is_file():
        shutil.copy(submitted / "timestamp.txt", out_dir / "timestamp.txt")
    for name, path in _find_notebooks(submitted, notebooks, o).items():
        if path is None:
            continue
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as err:  # noqa: BLE001 -- not JSON, not a notebook
            o.notes.append(f"{path.name} is not a readable notebook ({type(err).__name__}): "
                           "scored 0")  # fmt: skip
            continue
        resources = _resources(course, assignment, student, name)
        nb, resources = sanitize(course, nb, resources)
        findings = tamper.scan_notebook(nb)
        flags = [f"{f.cell} line {f.line}: {f.why} [{f.rule}] `{f.code[:80]}`" for f in findings]
        ref = refs[f"{assignment}/{name}"]
        run = await execute(course, assignment, nb, s, ref.cell_limits(nb, s),
                            ref.notebook_limit(s))  # fmt: skip
        o.kernel_seconds += run.seconds
        o.start_seconds += run.start_seconds
        flags += apply_policy(nb, run)
        if run.stopped:
            o.notes.append(f"{name}: kernel stopped: {run.stopped}")
            if "ignored the interrupt" in run.stopped or "more than" in run.stopped:
                flags.append(f"{name}: {run.stopped}")
        timeouts = [_key(nb.cells[r.index], r.index) for r in run.cells if r.status == "timeout"]
        if timeouts:
            o.notes.append(f"{name}: timed out in {', '.join(timeouts)}")
        if run.dropped_output:
            o.notes.append(f"{name}: {run.dropped_output} bytes of output dropped")
        nb, resources = save_grades(course, nb, resources)
        nbformat.write(nb, out_dir / f"{name}.ipynb")
        if flags:
            _record_flags(course, assignment, student, name, flags)
            o.flags += flags
    with course.gradebook() as gb:
        o.score = gb.find_submission(assignment, student).score
    o.seconds = time.monotonic() - start
    return o


# --- the batch --------------------------------------------------------------------------


def submissions(course: Course, assignments: list[str], students: list[str] | None):
    root = Path(course.coursedir.format_path(course.coursedir.submitted_directory, ".", "."))
    root = root.resolve()
    found = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if students and student_dir.name not in students:
            continue
        for a in assignments:
            if (student_dir / a).is_dir():
                found.append((student_dir.name, a))
    return found


async def grade_all(
    course: Course,
    s: Settings,
    assignments: list[str] | None = None,
    students: list[str] | None = None,
    progress: bool = True,
) -> list[Outcome]:
    from tqdm.auto import tqdm

    notebooks = course.notebooks()
    unknown = sorted(set(assignments or []) - set(notebooks))
    if unknown:
        raise SystemExit(
            f"--assignment: {', '.join(unknown)} not in the gradebook "
            f"({course.db_url}); run `make release` (nbgrader generate_assignment)"
        )
    chosen = assignments or list(notebooks)
    todo = submissions(course, chosen, students)
    cache_path = course.root / ".grading" / "calibration.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    slots = asyncio.Semaphore(s.jobs)
    outcomes: list[Outcome] = []

    async def limited(coro):
        async with slots:
            return await coro

    needed = sorted({(a, n) for _, a in todo for n in notebooks[a]})
    bar = tqdm(total=len(needed), desc="calibrating", unit="notebook", disable=not progress)
    refs: dict[str, Reference] = {}
    broken: set[str] = set()

    async def one_ref(a, n):
        ref = await limited(calibrate(course, a, n, s, cache))
        refs[f"{a}/{n}"] = ref
        if ref.score != ref.max_score:
            broken.add(a)
        bar.update()

    await asyncio.gather(*(one_ref(a, n) for a, n in needed))
    bar.close()
    cache_path.parent.mkdir(exist_ok=True)
    cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
    for a in sorted(broken):
        print(f"\n*** {a}: the reference solution does not score full marks in the grader's "
              "sandbox; its submissions are NOT graded (check the environment) ***\n",
              file=sys.stderr)  # fmt: skip

    bar = tqdm(total=len(todo), desc="grading", unit="submission", disable=not progress)

    async def one(student, a):
        if a in broken:
            o = Outcome(student, a, error="not graded: the reference solution fails here")
        else:
            try:
                o = await limited(grade_submission(course, student, a, notebooks[a], refs, s))
            except Exception as err:  # noqa: BLE001 -- one bad submission never stops the rest
                o = Outcome(student, a, error=f"{type(err).__name__}: {err}")
        outcomes.append(o)
        bar.update()
        if o.flags:
            bar.write(f"flagged: {student} {a} ({len(o.flags)} findings)")

    await asyncio.gather(*(one(st, a) for st, a in todo))
    bar.close()
    order = {a: i for i, a in enumerate(notebooks)}
    outcomes.sort(key=lambda o: (order[o.assignment], o.student))
    if s.feedback:
        feedback(course, [(o.assignment, o.student) for o in outcomes if not o.error])
    return outcomes


# --- feedback ---------------------------------------------------------------------------


class ScrubHiddenTests(Preprocessor):
    """For feedback: the hidden tests' code goes (as nbgrader's ClearHiddenTests removes
    it), and so do the lines of any traceback, which quote that code; what an error said
    (its type and message: the hint and what differs) stays."""

    def __call__(self, nb, resources):  # always on (nbconvert's default is off)
        return self.preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        from nbgrader.preprocessors import ClearHiddenTests

        if cell.cell_type == "code" and _meta(cell).get("grade"):
            ClearHiddenTests()._remove_hidden_test_region(cell)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
        return cell, resources


def feedback(course: Course, done: list[tuple[str, str]]) -> None:
    """nbgrader's feedback (HTML per notebook, in feedback/), with hidden tests scrubbed."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    for assignment, student in done:
        graded = course.folder(course.coursedir.autograded_directory, student, assignment)
        if not any(graded.glob("*.ipynb")):
            continue  # nothing was graded (no notebook handed in)
        coursedir = CourseDirectory(config=course.config)
        coursedir.root = str(course.root)
        coursedir.assignment_id, coursedir.student_id = assignment, student
        converter = GenerateFeedback(coursedir=coursedir, config=course.config)
        converter.force = True
        converter.log.setLevel("CRITICAL")
        try:
            converter.start()
        except Exception as err:  # noqa: BLE001 -- feedback for one student never stops the rest
            print(f"feedback for {student} / {assignment} failed: {err}", file=sys.stderr)


# --- report -----------------------------------------------------------------------------


def summary(outcomes: list[Outcome], seconds: float, s: Settings) -> str:
    rows = [("assignment", "graded", "mean score", "full", "zero", "flagged", "timeouts",
             "errors")]  # fmt: skip
    for a in dict.fromkeys(o.assignment for o in outcomes):
        group = [o for o in outcomes if o.assignment == a]
        top = max((o.max_score for o in group), default=0)
        mean = sum(o.score for o in group) / len(group)
        rows.append((a, str(len(group)), f"{mean:.1f} / {top:g}",
                     str(sum(o.score == top and not o.error for o in group)),
                     str(sum(o.score == 0 for o in group)), str(sum(bool(o.flags) for o in group)),
                     str(sum(any("timed out" in n for n in o.notes) for o in group)),
                     str(sum(bool(o.error) for o in group))))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in rows]  # fmt: skip
    n = len(outcomes)
    lines.append(f"{n} submissions in {seconds:.0f} s ({60 * n / max(seconds, 1e-9):.1f} per "
                 f"minute) with {s.jobs} jobs; sandbox: "
                 + ("bubblewrap" if s.sandbox else "NONE (unsandboxed)"))  # fmt: skip
    flagged = [o for o in outcomes if o.flags]
    if flagged:
        lines.append(f"FLAGGED FOR REVIEW ({len(flagged)}): marked 'needs manual grade' in "
                     "formgrader; reasons in grading-report.md")  # fmt: skip
        lines += [f"  {o.student} / {o.assignment}: {o.flags[0]}" for o in flagged]
    for o in outcomes:
        if o.error:
            lines.append(f"NOT GRADED: {o.student} / {o.assignment}: {o.error}")
    return "\n".join(lines)


def write_report(course: Course, outcomes: list[Outcome], text: str) -> None:
    with open(course.root / "grading-report.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "score", "max_score", "flagged", "seconds",
                    "kernel_seconds", "start_seconds", "error", "flags", "notes"])  # fmt: skip
        for o in outcomes:
            w.writerow(
                [
                    o.student,
                    o.assignment,
                    o.score,
                    o.max_score,
                    bool(o.flags),
                    f"{o.seconds:.2f}",
                    f"{o.kernel_seconds:.2f}",
                    f"{o.start_seconds:.2f}",
                    o.error,
                    " | ".join(o.flags),
                    " | ".join(o.notes),
                ]
            )
    md = ["# Grading report", "", "```", text, "```", ""]
    for o in outcomes:
        if o.flags or o.notes or o.error:
            md.append(f"## {o.student} / {o.assignment}: {o.score:g} / {o.max_score:g}"
                      + (" (FLAGGED)" if o.flags else ""))  # fmt: skip
            md += [f"- flag: {f}" for f in o.flags] + [f"- note: {n}" for n in o.notes]
            md += [f"- error: {o.error}"] if o.error else []
            md.append("")
    (course.root / "grading-report.md").write_text("\n".join(md))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cnncourse-grade",
        description="Autograde every submission in submitted/<student>/<assignment>/, each "
        "in its own sandboxed kernel, several at once, into nbgrader's gradebook.",
    )
    p.add_argument("--course", type=Path, default=Path("."), help="course folder (default: .)")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=default_jobs(),
        help="submissions graded at once (default: the number of cores)",
    )
    p.add_argument(
        "--cell-factor",
        type=float,
        default=10.0,
        help="a cell may take this many times the solution's time (default 10)",
    )
    p.add_argument(
        "--cell-floor",
        type=float,
        default=10.0,
        help="... and at least this many seconds (default 10)",
    )
    p.add_argument(
        "--notebook-factor",
        type=float,
        default=5.0,
        help="a notebook may take this many times the solution's (default 5)",
    )
    p.add_argument(
        "--notebook-floor",
        type=float,
        default=120.0,
        help="... and at least this many seconds (default 120)",
    )
    p.add_argument(
        "--memory", type=float, default=4.0, help="GiB of memory per submission (default 4)"
    )
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run kernels without bubblewrap (only where it cannot work)",
    )
    p.add_argument("--no-feedback", action="store_true", help="skip writing feedback/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name in ("jobs", "cell_factor", "cell_floor", "notebook_factor", "notebook_floor",
                 "memory"):  # fmt: skip
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    import warnings

    from sqlalchemy.exc import SAWarning

    args = parse_args(argv)
    # nbgrader's gradebook API triggers SQLAlchemy's autoflush warnings on every new
    # submission (plain `nbgrader autograde` prints them too): noise, not news.
    warnings.filterwarnings("ignore", category=SAWarning)
    course = Course(args.course)
    if not Path(course.db_url.removeprefix("sqlite:///")).is_file():
        print(f"no gradebook at {course.db_url}: run `make release` first", file=sys.stderr)
        return 2
    use_sandbox = not args.no_sandbox and sandbox.bwrap_available()
    if not use_sandbox:
        print("\n" + "!" * 78 + "\nWARNING: grading WITHOUT a sandbox"
              + (" (--no-sandbox)" if args.no_sandbox else
                 " (bubblewrap is missing or cannot create namespaces here: apt-get install "
                 "bubblewrap)")
              + ".\nStudent code runs as you, with access to this course folder, the "
              "gradebook and the network.\n" + "!" * 78 + "\n", file=sys.stderr)  # fmt: skip
    jobs = args.jobs
    limits = sandbox.Limits(memory=int(args.memory * sandbox.GiB),
                            threads=max(1, default_jobs() // jobs))  # fmt: skip
    s = Settings(jobs=jobs, cell_factor=args.cell_factor, cell_floor=args.cell_floor,
                 notebook_factor=args.notebook_factor, notebook_floor=args.notebook_floor,
                 limits=limits, sandbox=use_sandbox, feedback=not args.no_feedback)  # fmt: skip
    start = time.monotonic()
    outcomes = asyncio.run(grade_all(course, s, args.assignment, args.student,
                                     progress=not args.quiet))  # fmt: skip
    text = summary(outcomes, time.monotonic() - start, s)
    write_report(course, outcomes, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
