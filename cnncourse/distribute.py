"""Build the student kit: what students get instead of this repository.

This repository is the instructor's: ``solutions/`` holds every answer and every hidden
test, and ``tests/`` and ``benchmarks/`` read them. Students get a separate folder (and,
with ``--archive``, a ``.tar.gz`` beside it) holding the released notebooks exactly as
committed, the library without the instructor's tools, and a README, Makefile
(``make lab``, ``make validate``), pyproject.toml, nbgrader_config.py and environment.yml
written for them. ``make student`` runs::

    python -m cnncourse.distribute --out dist/student --archive

The kit is built from what is on disk; ``make release`` is what makes ``notebooks/``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tarfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

# Every top-level entry of the repository is in one of these two tables (tests/test_distribute.py
# fails on one in neither), so a new file is classified before it can ship by accident.
KIT = {
    "cnncourse": "the library, without INSTRUCTOR_MODULES",
    "notebooks": "the nbgrader release, byte for byte",
    "LICENSE": "copied, when there is one",
    "README.md": "written for students; the notebook table is the instructor README's",
    "Makefile": "written for students: make lab, make validate",
    "pyproject.toml": "the same package and dependencies, without the test extra",
    "nbgrader_config.py": "only what nbgrader validate needs",
    "environment.yml": "the same conda environment, without the test extras",
    "jupyter": "jupyter/student only: the student lab's settings (make lab)",
}
INSTRUCTOR_ONLY = {
    ".ci": "the CI entry point",
    ".gitignore": "the repository's",
    "CONTRIBUTING.md": "the maintainers' guide",
    "benchmarks": "speed tables for maintainers",
    "solutions": "every answer, hidden test and wrong answer",
    "tests": "the test suite, which reads solutions/",
}
# Modules of cnncourse/ that only instructors run: nothing cnncourse/__init__.py or a notebook
# imports needs them. tests/test_distribute.py fails on a shipped module nothing imports.
INSTRUCTOR_MODULES = ("authoring.py", "distribute.py", "grade.py", "sandbox.py", "tamper.py")
JUNK = ("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", ".DS_Store")
# Made inside a kit by using it (make lab); a rebuild may replace a folder holding only these.
KIT_OUTPUTS = (".venv", "cnncourse.egg-info", ".ipynb_checkpoints")
MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "wrong_answer",
)


class KitError(Exception):
    """The kit cannot be built; the message says why and what to do."""


def check_out(out: Path, root: Path = ROOT) -> Path:
    """The resolved output folder, or KitError when building there would be wrong."""
    out, root = out.resolve(), root.resolve()
    if root.is_relative_to(out):
        raise KitError(f"{out} is the repository root or holds it; use dist/student")
    inside = out.relative_to(root).parts if out.is_relative_to(root) else ()
    if inside == ("dist",):
        raise KitError(f"{out} is dist/ itself; use a folder in it, such as dist/student")
    if inside and inside[0] != "dist":
        raise KitError(
            f"{out} is inside the repository ({inside[0]}/); build under dist/ or outside it"
        )
    if out.exists() and not out.is_dir():
        raise KitError(f"{out} is a file")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in (*KIT, *KIT_OUTPUTS))
        if foreign:
            names = ", ".join(foreign[:5])
            raise KitError(f"{out} holds files no kit has ({names}); choose a new folder")
    return out


def _ignore_in(root: Path):
    """shutil.copytree's ignore: build junk anywhere, instructor modules at the package top."""
    junk = shutil.ignore_patterns(*JUNK)

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set(junk(folder, names))
        if Path(folder).resolve() == root / "cnncourse":
            skip |= set(INSTRUCTOR_MODULES) & set(names)
        return skip

    return ignore


