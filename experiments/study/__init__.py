"""``gaaf study depth|sensitivity|cnn|lm``: grids of training runs on top of the harness,
and their tables and figures (``lm``, a small GPT-2 on bytes: :mod:`.lm`).

* ``depth``: MNIST tanh MLPs of 3, 6, 10 and 20 hidden layers of 256 (variants base,
  dropout, gaaf, gaaf-band), test accuracy, epochs, divergence, mean gradients per layer
  (epoch 1 and the whole run) and the share of saturated net values (|x| > 2);
* ``sensitivity``: the paper's MLP with GAAF's K (1e2 .. 1e6) and gaussian c (1, 3, 10),
  without and with the band, the base model beside them, and where float32 breaks the
  sawtooth (|x*K| >= 2^23);
* ``cnn``: ReLU CNNs on Fashion-MNIST and MNIST (the harness's CNN with and without
  BatchNorm, a deep plain CNN) with GAAF, the surrogate-gradient shapes and leaky relu:
  accuracy, divergence, dead units and the epoch-1 gradient norm (:mod:`.cnn`,
  :mod:`.cnn_report`).

By job: :mod:`.grid` (what runs, the protocol choices), :mod:`.runner` (recorders,
workers, progress), :mod:`.report` (tables and figures), and :func:`run_study` here (the
whole command). Results: ``table.md``, ``table.json`` and PNGs in ``out``; runs in
``runs_dir`` (``<runs>/<task>/<variant>/seed<N>``, the harness's layout). Rerunning
skips finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import records
from ..atomic import write_atomic
from .grid import STUDIES, Study, make_study

if TYPE_CHECKING:
    import torch

__all__ = ["STUDIES", "Study", "make_study", "run_study", "default_dirs", "study_dirs",
           "study_meta", "finish_study"]


def default_dirs(name: str, quick: bool) -> tuple[Path, Path]:
    """(results dir, runs dir): ``results/study-<name>[-quick]``, ``runs/study-...``."""
    stem = f"study-{name}{'-quick' if quick else ''}"
    return Path("results") / stem, Path("runs") / stem


def _command(name: str, quick: bool, seeds: int | None, jobs: int, out: Path, runs: Path,
             data_dir, device: str, tiny: bool) -> str:
    parts = ["gaaf", "study", name] + (["--quick"] if quick else [])
    parts += ["--seeds", str(seeds)] if seeds is not None else []
    parts += ["--jobs", str(jobs), "--out", str(out), "--runs", str(runs)]
    parts += ["--data-dir", str(data_dir)] if data_dir is not None else []
    parts += ["--device", device] if device != "auto" else []
    parts += ["--tiny"] if tiny else []
    return shlex.join(parts)


def study_dirs(name: str, quick: bool, jobs: int, out: str | Path | None,
               runs_dir: str | Path | None, device: str) -> tuple[Path, Path, torch.device]:
    """(out, runs dir, torch device) of a study, its --jobs, --out, --runs and --device
    checked (``HarnessError``) before anything runs."""
    from ..train import HarnessError, resolve_device

    if not isinstance(jobs, int) or jobs < 1:
        raise HarnessError(f"--jobs must be a positive integer, got {jobs}")
    default_out, default_runs = default_dirs(name, quick)
    out = Path(out) if out is not None else default_out
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs
    _check_dir(out, "--out")
    _check_dir(runs_dir, "--runs")
    return out, runs_dir, resolve_device(device)


def _check_dir(path: Path, what: str) -> None:
    from ..train import HarnessError

    if path.exists() and not path.is_dir():
        raise HarnessError(f"{what} {path}: exists and is not a directory")


def run_study(name: str, *, quick: bool = False, seeds: int | None = None, jobs: int = 1,
              out: str | Path | None = None, runs_dir: str | Path | None = None,
              data_dir: str | Path | None = None, device: str = "auto",
              progress: bool = True, tiny: bool = False) -> int:
    """Run (or skip, or resume) every run of the study, then write ``table.md``,
    ``table.json`` and the PNGs into ``out``. Returns 0, or 1 if some run failed.

    Raises ``HarnessError`` for bad arguments or a runs directory holding runs of another
    protocol (before anything runs), ``DatasetNotFoundError`` for a missing dataset and
    ``KeyboardInterrupt`` after the workers stopped.
    """
    if name == "lm":  # a transformer on bytes: its own runs, tables and figures
        from .lm import run_lm_study

        return run_lm_study(name, quick=quick, seeds=seeds, jobs=jobs, out=out,
                            runs_dir=runs_dir, data_dir=data_dir, device=device,
                            progress=progress, tiny=tiny)
    from ..train import HarnessError, RunConfig
    from .runner import Job, run_jobs, run_state

    if name == "cnn":
        from .cnn import run_state
        from .cnn_report import collect, format_markdown, plot, summarize, to_json
    else:
        from .report import collect, format_markdown, plot, summarize, to_json

    try:
        study = make_study(name, quick=quick, seeds=seeds, tiny=tiny)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    out, runs_dir, dev = study_dirs(name, quick, jobs, out, runs_dir, device)
    configs = [RunConfig(task=r.task, variant=r.variant, seed=r.seed, epochs=study.epochs,
                         patience=study.patience, device=device, out=runs_dir,
                         data_dir=data_dir, threads=1, train_limit=study.train_limit,
                         progress=False) for r in study.runs]
    # A runs directory holding runs of another protocol is refused before anything runs.
    for run, cfg in zip(study.runs, configs):
        rec = records.read_record(records.run_dir(runs_dir, run.task, run.variant, run.seed))
        if rec is None:
            continue
        want = json.loads(json.dumps(cfg.protocol.to_dict()))
        got = rec.get("config", {})
        if got.get("protocol") != want or got.get("train_limit") != study.train_limit:
            raise HarnessError(
                f"{records.run_dir(runs_dir, run.task, run.variant, run.seed)} holds a run "
                "with another protocol; use another --runs or delete that directory")
    datasets = {cfg.spec.dataset for cfg in configs} - {"tiny"}
    if datasets:
        from ..data import load_dataset

        for ds in sorted(datasets):
            load_dataset(ds, data_dir)  # DatasetNotFoundError: exit 1 with the fetch hint

    jobs_list, skipped = [], 0
    for run in study.runs:
        state = run_state(records.run_dir(runs_dir, run.task, run.variant, run.seed),
                          study.Ks)
        if state == "done":
            skipped += 1
            print(f"{run.label}: finished, skipped", file=sys.stderr)
            continue
        jobs_list.append(Job(run, study.epochs, study.patience, study.train_limit, device,
                             str(runs_dir), None if data_dir is None else str(data_dir),
                             study.Ks, train=state == "train",
                             kind="cnn" if name == "cnn" else "mlp"))
    t0 = time.perf_counter()
    workers = min(jobs, len(jobs_list))
    print(f"study {name}: {len(study.runs)} runs, {skipped} finished, {len(jobs_list)} to run"
          + (f" ({workers} worker processes of one torch thread)" if workers > 1 else ""),
          file=sys.stderr)
    failures = run_jobs(jobs_list, study, jobs, progress) if jobs_list else []

    found, missing = collect(study, runs_dir)
    rows = summarize(study, found)
    meta = study_meta(name, quick, seeds, jobs, out, runs_dir, data_dir, device, tiny, dev,
                      threads=1, t0=t0, protocol=configs[0].protocol.to_dict())
    text = format_markdown(study, meta, found, rows, missing)
    return finish_study(out, text, to_json(study, meta, found, rows, missing),
                        lambda: plot(study, rows, out, write_atomic), failures, missing, t0)


def study_meta(name: str, quick: bool, seeds: int | None, jobs: int, out: Path,
               runs_dir: Path, data_dir, device: str, tiny: bool, dev, *, threads: int,
               t0: float, **extra) -> dict:
    """What a study's table says of its run: date, command, machine, versions, ``extra``."""
    machine = {k: v for k, v in records.machine(dev).items() if k != "argv"}
    machine["torch_threads"] = threads
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": _command(name, quick, seeds, jobs, out, runs_dir, data_dir, device,
                                tiny),
            "machine": machine, "versions": records.versions(), "device": str(dev),
            "jobs": jobs, "runs_dir": str(runs_dir), **extra,
            "study_seconds": round(time.perf_counter() - t0, 1)}


def finish_study(out: Path, text: str, data: bytes, draw, failures: list, missing: list,
                 t0: float) -> int:
    """Write ``table.md``, ``table.json`` and the PNGs (``draw()`` returns their paths),
    print the table and the failures; the exit status: 2 for a bad configuration, 1 if a
    run failed or is missing, else 0."""
    write_atomic(out / "table.md", text.encode())
    write_atomic(out / "table.json", data)
    pngs = draw()
    print(text)
    print(f"wrote {out / 'table.md'}, {out / 'table.json'}"
          + "".join(f", {p.name}" for p in pngs)
          + f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    for f in failures:
        print(f"gaaf: {f.label}: {f.message}", file=sys.stderr)
    if any(f.harness for f in failures):
        return 2
    return 1 if failures or missing else 0
