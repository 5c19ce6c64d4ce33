"""The course in a real browser: Playwright drives Chromium through JupyterLab as a student
(`make lab`) and an instructor (`make lab-instructor`, formgrader) use it.

Each step saves a screenshot under test-artefacts/browser/ (git-ignored), named
``<who>-<NN>-<step>.png``; a step that fails saves ``...-FAILED.png`` and the test's message
names the step. Chromium is Debian's (`apt install chromium`, or set CNNCOURSE_CHROMIUM to a
Chrome or Chromium binary); Playwright's own browser download is not used. Without one the
tests skip with the reason, unless CNNCOURSE_REQUIRE_BROWSER=1 (set by .ci/run) makes that a
failure. Only these tests: `make test PYTEST_ARGS="-m browser"`.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, SOLUTIONS, assignments, lab_server, solution_notebook, tool_env

pytestmark = [pytest.mark.browser, pytest.mark.notebooks]

ARTEFACTS = ROOT / "test-artefacts" / "browser"
NOTEBOOK = "00_welcome"
VIEWPORT = {"width": 1400, "height": 900}
WRONG = "return logits.exp() / logits.exp().sum()"  # sums over every element, not along dim
NAIVE = "return logits.exp() / logits.exp().sum(dim, keepdim=True)"  # overflows for 1000
RIGHT = (
    "shifted = logits - logits.amax(dim, keepdim=True)\n"
    "return shifted.exp() / shifted.exp().sum(dim, keepdim=True)"
)
STDERR = "application/vnd.jupyter.stderr"  # JupyterLab's type for errors and stderr text


def _chromium() -> str | None:
    named = os.environ.get("CNNCOURSE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="module")
def browser():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (it is in the test extra: make install)"
    executable = _chromium()
    if reason is None and executable is None:
        reason = "no Chromium found: apt install chromium, or set CNNCOURSE_CHROMIUM"
    if reason:
        if os.environ.get("CNNCOURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CNNCOURSE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTEFACTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as p:
        # --no-sandbox: Chromium's own sandbox cannot start as root, which CI is.
        chromium = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


class Steps:
    """``with steps("name"):`` runs one step; a screenshot after it (or when it fails), and
    a failure message that names the step and its screenshot."""

    def __init__(self, page, who: str):
        self.page, self.who, self.count, self.log = page, who, 0, []

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.count += 1
        shot = ARTEFACTS / f"{self.who}-{self.count:02d}-{name}.png"
        start = time.perf_counter()
        try:
            yield
        except Exception as err:
            failed = shot.with_name(f"{shot.stem}-FAILED.png")
            with contextlib.suppress(Exception):
                self.page.screenshot(path=failed)
            message = str(err).strip().splitlines()
            raise AssertionError(
                f"browser step '{self.who}: {name}' failed ({failed.relative_to(ROOT)}): "
                + "\n".join(message[:15])
            ) from err
        self.page.screenshot(path=shot)
        self.log.append((shot.name, time.perf_counter() - start))

    def write(self) -> None:
        lines = [f"{seconds:6.1f} s  {name}" for name, seconds in self.log]
        (ARTEFACTS / f"{self.who}-steps.txt").write_text("\n".join(lines) + "\n")
        print(f"\n{self.who} steps:\n" + "\n".join(lines))


# --- JupyterLab, as a student clicks and reads it -----------------------------------------


def menu(page, *path: str) -> None:
    """Click through the menu bar: menu(page, "Run", "Run All Cells")."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{path[0]}$")).click()
    for i, item in enumerate(path[1:], start=1):
        entry = page.locator(".lm-Menu:visible .lm-Menu-item", has_text=item).first
        if i < len(path) - 1:
            entry.hover()
        else:
            entry.click()


def menu_items(page, name: str) -> list[str]:
    """The entries of one menu of the menu bar, which is closed again."""
    menu(page, name)
    page.locator(".lm-Menu:visible").wait_for()
    items = page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()
    page.keyboard.press("Escape")
    return [i.strip() for i in items if i.strip()]


def cell(page, text: str):
    """The code cell whose text holds ``text``."""
    found = page.locator(".jp-NotebookPanel .jp-CodeCell").filter(has_text=text)
    assert found.count() >= 1, f"no code cell containing {text!r}"
    return found.first


def show(cell_) -> None:
    """Scroll a cell into view: JupyterLab renders only the cells near the screen."""
    cell_.scroll_into_view_if_needed()


