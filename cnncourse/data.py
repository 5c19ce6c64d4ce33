"""Datasets for the course: offline ones that always work, torchvision ones when online.

Every dataset comes back as an :class:`ImageDataset`: normalised float images of shape
(N, C, H, W), integer labels of shape (N,), the class names and the normalisation used
(so plots can undo it). Splits are deterministic: the same ``seed`` gives the same images.

Offline (no network, no files):
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 1 channel).
- ``sprites``: procedurally drawn colour images (3x32x32, 10 classes) of any size you ask
  for. (``shapes`` is accepted as an older name for it.)

Online (downloaded once by torchvision into a cache folder):
- ``mnist``, ``fashion-mnist`` (1x28x28) and ``cifar10`` (3x32x32).

Every dataset is one :class:`DatasetSpec` in the table at the end of this file; adding a
dataset is adding an entry there.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ._checks import positive_int

__all__ = [
    "OFFLINE_DATASETS",
    "ONLINE_DATASETS",
    "SPLITS",
    "SPRITES_CLASSES",
    "DatasetSpec",
    "DatasetUnavailableError",
    "ImageDataset",
    "RandomCropFlip",
    "available_datasets",
    "default_root",
    "load_dataset",
    "make_loaders",
    "make_sprites",
]

SPLITS = ("train", "val", "test")
SPRITES_CLASSES = (
    "disk", "ring", "square", "frame", "triangle",
    "plus", "ellipse", "stripes", "checker", "crescent",
)  # fmt: skip

# How an offline dataset makes or reads its images: (split, seed, num_samples,
# val_fraction) -> (pixels in [0, 1] of shape (N, C, H, W), int64 labels of shape (N,)).
# It may return more than num_samples images; load_dataset keeps the first ones.
_Loader = Callable[[str, int, int | None, float], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset :func:`load_dataset` knows: where its pixels come from, how to normalise.

    Exactly one of ``loader`` (an offline dataset, made or read locally: a function of
    ``(split, seed, num_samples, val_fraction)`` returning pixels in [0, 1] and labels) and
    ``torchvision`` (for an online one, its class name in ``torchvision.datasets``;
    downloaded into the cache folder) is given. ``mean`` and ``std`` are
    the per-channel statistics of the training split in [0, 1] pixel units. ``classes``
    are the class names; ``None`` takes them from the torchvision dataset's files.
    """

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] | None = None
    loader: _Loader | None = None
    torchvision: str | None = None

    def __post_init__(self) -> None:
        if (self.loader is None) == (self.torchvision is None):
            raise ValueError(f"{self.name}: give exactly one of loader and torchvision")
        if len(self.mean) != len(self.std):
            raise ValueError(f"{self.name}: mean and std need one entry per channel")

    @property
    def offline(self) -> bool:
        """True when the dataset needs no network and no files."""
        return self.loader is not None


class DatasetUnavailableError(RuntimeError):
    """An online dataset is neither in the cache folder nor downloadable right now."""


