"""torchrun with 2 Gloo processes: same records, same result as one process (no dropout,
batches divide evenly, so the DDP gradient average equals the full-batch gradient)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.train import RunConfig, train


def test_torchrun_two_gloo_processes_match_one_process(tmp_path):
    env = dict(os.environ, GAAF_COMPILE="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "gaaf_kernels.experiments", "tiny-mlp", "--variant", "gaaf",
           "--out", str(tmp_path / "ddp"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("test accuracy") == 1  # only rank 0 reports
    run = records.run_dir(tmp_path / "ddp", "tiny-mlp", "gaaf", 0)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "model.pt", "record.json"]
    ddp = records.read_record(run)
    assert ddp["status"] == "finished" and ddp["config"]["world_size"] == 2
    assert len(torch.load(run / "checkpoint.pt", weights_only=False)["rng"]) == 2

    single = train(RunConfig(task="tiny-mlp", variant="gaaf", out=tmp_path / "one",
                             threads=1, progress=False))
    assert single["config"]["world_size"] == 1
    for a, b in zip(ddp["epochs"], single["epochs"]):
        for key in ("train_loss", "val_loss", "test_loss"):
            assert abs(a[key] - b[key]) < 1e-4, (key, a[key], b[key])
    w_ddp = torch.load(run / "model.pt")
    w_one = torch.load(records.run_dir(tmp_path / "one", "tiny-mlp", "gaaf", 0) / "model.pt")
    for k in w_one:
        torch.testing.assert_close(w_ddp[k], w_one[k], atol=1e-5, rtol=1e-4)
