"""The grading command against hostile and broken submissions (issue: grading an
instructor can trust).

One temporary course with the 00_welcome assignment (10 points: a softmax under
``forbid("softmax")``) receives one submission per case below, made from the instructor's
solution or the untouched release, and ``cnncourse-grade`` grades them all at once, as an
instructor would, in a subprocess. Each case states the score a trustworthy grader gives
and whether it must flag the submission for review. ``CASES`` is the table the closing
note reports.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, SOLUTIONS, tool_env

from cnncourse import sandbox
from cnncourse.authoring import build_all

pytestmark = pytest.mark.notebooks
ASSIGNMENT = "00_welcome"
FULL = 10.0

# CI must not skip the sandboxed cases quietly: .ci/run installs bubblewrap and sets this.
REQUIRE_SANDBOX = os.environ.get("CNNCOURSE_REQUIRE_SANDBOX") == "1"
needs_sandbox = pytest.mark.skipif(
    not sandbox.bwrap_available() and not REQUIRE_SANDBOX,
    reason="bubblewrap is not installed or cannot create namespaces here (apt-get install "
    "bubblewrap)",
)


@dataclass(frozen=True)
class Case:
    name: str
    score: float  # what a trustworthy grader gives
    flagged: bool  # whether it must be flagged for review
    why: str


CASES = [
    Case("blank", 0, False, "the untouched release"),
    Case("solution_1", FULL, False, "the reference solution"),
    Case("solution_2", FULL, False, "the same, again: identical results"),
    Case("solution_3", FULL, False, "and a third time"),
    Case("edited_tests", 0, False, "blank, with the test cells replaced by print('ok'): restored"),
    Case("deleted_tests", 0, False, "blank, with the test cells deleted: added back"),
    Case("deleted_tests_solution", FULL, False, "the solution with its test cells deleted"),
    Case("changed_points", FULL, False, "the solution with points set to 100: gradebook's count"),
    Case("forged_outputs", 0, False, "blank, with 'visible checks passed' pasted as outputs"),
    Case("hidden_traceback", 0, True, "wrong answer; showtraceback replaced by a no-op"),
    Case("swallowed_errors", 0, True, "wrong answer; an AST transformer wraps cells in try"),
    Case("excepthook", 0, True, "wrong answer; sys.excepthook replaced"),
    Case("patched_checks", 0, True, "zeros; grading.check_tensor replaced by a no-op"),
    Case("patched_torch", 0, True, "zeros; torch.softmax replaced so the reference is zeros"),
    Case("always_equal", 0, True, "a tensor subclass whose comparisons always pass"),
    Case("private_op", 0, True, "torch._softmax, a private spelling of the forbidden op"),
    Case("disabled_guard", 0, True, "F.softmax under torch._C.DisableTorchFunction()"),
    Case("infinite_loop", FULL, False, "correct, plus a scratch cell looping forever"),
    Case("loop_ignoring_sigint", 0, True, "a loop that ignores SIGINT before the tests"),
    Case("print_flood", FULL, False, "correct, plus a cell printing 20 MB"),
    Case("huge_allocation", FULL, False, "correct, plus a cell allocating 20 GiB"),
    Case("many_processes", 0, True, "100 child processes before the tests"),
    Case("sys_exit", FULL, True, "correct, plus sys.exit(1) in a scratch cell"),
    Case("os_exit", 0, True, "os._exit(0) before the tests: the kernel dies"),
    Case("read_secrets", 0, True, "reads the gradebook and the solutions"),
    Case("network", FULL, True, "correct, plus a cell that tries to reach the internet"),
    Case("shadow_modules", FULL, False, "the solution beside a torch.py and a cnncourse.py"),
    Case("warning_correct", FULL, False, "a correct softmax that emits a UserWarning"),
    Case("unusual_correct", FULL, False, "a correct softmax through logsumexp"),
    Case("missing_notebook", 0, False, "a submission folder with no notebook"),
    Case("misnamed_notebook", FULL, False, "the solution saved as '00_welcome (1).ipynb'"),
    Case("corrupt_notebook", 0, False, "a file that is not JSON"),
]

# --- building the submissions -------------------------------------------------------------


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _set_answer(nb, body: str):
    """Replace the softmax solution region with ``body`` (indented as a function body)."""
    (cell,) = [c for c in nb.cells if _grade_id(c) == "softmax"]
    head = cell.source.split("    ### BEGIN SOLUTION")[0]
    head = head.split("    # YOUR CODE HERE")[0]
    cell.source = head + "\n".join("    " + line for line in body.strip("\n").splitlines())
    return nb


def _add_cell(nb, source: str, after: str = "softmax"):
    """A cell the student added, right after the cell ``after``."""
    index = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _tests(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


ZEROS = "return torch.zeros_like(logits)"
CORRECT = """
shifted = logits - logits.amax(dim=dim, keepdim=True)
exps = shifted.exp()
return exps / exps.sum(dim=dim, keepdim=True)
"""


def build_case(name: str, solution, release) -> dict[str, bytes | object]:
    """{file name: notebook or bytes} for the submission folder of one case."""
    s, r = (nbformat.from_dict(json.loads(json.dumps(nb))) for nb in (solution, release))
    nbname = f"{ASSIGNMENT}.ipynb"
    if name == "blank":
        return {nbname: r}
    if name.startswith("solution_"):
        return {nbname: s}
    if name == "edited_tests":
        for c in _tests(r):
            c.source = "print('ok')"
        return {nbname: r}
    if name == "deleted_tests":
        r.cells = [c for c in r.cells if c not in _tests(r)]
        return {nbname: r}
    if name == "deleted_tests_solution":
        s.cells = [c for c in s.cells if c not in _tests(s)]
        return {nbname: s}
    if name == "changed_points":
        for c in _tests(s):
            c.metadata.nbgrader["points"] = 100
        return {nbname: s}
    if name == "forged_outputs":
        for c in _tests(r):
            c.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text="visible checks passed\n")
            ]
            c.execution_count = 7
        return {nbname: r}
    if name == "hidden_traceback":
        _set_answer(s, ZEROS)
        return {
            nbname: _add_cell(
                s,
                "ip = get_ipython()\n"
                "ip.showtraceback = lambda *a, **k: None\n"
                "ip._showtraceback = lambda *a, **k: None",
            )
        }
    if name == "swallowed_errors":
        _set_answer(s, ZEROS)
        return {
            nbname: _add_cell(
                s,
                """