def student_pyproject(text: str) -> str:
    """The instructor's pyproject.toml, keeping only the package, its build, its dependencies
    and the commands whose modules ship (cnncourse-train; not cnncourse-grade)."""
    keep_tables = ("[build-system]", "[project]", "[tool.setuptools.packages.find]")
    left_out = tuple(f"cnncourse.{m.removesuffix('.py')}" for m in INSTRUCTOR_MODULES)
    keep, scripts, lines = True, False, []
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            scripts = line.strip() == "[project.scripts]"
            keep = line.strip() in keep_tables or scripts
        target = re.search(r'=\s*"([\w.]+)', line) if scripts else None
        if target and target.group(1).split(":")[0].startswith(left_out):
            continue  # a command of an instructor module the kit leaves out
        if keep:
            lines.append(line)
    if lines and lines[-1].strip() == "[project.scripts]":  # none left
        lines.pop()
    header = "# The cnncourse student kit (made by `make student`).\n"
    return header + "".join(lines).rstrip() + "\n"


def student_environment(text: str, test_extras: list[str]) -> str:
    """The instructor's environment.yml without the test extras (and its maintainer comment)."""
    names = {re.match(r"[A-Za-z0-9_.\-]+", r).group().lower() for r in test_extras}
    # The opening comment is the maintainers' (it names their tests); the kit has its own.
    body = re.sub(r"\A(#.*\n)+", "", text)
    lines = []
    for line in body.splitlines(keepends=True):
        entry = re.match(r"\s*-\s*([A-Za-z0-9_.\-]+)", line)
        if (entry and entry.group(1).lower() in names) or line.strip() == "# test extras":
            continue
        lines.append(line)
    header = (
        "# Conda users: `conda env create -f environment.yml && conda activate cnncourse`, then\n"
        "# `jupyter lab notebooks/` in this folder. pip users need none of this: `make lab`.\n"
    )
    return header + "".join(lines)


def student_readme(instructor_readme: str, version: str, license_: str) -> str:
    """The kit's README: STUDENT_README with the instructor README's notebook table."""
    table = re.search(r"^## Notebooks\n(.*?)(?=^## )", instructor_readme, re.M | re.S)
    if not table:
        raise KitError("README.md has no '## Notebooks' section to give students")
    text = STUDENT_README.replace("@NOTEBOOKS@", table.group(1).strip())
    return text.replace("@VERSION@", version).replace("@LICENSE@", license_)


def student_makefile(instructor_makefile: str) -> str:
    """The kit's Makefile: its install rule is the instructor's, without the test extra."""
    rule = re.search(r"^\$\(STAMP\): pyproject\.toml\n(?:\t.*\n)+", instructor_makefile, re.M)
    if not rule or "-e '.[test]'" not in rule.group():
        raise KitError("Makefile: no `$(STAMP): pyproject.toml` rule installing -e '.[test]'")
    return STUDENT_MAKEFILE.replace("@INSTALL_RULE@", rule.group().replace("'.[test]'", "."))


