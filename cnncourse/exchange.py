"""nbgrader's Assignments panel for a course that has no exchange.

nbgrader's Assignments panel (JupyterLab's *Nbgrader → Assignment List*) lists what an
instructor released into an exchange folder shared on a JupyterHub server. This course
reaches students as a folder of notebooks instead, so that folder does not exist and the
panel shows nothing but "The exchange directory does not exist". The student lab
(`make lab`, settings in jupyter/student/nbgrader_config.py) plugs these two classes into
nbgrader's exchange instead: the panel lists the assignments in the notebook folder with a
Validate button for each notebook, and its Submit button says how to hand in, because
there is nowhere for it to copy to.

A course that does run an exchange configures nbgrader's own classes and needs neither.
"""

from __future__ import annotations

from pathlib import Path

from nbgrader.exchange.abc import ExchangeError, ExchangeList, ExchangeSubmit

COURSE_ID = "cnncourse"
# Short lines: JupyterLab shows the message at the end of a traceback in a box that does
# not wrap.
HAND_IN = (
    "\nThis course has no nbgrader exchange to submit {assignment} to.\n"
    "Hand in the file {assignment}/{assignment}.ipynb the way your instructor\n"
    "asked (the README's 'Validate and hand in'), once Validate says it passes."
)


def assignments(folder: Path) -> list[dict]:
    """The assignment folders in folder (NN_topic, holding notebooks), in nbgrader's format
    for a fetched assignment, in course order."""
    found = []
    for path in sorted(folder.glob("[0-9][0-9]_*")):
        notebooks = sorted(path.glob("*.ipynb"))
        if not path.is_dir() or not notebooks:
            continue
        found.append(
            {
                "course_id": COURSE_ID,
                "assignment_id": path.name,
                "status": "fetched",
                "path": str(path.resolve()),
                "notebooks": [
                    {"notebook_id": nb.stem, "path": str(nb.resolve())} for nb in notebooks
                ],
            }
        )
    return found


class KitList(ExchangeList):
    """Lists the notebook folder's assignments as fetched (they came with the course);
    nothing was ever submitted through an exchange, so that list is empty."""

    def start(self):
        if self.inbound or self.cached or self.remove:
            return []
        return assignments(Path(self.assignment_dir))


class KitSubmit(ExchangeSubmit):
    """Refuses with the way to hand in, instead of failing on a missing folder."""

    def start(self):
        raise ExchangeError(HAND_IN.format(assignment=self.coursedir.assignment_id))
