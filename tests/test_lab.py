"""`make lab` starts JupyterLab serving notebooks/: start it headless on a free port,
list the notebooks over its REST API, and stop it. (tests/test_browser.py opens them.)"""

from __future__ import annotations

import json

import pytest
from conftest import assignments, lab_server

pytestmark = pytest.mark.notebooks


def test_make_lab_serves_the_notebooks(tmp_path):
    with lab_server(tmp_path) as lab:
        status, body = lab.get("api/contents")
        assert status == 200
        listing = {item["name"] for item in json.loads(body)["content"]}
        assert set(assignments()) <= listing, listing  # serving notebooks/, not the repo root
        assert "cnncourse" not in listing and "solutions" not in listing
        first = assignments()[0]
        status, body = lab.get(f"api/contents/{first}")
        names = [item["name"] for item in json.loads(body)["content"]]
        assert f"{first}.ipynb" in names
        status, body = lab.get("lab")
        assert status == 200 and b"JupyterLab" in body
        # The student lab has no formgrader (jupyter/student/jupyter_server_config.json).
        with pytest.raises(Exception, match="404"):
            lab.get("formgrader")
