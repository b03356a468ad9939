"""``gaaf analyze``: the statistics against NumPy, and every table and figure produced
from tiny recorded runs; bad arguments give one ``gaaf: ...`` line and exit 2."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gaaf_kernels.cli import main
from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.analysis import (
    THRESHOLDS,
    abs_correlations,
    count_above,
    forward_values,
    load_run,
)
from gaaf_kernels.experiments.analysis.plots import FIGURES, kde, kde_numpy
from gaaf_kernels.experiments.analysis.recording import make_recording_callbacks
from gaaf_kernels.experiments.cli import close_callbacks
from gaaf_kernels.experiments.models import build_model
from gaaf_kernels.experiments.train import RunConfig, train


def _numpy_pairs(values: np.ndarray) -> np.ndarray:
    keep = values.std(axis=0) > 1e-12  # a constant column's std may round to ~1e-17
    c = np.abs(np.corrcoef(values[:, keep], rowvar=False))
    return c[np.triu_indices(int(keep.sum()), 1)]


def test_correlation_counts_match_numpy_corrcoef():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 3))
    cols = [base[:, 0], base[:, 0] * -2 + 0.05 * rng.normal(size=300),  # |r| ~ 1
            base[:, 0] + 0.9 * base[:, 1], base[:, 1], base[:, 2] + 0.3 * base[:, 1],
            np.full(300, 0.7),  # zero variance: excluded
            rng.normal(size=300), np.tanh(base[:, 2] * 3)]
    values = np.stack(cols, axis=1)
    got, excluded = abs_correlations(values)
    want = _numpy_pairs(values)
    assert excluded == 1 and len(got) == 7 * 6 // 2
    np.testing.assert_allclose(got, want, atol=1e-12)
    counts = count_above(got)
    assert counts == [int((want > t).sum()) for t in THRESHOLDS]
    assert counts[0] >= 1 and counts[-1] > counts[0]  # the data spans the thresholds


def test_count_above_is_strict():
    assert count_above(np.array([0.9, 0.95, 0.5, 0.49, 1.0])) == [2, 3, 3, 3, 3]
    assert count_above(np.array([0.91, 0.81, 0.71, 0.61, 0.51])) == [1, 2, 3, 4, 5]


def test_float32_activations_and_all_constant():
    rng = np.random.default_rng(2)
    h = np.tanh(rng.normal(size=(500, 6)) * 2).astype(np.float32)
    got, excluded = abs_correlations(h)
    np.testing.assert_allclose(got, _numpy_pairs(h.astype(np.float64)), atol=1e-10)
    got, excluded = abs_correlations(np.ones((10, 4), dtype=np.float32))
    assert excluded == 4 and len(got) == 0


def test_kde_numpy_is_scotts_gaussian_kde():
    rng = np.random.default_rng(0)
    data = rng.normal(1.0, 2.0, size=500)
    grid = np.linspace(-8, 10, 181)
    dens = kde_numpy(data, grid)
    assert dens.sum() * (grid[1] - grid[0]) == pytest.approx(1.0, abs=2e-3)
    bw = data.std(ddof=1) * 500 ** -0.2
    manual = np.exp(-0.5 * ((grid[60] - data) / bw) ** 2).sum() / (500 * bw * np.sqrt(2 * np.pi))
    assert dens[60] == pytest.approx(manual, rel=1e-12)
    scipy_stats = pytest.importorskip("scipy.stats")
    np.testing.assert_allclose(dens, scipy_stats.gaussian_kde(data)(grid), rtol=1e-8)
    np.testing.assert_allclose(kde(data, grid), dens, rtol=1e-8)


def test_forward_values_are_nets_and_tanh_outputs():
    torch.manual_seed(0)
    model = build_model("tiny-mlp", "dropout")
    x = torch.randn(50, 1, 4, 4)
    nets, nodes = forward_values(model, x, batch=16)
    assert [n.shape for n in nets] == [(50, 16), (50, 16), (50, 16), (50, 4)]
    assert len(nodes) == 3
    for z, h in zip(nets, nodes):
        np.testing.assert_allclose(h, np.tanh(z), atol=1e-6)  # eval: dropout is identity
    np.testing.assert_allclose(nets[-1], model(x).detach().numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Recorded tiny-mlp runs: base, dropout (two seeds), gaaf."""
    out = tmp_path_factory.mktemp("runs")
    for variant, seed in [("base", 0), ("dropout", 0), ("dropout", 1), ("gaaf", 0)]:
        cfg = RunConfig(task="tiny-mlp", variant=variant, seed=seed, out=out, threads=1,
                        progress=False)
        cbs = make_recording_callbacks(cfg)
        train(cfg, callbacks=cbs)
        close_callbacks(cbs)
    return out


def _dirs(out, *names):
    return [str(out / "tiny-mlp" / n) for n in names]


