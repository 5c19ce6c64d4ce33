"""cnncourse.utils: device choice, seeding, grading mode."""

import random
import re

import numpy as np
import pytest
import torch

from cnncourse import utils


def test_device_order_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("CNNCOURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert utils.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(utils, "_mps_available", lambda: True)
    assert utils.get_device().type == "mps"
    monkeypatch.setattr(utils, "_mps_available", lambda: False)
    assert utils.get_device().type == "cpu"


def test_device_can_be_forced(monkeypatch):
    monkeypatch.setenv("CNNCOURSE_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    assert utils.get_device("cpu") == torch.device("cpu")


def test_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="prefer='cuda'.*not available"):
        utils.get_device("cuda")
    monkeypatch.setattr(utils, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="prefer='mps'"):
        utils.get_device("mps")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    utils.seed_everything(7)
    a = draw()
    utils.seed_everything(7)
    b = draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    gen = utils.seed_everything(7)
    assert gen.initial_seed() == 7
    with pytest.raises(ValueError, match="seed="):
        utils.seed_everything(-1)


def test_grading_mode_follows_nbgrader_variable(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert utils.grading_mode() is False
    for value in ("autograde", "validate"):
        monkeypatch.setenv("NBGRADER_EXECUTION", value)
        assert utils.grading_mode() is True


def test_setup_notebook_and_report(capsys, monkeypatch):
    monkeypatch.setenv("CNNCOURSE_DEVICE", "cpu")
    device = utils.setup_notebook(seed=3)
    assert device.type == "cpu" and "device=cpu" in capsys.readouterr().out
    report = utils.environment_report()
    assert report["torch"] == torch.__version__ and report["device"] == "cpu"


def test_grading_kernels_skip_teardown_figure_images_and_traceback_context(monkeypatch):
    import atexit

    import nbformat
    from nbclient import NotebookClient

    # Outside a kernel (here, in pytest) nothing is registered: the exit status must survive.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    before = atexit._ncallbacks()
    utils.setup_notebook(quiet=True)
    assert atexit._ncallbacks() == before
    # Inside a kernel under nbgrader, setup registers os._exit to run first at shutdown.
    # Its figures are drawn (a plotting error still shows) but not rendered as images.
    code = (
        "import atexit\nfrom cnncourse import utils\nn = atexit._ncallbacks()\n"
        "utils.setup_notebook(quiet=True)\nprint(atexit._ncallbacks() - n)"
    )
    plot = (
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\n"
        "plt.show()\nfig"
    )
    # Errors come as plain tracebacks (cheap to format), with the message intact.
    error = "def f():\n    raise AssertionError('Check the padding.')\nf()"
    for mode, expected, images, plain in (("autograde", "1", 0, True), (None, "0", 2, False)):
        cells = [nbformat.v4.new_code_cell(c) for c in (code, plot, error)]
        nb = nbformat.v4.new_notebook(cells=cells)
        if mode is None:
            monkeypatch.delenv("NBGRADER_EXECUTION")
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
        assert nb.cells[0].outputs[0]["text"].strip() == expected, mode
        outputs = nb.cells[1].outputs
        # inline, the figure is shown twice: by plt.show() and as the cell's value
        assert sum("image/png" in o.get("data", {}) for o in outputs) == images, outputs
        assert not [o for o in outputs if o.get("name") == "stderr"], outputs
        (err,) = nb.cells[2].outputs
        assert (err["ename"], err["evalue"]) == ("AssertionError", "Check the padding.")
        traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err["traceback"]))  # no colours
        assert ("----> " not in traceback) == plain, traceback  # no source context


def test_warnings_go_to_stdout_and_library_modules_are_read_only_in_a_kernel(monkeypatch):
    """nbgrader gives a test cell with any stderr output no points: a correct answer that
    emits a UserWarning must keep them, in the notebook and under grading alike."""
    import nbformat
    from nbclient import NotebookClient

    sources = (
        "from cnncourse import utils\nutils.setup_notebook(quiet=True)",
        "import warnings\nwarnings.warn('deprecated argument', UserWarning)",
        "from cnncourse import shapes\ntry:\n    shapes.conv_output_size = None\n"
        "except AttributeError as err:\n    print(err)",
    )
    for mode in ("autograde", None):
        if mode is None:
            monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
        else:
            monkeypatch.setenv("NBGRADER_EXECUTION", mode)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources])
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
        outputs = nb.cells[1].outputs
        assert not [o for o in outputs if o.get("name") == "stderr"], outputs
        stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
        assert "UserWarning: deprecated argument" in stdout, outputs
        (locked,) = nb.cells[2].outputs
        assert locked["text"].startswith("cnncourse.shapes is read-only: test cells rely on")
