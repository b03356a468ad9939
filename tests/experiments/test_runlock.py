"""No data lost in the harness: one writer per run directory, a clear stop for the
second, stale locks and stray temporaries cleaned, an unusable --out refused at once."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from types import SimpleNamespace

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


HOLD = """
import sys, time
from gaaf_kernels.experiments.runlock import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(rdir):
    """A child process that takes the lock and sleeps (a run in progress)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(rdir)], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_killed_with_sigkill_leaves_a_lock_the_next_run_takes_over(tmp_path):
    rdir = run_dir(tmp_path)
    proc = _holder(rdir)
    try:
        with pytest.raises(RunLockedError, match=f"pid {proc.pid} on "):
            RunLock(rdir).acquire()
    finally:
        proc.kill()
        proc.wait()
    assert json.loads((rdir / LOCK).read_text())["pid"] == proc.pid  # left behind
    with RunLock(rdir) as lock:
        assert lock.held
        assert json.loads((rdir / LOCK).read_text())["pid"] == os.getpid()
    assert not (rdir / LOCK).exists()


def test_a_lock_file_naming_a_live_process_that_holds_no_lock_is_stale(tmp_path):
    """The pid of a dead run can be reused by another process: only a held lock counts."""
    rdir = run_dir(tmp_path)
    rdir.mkdir(parents=True)
    (rdir / LOCK).write_text(json.dumps({"pid": os.getppid(), "host": platform.node()}))
    with RunLock(rdir) as lock:
        assert lock.held


def test_second_gaaf_reproduce_on_the_same_run_stops_at_once(tmp_path):
    out, results = tmp_path / "runs", tmp_path / "results"
    # the first run of table4 on tiny-mlp is base/seed0; another process holds it
    proc = _holder(records.run_dir(out, "tiny-mlp", "base", 0))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gaaf_kernels.cli", "reproduce", "table4", "--tasks",
             "tiny-mlp", "--seeds", "1", "--epochs", "1", "--out", str(out),
             "--results-dir", str(results), "--no-fetch", "--no-progress"],
            capture_output=True, text=True, env=ENV, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert done.returncode == 2, done.stderr
    assert f"being written by another run (pid {proc.pid}" in done.stderr
    assert str(records.run_dir(out, "tiny-mlp", "base", 0) / LOCK) in done.stderr
    assert list(results.iterdir()) == []  # no table written from a partial set of runs


def _unwritable(tmp_path):
    if os.geteuid() != 0:
        ro = tmp_path / "read-only"
        ro.mkdir()
        ro.chmod(0o500)
        return ro
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("running as root without sysfs: no directory here that root cannot write")
    return "/sys/kernel/gaaf-runs"  # sysfs refuses new entries, even to root


def test_unwritable_out_fails_before_the_first_epoch(tmp_path):
    out = _unwritable(tmp_path)
    epochs = []
    with pytest.raises(HarnessError, match=f"cannot write the run directory .*{out}"):
        train(config(out), callbacks=[SimpleNamespace(
            on_epoch_end=lambda *a: epochs.append(a), on_batch_end=lambda *a: None)])
    assert epochs == []


@pytest.mark.parametrize("option", ["out", "results_dir"])
def test_reproduce_refuses_a_file_as_out_or_results_dir_before_the_first_run(tmp_path,
                                                                              option):
    from gaaf_kernels.experiments.reproduce import reproduce

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    kw = {"out": tmp_path / "runs", "results_dir": tmp_path / "results", option: blocked}
    with pytest.raises(HarnessError, match=f"cannot write {blocked}"):
        reproduce("table4", seeds=1, tasks=["tiny-mlp"], epochs=1, threads=1, fetch=False,
                  progress=False, **kw)
    assert not (tmp_path / "runs" / "tiny-mlp").exists()  # no run started