def outputs(cell_) -> list[tuple[str, str]]:
    """(type, text) of each output of a cell, as JupyterLab rendered it."""
    show(cell_)
    return cell_.locator(".jp-OutputArea-output").evaluate_all(
        "els => els.map(e => [e.getAttribute('data-mime-type') || '', e.textContent])"
    )


def errors(cell_) -> list[str]:
    return [text for mime, text in outputs(cell_) if mime == STDERR]


def prompt(cell_) -> str:
    return cell_.locator(".jp-InputPrompt").text_content().strip()


def wait_until(condition, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_for_kernel(page, timeout: float = 60) -> None:
    """Until no cell waits or runs (prompt [*]) and the kernel says it is idle."""

    def idle():
        prompts = page.locator(".jp-NotebookPanel .jp-InputPrompt").all_text_contents()
        busy = any("[*]" in p for p in prompts)
        status = page.locator(".jp-StatusBar-Item", has_text="Idle").count()
        return not busy and status

    wait_until(idle, timeout, "the kernel to finish")


def run_cell(page, cell_, timeout: float = 60) -> None:
    show(cell_)
    before = prompt(cell_)
    cell_.locator(".jp-InputPrompt").click()  # selects it in command mode
    page.keyboard.press("Control+Enter")
    wait_until(
        lambda: re.fullmatch(r"\[\d+\]:", prompt(cell_)) and prompt(cell_) != before,
        timeout,
        f"the cell to run (prompt {prompt(cell_)!r})",
    )
    wait_for_kernel(page, timeout)


def type_into(page, cell_, text: str) -> None:
    """Replace a cell's text as typed (insert_text: no auto-indent or bracket closing)."""
    cell_.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")


def answer(body: str) -> str:
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:\n{indented}\n"


def dialog_text(page, timeout: float) -> str:
    box = page.locator(".jp-Dialog-content")
    box.wait_for(state="visible", timeout=timeout * 1000)
    return box.inner_text()


def close_dialog(page) -> None:
    page.locator(".jp-Dialog-content .jp-Dialog-button").last.click()
    page.locator(".jp-Dialog-content").wait_for(state="hidden", timeout=10_000)


def image_pixels(img) -> tuple[int, int, tuple]:
    """Width and height of an output <img>'s PNG and its top-left pixel (RGBA)."""
    from PIL import Image

    src = img.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,"), f"not an inline PNG: {src[:60]!r}"
    png = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGBA")
    return png.width, png.height, png.getpixel((0, 0))


def no_news_prompt(page) -> None:
    assert not page.get_by_text("official Jupyter news").count(), "the Jupyter news prompt shows"


def at_top(page) -> bool:
    heading = page.locator(".jp-NotebookPanel h1", has_text="Welcome to cnncourse")
    box = heading.bounding_box()
    scrolled = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").evaluate(
        "e => e.scrollTop"
    )
    return bool(box) and 0 <= box["y"] < VIEWPORT["height"] / 2 and scrolled == 0


# --- the student ---------------------------------------------------------------------------


