"""examples/hf_finetune.py runs: GPT-2's activations become GAAF and the loss falls."""

from __future__ import annotations

import math
import os
import runpy
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("transformers", reason="transformers is not installed")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hf_finetune.py"


def test_example_trains_a_converted_model(capsys):
    main = runpy.run_path(str(EXAMPLE), run_name="example")["main"]
    losses, report = main(steps=12, log_every=4)
    assert report.left_alone == []
    assert report.counts() == {("transformers.activations.NewGELUActivation", "gelu_tanh"): 2}
    assert all(math.isfinite(x) for x in losses)
    # A byte-level model starts near log(256) = 5.5 nats; 12 steps on a repeated text
    # must bring it well below.
    assert losses[0] > 4.5 and losses[-1] < losses[0] - 1.0
    out = capsys.readouterr().out
    assert "2 x transformers.activations.NewGELUActivation -> gelu_tanh" in out
    assert "step  12" in out
