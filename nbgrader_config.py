"""nbgrader configuration for cnncourse.

The course folder is this repository: nbgrader's "source" step reads the instructor
notebooks in solutions/, and its "release" step writes the student versions into
notebooks/ (`make release`). Everything else nbgrader makes (gradebook.db, submitted/,
autograded/, feedback/) stays local and is git-ignored.
"""

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "cnncourse"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# An assignment folder also holds the notebook's text source (NN_topic.py, the file a
# person edits; `make release` builds NN_topic.ipynb from it) and its wrong answers for
# the tests: neither may reach students.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",  # nbgrader's defaults
    "[0-9][0-9]_*.py", "wrong_answers.py",
]

# Training cells are sized for about a minute on a 2-core laptop; grading mode makes
# them far shorter, but a slow machine grading many notebooks at once needs headroom.
# The default of 30 s per cell would fail honest work; a hanging cell still ends.
c.Execute.timeout = 300
c.ExecutePreprocessor.timeout = 300
# A submission that deleted or reordered graded cells is still graded against the
# instructor's version rather than crashing the whole run.
c.OverwriteCells.add_missing_cells = True
# `nbgrader validate` (the check students run before submitting, also behind JupyterLab's
# Validate button) cuts each line of a failure message at width - 3 characters; the
# default of 90 hid the values and the hint. cnncourse.grading wraps its messages to
# lines that fit in 120.
c.Validator.width = 120
# Students see "raise NotImplementedError()" where a solution goes.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Feedback (`nbgrader generate_feedback`, also written by `make grade`) shows students their
# graded notebooks without the hidden tests' code: cnncourse.grade.ScrubHiddenTests removes
# it from the test cells and cuts tracebacks (which quote it) down to the error's message.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "cnncourse.grade.ScrubHiddenTests",
]
