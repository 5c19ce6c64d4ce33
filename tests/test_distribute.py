"""The student kit (`make student`, cnncourse.distribute): what students get instead of this
repository. Built once into a temporary folder (with its archive), then checked: no answer,
hidden test or wrong answer in it, no instructor file, the release notebooks byte for byte,
a library that imports from the kit, a Makefile with `lab` and `validate`, the student
pyproject.toml / environment.yml / nbgrader_config.py; and the checks on `--out`. Every
top-level entry of the repository must be classified as kit or instructor-only."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import tomllib
import yaml
from conftest import RELEASE, ROOT, assignments, solution_notebook, tool_env
from traitlets.config import Config

from cnncourse import distribute

MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "wrong_answer",
    "@wrong_answer",
)
# Paths (relative to the kit) that must never be in it.
INSTRUCTOR_PATHS = (
    "solutions",
    "tests",
    "benchmarks",
    ".ci",
    ".git",
    ".gitignore",
    ".venv",
    "dist",
    "CONTRIBUTING.md",
    "gradebook.db",
    "submitted",
    "autograded",
    "feedback",
    "cnncourse/authoring.py",
    "cnncourse/distribute.py",
    "cnncourse/grade.py",
    "cnncourse/sandbox.py",
    "cnncourse/tamper.py",
)
INSTRUCTOR_NAMES = re.compile(
    r"(^|/)(wrong_answers\.py|\d\d_\w+\.py|__pycache__|[^/]*\.egg-info|\.ipynb_checkpoints)(/|$)"
)
# Git-ignored build outputs at the top level, besides what .gitignore names.
ALWAYS_IGNORED = {".git"}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "student"
    result = subprocess.run(
        [sys.executable, "-m", "cnncourse.distribute", "--out", str(out), "--archive"],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"make student failed:\n{result.stdout}\n{result.stderr}"
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def archived(kit) -> dict[str, bytes]:
    """The archive's files, by their path inside its one top folder."""
    top = f"cnncourse-student-{VERSION}"
    with tarfile.open(kit.parent / f"{top}.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        names = [m.name for m in members]
        assert all(n.startswith(f"{top}/") for n in names), f"not all under {top}/: {names[:5]}"
        return {m.name.removeprefix(f"{top}/"): tar.extractfile(m).read() for m in members}


def test_archive_holds_the_kit(kit, archived):
    assert archived == _files(kit)


def test_no_marker_in_any_file(kit, archived):
    for where, files in (("kit", _files(kit)), ("archive", archived)):
        for name, data in files.items():
            text = data.decode("utf-8", errors="replace")
            found = [m for m in MARKERS if m in text]
            assert not found, f"{where}: {name} contains {found}"


def _secret_and_public_lines() -> tuple[set[str], set[str]]:
    """Stripped lines of the instructor notebooks inside solution and hidden-test regions,
    and the lines outside them (which the release shows, so they may repeat a secret line)."""
    secret, public = set(), set()
    for assignment in assignments():
        for cell in solution_notebook(assignment).cells:
            region = None
            for line in cell.source.splitlines():
                stripped = line.strip()
                if stripped in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                    region = stripped
                elif stripped in ("### END SOLUTION", "### END HIDDEN TESTS"):
                    region = None
                else:
                    (secret if region else public).add(stripped)
    return secret, public


def _notebook_lines(path: Path) -> set[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    texts = ["".join(cell["source"]) for cell in nb["cells"]]
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            texts += ["".join(output.get("text", "")), "\n".join(output.get("traceback", []))]
    return {line.strip() for text in texts for line in text.splitlines()}


def test_no_solution_or_hidden_test_line_in_the_notebooks(kit):
    # A line of a solution or a hidden test may also stand outside those regions (a
    # signature, a visible check): those the release shows anyway. The same line in the
    # library is no leak (the library holds the references); in a notebook it is.
    secret, public = _secret_and_public_lines()
    forbidden = {line for line in secret if len(line) > 25} - public
    assert len(forbidden) > 100, "found almost no solution lines: is the parsing broken?"
    for path in sorted((kit / "notebooks").rglob("*.ipynb")):
        leaked = sorted(_notebook_lines(path) & forbidden)
        assert not leaked, f"{path.relative_to(kit)} holds solution or hidden-test lines: {leaked}"


def test_no_instructor_file(kit, archived):
    for where, names in (("kit", _files(kit)), ("archive", archived)):
        for name in names:
            assert not any(name == p or name.startswith(f"{p}/") for p in INSTRUCTOR_PATHS), (
                f"{where}: {name} is an instructor file"
            )
            assert not INSTRUCTOR_NAMES.search(name), f"{where}: {name} is an instructor file"
    for name in distribute.INSTRUCTOR_ONLY:
        assert not (kit / name).exists(), name


def test_notebooks_are_the_release_byte_for_byte(kit):
    def notebooks(folder: Path) -> dict[str, bytes]:
        files = _files(folder)
        return {n: d for n, d in files.items() if ".ipynb_checkpoints" not in n}

    assert notebooks(kit / "notebooks") == notebooks(RELEASE)
    for assignment in assignments():
        assert (kit / "notebooks" / assignment / f"{assignment}.ipynb").is_file(), assignment


def test_the_kit_library_imports_from_the_kit(kit, tmp_path):
    def kit_python(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-c", code],
            cwd=tmp_path,
            env=tool_env(PYTHONPATH=str(kit)),
            capture_output=True,
            text=True,
        )

    result = kit_python("import cnncourse, sys; print(cnncourse.__file__)")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == kit / "cnncourse" / "__init__.py", result.stdout
    # Every module the kit ships imports there, from the kit (none needs a module left out).
    script = (
        "import importlib, pkgutil, cnncourse\n"
        "for m in pkgutil.walk_packages(cnncourse.__path__, 'cnncourse.'):\n"
        "    print(importlib.import_module(m.name).__file__)\n"
    )
    result = kit_python(script)
    assert result.returncode == 0, f"a module in the kit does not import:\n{result.stderr}"
    files = result.stdout.split()
    assert len(files) >= 10 and all(Path(f).is_relative_to(kit) for f in files), files


def _cnncourse_imports(source: str, module: str, package: bool) -> set[str]:
    """Names of cnncourse modules a piece of code imports (function-local imports too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            prefix = node.module or ""
            if node.level:
                base = module.split(".")[: None if package else -1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            names |= {prefix} | {f"{prefix}.{alias.name}" for alias in node.names}
    return {n for n in names if n == "cnncourse" or n.startswith("cnncourse.")}


def test_every_shipped_module_is_used_by_what_students_run(kit):
    # A module nothing reachable from `import cnncourse` or a notebook imports is a tool of
    # the instructor's (like sandbox.py or authoring.py): list it in INSTRUCTOR_MODULES.
    modules = {}
    for path in (kit / "cnncourse").rglob("*.py"):
        parts = list(path.relative_to(kit).with_suffix("").parts)
        package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if package else parts)] = (path, package)
    wanted = {"cnncourse"}
    for nb in (kit / "notebooks").rglob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code":
                code = "".join(cell["source"])
                lines = code.splitlines()
                code = "\n".join(x for x in lines if not x.lstrip().startswith(("%", "!")))
                wanted |= _cnncourse_imports(code, "__main__", False)
    # Classes the student lab's nbgrader settings name (cnncourse.exchange.KitList).
    for config in (kit / "jupyter").rglob("*.py"):
        named = re.findall(r"cnncourse\.[\w.]+", config.read_text())
        wanted |= {m.rsplit(".", 1)[0] for m in named}
    # The kit's commands (cnncourse-train), and what `python -m` runs in a reached package:
    # its __main__ and any module with a `__name__ == "__main__"` block.
    scripts = tomllib.loads((kit / "pyproject.toml").read_text())["project"].get("scripts", {})
    wanted |= {target.split(":")[0] for target in scripts.values()}
    reached, queue = set(), list(wanted)
    while queue:
        name = queue.pop()
        if name in reached or name not in modules:
            continue
        reached.add(name)
        path, package = modules[name]
        queue += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        queue += _cnncourse_imports(path.read_text(), name, package)
        if package:
            queue += [
                m for m, (p, _) in modules.items()
                if m.rsplit(".", 1)[0] == name and (
                    p.name == "__main__.py" or 'if __name__ == "__main__":' in p.read_text()
                )
            ]  # fmt: skip
    unused = sorted(set(modules) - reached)
    assert not unused, (
        f"{unused} ship to students but nothing they run imports them: add them to "
        "cnncourse.distribute.INSTRUCTOR_MODULES (or import them where students need them)"
    )
    missing = sorted(n for n in wanted if n not in modules and n.rsplit(".", 1)[0] not in modules)
    assert not missing, f"the notebooks import {missing}, which the kit lacks"


def test_student_pyproject(kit):
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())
    theirs = tomllib.loads((kit / "pyproject.toml").read_text())
    assert theirs["build-system"] == ours["build-system"]
    # No test extra, and no instructor commands (cnncourse-grade lives in a module the kit
    # leaves out); the training command ships.
    assert theirs["project"] == {
        **{k: v for k, v in ours["project"].items() if k != "optional-dependencies"},
        "scripts": {"cnncourse-train": "cnncourse.train.cli:main"},
    }
    assert "cnncourse-grade" in ours["project"]["scripts"]
    assert theirs["tool"] == {"setuptools": {"packages": {"find": {"include": ["cnncourse*"]}}}}


def test_student_environment(kit):
    ours = yaml.safe_load((ROOT / "environment.yml").read_text())
    theirs = yaml.safe_load((kit / "environment.yml").read_text())
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {re.match(r"[\w.\-]+", r).group() for r in extras["optional-dependencies"]["test"]}
    expected = [
        d for d in ours["dependencies"] if not isinstance(d, str) or d.split(">")[0] not in extras
    ]
    assert theirs["dependencies"] == expected
    assert {"pip": ["-e ."]} in theirs["dependencies"]
    assert theirs["variables"] == ours["variables"]
    assert "test_packaging" not in (kit / "environment.yml").read_text()


def _load_config(path: Path) -> Config:
    config = Config()
    exec(path.read_text(), {"get_config": lambda: config})
    return config


def test_student_nbgrader_config(kit):
    ours, theirs = (
        _load_config(ROOT / "nbgrader_config.py"),
        _load_config(kit / "nbgrader_config.py"),
    )
    assert theirs.Validator.width == ours.Validator.width
    assert "CourseDirectory" not in theirs, "students need no course directory settings"
    text = (kit / "nbgrader_config.py").read_text()
    assert "cuts each line of a failure message" in text and "solutions" not in text


def test_student_readme(kit):
    text = (kit / "README.md").read_text()
    for phrase in ("make lab", "make validate", "offline", "CPU", "hand in", "environment.yml"):
        assert phrase.lower() in text.lower(), phrase
    positions = [text.find(f"`{a}`") for a in assignments()]
    assert -1 not in positions and positions == sorted(positions), (
        "notebooks missing or out of order"
    )
    for instructor_word in ("make test", "make release", "solutions/", "CONTRIBUTING"):
        assert instructor_word not in text, instructor_word


def _dry_run(kit: Path, target: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=kit,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_student_makefile_lab_and_validate(kit):
    lab = _dry_run(kit, "lab")
    for expected in (
        "-m venv .venv",
        "pip install",
        "-e . ",
        "cnncourse_omp.pth",
        'os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")',
        "ipykernel install --user --name cnncourse",
        "--env OMP_WAIT_POLICY PASSIVE",
        ".venv/bin/jupyter lab --notebook-dir=notebooks",
        f'JUPYTER_CONFIG_PATH="{kit / "jupyter" / "student"}',
        f'CNNCOURSE_LAB_DIR="{kit / "notebooks"}"',
    ):
        assert expected in lab, f"make -n lab does not run {expected!r}:\n{lab}"
    assert "[test]" not in lab
    assert ("--allow-root" in lab) == (os.getuid() == 0)
    validate = _dry_run(kit, "validate")
    notebooks = " ".join(f"notebooks/{a}/{a}.ipynb" for a in assignments())
    assert f".venv/bin/nbgrader validate {notebooks}" in validate, validate
    # The install rule is the instructor's, without the test extra.
    rule = r"^\$\(STAMP\): pyproject\.toml\n(?:\t.*\n)+"
    ours = re.search(rule, (ROOT / "Makefile").read_text(), re.M).group()
    theirs = re.search(rule, (kit / "Makefile").read_text(), re.M).group()
    assert theirs == ours.replace("'.[test]'", ".")


@pytest.mark.parametrize(
    ("out", "says"),
    [
        ("solutions/kit", "solutions/"),
        ("solutions", "solutions/"),
        (".", "repository root"),
        ("..", "repository root"),
        ("dist", "dist/ itself"),
        ("notebooks/kit", "notebooks/"),
    ],
)
def test_out_inside_the_repository_is_refused(out, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        distribute.main(["--out", str(ROOT / out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and says in err, err


def test_out_holding_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("keep me")
    with pytest.raises(SystemExit):
        distribute.main(["--out", str(tmp_path)])
    assert "--out" in capsys.readouterr().err and (tmp_path / "thesis.tex").exists()


def test_rebuild_replaces_an_earlier_kit(tmp_path):
    out = distribute.build(tmp_path / "kit")
    (out / "notebooks" / "stale.txt").write_text("from an earlier build")
    distribute.build(out)
    assert not (out / "notebooks" / "stale.txt").exists()


def test_refuses_without_the_release(tmp_path):
    root = tmp_path / "repo"
    (root / "solutions" / "00_welcome").mkdir(parents=True)
    (root / "solutions" / "00_welcome" / "00_welcome.py").write_text("")
    with pytest.raises(distribute.KitError, match="make release"):
        distribute.build(tmp_path / "kit", root=root)
    (root / "notebooks").mkdir()
    with pytest.raises(distribute.KitError, match="00_welcome.ipynb.*make release"):
        distribute.build(tmp_path / "kit", root=root)


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        distribute.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--out DIR" in out and "--archive" in out and "dist/student" in out


def _gitignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p.strip("/")) for p in patterns)


def test_every_top_level_entry_is_classified():
    patterns = [
        line.strip()
        for line in (ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!")) and "/" not in line.strip().strip("/")
    ]
    assert "dist" in [p.strip("/") for p in patterns], ".gitignore must name dist/"
    kit, instructor = set(distribute.KIT), set(distribute.INSTRUCTOR_ONLY)
    assert not kit & instructor, kit & instructor
    unclassified = sorted(
        p.name
        for p in ROOT.iterdir()
        if p.name not in kit | instructor | ALWAYS_IGNORED and not _gitignored(p.name, patterns)
    )
    assert not unclassified, (
        f"{unclassified}: new top-level entries; add each to cnncourse.distribute.KIT (students "
        "get it) or INSTRUCTOR_ONLY (they must not), or git-ignore it if it is a build output"
    )
