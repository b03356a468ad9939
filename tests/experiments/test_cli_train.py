"""Bad arguments to ``gaaf train`` / ``reproduce`` get one ``gaaf: ...`` line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gaaf_kernels.cli import main

ENV = dict(os.environ, GAAF_COMPILE="0")


def _run(*args: str, module: str = "gaaf_kernels.cli", cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=120)


CASES = [
    (["train", "imagenet-mlp"], "unknown task"),
    (["train", "mnist-mlp", "--variant", "bn"], "unknown variant"),
    (["train", "mnist-mlp", "--epochs", "-3"], "--epochs must be a positive integer"),
    (["train", "mnist-mlp", "--patience", "0"], "--patience must be a positive integer"),
    (["train", "mnist-mlp", "--device", "tpu"], "unknown device"),
    (["reproduce", "table9"], "unknown table"),
    (["reproduce", "table4", "--tasks", "nope"], "unknown task"),
    (["reproduce", "table4", "--variants", "bn"], "unknown variant 'bn' for mnist-mlp"),
]
if not torch.cuda.is_available():
    CASES.append((["train", "mnist-mlp", "--device", "cuda"], "no CUDA device"))


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    code = main([*args, "--out", str(tmp_path / "runs")])  # in-process: fast
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaaf: ") and message in lines[0], lines
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args", [CASES[0][0], CASES[2][0], CASES[-1][0]])
def test_bad_arguments_in_a_subprocess(tmp_path, args):
    proc = _run(*args, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaaf: "), lines


def test_module_entry_point_trains_and_rejects_bad_args(tmp_path):
    bad = _run("tiny-mlp", "--variant", "nope", module="gaaf_kernels.experiments")
    assert bad.returncode == 2 and bad.stderr.startswith("gaaf: unknown variant")
    ok = _run("train", "tiny-mlp", "--variant", "gaaf", "--epochs", "1", "--out",
              str(tmp_path), "--threads", "1", module="gaaf_kernels.experiments")
    assert ok.returncode == 0, ok.stderr
    assert "tiny-mlp/gaaf/seed0: test accuracy" in ok.stdout
    assert "epoch 1/1" in ok.stderr  # the progress bar
    assert (tmp_path / "tiny-mlp/gaaf/seed0/record.json").is_file()
