"""No data lost in the harness: one writer per run directory, a clear stop for the
second, stale locks and stray temporaries cleaned, an unusable --out refused at once."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.runlock import LOCK, RunLock, RunLockedError
from gaaf_kernels.experiments.train import HarnessError, RunConfig, train

ENV = dict(os.environ, GAAF_COMPILE="0")


def config(out, **kw) -> RunConfig:
    return RunConfig(task="tiny-mlp", variant="base", seed=0, out=out, threads=1,
                     progress=False, **kw)


def run_dir(out):
    return records.run_dir(out, "tiny-mlp", "base", 0)


def test_a_held_lock_stops_a_second_run_at_once(tmp_path):
    with RunLock(run_dir(tmp_path)):
        held = json.loads((run_dir(tmp_path) / LOCK).read_text())
        assert held == {"pid": os.getpid(), "host": platform.node()}
        with pytest.raises(HarnessError, match=f"being written by another run \\(pid "
                                               f"{os.getpid()}.*{LOCK}"):
            train(config(tmp_path))
    assert not (run_dir(tmp_path) / "record.json").exists()  # it stopped before writing


def test_second_gaaf_train_process_exits_non_zero_naming_the_lock(tmp_path):
    with RunLock(run_dir(tmp_path)):
        proc = subprocess.run([sys.executable, "-m", "gaaf_kernels.cli", "train", "tiny-mlp",
                               "--variant", "base", "--out", str(tmp_path), "--no-progress"],
                              capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode != 0
    assert LOCK in proc.stderr and "being written by another run" in proc.stderr


def test_stale_lock_of_a_dead_process_is_replaced_and_released(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    rdir = run_dir(tmp_path)
    rdir.mkdir(parents=True)
    (rdir / LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": platform.node()}))
    (rdir / ".record.json.abc123.tmp").write_bytes(b"torn")  # an interrupted write
    record = train(config(tmp_path, epochs=1))
    assert record["status"] == "finished"
    assert not (rdir / LOCK).exists()
    assert list(rdir.glob(".*.tmp")) == []


def test_a_lock_from_another_host_is_respected(tmp_path):
    rdir = run_dir(tmp_path)
    rdir.mkdir(parents=True)
    (rdir / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(RunLockedError, match="pid 1 on elsewhere"):
        RunLock(rdir).acquire()


def test_out_that_is_a_file_fails_before_the_first_epoch(tmp_path):
    out = tmp_path / "not-a-dir"
    out.write_text("")
    with pytest.raises(HarnessError, match="cannot write the run directory"):
        train(config(out))


def test_the_lock_is_released_when_the_run_fails(tmp_path, monkeypatch):
    from gaaf_kernels.experiments import train as train_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(train_module, "load_splits", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        train(config(tmp_path))
    assert not (run_dir(tmp_path) / LOCK).exists()