class ImageDataset(Dataset):
    """Images and labels held in memory as tensors.

    Attributes:
        images: float32 tensor (N, C, H, W), normalised with ``mean`` and ``std``.
        labels: int64 tensor (N,).
        classes: class names, ``classes[label]``.
        mean, std: per-channel tuples used for normalisation (see :meth:`denormalize`).
        transform: ``None``, or a function applied to each (C, H, W) image as it is read
            (data augmentation, e.g. :class:`RandomCropFlip`); ``images`` stay unchanged.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        name: str = "",
        split: str = "",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"images: expected (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"labels: expected shape ({images.shape[0]},), got {tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels
        self.classes = tuple(classes)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.name = name
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # (C, H, W)

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Map normalised images back to [0, 1] pixel values (for plotting)."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        shape = (-1, 1, 1) if images.ndim == 3 else (1, -1, 1, 1)
        return (images * std.view(shape) + mean.view(shape)).clamp(0, 1)

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={self.image_shape}, classes={len(self.classes)})"
        )


class RandomCropFlip:
    """Data augmentation as AlexNet used it: a random crop and a random horizontal flip.

    AlexNet cut random 224x224 patches out of 256x256 images; at 32x32 the usual form
    pads ``padding`` pixels of zeros (the mean colour, in normalised images) on each side
    and cuts a random 32x32 window back out, i.e. shifts the image by up to ``padding``
    pixels. With probability ``flip`` the image is mirrored left-right. Works on one
    (C, H, W) image (an :class:`ImageDataset` ``transform``) and draws from torch's global
    generator, so ``torch.manual_seed`` makes it repeatable.
    """

    def __init__(self, padding: int = 4, flip: float = 0.5) -> None:
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding={padding!r}: expected an int >= 0")
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"flip={flip!r}: expected a probability in [0, 1]")
        self.padding = padding
        self.flip = flip

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3:
            raise ValueError(f"image: expected (C, H, W), got shape {tuple(image.shape)}")
        _, h, w = image.shape
        p = self.padding
        if p:
            padded = F.pad(image, (p, p, p, p))
            top, left = torch.randint(0, 2 * p + 1, (2,)).tolist()
            image = padded[:, top : top + h, left : left + w]
        if self.flip and torch.rand(()) < self.flip:
            image = image.flip(-1)
        return image

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip})"


def available_datasets() -> dict[str, tuple[str, ...]]:
    """The dataset names :func:`load_dataset` knows, grouped by whether they need a network."""
    return {"offline": OFFLINE_DATASETS, "online": ONLINE_DATASETS}


def _spec(name: object) -> DatasetSpec:
    """The table entry for ``name`` (any case, ``_`` or ``-``), or ``ValueError`` listing them."""
    key = name.lower().replace("_", "-") if isinstance(name, str) else None
    if key not in _DATASETS:
        raise ValueError(
            f"name={name!r}: unknown dataset; known offline: {', '.join(OFFLINE_DATASETS)}; "
            f"online (torchvision download): {', '.join(ONLINE_DATASETS)}"
        )
    return _DATASETS[key]


def default_root() -> Path:
    """Cache folder for downloaded datasets: ``$CNNCOURSE_DATA`` or ``~/.cache/cnncourse``."""
    env = os.environ.get("CNNCOURSE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "cnncourse"


def load_dataset(
    name: str,
    split: str = "train",
    *,
    seed: int = 0,
    num_samples: int | None = None,
    image_size: int | None = None,
    root: str | os.PathLike | None = None,
    download: bool = True,
    val_fraction: float = 0.1,
) -> ImageDataset:
    """Load one split of a dataset as normalised tensors.

    Args:
        name: one of ``digits``, ``sprites`` (offline) or ``mnist``, ``fashion-mnist``,
            ``cifar10`` (online, cached under ``root``). ``shapes`` is an older name of
            ``sprites``; the dataset returned is named ``sprites`` either way.
        split: ``train``, ``val`` or ``test``. ``val`` is carved out of the official
            training set (``val_fraction`` of it), so it never overlaps ``train``.
        seed: fixes the split (and, for ``sprites``, the images drawn).
        num_samples: ``sprites``: how many images to draw (default 10,000 / 1,000 / 2,000
            for train / val / test). Other datasets: keep the first ``num_samples`` of
            the split (handy for quick experiments).
        image_size: resize square images to this side length (e.g. 32 for LeNet on
            ``digits`` or ``mnist``); ``None`` keeps the native size.
        root: cache folder for online datasets (see :func:`default_root`).
        download: online datasets only: try to download when the files are not cached.
    """
    spec = _spec(name)
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
        raise ValueError(f"num_samples={num_samples!r}: expected a positive int or None")
    if image_size is not None and (not isinstance(image_size, int) or image_size <= 0):
        raise ValueError(f"image_size={image_size!r}: expected a positive int or None")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r}: expected a number in (0, 1)")

    if spec.offline:
        pixels, labels = spec.loader(split, seed, num_samples, val_fraction)
        classes = spec.classes
    else:
        pixels, labels, classes = _load_torchvision(spec, split, seed, root, download, val_fraction)
    if num_samples is not None:
        pixels, labels = pixels[:num_samples], labels[:num_samples]

    if image_size is not None and pixels.shape[-1] != image_size:
        pixels = F.interpolate(
            pixels,
            size=(image_size, image_size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        ).clamp_(0, 1)
    mean, std = spec.mean, spec.std
    images = (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return ImageDataset(
        images.contiguous(), labels, classes, mean, std, name=spec.name, split=split
    )


def make_loaders(
    name: str,
    batch_size: int = 128,
    *,
    seed: int = 0,
    num_workers: int = 0,
    num_train: int | None = None,
    num_eval: int | None = None,
    train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **dataset_kwargs,
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train, validation and test loaders for one dataset.

    The training loader shuffles with a generator seeded by ``seed``, so two runs see
    the batches in the same order. ``num_train`` / ``num_eval`` set the number of
    training and of validation/test images (see ``num_samples`` in :func:`load_dataset`).
    ``train_transform`` (e.g. :class:`RandomCropFlip`) augments the training images only.
    Other keyword arguments go to :func:`load_dataset`.
    """
    positive_int("batch_size", batch_size)
    train = load_dataset(name, "train", seed=seed, num_samples=num_train, **dataset_kwargs)
    train.transform = train_transform
    val = load_dataset(name, "val", seed=seed, num_samples=num_eval, **dataset_kwargs)
    test = load_dataset(name, "test", seed=seed, num_samples=num_eval, **dataset_kwargs)
    generator = torch.Generator().manual_seed(seed)
    pin = torch.cuda.is_available()
    train_loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=generator,
        num_workers=num_workers, pin_memory=pin,
    )  # fmt: skip
    val_loader = DataLoader(val, batch_size=batch_size * 2, num_workers=num_workers, pin_memory=pin)
    test_loader = DataLoader(
        test, batch_size=batch_size * 2, num_workers=num_workers, pin_memory=pin
    )
    return train_loader, val_loader, test_loader


