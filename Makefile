# Two commands for everyone: `make lab` (students) and `make test` (CI, maintainers).
# The virtual environment is rebuilt only when pyproject.toml changes (a stamp file
# records the last install), so a second run starts at once.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_ARGS ?=
# Jupyter refuses to start as root (common in containers) unless told it is fine.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=
# nbgrader shells out to tools in the venv (alembic for the gradebook), so put them on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
ASSIGNMENTS := $(notdir $(wildcard solutions/[0-9][0-9]_*))

.PHONY: install lab lab-instructor test test-fast build release grade bench lint clean help student

help:
	@echo "make lab      start JupyterLab on notebooks/ (creates .venv on first use)"
	@echo "make lab-instructor  JupyterLab on the course folder with formgrader (instructors)"
	@echo "make test     run the whole test suite (unit tests, notebooks, nbgrader round trip)"
	@echo "make release  build solutions/*/*.ipynb from their .py sources, then notebooks/ (nbgrader)"
	@echo "make grade    autograde everything in submitted/, sandboxed and in parallel (instructors)"
	@echo "make bench    print the benchmark ratio tables"
	@echo "make lint     ruff over the library, tests, benchmarks and notebook sources"
	@echo "make student  build the student kit in dist/student/ and its .tar.gz (what students get)"

# torch's OpenMP threads spin while they wait for work: beside one busy process on a 2-core
# laptop that makes a training loop up to 40x slower. OpenMP reads OMP_WAIT_POLICY once, when
# `import torch` loads it, so the venv sets it at interpreter start: a .pth line in
# site-packages runs in every venv python (kernels, pytest, nbgrader) before any cell imports
# torch. An explicit OMP_WAIT_POLICY in the environment still wins (setdefault).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 \
		| grep -v "is neither a file nor a directory" || true
	@echo 'import os; os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")' > \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/cnncourse_omp.pth"
	@$(BIN)/python -c "import cnncourse, torch, torchvision, nbgrader, jupyterlab" \
		|| { echo "install failed: see the pip output above" >&2; exit 1; }
	$(BIN)/python -m ipykernel install --user --name cnncourse \
		--display-name "Python (cnncourse)" --env OMP_WAIT_POLICY PASSIVE > /dev/null
	@touch $@

install: $(STAMP)

# JupyterLab as students see it: nbgrader's Validate button and Assignments list, without the
# instructor's Create Assignment panel, formgrader and course list, and without the news
# prompt (the settings in jupyter/student/, put first on JUPYTER_CONFIG_PATH for this command
# only). `make lab LAB_DIR=path` serves another folder of notebooks.
LAB_DIR ?= notebooks
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(abspath jupyter/student)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		CNNCOURSE_LAB_DIR="$(abspath $(LAB_DIR))" $(BIN)/jupyter lab --notebook-dir=$(LAB_DIR) $(LAB_ROOT) $(LAB_ARGS)

# JupyterLab on the course folder with all of nbgrader: formgrader (Nbgrader -> Formgrader)
# lists the assignments, their points and every graded submission. `COURSE=path` for a
# course folder elsewhere (it holds nbgrader_config.py and gradebook.db).
COURSE ?= .
lab-instructor: $(STAMP)
	cd $(COURSE) && JUPYTER_CONFIG_PATH="$(abspath jupyter/instructor)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(abspath $(BIN))/jupyter lab --notebook-dir=. $(LAB_ROOT) $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests only: skips executing notebooks and the nbgrader round trip.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not notebooks" $(PYTEST_ARGS)

# The .py in each solutions/NN_topic/ is the source; the .ipynb beside it is built from it
# (git-ignored) and is what nbgrader reads.
build: $(STAMP)
	@$(BIN)/python -m cnncourse.authoring build

release: build
	@for a in $(ASSIGNMENTS); do \
		$(BIN)/nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; \
	done
	@echo "notebooks/ regenerated from solutions/: $(ASSIGNMENTS)"

# Every submission of every assignment, each in its own sandboxed kernel, several at once
# (cnncourse/grade.py; `.venv/bin/cnncourse-grade --help` for its options): a bad submission
# is recorded against itself and never stops the batch, so the export always runs.
GRADE_ARGS ?=
grade: build
	$(BIN)/cnncourse-grade $(GRADE_ARGS)
	$(BIN)/nbgrader export --log-level=WARN

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do \
		[ -e "$$f" ] || { echo "no benchmarks yet"; break; }; \
		echo "== $$f"; $(BIN)/python $$f || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check cnncourse tests benchmarks solutions
	$(BIN)/ruff format --check cnncourse tests benchmarks

# What students get instead of this repository: notebooks/ as committed, the library without
# the instructor's tools, and a README, Makefile (lab, validate) and configuration of their own.
student: $(STAMP)
	$(BIN)/python -m cnncourse.distribute --out dist/student --archive

clean:
	rm -rf $(VENV) .pytest_cache gradebook.db submitted autograded feedback .grading \
		grades.csv grading-report.md grading-report.csv dist
