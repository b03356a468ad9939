"""``gaaf study depth|sensitivity`` end to end on the tiny synthetic tasks: the tables
report what the run directories hold, finished runs are reused, an interrupted run
resumes with its recorders intact, and bad arguments exit 2."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from gaaf_kernels.cli import main
from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.datasets import tiny_dataset
from gaaf_kernels.experiments.models import build_model
from gaaf_kernels.experiments.tasks import get_task
from support import straight_and_resumed

PNG = b"\x89PNG\r\n\x1a\n"


def _study(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["study", *args, "--tiny", "--no-progress"])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _record(runs: Path, run: dict) -> dict:
    return json.loads((runs / run["task"] / run["variant"] / f"seed{run['seed']}"
                       / "record.json").read_text())


def _diverged(rec: dict) -> bool:
    """NaN/inf loss in an epoch, or test accuracy below twice the chance level."""
    chance = 100 / get_task(rec["task"]).num_classes
    bad_loss = any(not math.isfinite(h[k]) for h in rec["epochs"]
                   for k in ("train_loss", "val_loss"))
    return bad_loss or rec["final"]["test_acc"] < 2 * chance


def _nets(runs: Path, run: dict) -> torch.Tensor:
    """The hidden Linear outputs on the test set, from model.pt, computed here."""
    task = get_task(run["task"])
    model = build_model(task, run["variant"], init=False)
    rdir = runs / run["task"] / run["variant"] / f"seed{run['seed']}"
    model.load_state_dict(torch.load(rdir / "model.pt", weights_only=True))
    model.eval()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][:-1]
    outs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.flatten())) for m in linears]
    with torch.no_grad():
        model(torch.from_numpy(tiny_dataset(task).test_x))
    for h in hooks:
        h.remove()
    return torch.cat(outs)


def _check_pngs(out: Path, names: list[str]) -> None:
    import matplotlib.image

    for name in names:
        assert (out / name).read_bytes()[:8] == PNG, name
        assert matplotlib.image.imread(out / name).ndim == 3


def _check_rows_against_records(table: dict, runs: Path, keys: tuple[str, ...]) -> None:
    recs = {(r["task"], r["variant"], r["seed"]): _record(runs, r) for r in table["runs"]}
    assert len(recs) == len(table["runs"])
    for row in table["rows"]:
        mine = [r for r in table["runs"] if all(r[k] == row[k] for k in keys)]
        rs = [recs[r["task"], r["variant"], r["seed"]] for r in mine]
        accs = [r["final"]["test_acc"] for r in rs]
        assert row["runs"] == len(rs) > 0
        assert row["test_acc"]["mean"] == pytest.approx(statistics.fmean(accs))
        if len(accs) > 1:
            assert row["test_acc"]["std"] == pytest.approx(statistics.stdev(accs))
        assert row["converged_epoch"]["mean"] == pytest.approx(
            statistics.fmean(r["final"]["converged_epoch"] for r in rs))
        assert row["diverged"] == sum(_diverged(r) for r in rs)


def test_depth_study_writes_tables_from_the_records_and_reuses_finished_runs(
        tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    args = ("depth", "--quick", "--seeds", "2", "--out", str(out), "--runs", str(runs))
    code, stdout, err = _study(capsys, *args)
    assert code == 0, err
    text = (out / "table.md").read_text()
    assert text.startswith("# Depth study") and text in stdout
    cpu = next(line.split(":", 1)[1].strip() for line in
               Path("/proc/cpuinfo").read_text().splitlines()
               if line.lower().startswith("model name"))
    assert cpu in text and f"torch {torch.__version__}" in text
    assert f"Command: `gaaf study depth --quick --seeds 2 --jobs 1 --out {out}" in text
    table = json.loads((out / "table.json").read_text())
    assert len(table["runs"]) == 2 * 4 * 2 and not table["missing"]  # depths x variants x seeds
    assert {r["variant"] for r in table["runs"]} == {"base", "dropout", "gaaf", "gaaf-band"}
    _check_rows_against_records(table, runs, ("depth", "variant"))
    assert len(re.findall(r"^tiny-deep\d+/[a-z-]+/seed\d: test ", err, re.M)) == 16  # one a run
    for row in table["rows"]:  # each row's cell in table.md is the recorded mean
        acc = row["test_acc"]
        assert (f"| {row['depth']} | {row['variant']} | {acc['mean']:.2f} ± "
                f"{acc['std']:.2f} |") in text

    run = next(r for r in table["runs"] if r["task"] == "tiny-deep6" and r["variant"] == "gaaf")
    nets = _nets(runs, run)
    assert run["frac_abs_gt2"] == pytest.approx(float((nets.abs() > 2).float().mean()))
    rdir = Path(run["dir"])
    grads = json.loads((rdir / "study_grads.json").read_text())
    first = grads["epochs"][0]
    assert first["grad_steps"] == math.ceil(192 / 32)  # every step of the epoch, counted once
    assert run["weight_grad_epoch1"] == pytest.approx(
        np.array(first["grad_sum"]) / first["grad_steps"])
    assert len(run["weight_grad_epoch1"]) == 7  # 6 hidden Linear layers + the output layer
    _check_pngs(out, ["accuracy_vs_depth.png", "gradients_per_layer.png",
                      "saturation_vs_depth.png"])

    stamps = {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    code, _, err = _study(capsys, *args)
    assert code == 0, err
    assert err.count("finished, skipped") == 16 and "0 to run" in err
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()} == stamps
    assert json.loads((out / "table.json").read_text())["rows"] == table["rows"]

    # the same runs directory with another protocol (not --quick): refused before training
    code, _, err = _study(capsys, "depth", "--seeds", "2", "--out", str(out),
                          "--runs", str(runs))
    assert code == 2 and err.startswith("gaaf: ") and "another protocol" in err, err
    assert len(err.strip().splitlines()) == 1


def test_sensitivity_study_in_two_worker_processes(tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    code, stdout, err = _study(capsys, "sensitivity", "--quick", "--jobs", "2",
                               "--out", str(out), "--runs", str(runs))
    assert code == 0, err
    table = json.loads((out / "table.json").read_text())
    variants = {r["variant"] for r in table["runs"]}
    assert variants == {"base", "gaaf-k1e2", "gaaf", "gaaf-k1e6", "gaaf-c10", "gaaf-band-k1e2",
                        "gaaf-band", "gaaf-band-k1e6", "gaaf-band-c10"}
    _check_rows_against_records(table, runs, ("variant",))
    text = (out / "table.md").read_text()
    assert "2 worker processes" in text and "## float32 and the sawtooth" in text
    for run in table["runs"]:
        assert f"{run['task']}/{run['variant']}/seed0: test " in err
        assert _record(runs, run)["machine"]["torch_threads"] == 1
    run = next(r for r in table["runs"] if r["variant"] == "gaaf-band-k1e6")
    assert run["K"] == 1e6 and run["band"] and run["c"] == 3.0
    xk = (_nets(runs, run) * torch.tensor(1e6, dtype=torch.float32)).abs()
    for bits in (23, 15):
        want = float((xk >= 2.0 ** bits).float().mean())
        assert run["float32"]["1e6"][f"ge_2^{bits}"] == pytest.approx(want)
    acc = _record(runs, run)["final"]["test_acc"]
    row = next(r for r in table["rows"] if r["variant"] == "gaaf-band-k1e6")
    assert row["test_acc"]["mean"] == acc
    assert f"| 1e6 | {_acc_cell(table, 'gaaf-k1e6')} | {acc:.2f} ± - | " in text
    _check_pngs(out, ["accuracy_vs_K.png"])


def _acc_cell(table: dict, variant: str) -> str:
    row = next(r for r in table["rows"] if r["variant"] == variant)
    return f"{row['test_acc']['mean']:.2f} ± - | {row['diverged']}/1"


def test_an_interrupted_run_resumes_with_its_gradient_record(tmp_path, monkeypatch):
    """Ctrl-C in epoch 2 keeps epoch 1; the resumed run's records equal a straight run's."""
    from gaaf_kernels.experiments.study import grid, runner

    def job(runs: Path) -> runner.Job:
        run = grid.StudyRun("tiny-deep3", "gaaf", 0, 3, 1e4, 3.0, False)
        return runner.Job(run, 3, 3, None, "cpu", str(runs), None, (1e4,), True)

    rdir = records.run_dir(tmp_path / "b", "tiny-deep3", "gaaf", 0)

    def interrupted() -> None:  # epoch 2 of 6 batches each
        assert runner.run_state(rdir, (1e4,)) == "train"
        assert [e["epoch"] for e in records.read_record(rdir)["epochs"]] == [1]

    straight_and_resumed(lambda which: job(tmp_path / which), monkeypatch, stop_at_step=8,
                         interrupted=interrupted)
    rec = records.read_record(rdir)
    assert [s["start_epoch"] for s in rec["segments"]] == [0, 1]
    assert {p.name for p in rdir.glob("*.json")} >= {
        "study_grads.json", "analysis.json", "study_nets.json"}


@pytest.mark.parametrize(("args", "message"), [
    (["width"], "unknown study 'width'"),
    (["depth", "--jobs", "0"], "--jobs must be a positive integer"),
    (["sensitivity", "--seeds", "0"], "--seeds must be >= 1"),
    (["depth", "--device", "tpu"], "unknown device"),
    (["depth", "--out", "FILE"], "exists and is not a directory"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / a) if a == "FILE" else a for a in args]
    code = main(["study", *args, "--runs", str(tmp_path / "runs"), "--no-progress"]
                + ([] if "--out" in args else ["--out", str(tmp_path / "out")]))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaaf: ") and message in lines[0], lines
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_missing_dataset_exits_1_with_the_fetch_hint(tmp_path, capsys):
    code = main(["study", "depth", "--quick", "--data-dir", str(tmp_path / "nodata"),
                 "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("gaaf: Dataset 'mnist' not found"), err
    assert "gaaf data fetch-mnist" in err
    assert not (tmp_path / "runs").exists()