# --------------------------------------------------------------------------- digits


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: (1797, 8, 8) pixel values 0..16 and (1797,) labels.

    Read straight from the file scikit-learn ships (what ``load_digits`` reads), because
    ``import sklearn`` alone takes about 2 s, which every notebook and every autograded
    submission that uses digits would pay. Falls back to ``load_digits`` if the file moves.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")  # 64 pixel columns, then the label
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def _load_digits(
    split: str, seed: int, num_samples: int | None, val_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    images, target = _digits_arrays()  # ships inside scikit-learn: no network
    pixels = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    labels = torch.tensor(target, dtype=torch.int64)
    # A fixed 20% test set, then val_fraction of the rest for validation.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = round(0.2 * len(labels))
    n_val = round(val_fraction * (len(labels) - n_test))
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    idx = parts[split]
    return pixels[idx], labels[idx]


# --------------------------------------------------------------------------- torchvision


def _offline_message(name: str, root: Path, reason: str) -> str:
    return (
        f"dataset {name!r} is not in the cache folder {root} and {reason}. "
        f"Use an offline dataset instead: {' or '.join(repr(n) for n in OFFLINE_DATASETS)} "
        f"(e.g. load_dataset('sprites')), or copy the torchvision files of {name!r} into "
        f"{root} (or set CNNCOURSE_DATA to a folder that has them)."
    )


def _torchvision_dataset(spec: DatasetSpec, train: bool, root: Path, download: bool):
    """Open a torchvision dataset from ``root``, downloading it once if allowed."""
    from torchvision import datasets

    name = spec.name
    cls = getattr(datasets, spec.torchvision)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError as missing:  # torchvision: "Dataset not found ..."
        if not download:
            raise DatasetUnavailableError(
                _offline_message(name, root, "download=False")
            ) from missing
    try:
        root.mkdir(parents=True, exist_ok=True)
        return cls(str(root), train=train, download=True)
    except (URLError, OSError, RuntimeError) as err:  # no network, DNS, HTTP errors
        raise DatasetUnavailableError(
            # torchvision's message lists every mirror tried, over several lines.
            _offline_message(name, root, f"downloading it failed ({' '.join(str(err).split())})")
        ) from err


def _load_torchvision(
    spec: DatasetSpec, split: str, seed: int, root, download: bool, val_fraction: float
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    root = Path(root) if root is not None else default_root()
    ds = _torchvision_dataset(spec, split != "test", root, download)
    data = ds.data  # MNIST: uint8 tensor (N, 28, 28); CIFAR10: uint8 ndarray (N, 32, 32, 3)
    if isinstance(data, np.ndarray):
        pixels = torch.from_numpy(data).permute(0, 3, 1, 2)
    else:
        pixels = data.unsqueeze(1)
    pixels = pixels.float().div_(255.0)
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    if split != "test":
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        n_val = round(val_fraction * len(labels))
        idx = order[:n_val] if split == "val" else order[n_val:]
        pixels, labels = pixels[idx], labels[idx]
    return pixels, labels, tuple(ds.classes)


# --------------------------------------------------------------------------- sprites

_DEFAULT_SPRITES_SIZES = {"train": 10_000, "val": 1_000, "test": 2_000}


def _load_sprites(
    split: str, seed: int, num_samples: int | None, val_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    n = num_samples if num_samples is not None else _DEFAULT_SPRITES_SIZES[split]
    # Different splits draw from different streams, so they never share an image.
    return make_sprites(n, seed=seed * 3 + SPLITS.index(split))


def make_sprites(
    n: int, *, seed: int = 0, image_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` colour images of ten sprite classes, deterministically from ``seed``.

    Each image is one shape (see ``SPRITES_CLASSES``) at a random position, size and
    rotation, in a random colour, on a background with a colour gradient, a small
    distracting blob and pixel noise. Labels are balanced (``i % 10`` before
    shuffling). Returns pixels in [0, 1] of shape (n, 3, image_size, image_size) and
    labels of shape (n,).

    Everything is vectorised over images, so 10,000 images take about a second.
    """
    positive_int("n", n)
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size={image_size!r}: expected an int >= 8")
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    labels = (torch.arange(n) % len(SPRITES_CLASSES))[torch.randperm(n, generator=g)]
    pixel = 2.0 / image_size  # width of one pixel in the [-1, 1] coordinate frame
    axis = (torch.arange(image_size) + 0.5) * pixel - 1.0
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")  # (S, S) each

    # Pose: centre, half-size and rotation of each shape.
    cx, cy = uniform(-0.3, 0.3, n, 1, 1), uniform(-0.3, 0.3, n, 1, 1)
    scale = uniform(0.5, 0.8, n, 1, 1)
    theta = uniform(0.0, 2 * math.pi, n, 1, 1)
    dx, dy = xs - cx, ys - cy  # (n, S, S)
    u = (dx * torch.cos(theta) + dy * torch.sin(theta)) / scale  # shape-local coordinates
    v = (-dx * torch.sin(theta) + dy * torch.cos(theta)) / scale

    # Signed distance to each shape's edge (negative inside), in shape units; computed
    # only for the images of that class.
    dist = torch.empty(n, image_size, image_size)
    for c, fn in enumerate(_SHAPE_SDFS):
        idx = (labels == c).nonzero(as_tuple=True)[0]
        if len(idx):
            dist[idx] = fn(u[idx], v[idx])
    # Anti-aliased coverage: a one-pixel ramp across the edge.
    alpha = (0.5 - dist * scale / pixel).clamp_(0, 1).unsqueeze(1)  # (n, 1, S, S)

    # Colours: background with a linear gradient, foreground kept apart from it.
    bg = uniform(0.0, 1.0, n, 3, 1, 1)
    direction = uniform(0.0, 2 * math.pi, n, 1, 1)
    ramp = (xs * torch.cos(direction) + ys * torch.sin(direction)).unsqueeze(1)  # (n,1,S,S)
    background = bg + uniform(-0.2, 0.2, n, 3, 1, 1) * ramp
    offset = torch.randn(n, 3, 1, 1, generator=g)
    offset = offset / offset.norm(dim=1, keepdim=True) * uniform(0.5, 0.9, n, 1, 1, 1)
    fg = (bg + offset).clamp(0, 1)
    images = background * (1 - alpha) + fg * alpha

    # Distractor: in 60% of the images, a small blob of random colour that carries no
    # label information.
    bx, by = uniform(-0.9, 0.9, n, 1, 1), uniform(-0.9, 0.9, n, 1, 1)
    radius = uniform(0.04, 0.12, n, 1, 1)
    blob = (radius - ((xs - bx) ** 2 + (ys - by) ** 2).sqrt()) / pixel + 0.5
    blob = blob.clamp_(0, 1).unsqueeze(1) * (torch.rand(n, 1, 1, 1, generator=g) < 0.6)
    images = images * (1 - blob) + uniform(0, 1, n, 3, 1, 1) * blob

    noise = torch.randn(n, 3, image_size, image_size, generator=g) * uniform(0.02, 0.08, n, 1, 1, 1)
    return (images + noise).clamp_(0, 1), labels


def _disk(u, v):
    return (u * u + v * v).sqrt() - 1.0


def _ring(u, v):
    return ((u * u + v * v).sqrt() - 0.72).abs() - 0.28


def _square(u, v):
    return torch.maximum(u.abs(), v.abs()) - 0.82


def _frame(u, v):
    return (torch.maximum(u.abs(), v.abs()) - 0.7).abs() - 0.22


def _triangle(u, v):
    # Equilateral triangle: the largest of three half-plane distances.
    angles = (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3)
    sides = [u * math.cos(a) + v * math.sin(a) for a in angles]
    return torch.maximum(torch.maximum(sides[0], sides[1]), sides[2]) - 0.55


def _plus(u, v):
    bar_h = torch.maximum(u.abs() - 0.95, v.abs() - 0.3)
    bar_v = torch.maximum(u.abs() - 0.3, v.abs() - 0.95)
    return torch.minimum(bar_h, bar_v)


def _ellipse(u, v):
    return ((u / 1.05) ** 2 + (v / 0.48) ** 2).sqrt().sub(1.0) * 0.48


def _stripes(u, v):
    # Three bars inside a disk: a texture, not an outline, tells this class apart.
    bars = 0.22 - (torch.remainder(u + 0.2, 0.8) - 0.4).abs()
    return torch.maximum(_disk(u, v), bars.neg())


def _checker(u, v):
    cells = torch.sin(u * math.pi * 1.25) * torch.sin(v * math.pi * 1.25)
    return torch.maximum(_square(u, v), -cells * 0.5)


def _crescent(u, v):
    inner = ((u - 0.45) ** 2 + v * v).sqrt() - 0.8
    return torch.maximum(_disk(u, v), -inner)


_SHAPE_SDFS = (
    _disk, _ring, _square, _frame, _triangle,
    _plus, _ellipse, _stripes, _checker, _crescent,
)  # fmt: skip


# --------------------------------------------------------------------------- the table

# Every dataset load_dataset knows. The torchvision mean/std figures are the usual
# published ones; digits and sprites were measured on their train splits with seed 0
# (tests/test_data.py checks they still hold).
_DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits", (0.3058,), (0.3763,),
            classes=tuple(str(d) for d in range(10)), loader=_load_digits,
        ),
        DatasetSpec(
            "sprites", (0.4956, 0.5011, 0.5024), (0.3106, 0.3064, 0.3056),
            classes=SPRITES_CLASSES, loader=_load_sprites,
        ),
        DatasetSpec("mnist", (0.1307,), (0.3081,), torchvision="MNIST"),
        DatasetSpec("fashion-mnist", (0.2860,), (0.3530,), torchvision="FashionMNIST"),
        DatasetSpec(
            "cifar10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
            torchvision="CIFAR10",
        ),
    )
}  # fmt: skip
# The old name of sprites, still used by shared design notes: load_dataset and
# make_loaders accept it, but it is listed nowhere (the dataset it returns is "sprites").
_DATASETS["shapes"] = _DATASETS["sprites"]

OFFLINE_DATASETS = tuple(k for k, s in _DATASETS.items() if s.name == k and s.offline)
ONLINE_DATASETS = tuple(k for k, s in _DATASETS.items() if s.name == k and not s.offline)