def test_a_student_works_through_the_welcome_notebook(browser, tmp_path):
    # A copy of the release: the test edits and saves the notebook.
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    page = browser.new_page(viewport=VIEWPORT)
    steps = Steps(page, "student")
    with lab_server(tmp_path, "lab", f"LAB_DIR={tmp_path / 'notebooks'}") as lab:
        with steps("open-notebook"):
            page.goto(lab.url(f"lab/tree/{NOTEBOOK}/{NOTEBOOK}.ipynb"))
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            wait_for_kernel(page)
            assert not page.locator(".jp-Dialog").count(), "a dialog (kernel chooser?) is open"
            assert at_top(page), "the notebook did not open at its first cell"
            assert page.locator(".validate-button").count() == 1, "no Validate button"
            sidebar = page.locator(".jp-SideBar").all_inner_texts()
            assert "Create Assignment" not in " ".join(sidebar), "the instructor's panel shows"
            no_news_prompt(page)

        with steps("nbgrader-menu"):
            items = menu_items(page, "Nbgrader")
            assert items == ["Assignment List"], items

        exercise = cell(page, "def softmax(logits")
        with steps("run-all"):
            menu(page, "Run", "Run All Cells")
            training = cell(page, "train.fit(")
            # The progress bar is a widget while an epoch runs (not tqdm's text).
            wait_until(
                lambda: show(training) or training.locator(".widget-hprogress").count(),
                90,
                "a progress-bar widget in the training cell",
                interval=0.1,
            )
            # Run All stops at the first call of the blank exercise: the cell trying it out.
            trial = cell(page, "probs = softmax(scores)")
            wait_until(lambda: errors(trial), 120, "the exercise's NotImplementedError")
            wait_for_kernel(page)
            assert "NotImplementedError" in errors(trial)[0], errors(trial)
            report = "\n".join(t for _, t in outputs(cell(page, "environment_report()")))
            for key in ("torch:", "torchvision:", "device:", "wait policy:"):
                assert key in report, f"environment report lacks {key!r}:\n{report}"
            for source in ("plot.show_images(digits", "plot.show_images(sprites", "train.fit("):
                found = cell(page, source)
                assert found.locator(".jp-OutputArea-output img").count() == 1, source
            for earlier in page.locator(".jp-NotebookPanel .jp-CodeCell").all():
                if earlier.text_content() == trial.text_content():
                    break
                assert not errors(earlier), f"error output before the exercise: {errors(earlier)}"
            no_news_prompt(page)

        with steps("training-plot"):
            training.locator(".jp-OutputArea-output img").scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            texts = [text for _, text in outputs(training)]
            assert any("epoch 4/4" in t for t in texts), texts
            assert not any("it/s" in t or "%|" in t for t in texts), f"a text progress bar: {texts}"
            assert not training.locator(".widget-hprogress").count(), "a finished bar stayed"
            img = training.locator(".jp-OutputArea-output img")
            width, _, _ = image_pixels(img)
            shown = img.evaluate("e => e.clientWidth")
            assert width >= 1.8 * shown, f"blurry plot: {width} px drawn for {shown} shown"

        with steps("wrong-answer"):
            type_into(page, exercise, answer(WRONG))
            run_cell(page, exercise)
            values_test = cell(page, "# Tests for softmax: values")
            run_cell(page, values_test)
            message = "\n".join(errors(values_test))
            for phrase in ("AssertionError", "softmax(x) for x of shape (4, 10)", "values differ"):
                assert phrase in message, f"{phrase!r} not in the test's message:\n{message}"
            values_test.locator(".jp-OutputArea-output").last.scroll_into_view_if_needed()

        with steps("right-answer"):
            type_into(page, exercise, answer(RIGHT))
            run_cell(page, exercise)
            for name in ("# Tests for softmax: values", "# Tests for softmax: numerically"):
                test_cell = cell(page, name)
                run_cell(page, test_cell)
                assert not errors(test_cell), f"{name}: {errors(test_cell)}"
            assert "visible checks passed" in values_test.text_content()

        with steps("validate"):
            page.locator(".validate-button").click()
            report = dialog_text(page, timeout=150)
            assert "Success! Your notebook passes all the tests." in report, report

        with steps("assignments-panel"):
            close_dialog(page)
            menu(page, "Nbgrader", "Assignment List")
            panel = page.locator("#nbgrader-assignment-list")
            wait_until(lambda: NOTEBOOK in panel.inner_text(), 30, "the assignment list")
            text = panel.inner_text()
            assert "exchange directory" not in text and "Error" not in text, text
            for name in assignments():
                assert name in text, f"{name} is not in the Assignments panel"

        with steps("submit-says-how-to-hand-in"):
            row = panel.locator(".list_item", has_text=NOTEBOOK).filter(
                has=page.get_by_role("button", name="Submit")
            )
            row.first.get_by_role("button", name="Submit").click()
            message = dialog_text(page, timeout=30)
            assert "no nbgrader exchange" in message and "Validate" in message, message

        with steps("dark-theme"):
            close_dialog(page)
            page.locator(".lm-TabBar-tab", has_text=f"{NOTEBOOK}.ipynb").click()
            menu(page, "Settings", "Theme", "JupyterLab Dark")
            wait_until(
                lambda: page.evaluate("document.body.dataset.jpThemeLight") == "false",
                20,
                "the dark theme",
            )
            img = training.locator(".jp-OutputArea-output img")
            img.scroll_into_view_if_needed()
            _, _, corner = image_pixels(img)
            # A transparent plot would show its black text on the dark page.
            assert corner == (255, 255, 255, 255), f"plot background {corner}, not opaque white"

        with steps("save-and-reopen"):
            page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
            page.keyboard.press("Escape")
            page.keyboard.press("Control+s")
            wait_until(
                lambda: not page.locator(".lm-TabBar-tab.jp-mod-dirty").count(), 20, "the save"
            )
            page.reload()
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            wait_for_kernel(page)
            page.wait_for_timeout(1000)  # widgets render after the notebook
            body = page.locator(".jp-NotebookPanel").inner_text()
            assert "Error displaying widget" not in body, "a saved progress bar shows an error"
            assert at_top(page), "the reopened notebook did not open at its first cell"
            assert not page.locator(".jp-Dialog").count(), "a dialog (kernel chooser?) is open"
    steps.write()
    page.close()


