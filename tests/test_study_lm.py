"""``gaaf study lm`` on its tiny synthetic corpus: the tables report what the records
hold, finished runs are reused, an interrupted run resumes to the numbers of a straight
one, another protocol and bad arguments are refused; the stdlib corpus, the conversion
check and the GELU-below--3 count on known inputs."""

from __future__ import annotations

import hashlib
import json
import math
import sysconfig
from pathlib import Path

import pytest
import torch

from gaaf_kernels.cli import main
from gaaf_kernels.experiments import records
from gaaf_kernels.experiments.study import lm
from gaaf_kernels.experiments.study.lm_train import LMJob, execute

PNG = b"\x89PNG\r\n\x1a\n"


def _study(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["study", "lm", *args, "--tiny", "--no-progress"])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _job(runs: Path, variant: str = "gaaf") -> LMJob:
    return LMJob(lm.TINY_TASK, variant, 0, lm.TINY, lm.load_corpus(tiny=True), str(runs), "cpu")


def _untimed(final: dict) -> dict:
    return {k: v for k, v in final.items() if k not in ("tokens_per_s", "train_seconds",
                                                         "timed_steps")}


def test_tiny_study_writes_tables_from_the_records_and_skips_finished_runs(tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    args = ("--seeds", "2", "--jobs", "2", "--out", str(out), "--runs", str(runs))
    code, stdout, err = _study(capsys, *args)
    assert code == 0, err
    assert "2 worker processes of one torch thread" in err
    text = (out / "table.md").read_text()
    assert text.startswith("# Transformer study") and text in stdout
    assert "Command: `gaaf study lm --seeds 2 --jobs 2" in text
    table = json.loads((out / "table.json").read_text())
    assert not table["missing"] and len(table["runs"]) == 6
    assert [r["variant"] for r in table["rows"]] == ["base", "gaaf", "gaaf-band"]
    corpus = lm.load_corpus(tiny=True)
    for run in table["runs"]:
        rec = records.read_record(Path(run["dir"]))
        assert rec["status"] == "finished" and rec["machine"]["torch_threads"] == 1
        assert rec["corpus"]["python"] and rec["corpus"]["sha256"] == {
            "train": hashlib.sha256(corpus.train).hexdigest(),
            "val": hashlib.sha256(corpus.val).hexdigest()}
        steps = [h["step"] for h in rec["history"]]
        assert steps == list(range(0, lm.TINY.steps + 1, lm.TINY.eval_every))
        assert all(math.isfinite(h["val_loss"]) for h in rec["history"])
        assert rec["final"]["val_loss"] < rec["history"][0]["val_loss"]  # it learned
        assert rec["final"]["val_bpb"] == pytest.approx(rec["final"]["val_loss"] / math.log(2))
        assert (Path(run["dir"]) / "model.pt").exists()
        assert not (Path(run["dir"]) / "checkpoint.pt").exists()
    for row in table["rows"]:  # each row is the mean of its records, and in table.md
        losses = [r["final"]["val_loss"] for r in table["runs"] if r["variant"] == row["variant"]]
        assert row["val_loss"]["mean"] == pytest.approx(sum(losses) / 2)
        assert f"| {row['variant']} | {row['val_loss']['mean']:.4f} ± " in text
    # the same seed: the same initial weights for every variant, so the same validation
    # loss at step 0 up to GAAF's forward perturbation (|g s| <= 0.5/K); other seeds differ
    start = {(r["seed"], r["variant"]): r["history"][0]["val_loss"] for r in table["runs"]}
    for seed in (0, 1):
        for variant in ("gaaf", "gaaf-band"):
            assert start[seed, variant] == pytest.approx(start[seed, "base"], abs=1e-5)
    assert abs(start[0, "base"] - start[1, "base"]) > 1e-4
    for name in ("val_loss_vs_steps.png", "gelu_below_vs_steps.png"):
        assert (out / name).read_bytes()[:8] == PNG

    stamps = {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    code, _, err = _study(capsys, *args)
    assert code == 0, err
    assert err.count("finished, skipped") == 6 and "0 to run" in err
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()} == stamps
    assert json.loads((out / "table.json").read_text())["rows"] == table["rows"]

    # a run of another protocol (other steps, other corpus bytes): refused before anything
    rdir = records.run_dir(runs, lm.TINY_TASK, "gaaf", 1)
    rec = records.read_record(rdir)
    for key, value in (("steps", 99), ("corpus_sha256", {"train": "0", "val": "0"})):
        changed = json.loads(json.dumps(rec))
        changed["config"]["protocol"][key] = value
        records.write_json_atomic(rdir / "record.json", changed)
        code, _, err = _study(capsys, *args)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gaaf: ") and "another protocol" in err
        assert key in err and str(rdir) in err
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.name != "record.json")