def find_markers(folder: Path) -> list[str]:
    """Files under folder whose text holds a solution, hidden-test or wrong-answer marker."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{path.relative_to(folder)}: {m}" for m in MARKERS if m in text]
    return found


def build(out: Path, root: Path = ROOT) -> Path:
    """Write the student kit into out (replacing an earlier kit there); return its path."""
    root = root.resolve()
    out = check_out(out, root)
    release = root / "notebooks"
    if not release.is_dir():
        raise KitError("notebooks/ is missing: run `make release` to generate it from solutions/")
    missing = [
        f"notebooks/{a.name}/{a.name}.ipynb"
        for a in sorted((root / "solutions").glob("[0-9][0-9]_*"))
        if a.is_dir() and not (release / a.name / f"{a.name}.ipynb").is_file()
    ]
    if missing:
        raise KitError(f"{', '.join(missing)} missing: run `make release` first")
    meta = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    license_ = project.get("license", {})
    license_ = license_.get("text", "") if isinstance(license_, dict) else str(license_)

    if out.exists():
        shutil.rmtree(out)
    ignore = _ignore_in(root)
    shutil.copytree(release, out / "notebooks", ignore=ignore)
    shutil.copytree(root / "cnncourse", out / "cnncourse", ignore=ignore)
    shutil.copytree(root / "jupyter" / "student", out / "jupyter" / "student", ignore=ignore)
    if (root / "LICENSE").is_file():
        shutil.copy2(root / "LICENSE", out / "LICENSE")

    def read(name: str) -> str:
        return (root / name).read_text(encoding="utf-8")

    written = {
        "README.md": student_readme(read("README.md"), project["version"], license_),
        "Makefile": student_makefile(read("Makefile")),
        "pyproject.toml": student_pyproject(read("pyproject.toml")),
        "nbgrader_config.py": STUDENT_NBGRADER_CONFIG,
    }
    if (root / "environment.yml").is_file():
        extras = project.get("optional-dependencies", {}).get("test", [])
        written["environment.yml"] = student_environment(read("environment.yml"), extras)
    for name, text in written.items():
        (out / name).write_text(text, encoding="utf-8")

    leaks = find_markers(out)
    if leaks:
        shutil.rmtree(out)
        raise KitError("answers would reach students; kit removed:\n  " + "\n  ".join(leaks))
    return out


def archive(kit: Path, version: str) -> Path:
    """kit as cnncourse-student-<version>.tar.gz beside it, one top folder of that name."""
    name = f"cnncourse-student-{version}"
    path = kit.parent / f"{name}.tar.gz"

    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(path, "w:gz") as tar:
        tar.add(kit, arcname=name, filter=anonymous)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnncourse.distribute",
        description="Build the student kit: released notebooks, the library, and a README, "
        "Makefile (make lab, make validate), pyproject.toml, nbgrader_config.py and "
        "environment.yml for students. No solutions, hidden tests or instructor tools.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "dist" / "student",
        metavar="DIR",
        help="folder to write the kit into, replacing an earlier kit (default: dist/student)",
    )
    parser.add_argument(
        "--archive",
        action="store_true",
        help="also write cnncourse-student-<version>.tar.gz beside DIR",
    )
    args = parser.parse_args(argv)
    try:
        check_out(args.out)
    except KitError as error:
        parser.error(f"argument --out: {error}")
    try:
        kit = build(args.out)
    except KitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files = [p for p in kit.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(f"student kit: {kit} ({len(files)} files, {size / 1e6:.1f} MB)")
    if args.archive:
        version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        print(f"archive: {archive(kit, version)}")
    return 0


STUDENT_MAKEFILE = r"""# The cnncourse student kit. Two commands:
#   make lab       create .venv on first use, then open JupyterLab on notebooks/
#   make validate  run the notebooks' visible tests as the autograder will (nbgrader validate)
# The virtual environment is rebuilt only when pyproject.toml changes (a stamp file records
# the last install), so a second run starts at once.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_ARGS ?=
# Jupyter refuses to start as root (common in containers) unless told it is fine.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Every notebook by default; `make validate NOTEBOOKS=notebooks/02_lenet/02_lenet.ipynb`
# checks one.
NOTEBOOKS ?= $(sort $(wildcard notebooks/*/*.ipynb))
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install lab validate

help:
	@echo "make lab       start JupyterLab on notebooks/ (creates .venv on first use)"
	@echo "make validate  check every notebook with its visible tests before you hand it in"

# torch's OpenMP threads spin while they wait for work: beside one busy program on a 2-core
# laptop that makes a training loop up to 40x slower. A .pth line in the venv's site-packages
# sets OMP_WAIT_POLICY=PASSIVE in every venv python (kernels, nbgrader) before torch loads;
# an OMP_WAIT_POLICY you set yourself still wins.
@INSTALL_RULE@
install: $(STAMP)

# JupyterLab as the course means it: nbgrader's Validate button and Assignments list, no
# instructor tools, no news prompt (the settings in jupyter/student/, for this command only).
LAB_CONFIG := $(abspath jupyter/student)
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(LAB_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		CNNCOURSE_LAB_DIR="$(abspath notebooks)" \
		$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ROOT) $(LAB_ARGS)

validate: $(STAMP)
	$(BIN)/nbgrader validate $(NOTEBOOKS)
"""

STUDENT_NBGRADER_CONFIG = '''\
"""nbgrader settings for `make validate` and JupyterLab's Validate button."""

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

# `nbgrader validate` cuts each line of a failure message at width - 3 characters; the
# default of 90 hid the values and the hint. cnncourse.grading wraps its messages to
# lines that fit in 120.
c.Validator.width = 120
# Validating runs every cell; the default of 30 s per cell is too little for a training
# cell on a slow laptop. A hanging cell still ends.
c.Execute.timeout = 300
'''

STUDENT_README = """# cnncourse: modern CNN architectures, hands on

A course on convolutional network architectures as Jupyter notebooks: the parts of a CNN,
then LeNet, AlexNet, VGG, Network in Network, GoogLeNet, ResNet and ResNeXt, and a closing
review. In each notebook you write the key layers, modules and shape calculations yourself,
and tests in the notebook tell you at once what is right and, when something is wrong,
what and where ("expected (N, 96, 55, 55), got (N, 96, 54, 54): check the padding").

Everything runs offline on a laptop CPU: the notebooks train on datasets that need no
download (`digits`, `sprites`), and every notebook runs top to bottom in about a minute on
two cores. A CUDA GPU is used automatically when there is one (`CNNCOURSE_DEVICE=cpu`
forces the CPU).

## Two commands

You need Linux or macOS (on Windows, WSL) with Python 3.10 or newer and `make`. In this
folder:

```
make lab        # first time: create .venv and install (a few minutes); then open JupyterLab
make validate   # run every notebook's visible tests, as the autograder will
```

`make lab` opens JupyterLab on `notebooks/`; start with
`notebooks/00_welcome/00_welcome.ipynb`. Later runs start at once. To pass options to
JupyterLab: `make lab LAB_ARGS="--no-browser --port 8899"`.

Conda users can instead run `conda env create -f environment.yml`,
`conda activate cnncourse` and `jupyter lab notebooks/`.

## Notebooks

Work through them in order; each builds on the one before.

@NOTEBOOKS@

## Working on an exercise

An exercise is a function or module with its docstring (the shapes and the formula) and a
body that says `raise NotImplementedError()`: replace that line with your code. The cell
below it is its test: run it to see whether your answer passes. Leave the test cells as
they are, and do not delete, copy or move the exercise cells: the autograder finds your
answers by these cells.

## Validate and hand in

1. In JupyterLab, *Kernel → Restart Kernel and Run All Cells*: the notebook must run top
   to bottom without errors.
2. `make validate` (or `make validate NOTEBOOKS=notebooks/02_lenet/02_lenet.ipynb` for one
   notebook; JupyterLab's *Validate* button does the same) runs each notebook as the
   autograder does and prints the tests that fail, with their messages. A notebook you
   have not started fails them all.
3. Hand in the notebook file, `notebooks/NN_topic/NN_topic.ipynb`, under its own name,
   the way your course asks (an upload, say). *Nbgrader → Assignment List* in JupyterLab
   lists the course's notebooks with a Validate button each; its Submit button needs a
   course server with an nbgrader exchange, and here it tells you so.

The autograder runs the same visible tests and more tests of its own on cases you have
not seen, so a notebook that validates has passed the first round, not every test.

## What is in this folder

`notebooks/` (the course), `cnncourse/` (the library the notebooks import: datasets,
training, plots, models and shape calculators), `Makefile`, `pyproject.toml` and
`environment.yml` (the installation), `nbgrader_config.py` (settings for `make validate`),
`jupyter/student/` (JupyterLab's settings for `make lab`: nbgrader's Validate button and
Assignments list, whose Submit button tells you how to hand in instead).

## After the course

`.venv/bin/cnncourse-train --model resnet18 --data cifar10 --download --image-size 64`
trains a full-size reference model on real data (`--help` lists the options): on one
CPU or GPU, or on several GPUs with `torchrun --nproc_per_node=N -m cnncourse.train ...`.
`.venv/bin/python -m cnncourse.train.fast --data cifar10 --download` is a fast recipe for
CIFAR-10 on one GPU, after the public speed records.

Version @VERSION@. Licence: @LICENSE@.
"""


if __name__ == "__main__":
    sys.exit(main())
