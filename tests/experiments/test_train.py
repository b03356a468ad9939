"""The training loop: determinism, exact resume, atomic records, callbacks, skipping."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from crashes import Crash, CrashAtStep
from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.datasets import crop_flip
from gaaf_kernels.experiments.train import HarnessError, RunConfig, train

TIMES = ("train_time_s", "epoch_time_s", "examples_per_s", "mean_train_time_s")


def _cfg(out, variant="dropout", **kw) -> RunConfig:
    return RunConfig(task="tiny-mlp", variant=variant, seed=3, out=out, threads=1,
                     progress=False, **kw)


def _metrics(record: dict) -> tuple[list, dict]:
    epochs = [{k: v for k, v in e.items() if k not in TIMES} for e in record["epochs"]]
    final = {k: v for k, v in record["final"].items() if k not in TIMES}
    return epochs, final


def _weights(path) -> dict:
    return torch.load(path, map_location="cpu")


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Counter:
    def __init__(self):
        self.steps, self.epochs = [], []

    def on_batch_end(self, model, step):
        assert isinstance(model, torch.nn.Module)
        self.steps.append(step)

    def on_epoch_end(self, model, epoch, metrics):
        self.epochs.append((epoch, metrics["val_acc"]))


@pytest.mark.parametrize("variant", ["dropout", "gaaf"])
def test_deterministic_for_a_fixed_seed(tmp_path, variant):
    a = train(_cfg(tmp_path / "a", variant))
    b = train(_cfg(tmp_path / "b", variant))
    assert _metrics(a) == _metrics(b)
    run = records.run_dir("", "tiny-mlp", variant, 3)
    _assert_same_weights(_weights(tmp_path / "a" / run / "model.pt"),
                         _weights(tmp_path / "b" / run / "model.pt"))
    c = train(RunConfig(task="tiny-mlp", variant=variant, seed=4, out=tmp_path / "c",
                        threads=1, progress=False))
    assert _metrics(c) != _metrics(a)  # the seed matters


def test_resume_after_crash_equals_uninterrupted(tmp_path):
    straight = train(_cfg(tmp_path / "straight"))  # 3 epochs of 6 steps
    with pytest.raises(Crash):
        train(_cfg(tmp_path / "crashed"), callbacks=[CrashAtStep(step=14)])  # in epoch 3
    run = tmp_path / "crashed" / records.run_dir("", "tiny-mlp", "dropout", 3)
    partial = records.read_record(run)
    assert partial["status"] == "running" and len(partial["epochs"]) == 2
    assert not (run / "model.pt").exists()
    counter = Counter()
    resumed = train(_cfg(tmp_path / "crashed"), callbacks=[counter])
    assert counter.steps == list(range(13, 19)) and [e for e, _ in counter.epochs] == [3]
    assert _metrics(resumed) == _metrics(straight)
    assert [s["start_epoch"] for s in resumed["segments"]] == [0, 2]
    ref = tmp_path / "straight" / records.run_dir("", "tiny-mlp", "dropout", 3)
    _assert_same_weights(_weights(ref / "model.pt"), _weights(run / "model.pt"))
    ck_a = torch.load(ref / "checkpoint.pt", weights_only=False)
    ck_b = torch.load(run / "checkpoint.pt", weights_only=False)
    _assert_same_weights(ck_a["model"], ck_b["model"])
    assert torch.equal(ck_a["rng"][0]["torch"], ck_b["rng"][0]["torch"])
    assert torch.equal(ck_a["rng"][0]["data"], ck_b["rng"][0]["data"])


def test_record_contents(tmp_path):
    rec = train(_cfg(tmp_path))
    on_disk = json.loads((tmp_path / "tiny-mlp/dropout/seed3/record.json").read_text())
    assert on_disk == json.loads(json.dumps(rec))
    assert rec["status"] == "finished"
    assert set(rec["versions"]) >= {"torch", "triton", "numpy", "gaaf_kernels", "python"}
    assert rec["machine"]["cpu_model"] and rec["device"] == "cpu"
    proto = rec["config"]["protocol"]
    assert proto["optimizer"] == "sgd" and proto["max_epochs"] == 3 and proto["patience"] == 2
    assert len(rec["epochs"]) == 3
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_acc", "epoch_time_s"):
        assert all(key in e for e in rec["epochs"])
    final = rec["final"]
    best = max(rec["epochs"], key=lambda e: (e["val_acc"], -e["epoch"]))
    assert final["converged_epoch"] == best["epoch"]
    assert final["test_acc"] == best["test_acc"]
    assert rec["wall_time_s"] > 0
    assert sorted(p.name for p in (tmp_path / "tiny-mlp/dropout/seed3").iterdir()) == [
        "checkpoint.pt", "model.pt", "record.json"]


def test_callbacks_and_finished_run_is_skipped(tmp_path):
    counter = Counter()
    first = train(_cfg(tmp_path), callbacks=[counter])
    assert counter.steps == list(range(1, 19))
    assert [e for e, _ in counter.epochs] == [1, 2, 3]
    again = Counter()
    assert train(_cfg(tmp_path), callbacks=[again]) == first
    assert again.steps == [] and again.epochs == []
    with pytest.raises(HarnessError, match="another configuration"):
        train(_cfg(tmp_path, epochs=2))


def test_atomic_record_survives_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    records.write_json_atomic(path, {"a": 1})

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        records.write_json_atomic(path, {"a": 2, "big": list(range(10000))})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temp file left


def test_bad_config_errors(tmp_path):
    for kw, match in [({"task": "nope"}, "unknown task"), ({"variant": "bn"}, "unknown variant"),
                      ({"epochs": -1}, "positive"), ({"device": "tpu"}, "unknown device")]:
        base = {"task": "tiny-mlp", "variant": "base", "out": tmp_path, "progress": False}
        with pytest.raises(HarnessError, match=match):
            train(RunConfig(**{**base, **kw}))
    assert not any(tmp_path.iterdir())


def test_config_is_validated_when_made():
    cfg = RunConfig(task="tiny-mlp", variant="base", epochs=7, patience=3)
    assert cfg.spec.name == "tiny-mlp"
    assert (cfg.protocol.max_epochs, cfg.protocol.patience) == (7, 3)
    assert cfg.spec.protocol.max_epochs == 3  # the task's own protocol is untouched
    with pytest.raises(HarnessError, match="--patience must be a positive integer, got 0"):
        dataclasses.replace(cfg, patience=0)
    with pytest.raises(HarnessError, match="--threads must be >= 1, got 0"):
        RunConfig(task="tiny-mlp", variant="base", threads=0)
    assert cfg == RunConfig(task="tiny-mlp", variant="base", epochs=7, patience=3)


def test_crop_flip_is_a_shifted_crop_or_its_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        crops = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)


def test_early_stopping_and_converged_epoch(tmp_path, monkeypatch):
    from gaaf_kernels.experiments import train as train_mod

    val = iter([50.0, 60.0, 60.0, 59.0, 70.0])  # best at epoch 2 (first of the tie)
    calls = {"n": 0}

    def scripted(model, x, y, batch_size=1000, world=None):
        calls["n"] += 1
        if calls["n"] % 2:  # validation, then test, every epoch
            return 1.0, next(val)
        return 1.0, 10.0 * (calls["n"] // 2)  # test accuracy 10 x epoch

    monkeypatch.setattr(train_mod, "evaluate", scripted)
    rec = train(_cfg(tmp_path, epochs=10))  # patience 2: stops after epoch 4
    assert [e["epoch"] for e in rec["epochs"]] == [1, 2, 3, 4]
    final = rec["final"]
    assert final["converged_epoch"] == 2 and final["stopped_early"] and final["epochs_run"] == 4
    assert final["test_acc"] == 20.0 and final["last_epoch_test_acc"] == 40.0


def _torch_settings() -> dict:
    return {"threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            # subnormal inputs are read as 0 while torch flushes denormals
            "flush_denormal": (torch.tensor([1e-39]) * 2.0).item() == 0.0}


class SettingsProbe:
    """Records torch's settings during the run; raises Crash at step 1 if asked."""

    def __init__(self, crash: bool) -> None:
        self.crash, self.seen = crash, None

    def on_batch_end(self, model, step):
        self.seen = _torch_settings()
        if self.crash:
            raise Crash


@pytest.mark.parametrize("crash", [False, True], ids=["returns", "raises"])
def test_torch_settings_are_the_callers_again_after_the_run(tmp_path, crash):
    before = _torch_settings()
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    try:
        torch.set_num_threads(2)
        torch.use_deterministic_algorithms(False)
        caller = _torch_settings()
        probe = SettingsProbe(crash)
        if crash:
            with pytest.raises(Crash):
                train(_cfg(tmp_path), callbacks=[probe])
        else:
            train(_cfg(tmp_path), callbacks=[probe])
        assert probe.seen == {"threads": 1, "deterministic": True, "warn_only": True,
                              "flush_denormal": True}  # the run's (threads=1 in _cfg)
        assert _torch_settings() == caller == {"threads": 2, "deterministic": False,
                                               "warn_only": False, "flush_denormal": False}
    finally:
        torch.set_num_threads(before["threads"])
        torch.use_deterministic_algorithms(before["deterministic"],
                                           warn_only=before["warn_only"])
        torch.set_flush_denormal(before["flush_denormal"])
