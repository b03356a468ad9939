"""Safe checkpoints: a ``checkpoint.pt`` carrying code is refused before anything in it
runs; checkpoints written by the previous harness (``fixtures/runs-v1``) still resume."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from gaaf_kernels.cli import main
from gaaf_kernels.experiments import checkpoint, records
from gaaf_kernels.experiments.train import HarnessError, RunConfig, train

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v1"
TIMES = ("train_time_s", "epoch_time_s", "examples_per_s", "mean_train_time_s")


def _cfg(out) -> RunConfig:
    # The configuration of fixtures/runs-v1/interrupted (see fixtures/README.md).
    return RunConfig(task="tiny-mlp", variant="dropout", seed=3, out=out, threads=1,
                     progress=False)


def _interrupted(tmp_path) -> Path:
    """A copy of the v1 run interrupted in epoch 3 (checkpoint after epoch 2)."""
    shutil.copytree(FIXTURES / "interrupted", tmp_path / "runs")
    return records.run_dir(tmp_path / "runs", "tiny-mlp", "dropout", 3)


def _metrics(record: dict) -> tuple[list, dict]:
    epochs = [{k: v for k, v in e.items() if k not in TIMES} for e in record["epochs"]]
    return epochs, {k: v for k, v in record["final"].items() if k not in TIMES}


class _Payload:
    """Unpickling this creates a directory: a stand-in for arbitrary code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.target),))


class _Steps:
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_batch_end(self, model, step):
        self.steps.append(step)


def _plant_payload(run: Path, target: Path) -> None:
    """Rewrite the run's checkpoint with the payload hidden in its history."""
    ckpt = torch.load(run / records.CHECKPOINT, weights_only=False)
    ckpt["state"]["history"][0]["note"] = _Payload(target)
    torch.save(ckpt, run / records.CHECKPOINT)


def test_v1_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
    run = _interrupted(tmp_path)
    assert records.read_record(run)["status"] == "running"
    steps = _Steps()
    resumed = train(_cfg(tmp_path / "runs"), callbacks=[steps])
    assert steps.steps == list(range(13, 19))  # only epoch 3 (6 steps) was trained again
    assert [s["start_epoch"] for s in resumed["segments"]] == [0, 2]
    straight = train(_cfg(tmp_path / "straight"))
    assert _metrics(resumed) == _metrics(straight)
    a = torch.load(run / records.MODEL)
    b = torch.load(records.run_dir(tmp_path / "straight", "tiny-mlp", "dropout", 3)
                   / records.MODEL)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_with_code_is_refused_and_nothing_runs(tmp_path):
    run = _interrupted(tmp_path)
    target = tmp_path / "pwned"
    _plant_payload(run, target)
    record_before = (run / records.RECORD).read_bytes()
    with pytest.raises(HarnessError, match="was refused") as info:
        train(_cfg(tmp_path / "runs"))
    assert f"it references {os.mkdir.__module__}.mkdir" in str(info.value)
    assert "Nothing in it was loaded or run" in str(info.value)
    assert not target.exists()
    assert (run / records.RECORD).read_bytes() == record_before  # nothing was written
    assert not (run / records.MODEL).exists()
    # The payload is live: an unsafe load would have run it.
    torch.load(run / records.CHECKPOINT, weights_only=False)
    assert target.is_dir()


def test_gaaf_train_refuses_it_in_one_line(tmp_path, capsys):
    run = _interrupted(tmp_path)
    target = tmp_path / "pwned"
    _plant_payload(run, target)
    code = main(["train", "tiny-mlp", "--variant", "dropout", "--seed", "3", "--threads", "1",
                 "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("gaaf: ") and "was refused" in err[0], err
    assert not target.exists()


def test_load_allows_numpy_only_while_loading(tmp_path):
    path = tmp_path / "checkpoint.pt"
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(2, 2)
    checkpoint.save(path, config={"a": 1}, model=model,
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    rng=[checkpoint.rng_state(gen)], state={"epoch": 1})
    before = set(torch.serialization.get_safe_globals())
    ckpt = checkpoint.load(path)
    assert set(torch.serialization.get_safe_globals()) == before  # the allow-list was scoped
    assert ckpt["config"] == {"a": 1} and ckpt["state"] == {"epoch": 1}
    name, keys, *_ = ckpt["rng"][0]["numpy"]
    assert name == "MT19937" and keys.dtype.name == "uint32" and keys.shape == (624,)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # outside load(): NumPy is not allowed


@pytest.mark.parametrize("content", [[1, 2], {"config": {}, "model": {}}],
                         ids=["not-a-dict", "missing-keys"])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    torch.save(content, path)
    with pytest.raises(checkpoint.CheckpointError, match="not a training checkpoint"):
        checkpoint.load(path)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(checkpoint.CheckpointError, match="cannot be read"):
        checkpoint.load(path)