import ast

class Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None,
                                    body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[],
                             finalbody=[])]
        return ast.fix_missing_locations(node)

get_ipython().ast_transformers.append(Swallow())
""",
            )
        }
    if name == "excepthook":
        _set_answer(s, ZEROS)
        return {nbname: _add_cell(s, "import sys\nsys.excepthook = lambda *a: None")}
    if name == "patched_checks":
        _set_answer(s, ZEROS)
        return {
            nbname: _add_cell(
                s,
                "import cnncourse.grading as g\n"
                "g.check_tensor = lambda *a, **k: None\n"
                "g.check_close = lambda *a, **k: None\n"
                "g.check_grads = lambda *a, **k: None",
            )
        }
    if name == "patched_torch":
        _set_answer(s, ZEROS)
        return {
            nbname: _add_cell(
                s,
                "torch.softmax = lambda x, dim=-1: torch.zeros_like(x)\n"
                "torch.Tensor.sum = lambda self, *a, **k: "
                "torch.ones(self.shape[:-1])",
            )
        }
    if name == "always_equal":
        _set_answer(
            s,
            """
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func.__name__ in ("__sub__", "sub", "abs", "__gt__", "gt"):
            return torch.zeros(())
        return out
return torch.zeros_like(logits).as_subclass(Liar)
""",
        )
        return {nbname: s}
    if name == "private_op":
        return {nbname: _set_answer(s, "return torch._softmax(logits, dim, False)")}
    if name == "disabled_guard":
        return {
            nbname: _set_answer(
                s,
                "with torch._C.DisableTorchFunction():\n"
                "    return torch.nn.functional.softmax(logits, dim)",
            )
        }
    if name == "infinite_loop":
        return {nbname: _add_cell(s, "while True:\n    pass")}
    if name == "loop_ignoring_sigint":
        return {
            nbname: _add_cell(
                s,
                "import signal\n"
                "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    pass",
            )
        }
    if name == "print_flood":
        return {nbname: _add_cell(s, "print('x' * 20_000_000)")}
    if name == "huge_allocation":
        return {nbname: _add_cell(s, "big = torch.ones(20 * 2**30, dtype=torch.uint8)")}
    if name == "many_processes":
        return {
            nbname: _add_cell(
                s,
                "import subprocess, time\n"
                "kids = [subprocess.Popen(['sleep', '60']) for _ in "
                "range(100)]\ntime.sleep(5)",
            )
        }
    if name == "sys_exit":
        return {nbname: _add_cell(s, "import sys\nsys.exit(1)")}
    if name == "os_exit":
        return {nbname: _add_cell(s, "import os\nos._exit(0)")}
    if name == "read_secrets":
        _set_answer(r, ZEROS)
        return {
            nbname: _add_cell(
                r,
                f"""
