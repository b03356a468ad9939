"""scripts/gpu_check.sh --rehearse, in its short form: the GPU run's script runs on a
CPU, so it cannot rot between GPU runs. Forced out of time, it still leaves a complete
roofline.md, a summary.md saying what timed out and what was skipped, and the partial
output of the step that was cut off."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_rehearsal_out_of_time_keeps_the_roofline_and_says_what_was_skipped(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, GAAF_GPU_CHECK_QUICK="1",
               GAAF_GPU_CHECK_BUDGET="55", GAAF_GPU_CHECK_FORCE_TIMEOUT="gpu tests",
               TMPDIR=str(tmp_path))
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--rehearse",
                           str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # a timeout fails
    summary = (out / "summary.md").read_text()
    files = sorted(p.name for p in out.iterdir())
    assert files == ["console.log", "gpu_check.tar.gz", "roofline.md", "summary.md"]
    roofline = (out / "roofline.md").read_text()
    assert "REHEARSAL on a CPU" in roofline and "torch 2." in roofline
    rows = [line for line in roofline.splitlines() if line.startswith("| tanh") or
            line.startswith("| relu")]
    assert len(rows) == 4 and all(row.endswith("| ok |") for row in rows), summary
    assert "| gpu tests | TIMEOUT (partial output kept) |" in summary, summary
    assert "SKIPPED (out of time" in summary, summary
    assert "## Roofline: measured against predicted" in summary
    with tarfile.open(out / "gpu_check.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"./roofline.md", "./roofline.json", "./gpu_tests.txt", "./env.txt"} <= names
    assert list(tmp_path.glob("gaaf_gpu_check.*")) == []  # the work folder is removed
