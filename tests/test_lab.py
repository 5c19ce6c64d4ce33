"""`make lab` starts JupyterLab serving notebooks/: start it headless on a free port,
list the notebooks over its REST API, and stop it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from urllib.error import URLError

import pytest
from conftest import ROOT, assignments, tool_env

pytestmark = pytest.mark.notebooks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_make_lab_serves_the_notebooks(tmp_path):
    port, token = _free_port(), "cnncourse-test-token"
    args = (
        f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
        f"--IdentityProvider.token={token}"
    )
    env = tool_env(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config")
    )
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = _get(f"{base}/api/contents?token={token}")
                break
            except (URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"JupyterLab did not come up on port {port}:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        assert status == 200
        listing = {item["name"] for item in json.loads(body)["content"]}
        assert set(assignments()) <= listing, listing  # serving notebooks/, not the repo root
        assert "cnncourse" not in listing and "solutions" not in listing
        first = assignments()[0]
        status, body = _get(f"{base}/api/contents/{first}?token={token}")
        names = [item["name"] for item in json.loads(body)["content"]]
        assert f"{first}.ipynb" in names
        status, body = _get(f"{base}/lab?token={token}")
        assert status == 200 and b"JupyterLab" in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