found = []
for path in ["../../../gradebook.db", "../../../solutions/{ASSIGNMENT}/{ASSIGNMENT}.py",
             "COURSE/gradebook.db", "COURSE/solutions/{ASSIGNMENT}/{ASSIGNMENT}.py"]:
    try:
        with open(path, "rb") as f:
            found.append(f.read())
    except OSError as err:
        print(path, type(err).__name__)
print(b"".join(found)[-3000:])
""",
            )
        }
    if name == "network":
        return {
            nbname: _add_cell(
                s,
                "import socket\ntry:\n"
                "    socket.create_connection(('pypi.org', 443), timeout=3)\n"
                "    print('CONNECTED')\nexcept OSError as err:\n"
                "    print('no network:', err)",
            )
        }
    if name == "shadow_modules":
        fake = b"raise SystemExit('the real module was shadowed')\n"
        return {nbname: s, "torch.py": fake, "cnncourse.py": fake}
    if name == "warning_correct":
        return {
            nbname: _set_answer(
                s,
                "import warnings\n"
                "warnings.warn('computing softmax the slow way', "
                "UserWarning)\n" + CORRECT,
            )
        }
    if name == "unusual_correct":
        return {
            nbname: _set_answer(s, "return (logits - logits.logsumexp(dim, keepdim=True)).exp()")
        }
    if name == "missing_notebook":
        return {"notes.txt": b"I forgot to upload it\n"}
    if name == "misnamed_notebook":
        return {f"{ASSIGNMENT} (1).ipynb": s}
    if name == "corrupt_notebook":
        return {nbname: b"{this is not a notebook"}
    raise KeyError(name)


# --- the graded course --------------------------------------------------------------------


def _run(args, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnncourse.grade", *args],
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("gradecourse")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / "solutions").mkdir()
    shutil.copytree(SOLUTIONS / ASSIGNMENT, course / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))  # fmt: skip
    build_all(course / "solutions")
    subprocess.run(["nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN"],
                   cwd=course, env=tool_env(), check=True, capture_output=True)  # fmt: skip
    solution = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(course / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    for case in CASES:
        folder = course / "submitted" / case.name / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
        for fname, content in build_case(case.name, solution, release).items():
            if isinstance(content, bytes):
                (folder / fname).write_bytes(content.replace(b"COURSE", str(course).encode()))
            else:
                text = nbformat.writes(content).replace("COURSE", str(course))
                (folder / fname).write_text(text)
    return course


@pytest.fixture(scope="module")
def graded(course) -> dict:
    start = time.perf_counter()
    result = _run(["--quiet", "--jobs", "2"], course)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, f"cnncourse-grade failed:\n{result.stdout}\n{result.stderr}"
    with open(course / "grading-report.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    print(f"\ngraded {len(rows)} adversarial submissions in {seconds:.0f} s\n{result.stdout}")
    return {"rows": rows, "stdout": result.stdout, "stderr": result.stderr, "seconds": seconds}


@needs_sandbox
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_adversarial_case(graded, case):
    row = graded["rows"].get(case.name)
    assert row is not None, f"{case.name} is missing from the report:\n{graded['stdout']}"
    assert not row["error"], f"{case.name} was not graded: {row['error']}"
    got = float(row["score"])
    assert got == case.score, (
        f"{case.name} ({case.why}): expected {case.score:g} points, got {got:g}; "
        f"flags: {row['flags']}; notes: {row['notes']}"
    )
    assert (row["flagged"] == "True") == case.flagged, (
        f"{case.name} ({case.why}): expected {'a' if case.flagged else 'no'} flag, got "
        f"flags: {row['flags'] or 'none'}; notes: {row['notes']}"
    )


@needs_sandbox
def test_looping_costs_seconds(graded):
    for name in ("infinite_loop", "loop_ignoring_sigint"):
        row = graded["rows"][name]
        assert "timed out" in row["notes"] or "ignored the interrupt" in row["notes"], row
        assert float(row["seconds"]) < 60, f"{name} held the grader for {row['seconds']} s"


@needs_sandbox
def test_secrets_stay_out_of_reach(course, graded):
    nb = (course / "autograded" / "read_secrets" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "FileNotFoundError" in nb or "PermissionError" in nb
    assert "### BEGIN SOLUTION" not in nb and "SQLite format" not in nb, (
        "a submission read the solutions or the gradebook"
    )
    net = nbformat.read(course / "autograded" / "network" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    printed = "".join(o.get("text", "") for c in net.cells if c.cell_type == "code"
                      for o in c.outputs)  # fmt: skip
    assert "no network" in printed and "CONNECTED" not in printed, printed[-500:]


def test_outputs_are_capped(course, graded):
    path = course / "autograded" / "print_flood" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 3_000_000, f"the flood made a {path.stat().st_size} B notebook"
    assert "bytes of output dropped" in graded["rows"]["print_flood"]["notes"]


def test_notes_for_broken_submissions(graded):
    rows = graded["rows"]
    assert "misnamed" in rows["misnamed_notebook"]["notes"]
    assert "no 00_welcome.ipynb" in rows["missing_notebook"]["notes"]
    assert "not a readable notebook" in rows["corrupt_notebook"]["notes"]
    assert "torch.py" in rows["shadow_modules"]["notes"]


def test_flags_reach_the_gradebook(course, graded):
    """Flagged work shows up in formgrader as needing manual grading, with the reasons."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        flagged = gb.find_submission(ASSIGNMENT, "swallowed_errors")
        clean = gb.find_submission(ASSIGNMENT, "solution_1")
        assert flagged.needs_manual_grade and not clean.needs_manual_grade
        (nb,) = flagged.notebooks
        comments = " ".join(c.auto_comment or "" for c in nb.comments)
        assert "FLAGGED FOR REVIEW" in comments and "get_ipython" in comments, comments
    assert "FLAGGED FOR REVIEW" in graded["stdout"]