# --- the instructor ------------------------------------------------------------------------

GENERATE = """
import sys
from nbgrader.apps import NbGraderAPI
from traitlets.config.loader import PyFileConfigLoader

config = PyFileConfigLoader("nbgrader_config.py", path=".").load_config()
api = NbGraderAPI(config=config)
for name in sys.argv[1:]:
    result = api.generate_assignment(name, force=True)
    if not result["success"]:
        sys.exit(f"{name}: {result['error']}")
"""


def _points(assignment: str) -> float:
    """An assignment's total points, from its solution notebook's nbgrader metadata."""
    nb = solution_notebook(assignment)
    cells = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    return sum(m.get("points", 0) for m in cells if m.get("grade"))


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    """Every assignment generated into a fresh gradebook, and one submission of 00_welcome
    (stable softmax missing: half the points) graded by cnncourse-grade."""
    from cnncourse.authoring import build_notebook, source_path

    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for name in assignments():
        folder = course / "solutions" / name
        folder.mkdir(parents=True)
        nbformat.write(build_notebook(source_path(SOLUTIONS / name)), folder / f"{name}.ipynb")
    # One process for all ten (a `nbgrader generate_assignment` each costs 4 s of start-up).
    subprocess.run(
        [sys.executable, "-c", GENERATE, *assignments()],
        cwd=course, env=tool_env(), check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    release = nbformat.read(course / "notebooks" / NOTEBOOK / f"{NOTEBOOK}.ipynb", 4)
    for c in release.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "softmax":
            c.source = answer(NAIVE)
    folder = course / "submitted" / "ada" / NOTEBOOK
    folder.mkdir(parents=True)
    nbformat.write(release, folder / f"{NOTEBOOK}.ipynb")
    (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    sandbox = [] if shutil.which("bwrap") else ["--no-sandbox"]
    result = subprocess.run(
        [sys.executable, "-m", "cnncourse.grade", "--quiet", "--no-feedback", *sandbox],
        cwd=course, env=tool_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, f"cnncourse-grade failed:\n{result.stdout}\n{result.stderr}"
    return course


def table(page) -> list[list[str]]:
    """The rows of formgrader's table, as the cells' texts, once it has loaded."""

    def rows():
        found = page.locator("table tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
        )
        return found if found and not any("Loading" in " ".join(r) for r in found) else None

    return wait_until(rows, 30, "formgrader's table")


def test_an_instructor_sees_assignments_and_scores_in_formgrader(browser, graded_course, tmp_path):
    page = browser.new_page(viewport=VIEWPORT)
    steps = Steps(page, "instructor")
    expected = {name: _points(name) for name in assignments()}
    with lab_server(tmp_path, "lab-instructor", f"COURSE={graded_course}") as lab:
        with steps("formgrader-assignments"):
            page.goto(lab.url("formgrader"))
            rows = table(page)
            listed = [r[0] for r in rows if r and r[0] in expected]
            assert listed == list(expected), f"formgrader lists {listed}"

        with steps("formgrader-points"):
            page.goto(lab.url("formgrader/gradebook"))
            rows = {r[0]: r for r in table(page) if r and r[0] in expected}
            assert set(rows) == set(expected), sorted(rows)
            for name, points in expected.items():
                score = rows[name][-1]
                assert re.fullmatch(rf"[\d.]+ / {points:g}", score), f"{name}: {score!r}"

        with steps("formgrader-submission"):
            page.goto(lab.url(f"formgrader/gradebook/{NOTEBOOK}/{NOTEBOOK}"))
            rows = table(page)
            assert len(rows) == 1, rows
            half = expected[NOTEBOOK] / 2
            assert f"{half:g} / {expected[NOTEBOOK]:g}" in rows[0], rows[0]

        with steps("instructor-lab"):
            page.goto(lab.url("lab"))
            page.locator(".lm-MenuBar-item", has_text="Nbgrader").wait_for(timeout=60_000)
            items = menu_items(page, "Nbgrader")
            assert "Formgrader" in items and "Create assignment" in items, items
            sidebar = " ".join(page.locator(".jp-SideBar").all_inner_texts())
            assert "Create Assignment" in sidebar, sidebar
            no_news_prompt(page)
    steps.write()
    page.close()
    # The score formgrader showed is the one the grader reported.
    with open(graded_course / "grading-report.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["student"], float(row["score"])) == ("ada", expected[NOTEBOOK] / 2), row
