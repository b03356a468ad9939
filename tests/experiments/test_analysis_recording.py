"""Analysis recording (experiments/analysis/recording.py): the gradient and net-variance numbers
against direct computations, no effect on training, exact across an interrupted run."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from torch import nn

from crashes import Crash, CrashAtEpochEnd, CrashAtStep
from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.analysis.recording import (
    ANALYSIS,
    AnalysisRecorder,
    GradientRecorder,
    NetVarianceRecorder,
    make_recording_callbacks,
    net_variance,
)
from gaaf_kernels.experiments.cli import (
    add_recording_arguments,
    close_callbacks,
    recording_callbacks,
)
from gaaf_kernels.experiments.train import RunConfig, train

TIMES = ("train_time_s", "epoch_time_s", "examples_per_s", "mean_train_time_s")


def _cfg(out, variant="dropout") -> RunConfig:
    return RunConfig(task="tiny-mlp", variant=variant, seed=3, out=out, threads=1,
                     progress=False)


def _train_recorded(cfg: RunConfig, extra=()) -> dict:
    cbs = make_recording_callbacks(cfg)
    try:
        return train(cfg, callbacks=[*cbs, *extra])
    finally:
        close_callbacks(cbs)


def _analysis(out) -> dict:
    return json.loads((records.run_dir(out, "tiny-mlp", "dropout", 3) / ANALYSIS).read_text())


def test_net_variance_matches_numpy():
    rng = np.random.default_rng(1)
    nets = rng.normal(size=(20, 5, 7)) * rng.uniform(0.1, 3, size=(1, 5, 7))
    assert net_variance(nets) == pytest.approx(np.var(nets, axis=0).mean(), rel=1e-12)
    const = np.broadcast_to(rng.normal(size=(1, 4, 3)), (20, 4, 3))
    assert net_variance(const) == 0.0
    known = np.array([[[1.0]], [[3.0]]])  # values 1 and 3: variance 1 (ddof=0)
    assert net_variance(known) == 1.0


def test_net_variance_recorder_on_captured_activations():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3))
    model.eval()
    batch = torch.randn(16, 6)
    seen: list[torch.Tensor] = []
    model[3].register_forward_hook(lambda m, i, o: seen.append(o.detach().double()))
    rng_before = torch.get_rng_state()
    rec = NetVarianceRecorder(batch, n_masks=20, seed=5)
    first, last = rec.measure(model, epoch=2)
    assert torch.equal(torch.get_rng_state(), rng_before)  # training's stream untouched
    assert not model.training  # the mode is restored
    assert len(seen) == 20
    stack = torch.stack(seen).numpy()
    assert last == pytest.approx(np.var(stack, axis=0).mean(), rel=1e-12)
    assert first == 0.0 and last > 0.0  # no dropout below the first layer
    assert rec.measure(model, epoch=2) == [first, last]  # the same masks for an epoch
    assert rec.measure(model, epoch=3)[1] != last


def test_gradient_recorder_matches_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rec = GradientRecorder()
    rec.attach(model)
    xs = [torch.randn(5, 3) for _ in range(2)]
    ys = [torch.tensor([0, 1, 1, 0, 1]), torch.tensor([1, 1, 0, 0, 0])]
    expected = []
    for x, y in zip(xs, ys):
        w1, b1, w2, b2 = (p.detach().double().numpy().copy() for p in model.parameters())
        xn = x.double().numpy()
        h = np.tanh(xn @ w1.T + b1)
        z2 = h @ w2.T + b2
        p = np.exp(z2 - z2.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g2 = (p - np.eye(2)[y.numpy()]) / len(y)  # d(mean CE)/dz2
        g1 = (g2 @ w2) * (1 - h * h)
        expected.append([np.abs(g1).mean(), np.abs(g2).mean()])
        with torch.no_grad():  # evaluation forwards are not recorded
            model(x)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.commit()
    assert rec.steps == 2
    np.testing.assert_allclose(rec.means(), np.mean(expected, axis=0), rtol=1e-5)
    rec.commit()  # no backward since: nothing added
    assert rec.steps == 2


def test_recording_does_not_change_training(tmp_path):
    plain = train(_cfg(tmp_path / "plain"))
    recorded = _train_recorded(_cfg(tmp_path / "rec"))
    strip = [{k: v for k, v in e.items() if k not in TIMES} for e in plain["epochs"]]
    assert strip == [{k: v for k, v in e.items() if k not in TIMES} for e in recorded["epochs"]]
    run = records.run_dir("", "tiny-mlp", "dropout", 3)
    a = torch.load(tmp_path / "plain" / run / "model.pt")
    b = torch.load(tmp_path / "rec" / run / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    data = _analysis(tmp_path / "rec")
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3]
    assert [e["step"] for e in data["epochs"]] == [6, 12, 18]
    assert data["layers"] == ["Layer1", "Layer2", "Layer3", "Last Layer"]
    assert len(data["batch_indices"]) == 128 and data["first_step"] == 1
    last = data["epochs"][-1]
    assert last["grad_steps"] == 18 and all(g > 0 for g in last["grad_mean"])
    assert last["net_variance"][0] == 0.0 and all(v > 0 for v in last["net_variance"][1:])


@pytest.mark.parametrize("crash", [CrashAtEpochEnd(3), CrashAtStep(14)],
                         ids=["after-epoch-write", "mid-epoch"])
def test_resumed_recording_equals_uninterrupted(tmp_path, crash):
    _train_recorded(_cfg(tmp_path / "straight"))
    with pytest.raises(Crash):
        _train_recorded(_cfg(tmp_path / "crashed"), extra=[crash])
    written = [e["epoch"] for e in _analysis(tmp_path / "crashed")["epochs"]]
    assert written == ([1, 2, 3] if isinstance(crash, CrashAtEpochEnd) else [1, 2])
    _train_recorded(_cfg(tmp_path / "crashed"))  # resumes from the epoch-2 checkpoint
    assert _analysis(tmp_path / "crashed") == _analysis(tmp_path / "straight")


def test_recording_joining_a_run_under_way_says_so(tmp_path):
    with pytest.raises(Crash):
        train(_cfg(tmp_path), callbacks=[CrashAtStep(8)])  # no recording: epoch 1 done
    _train_recorded(_cfg(tmp_path))
    data = _analysis(tmp_path)
    assert data["first_step"] == 7 and [e["epoch"] for e in data["epochs"]] == [2, 3]
    assert data["epochs"][-1]["grad_steps"] == 12


def test_recording_flag_and_callbacks(tmp_path):
    p = argparse.ArgumentParser()
    add_recording_arguments(p)
    assert p.parse_args([]).record_analysis is False
    args = p.parse_args(["--record-analysis"])
    cfg = _cfg(tmp_path)
    assert recording_callbacks(p.parse_args([]), cfg) == []
    cbs = recording_callbacks(args, cfg)
    assert len(cbs) == 1 and isinstance(cbs[0], AnalysisRecorder)
    assert cbs[0].path == records.run_dir(tmp_path, "tiny-mlp", "dropout", 3) / ANALYSIS
    close_callbacks(cbs)
    close_callbacks(cbs)  # idempotent
    assert cbs[0]._global is None