def test_feedback_keeps_messages_not_hidden_tests(course, graded):
    solution_fb = course / "feedback" / "solution_1" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    blank_fb = (course / "feedback" / "blank" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    for html in (solution_fb.read_text(), blank_fb):
        assert "BEGIN HIDDEN TESTS" not in html and "_x3 = torch.randn" not in html
    assert "not implemented yet" in blank_fb  # the message a hidden or visible test gave


def test_regrading_gives_identical_results(course, graded):
    students = ["solution_1", "blank", "swallowed_errors", "warning_correct"]
    before = {s: graded["rows"][s] for s in students}
    args = ["--quiet", "--no-feedback"] + [a for s in students for a in ("--student", s)]
    result = _run(args, course)
    assert result.returncode == 0, result.stderr
    with open(course / "grading-report.csv") as f:
        after = {r["student"]: r for r in csv.DictReader(f)}
    for s in students:
        assert (after[s]["score"], after[s]["flags"]) == (before[s]["score"], before[s]["flags"])


def test_unsandboxed_grading_says_so_loudly(course, graded):
    result = _run(["--quiet", "--no-sandbox", "--no-feedback", "--student", "solution_2"], course)
    assert result.returncode == 0, result.stderr
    assert "WARNING: grading WITHOUT a sandbox" in result.stderr
    assert "sandbox: NONE" in result.stdout
    with open(course / "grading-report.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["score"]) == FULL


def test_help_and_bad_arguments(course):
    result = _run(["--help"], course)
    assert result.returncode == 0 and "--jobs" in result.stdout and "sandbox" in result.stdout
    result = _run(["--jobs", "0"], course)
    assert result.returncode == 2 and "--jobs must be positive" in result.stderr
    result = _run(["--assignment", "99_nothing"], course)
    assert result.returncode != 0 and "99_nothing" in result.stderr
