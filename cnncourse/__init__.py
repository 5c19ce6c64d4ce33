"""cnncourse: the helper library of a notebook course on modern CNN architectures.

Modules: ``utils`` (device, seeding, grading mode), ``data`` (offline and torchvision
datasets), ``train`` (fit / evaluate), ``plot`` (curves, image grids, filters),
``grading`` (helpers for nbgrader test cells), ``layers`` (from-scratch reference
layers), ``shapes`` (output sizes, parameter and MAC counts, receptive fields, summary),
``models`` (reference architectures, LeNet-5 to ResNeXt).
"""

from . import data, grading, layers, models, plot, shapes, train, utils

__version__ = "0.1.0"
__all__ = ["data", "grading", "layers", "models", "plot", "shapes", "train", "utils"]