def test_analyze_writes_every_table_and_figure(tiny_runs, tmp_path, capsys):
    dirs = _dirs(tiny_runs, "base/seed0", "dropout/seed0", "dropout/seed1", "gaaf/seed0")
    report_dir = tmp_path / "report"
    assert main(["analyze", *dirs, "--out", str(report_dir), "--test-limit", "40"]) == 0
    assert capsys.readouterr().out.strip() == str(report_dir / "analysis.md")
    for name in FIGURES.values():
        png = report_dir / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 300_000
    md = (report_dir / "analysis.md").read_text()
    for text in ["## Table 1", "## Table 2", "## Table 3", "## Figure 1", "## Figure 4",
                 "/ 174", "5.83e-04", "1.15e-03", "1.97", "Reading", "With dropout (n=2",
                 "(n=2)", "over the first 3 epochs", *(f"]({n})" for n in FIGURES.values())]:
        assert text in md, text
    assert "not measured" not in md
    for block in md.split("\n\n"):  # every markdown table keeps its column count
        rows = [r for r in block.splitlines() if r.startswith("|")]
        cols = {len(re.findall(r"(?<!\\)\|", r)) for r in rows}
        assert len(cols) <= 1, block
    res = json.loads((report_dir / "results.json").read_text())
    assert res["meta"]["test_examples"] == 40
    drop = res["variants"]["dropout"]
    assert drop["seeds"] == [0, 1] and drop["recorded_seeds"] == [0, 1]
    assert drop["net_variance"][0] == 0 and min(drop["net_variance"][1:]) > 0
    assert res["variants"]["base"]["net_variance"] == [0, 0, 0, 0]

    # Table 1's counts for one run, recomputed directly from the model and test inputs.
    run = load_run(dirs[0])
    model = build_model("tiny-mlp", "base", init=False)
    model.load_state_dict(torch.load(run.path / records.MODEL))
    from gaaf_kernels.experiments.datasets import load_splits
    from gaaf_kernels.experiments.tasks import get_task

    x = load_splits(get_task("tiny-mlp")).test_x[:40]
    with torch.no_grad():
        h1 = torch.tanh(model[1](x.flatten(1))).numpy().astype(np.float64)
    assert res["variants"]["base"]["corr_counts"][0] == [
        float((_numpy_pairs(h1) > t).sum()) for t in THRESHOLDS]

    # The mean over seeds of the recorded gradients, from the analysis.json files.
    per_seed = [json.loads((tiny_runs / "tiny-mlp/dropout" / s / "analysis.json").read_text())
                ["epochs"][-1]["grad_mean"] for s in ("seed0", "seed1")]
    np.testing.assert_allclose(drop["grad_mean"], np.mean(per_seed, axis=0), rtol=1e-12)


def test_analyze_without_recordings_still_reports(tiny_runs, tmp_path):
    plain = tmp_path / "plain"
    for name in ("base/seed0", "dropout/seed0"):
        shutil.copytree(tiny_runs / "tiny-mlp" / name, plain / name)
        (plain / name / "analysis.json").unlink()
    assert main(["analyze", str(plain / "base/seed0"), str(plain / "dropout/seed0"),
                 "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "analysis.md").read_text()
    assert "No run given has an `analysis.json`" in md
    assert not (tmp_path / "r" / FIGURES["recorded"]).exists()


def _bad_cases(runs, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs / "tiny-mlp/base/seed0", unfinished)
    rec = json.loads((unfinished / "record.json").read_text())
    (unfinished / "record.json").write_text(json.dumps(dict(rec, status="running")))
    other = tmp_path / "other"
    shutil.copytree(runs / "tiny-mlp/gaaf/seed0", other)
    (other / "record.json").write_text(json.dumps(dict(rec, task="mnist-mlp")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    ok = str(runs / "tiny-mlp/base/seed0")
    return [([str(tmp_path / "missing")], "no such run directory"),
            ([str(tmp_path / "empty")], "no readable record.json"),
            ([str(unfinished)], "not finished"),
            ([ok, str(other)], "several tasks"),
            ([ok, ok], "given twice"),
            ([ok, "--test-limit", "0"], "--test-limit must be >= 1"),
            ([ok, "--out", str(tmp_path / "file")], "not a directory")]


def test_bad_arguments_exit_2_with_one_line(tiny_runs, tmp_path, capsys):
    for args, message in _bad_cases(tiny_runs, tmp_path):
        code = main(["analyze", *args, "--out", str(tmp_path / "o")]
                    if "--out" not in args else ["analyze", *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(err) == 1 and err[0].startswith("gaaf: ") and message in err[0], err
    assert not (tmp_path / "o").exists()


def _assert_close(got, want, where="results"):
    if isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            _assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-12), where
    else:
        assert got == want, where


def test_analyze_reads_runs_of_the_previous_version(tmp_path, capsys):
    """fixtures/runs-v1: runs written, and analyzed, by the previous harness; the
    analysis of those same directories must give the numbers it gave then."""
    fixtures = Path(__file__).parent / "fixtures" / "runs-v1"
    dirs = [str(fixtures / "finished" / "tiny-mlp" / v / "seed0") for v in ("base", "dropout")]
    assert main(["analyze", *dirs, "--out", str(tmp_path), "--test-limit", "40"]) == 0
    got = json.loads((tmp_path / "results.json").read_text())
    want = json.loads((fixtures / "analysis-results.json").read_text())
    assert got["meta"]["runs"] == dirs
    del got["meta"]
    _assert_close(got, want)
    assert got["variants"]["dropout"]["recorded_seeds"] == [0]  # analysis.json was read