def test_an_interrupted_run_resumes_to_the_numbers_of_a_straight_run(tmp_path):
    straight = execute(_job(tmp_path / "a"), lambda msg: None)

    def interrupt(msg: tuple) -> None:
        if msg[0] == "step" and msg[2] == 7:  # after the evaluation (checkpoint) at step 4
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(_job(tmp_path / "b"), interrupt)
    rdir = _job(tmp_path / "b").rdir
    rec = records.read_record(rdir)
    assert rec["status"] == "running" and rec["step"] == 4
    assert (rdir / "checkpoint.pt").exists() and not (rdir / "model.pt").exists()
    resumed = execute(_job(tmp_path / "b"), lambda msg: None)
    assert resumed["trained"]
    assert _untimed(resumed["final"]) == _untimed(straight["final"])
    a = records.read_record(_job(tmp_path / "a").rdir)
    b = records.read_record(rdir)
    assert b["history"] == a["history"]
    assert [(s["start_step"], s["end_step"]) for s in b["segments"]] == [(0, 4), (4, 12)]
    assert execute(_job(tmp_path / "b"), lambda msg: None)["trained"] is False  # finished


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--jobs", "0"], "--jobs must be a positive integer"),
    (["--device", "tpu"], "unknown device"),
    (["--out", "FILE"], "exists and is not a directory"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / a) if a == "FILE" else a for a in args]
    code = main(["study", "lm", *args, "--runs", str(tmp_path / "runs"), "--no-progress"]
                + ([] if "--out" in args else ["--out", str(tmp_path / "out")]))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaaf: ") and message in lines[0], lines
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_stdlib_corpus_loads_with_disjoint_splits_and_names_a_missing_file(tmp_path):
    assert list(lm.CORPUS_FILES) == sorted(set(lm.CORPUS_FILES))
    corpus = lm.load_corpus()
    root = Path(sysconfig.get_paths()["stdlib"])
    assert corpus.val_files == ("cmd.py", "datetime.py", "functools.py", "ipaddress.py",
                                "random.py", "typing.py")
    assert not set(corpus.train_files) & set(corpus.val_files)
    assert sorted(corpus.train_files + corpus.val_files) == list(lm.CORPUS_FILES)
    assert corpus.train == b"".join((root / n).read_bytes() for n in corpus.train_files)
    assert corpus.val == b"".join((root / n).read_bytes() for n in corpus.val_files)
    assert len(corpus.val) > 100_000 and len(corpus.train) > 1_000_000
    for name in lm.CORPUS_FILES[:5]:
        (tmp_path / name).write_bytes(b"x = 1\n")
    from gaaf_kernels.experiments.data import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / lm.CORPUS_FILES[5])):
        lm.load_corpus(stdlib=tmp_path)


def test_convert_turns_every_gelu_into_gaaf_or_the_model_is_refused(monkeypatch):
    import gaaf_kernels
    from gaaf_kernels import GAAF

    base, _ = lm.build_lm_model("base", lm.FULL, 0)
    for variant, band in (("gaaf", False), ("gaaf-band", True)):
        model, info = lm.build_lm_model(variant, lm.FULL, 0)
        acts = lm.activation_modules(model)
        assert len(acts) == 4 and all(isinstance(a, GAAF) for a in acts)
        assert all(a.config.activation.name == "gelu_tanh" and a.config.band == band
                   for a in acts)
        assert "4 x transformers.activations.NewGELUActivation -> gelu_tanh" in info["conversion"]
        for (k, v), (k2, v2) in zip(model.state_dict().items(), base.state_dict().items()):
            assert k == k2 and torch.equal(v, v2)  # the same initial weights
    assert not any(isinstance(a, GAAF) for a in lm.activation_modules(base))
    with pytest.raises(ValueError, match="unknown lm variant 'relu'"):
        lm.build_lm_model("relu", lm.TINY, 0)
    real = gaaf_kernels.convert_report
    monkeypatch.setattr(gaaf_kernels, "convert_report",  # converts nothing: GELU not selected
                        lambda model, **kw: real(model, activations={"relu"}, **kw))
    with pytest.raises(RuntimeError, match="did not turn the 4 GELUs"):
        lm.build_lm_model("gaaf", lm.FULL, 0)


def test_gelu_inputs_below_minus_3_are_counted_right():
    x = torch.tensor([[-5.0, -3.0, -3.0001, -2.9999], [0.0, 4.0, -100.0, float("nan")]])
    assert lm.count_below(x) == (3, 8)  # -5, -3.0001, -100; not -3 itself, not NaN
    assert lm.count_below(x, -4.0) == (2, 8)
    # evaluate()'s per-layer fractions against the activations' inputs captured here
    model, _ = lm.build_lm_model("gaaf", lm.TINY, 0)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.mul_(200.0)  # push inputs beyond -3
    windows = torch.randint(0, 256, (8, lm.TINY.context + 1), generator=torch.Generator()
                            .manual_seed(0))
    seen: list[torch.Tensor] = []
    hook = lm.activation_modules(model)[0].register_forward_pre_hook(
        lambda m, args: seen.append(args[0].flatten()))
    result = lm.evaluate(model, windows, -3.0)
    hook.remove()
    inputs = torch.cat(seen)
    want = float((inputs < -3).sum()) / inputs.numel()
    assert 0.01 < want < 0.99
    assert result["below"] == pytest.approx(want) and result["below_layers"] == [result["below"]]
    assert result["input_min_layers"] == [pytest.approx(float(inputs.min()))]
    assert result["input_std_layers"] == [pytest.approx(float(inputs.double().std(correction=0)),
                                                        rel=1e-6)]
