"""``reproduce``: runs every variant and seed, skips finished runs, writes table and PNG."""

from __future__ import annotations

from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.reproduce import reproduce


def test_reproduce_skips_finished_runs_and_writes_the_table(tmp_path, capsys):
    out, res = tmp_path / "runs", tmp_path / "results"
    kw = dict(seeds=2, tasks=["tiny-mlp"], epochs=2, out=out, results_dir=res, threads=1,
              progress=False)
    assert reproduce("table4", **kw) == 0
    dirs = [records.run_dir(out, "tiny-mlp", v, s) for s in (0, 1)
            for v in ("base", "dropout", "gaaf")]
    assert all(records.read_record(d)["status"] == "finished" for d in dirs)
    table = (res / "table4-tiny-mlp.md").read_text()
    assert (res / "table4-tiny-mlp.png").stat().st_size > 1000
    for row in ("| Base Model | tanh |", "| +Dropout | tanh |", "| +GAAF | GAAF |"):
        assert row in table
    assert table.count("| 2 |") == 3  # two runs per variant
    assert table in capsys.readouterr().out

    before = {d: (d / "record.json").stat().st_mtime_ns for d in dirs}
    for f in dirs[4].iterdir():  # "lose" one run
        f.unlink()
    assert reproduce("table4", **kw) == 0
    err = capsys.readouterr().err
    assert err.count("finished, skipped") == 5
    for d in dirs:
        changed = (d / "record.json").stat().st_mtime_ns != before[d]
        assert changed == (d == dirs[4]), d
    assert records.read_record(dirs[4])["status"] == "finished"


def test_variants_and_patience_restrict_the_runs_and_the_table(tmp_path):
    out, res = tmp_path / "runs", tmp_path / "results"
    assert reproduce("table4", seeds=1, tasks=["tiny-mlp"], variants=["dropout"], epochs=3,
                     patience=1, out=out, results_dir=res, threads=1, progress=False) == 0
    assert [d.name for d in (out / "tiny-mlp").iterdir()] == ["dropout"]
    rec = records.read_record(records.run_dir(out, "tiny-mlp", "dropout", 0))
    assert rec["config"]["protocol"]["patience"] == 1
    assert rec["config"]["protocol"]["max_epochs"] == 3
    # patience 1: the run stops one epoch after its best, unless it improved every epoch
    fin = rec["final"]
    assert fin["epochs_run"] == min(3, fin["converged_epoch"] + 1)
    table = (res / "table4-tiny-mlp-dropout.md").read_text()
    assert "| +Dropout | tanh |" in table and "Base Model" not in table and "+GAAF" not in table


def test_band_variant_runs_only_when_named_and_reports_its_row(tmp_path):
    import pytest

    from gaaf_kernels.experiments.models import build_model
    from gaaf_kernels.experiments.train import HarnessError

    out, res = tmp_path / "runs", tmp_path / "results"
    assert reproduce("table4", seeds=1, tasks=["tiny-mlp"], variants=["gaaf-band"], epochs=1,
                     out=out, results_dir=res, threads=1, progress=False) == 0
    assert [d.name for d in (out / "tiny-mlp").iterdir()] == ["gaaf-band"]
    table = (res / "table4-tiny-mlp-gaaf-band.md").read_text()
    assert "| +GAAF (band) | GAAF |" in table
    gaafs = [m for m in build_model("tiny-mlp", "gaaf-band").modules()
             if type(m).__name__ == "GAAF"]
    assert gaafs and all(m.config.band for m in gaafs)
    with pytest.raises(HarnessError, match="choose from base, dropout, gaaf, gaaf-band"):
        reproduce("table4", tasks=["tiny-mlp"], variants=["gaaf-bnad"], out=out,
                  results_dir=res, progress=False)


def test_no_grad_clip_is_recorded_in_the_protocol(tmp_path):
    from gaaf_kernels.experiments.train import RunConfig

    assert RunConfig(task="fashion-cnn", variant="gaaf").protocol.grad_clip == 5.0
    cfg = RunConfig(task="fashion-cnn", variant="bn-gaaf-band", no_grad_clip=True)
    assert cfg.protocol.grad_clip is None and "grad_clip" not in cfg.protocol.to_dict()
    out = tmp_path / "runs"
    assert reproduce("table4", seeds=1, tasks=["tiny-mlp"], variants=["gaaf"], epochs=1,
                     out=out, results_dir=tmp_path, threads=1, progress=False,
                     no_grad_clip=True) == 0
    assert (tmp_path / "table4-tiny-mlp-gaaf-noclip.md").exists()
