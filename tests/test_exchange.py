"""The student lab's Assignments panel without an exchange (cnncourse/exchange.py), through
nbgrader's own panel back end with the settings of jupyter/student/."""

from __future__ import annotations

import pytest
from conftest import RELEASE, ROOT, assignments
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc import ExchangeError
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

from cnncourse.exchange import KitList, KitSubmit


@pytest.fixture
def panel(monkeypatch, tmp_path):
    """nbgrader's panel back end as `make lab` configures it, run from elsewhere."""
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(ROOT / "jupyter" / "student"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CNNCOURSE_LAB_DIR", str(RELEASE))
    monkeypatch.chdir(tmp_path)
    lister = AssignmentList()
    lister.root_dir = str(RELEASE)
    return lister


def test_the_panel_lists_every_assignment_as_downloaded(panel):
    listed = panel.list_assignments()
    assert listed["success"], listed["value"]
    got = listed["value"]
    assert [a["assignment_id"] for a in got] == assignments()
    for a in got:
        assert a["status"] == "fetched" and a["course_id"] == "cnncourse", a
        name = a["assignment_id"]
        # Paths relative to the notebook folder, as the panel opens them.
        assert a["notebooks"] == [{"notebook_id": name, "path": f"{name}/{name}.ipynb"}]
    assert panel.list_courses() == {"success": True, "value": ["cnncourse"]}


def test_submit_says_how_to_hand_in(panel):
    result = panel.submit_assignment("cnncourse", "02_lenet")
    assert not result["success"]
    assert "no nbgrader exchange to submit 02_lenet" in result["value"]
    assert "02_lenet/02_lenet.ipynb" in result["value"]


def test_the_classes_alone(tmp_path):
    (tmp_path / "01_x").mkdir()
    (tmp_path / "01_x" / "01_x.ipynb").write_text("{}")
    (tmp_path / "02_empty").mkdir()  # no notebook: not an assignment
    (tmp_path / "notes").mkdir()
    assert [a["assignment_id"] for a in KitList(assignment_dir=str(tmp_path)).start()] == ["01_x"]
    assert KitList(assignment_dir=str(tmp_path), cached=True).start() == []
    submit = KitSubmit(coursedir=CourseDirectory(assignment_id="01_x"))
    with pytest.raises(ExchangeError, match="Hand in the file 01_x/01_x.ipynb"):
        submit.start()
