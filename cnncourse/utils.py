"""Small helpers every notebook uses: device choice, seeding, grading-mode detection."""

from __future__ import annotations

import os
import platform
import random
import sys
import warnings

import numpy as np
import torch

__all__ = [
    "get_device",
    "seed_everything",
    "grading_mode",
    "silence_warnings",
    "setup_notebook",
    "environment_report",
    "omp_wait_policy",
]


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` forces a device ("cpu", "cuda", "cuda:1", "mps"); the environment variable
    ``CNNCOURSE_DEVICE`` does the same without touching code. Asking for a device that is
    not there raises ``ValueError`` rather than failing later inside a kernel.
    """
    prefer = prefer if prefer is not None else os.environ.get("CNNCOURSE_DEVICE") or None
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"prefer={str(prefer)!r}: CUDA is not available on this machine")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"prefer={str(prefer)!r}: Apple MPS is not available on this machine")
        if device.type not in {"cpu", "cuda", "mps"}:
            raise ValueError(f"prefer={str(prefer)!r}: expected 'cpu', 'cuda' or 'mps'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a torch generator with that seed.

    Seeding makes a notebook's numbers repeat from run to run on the same machine; GPU
    kernels may still differ in the last bits, which is why tests compare with tolerances.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative int")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def grading_mode() -> bool:
    """True while nbgrader autogrades or validates a notebook.

    nbgrader sets ``NBGRADER_EXECUTION`` (to "autograde" or "validate") in the kernel's
    environment. Notebooks use this to train for a few batches instead of a few epochs:
    nothing a grade depends on needs a trained model.
    """
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def silence_warnings() -> None:
    """Hide warnings that are known to be harmless here.

    nbgrader gives zero points to a test cell that writes anything to stderr, so the
    setup cell of every notebook calls this before any test runs.
    """
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch(vision)?\..*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*IProgress not found.*")


def setup_notebook(seed: int = 0, *, quiet: bool = False) -> torch.device:
    """The first code cell of every notebook: silence known noisy warnings and show the
    others on stdout, seed, pick the device; in a kernel, also make the modules test cells
    take their checks and references from read-only.

    Returns the device and prints one line saying which it is (unless ``quiet``).
    """
    silence_warnings()
    _warnings_to_stdout()
    seed_everything(seed)
    try:
        import matplotlib as mpl

        mpl.rcParams.update({"figure.dpi": 90, "axes.grid": False, "figure.max_open_warning": 0})
    except ImportError:  # matplotlib is a dependency; this only guards odd installs
        pass
    device = get_device()
    if _in_kernel():
        _lock_library()
        if not grading_mode():
            _figures_for_jupyterlab()
    if grading_mode() and _in_kernel():
        _exit_fast_at_shutdown()
        _draw_figures_without_rendering()
        _plain_tracebacks()
    if not quiet:
        mode = " (grading mode: training is shortened)" if grading_mode() else ""
        print(f"cnncourse ready: device={device}, seed={seed}{mode}")
    return device


def _figures_for_jupyterlab() -> None:
    """Figures that read well in JupyterLab: sharp on high-density screens, on white.

    The inline backend's PNGs are drawn at ``figure.dpi``, which a laptop's 2x screen
    enlarges into a blur; "retina" draws them at twice the pixels and shows them at the same
    size. Its figures also have a transparent background, so in a dark theme the black axes,
    labels and titles vanish against it: a white background keeps them readable in every
    theme. Only in a kernel, and not while grading: nobody looks at those images.
    """
    try:
        import matplotlib as mpl
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # both come with the course's dependencies; this guards odd installs
        return
    set_matplotlib_formats("retina")
    mpl.rcParams.update({"figure.facecolor": "white", "savefig.facecolor": "white"})


def _warnings_to_stdout() -> None:
    """Show warnings on stdout instead of stderr.

    nbgrader gives no points to a test cell that writes anything to stderr, so one
    ``UserWarning`` from a correct answer (or a library it calls) would cost the student
    the cell. The filters stay as they are: each warning still shows once per place in the
    code, unless :func:`silence_warnings` hides it. ``sys.stdout`` is looked up at each
    warning, as a kernel gives every cell its own stream.
    """

    def showwarning(message, category, filename, lineno, file=None, line=None):
        sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = showwarning


# The modules test cells take their checks and references from when they run
# (`from cnncourse.models import NiNBlock as _RefBlock`); cnncourse.grading locks itself.
_LOCKED = ("cnncourse", "cnncourse.layers", "cnncourse.shapes", "cnncourse.utils")


def _lock_library() -> None:
    """Make the modules test cells rely on refuse attribute assignment, so a solution cell
    cannot swap a reference for its own code (``shapes.conv_output_size = mine``). Only in
    a kernel: tests of the library itself may patch these modules."""
    from .grading import lock_modules

    models = [name for name in sys.modules if name.startswith("cnncourse.models")]
    lock_modules(*_LOCKED, *models)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (ipykernel), not in plain python or pytest."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _exit_fast_at_shutdown() -> None:
    """Let the kernel process end at once when nbgrader shuts it down.

    Tearing down an interpreter with torch loaded takes 1-2 s (measured on 2 cores), paid
    once per autograded submission for nothing: the grades are in the notebook by then.
    atexit runs its handlers last-registered first, so this one runs before the kernel's
    own clean-up, which it skips. Only under grading mode and only inside a kernel, where
    nobody reads the exit status.
    """
    import atexit

    atexit.register(os._exit, 0)


def _draw_figures_without_rendering() -> None:
    """Under nbgrader, figures are built but never turned into images or laid out.

    Nobody looks at the figures of a notebook being graded, and encoding each one as a PNG
    for the inline display costs a notebook with a dozen plots 3-4 s per submission;
    ``tight_layout``, which measures every label, another 0.1-0.3 s per figure (measured
    on 2 cores). Matplotlib's Agg backend draws without displaying, so every plotting line
    still runs (and fails as it would for the student); ``plt.show()`` then has nothing to
    show, which is not worth a warning on stderr.
    """
    from matplotlib.figure import Figure

    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    shell.run_line_magic("matplotlib", "agg")
    for formatter in shell.display_formatter.formatters.values():  # a Figure as a cell's
        formatter.pop(Figure, None)  # value would still be turned into a PNG: not shown
    warnings.filterwarnings("ignore", message=r".*non-interactive, and thus cannot be shown")
    Figure.tight_layout = lambda self, *args, **kwargs: None  # nothing to lay out for


def _plain_tracebacks() -> None:
    """Under nbgrader, errors are reported as plain Python tracebacks.

    IPython's default ("Context") mode reads and highlights the source around every frame:
    about 0.15 s per failing cell, against 0.02 s in plain mode (measured on 2 cores), and an
    untouched submission fails in some 20 cells. The message a test cell raises, which is
    what the student reads, is the same in both modes.
    """
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    shell.InteractiveTB.set_mode(mode="Plain")


def omp_wait_policy() -> str:
    """How torch's CPU threads wait for work: "PASSIVE", "ACTIVE" or "default".

    PASSIVE threads sleep until there is work; ACTIVE ones spin; by default they spin for a
    while, then sleep. Spinning is faster on an idle machine when the work comes in many
    tiny pieces (small nets: 01_components runs about 1.2x faster on an idle 2-core VM), but
    beside one busy program on 2 cores the spinning threads burn the core the working thread
    needs: training gets several times slower, and tens of times beside another program
    whose threads spin too. The course chooses PASSIVE. OpenMP reads ``OMP_WAIT_POLICY``
    once, when ``import torch`` loads it, so this is what it read then: "default" also
    when torch was imported before cnncourse and the variable was not set yet.
    """
    import cnncourse

    if getattr(cnncourse, "_OMP_POLICY_TOO_LATE", False):
        return "default"
    value = os.environ.get("OMP_WAIT_POLICY", "").strip().upper()
    return value if value in {"PASSIVE", "ACTIVE"} else "default"


_WAIT_POLICY_NOTES = {
    "PASSIVE": "PASSIVE (idle threads sleep: fine beside other busy programs)",
    "ACTIVE": "ACTIVE (idle threads spin: slow beside other busy programs)",
    "default": (
        "default (idle threads spin: slow beside other busy programs; "
        "set OMP_WAIT_POLICY=PASSIVE before starting Jupyter)"
    ),
}


def environment_report() -> dict[str, str]:
    """Versions and hardware, as a dict of strings: what the welcome notebook prints."""
    import torchvision

    device = get_device()
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": str(device),
        "cpu threads": str(torch.get_num_threads()),
        "wait policy": _WAIT_POLICY_NOTES[omp_wait_policy()],
        "grading mode": str(grading_mode()),
    }
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    return report
