"""``gaaf study cnn`` on the tiny synthetic tasks: the tables report what the run
directories hold, dead units and the epoch-1 gradient norm are what they say, finished
runs are reused and an interrupted run resumes with its records intact."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from gaaf_kernels import GAAF
from gaaf_kernels.cli import main
from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.datasets import tiny_dataset
from gaaf_kernels.experiments.models import build_model
from gaaf_kernels.experiments.study import cnn, grid, runner
from gaaf_kernels.experiments.tasks import get_task
from gaaf_kernels.experiments.train import HarnessError, RunConfig, make_optimizer
from support import straight_and_resumed

PNG = b"\x89PNG\r\n\x1a\n"


def _study(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["study", "cnn", *args, "--tiny", "--no-progress"])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _never_positive(model: nn.Module, x: torch.Tensor) -> list[tuple[int, int]]:
    """(units, dead) per activation layer, by running the layers one by one."""
    out = []
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, (nn.ReLU, nn.LeakyReLU, GAAF)):
                peak = x.amax(dim=(0, 2, 3)) if x.dim() == 4 else x.amax(dim=0)
                out.append((peak.numel(), int((peak <= 0).sum())))
            x = layer(x)
    return out


def test_variant_names_build_the_models_they_say():
    bn_leaky = build_model("tiny-cnn-study", "bn-leaky")
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn_leaky)
    assert [m.negative_slope for m in bn_leaky if isinstance(m, nn.LeakyReLU)] == [0.01] * 6
    for shape in ("bsilu", "nelu"):
        acts = [m for m in build_model("tiny-deep-cnn", f"gaaf-{shape}") if isinstance(m, GAAF)]
        assert len(acts) == 6 and {m.config.shape.name for m in acts} == {shape}
    assert RunConfig(task="tiny-deep-cnn", variant="gaaf-noclip").protocol.grad_clip is None
    assert RunConfig(task="tiny-deep-cnn", variant="gaaf").protocol.grad_clip == 5.0


def test_dead_units_counts_channels_and_features_that_are_never_positive():
    model = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(3, 2),
                          GAAF("relu"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -1.0, 0.0]).view(3, 1, 1, 1))
        model[0].bias.copy_(torch.tensor([0.0, 0.0, 0.0]))  # channel 3 is exactly 0: dead
        model[3].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]))
        model[3].bias.zero_()
    x = torch.rand(5, 1, 1, 1) + 0.1
    stats = cnn.dead_units(model, x, batch_size=2)
    assert [(s["units"], s["dead"]) for s in stats] == [(3, 2), (2, 1)]
    assert [(s["units"], s["dead"]) for s in stats] == _never_positive(model, x)
    with torch.no_grad():
        model[3].bias.fill_(float("nan"))
    assert [s["dead"] for s in cnn.dead_units(model, x)] == [2, 2]  # NaN is never positive


def test_cnn_study_tables_come_from_the_run_directories(tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    args = ("--quick", "--seeds", "2", "--out", str(out), "--runs", str(runs))
    code, stdout, err = _study(capsys, *args)
    assert code == 0, err
    table = json.loads((out / "table.json").read_text())
    assert not table["missing"] and len(table["runs"]) == 2 * 4
    assert {(r["task"], r["variant"]) for r in table["runs"]} == {
        ("tiny-cnn-study", "base"), ("tiny-deep-cnn", "base"), ("tiny-deep-cnn", "gaaf"),
        ("tiny-deep-cnn", "gaaf-bsilu")}
    text = (out / "table.md").read_text()
    assert text.startswith("# CNN study") and text in stdout
    test_x = torch.from_numpy(tiny_dataset(get_task("tiny-deep-cnn")).test_x)
    for run in table["runs"]:
        rdir = Path(run["dir"])
        rec = records.read_record(rdir)
        assert run["test_acc"] == rec["final"]["test_acc"]
        model = build_model(run["task"], run["variant"], init=False)
        model.load_state_dict(torch.load(rdir / "model.pt", weights_only=True))
        model.eval()
        mine = _never_positive(model, test_x)
        assert run["dead_end"] == pytest.approx(sum(d for _, d in mine) / sum(u for u, _ in mine))
        torch.manual_seed(run["seed"])
        start = _never_positive(build_model(run["task"], run["variant"]).eval(), test_x)
        assert run["dead_start"] == pytest.approx(
            sum(d for _, d in start) / sum(u for u, _ in start))
        assert math.isfinite(run["grad_norm_epoch1"]) and run["grad_norm_epoch1"] > 0
    for row in table["rows"]:
        accs = [r["test_acc"] for r in table["runs"]
                if (r["task"], r["variant"]) == (row["task"], row["variant"])]
        assert row["test_acc"]["mean"] == pytest.approx(statistics.fmean(accs))
        assert row["test_acc"]["std"] == pytest.approx(statistics.stdev(accs))
        assert f"| {row['variant']} | {row['test_acc']['mean']:.2f} ± " in text
    base = next(r for r in table["rows"] if r["task"] == "tiny-deep-cnn" and r["variant"] == "base")
    for variant in ("gaaf", "gaaf-bsilu"):
        row = next(r for r in table["rows"] if r["variant"] == variant)
        pooled = math.sqrt((row["test_acc"]["std"] ** 2 + base["test_acc"]["std"] ** 2) / 2)
        trained = max(row["test_accs"]) >= 50.0  # 4 classes: twice chance
        assert row["vs_base_sd"] == (pytest.approx(
            (row["test_acc"]["mean"] - base["test_acc"]["mean"]) / pooled) if trained else None)
    for name in cnn_figures():
        assert (out / name).read_bytes()[:8] == PNG, name

    stamps = {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    code, _, err = _study(capsys, *args)
    assert code == 0 and err.count("finished, skipped") == 8 and "0 to run" in err, err
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()} == stamps


def test_the_table_names_the_protocol_of_each_full_study_task_that_differs():
    from gaaf_kernels.experiments.study.cnn_report import _protocol_difference

    first = cnn.CNN_RUNS[0][0]
    shown = json.loads(json.dumps(RunConfig(task=first, variant="base", epochs=cnn.CNN_EPOCHS,
                                            patience=cnn.CNN_PATIENCE).protocol.to_dict()))
    said = {task: _protocol_difference(task, shown) for task, _ in cnn.CNN_RUNS}
    assert said == {task: ("Adam lr 0.001 (PyTorch's betas and eps), weight decay 0.0"
                           if task.endswith("-adam") else "") for task in said}
    assert sum(task.endswith("-adam") for task in said) == 2


def test_vs_base_is_left_empty_where_no_seed_trained():
    from gaaf_kernels.experiments.study.cnn_report import _vs_base

    def row(variant: str, accs: list[float]) -> dict:
        return {"task": "fashion-deep-cnn", "variant": variant, "test_accs": accs,
                "test_acc": {"mean": statistics.fmean(accs), "std": statistics.stdev(accs)}}

    base = row("base", [82.0, 83.0, 84.0])
    chance = row("gaaf-noclip", [10.0, 10.0, 10.01])  # 10 classes: 2x chance is 20%
    partly = row("gaaf", [10.0, 80.0, 81.0])
    assert _vs_base(chance, [base, chance]) is None
    assert _vs_base(partly, [base, partly]) == pytest.approx(
        (statistics.fmean([10.0, 80.0, 81.0]) - 83.0)
        / math.sqrt((statistics.stdev([10.0, 80.0, 81.0]) ** 2 + 1.0) / 2))


def cnn_figures() -> tuple[str, ...]:
    from gaaf_kernels.experiments.study.cnn_report import FIGURES

    return FIGURES


def _job(runs: Path, variant: str = "gaaf", task: str = "tiny-deep-cnn") -> runner.Job:
    run = grid.StudyRun(task, variant, 0, 5, 1e4, 3.0, False)
    return runner.Job(run, 2, 2, None, "cpu", str(runs), None, (), True, kind="cnn")


def test_the_gradient_norm_is_taken_before_clipping(tmp_path, monkeypatch):
    seen: list[float] = []
    clip = nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        seen.append(float(params[0].grad.norm()))  # the first conv's weight
        return clip(params, max_norm, *a, **k)

    monkeypatch.setattr(nn.utils, "clip_grad_norm_", spy)
    runner._execute(_job(tmp_path), lambda msg: None)
    grad = json.loads((records.run_dir(tmp_path, "tiny-deep-cnn", "gaaf", 0)
                       / cnn.GRAD).read_text())
    steps = math.ceil(192 / 32)  # epoch 1 only
    assert grad["steps"] == steps and len(seen) == 2 * steps
    assert grad["mean"] == pytest.approx(statistics.fmean(seen[:steps]), rel=1e-6)
    assert grad["max"] > 5.0  # GAAF's default relu shape without BN: clipping is active


def test_the_adam_tasks_train_with_adam_and_the_table_says_so(tmp_path, capsys, monkeypatch):
    protocol = RunConfig(task="tiny-deep-cnn-adam", variant="base").protocol
    opt = make_optimizer(build_model("tiny-deep-cnn-adam", "base"), protocol)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 1e-3
    with pytest.raises(HarnessError, match="unknown optimizer 'lbfgs'; choose from sgd, adam"):
        make_optimizer(nn.Linear(2, 2), replace(protocol, optimizer="lbfgs"))
    monkeypatch.setattr(cnn, "QUICK_RUNS", (("fashion-deep-cnn", ("base",)),
                                            ("fashion-deep-cnn-adam", ("base",))))
    code, _, err = _study(capsys, "--quick", "--out", str(tmp_path / "out"),
                          "--runs", str(tmp_path / "runs"))
    assert code == 0, err
    rdir = records.run_dir(tmp_path / "runs", "tiny-deep-cnn-adam", "base", 0)
    assert records.read_record(rdir)["config"]["protocol"]["optimizer"] == "adam"
    state = torch.load(rdir / records.CHECKPOINT, weights_only=False)["optimizer"]["state"]
    assert all("exp_avg_sq" in s for s in state.values()) and state  # Adam's moments
    text = (tmp_path / "out" / "table.md").read_text()
    assert "Protocol: SGD lr 0.05, momentum 0.9" in text
    assert text.count("as above") == 1  # the SGD task's protocol is the header's
    adam = text.index("## tiny-deep-cnn-adam")
    assert text.index("Protocol: as above, but Adam lr 0.001", adam) > adam


@pytest.mark.parametrize("task", ["tiny-deep-cnn", "tiny-deep-cnn-adam"])
def test_an_interrupted_cnn_run_resumes_with_its_records(tmp_path, monkeypatch, task):
    rdir = records.run_dir(tmp_path / "b", task, "gaaf", 0)

    def interrupted() -> None:  # epoch 2 of 6 batches each
        assert cnn.run_state(rdir) == "train" and (rdir / cnn.GRAD).is_file()

    straight_and_resumed(lambda which: _job(tmp_path / which, task=task), monkeypatch,
                         stop_at_step=8, interrupted=interrupted)
    assert cnn.run_state(rdir) == "done"
    assert {p.name for p in rdir.glob("*.json")} >= {cnn.GRAD, cnn.DEAD}
