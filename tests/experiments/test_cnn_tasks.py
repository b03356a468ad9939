"""The CNN tasks end to end (``reproduce table5``) on tiny synthetic files written in the
CIFAR-10, CIFAR-100 (python pickle batches) and SVHN (.mat, needs SciPy) formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.reproduce import reproduce

RNG = np.random.default_rng(7)


def _cifar_batch(path, n: int, label_key: str, classes: int) -> None:
    data = RNG.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = RNG.integers(0, classes, n).tolist()
    path.write_bytes(pickle.dumps({"data": data, label_key: labels}, protocol=2))


def write_cifar10(root, n: int = 6) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _cifar_batch(folder / f"data_batch_{i}", n, "labels", 10)
    _cifar_batch(folder / "test_batch", n, "labels", 10)


def write_cifar100(root, n: int = 30) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    _cifar_batch(folder / "train", n, "fine_labels", 100)
    _cifar_batch(folder / "test", 6, "fine_labels", 100)


def write_svhn(root, n: int = 30) -> None:
    scipy_io = pytest.importorskip("scipy.io", reason="SVHN .mat files need scipy")
    folder = root / "svhn"
    folder.mkdir(parents=True)
    for name, count in (("train_32x32.mat", n), ("test_32x32.mat", 6)):
        x = RNG.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
        y = RNG.integers(1, 11, (count, 1)).astype(np.uint8)  # SVHN labels 1..10
        scipy_io.savemat(str(folder / name), {"X": x, "y": y})


def test_table5_end_to_end_on_synthetic_cifar_and_svhn_files(tmp_path, capsys):
    data = tmp_path / "data"
    write_cifar10(data)
    write_cifar100(data)
    write_svhn(data)
    out, res = tmp_path / "runs", tmp_path / "results"
    assert reproduce("table5", seeds=1, epochs=1, out=out, results_dir=res, data_dir=data,
                     threads=1, progress=False) == 0
    for task in ("cifar100-vgg", "cifar10-vgg", "svhn-cnn"):
        for variant in ("base", "bn", "gaaf", "bn-gaaf"):
            rec = records.read_record(records.run_dir(out, task, variant, 0))
            assert rec["status"] == "finished", (task, variant)
            assert rec["data_sizes"] == {"train": 27, "val": 3, "test": 6}
            assert rec["config"]["protocol"]["grad_clip"] == 5.0
    table = (res / "table5.md").read_text()
    assert "| +BN +GAAF | GAAF |" in table and "69.36" in table and "94.16" in table
    assert (res / "table5.png").is_file()


def test_table5_skips_a_task_whose_data_is_missing(tmp_path):
    data = tmp_path / "data"
    write_svhn(data)
    res = tmp_path / "results"
    assert reproduce("table5", seeds=1, epochs=1, tasks=["svhn-cnn", "cifar100-vgg"],
                     out=tmp_path / "runs", results_dir=res, data_dir=data, threads=1,
                     progress=False) == 0
    table = (res / "table5-svhn-cnn-cifar100-vgg.md").read_text()
    assert "cifar100-vgg: not run (dataset not found)" in table
