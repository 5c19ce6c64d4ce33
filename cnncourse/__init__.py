"""cnncourse: the helper library of a notebook course on modern CNN architectures.

Modules: ``utils`` (device, seeding, grading mode), ``data`` (offline and torchvision
datasets), ``train`` (fit / evaluate), ``plot`` (curves, image grids, filters),
``grading`` (helpers for nbgrader test cells), ``layers`` (from-scratch reference
layers), ``shapes`` (output sizes, parameter and MAC counts, receptive fields, summary),
``models`` (reference architectures, LeNet-5 to ResNeXt).
"""

import os
import sys

# torch's OpenMP threads spin while they wait for work, which makes training up to 40x
# slower beside one busy process on a 2-core laptop; PASSIVE makes them sleep instead.
# OpenMP reads the variable once, when `import torch` loads it. The venv made by
# `make install` sets it at interpreter start (a .pth file); this covers other installs
# (conda, plain pip) when cnncourse is imported before torch. Whether it came too late is
# recorded for utils.omp_wait_policy().
_OMP_POLICY_TOO_LATE = "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import data, grading, integrity, layers, models, plot, shapes, train, utils  # noqa: E402

# The objects test cells rely on, as they are before any student code runs (the setup
# cell imports cnncourse first; the grader imports it before the first cell).
integrity._init()

__version__ = "0.1.0"
__all__ = ["data", "grading", "layers", "models", "plot", "shapes", "train", "utils"]
