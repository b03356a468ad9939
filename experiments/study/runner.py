"""Running a study's runs: in this process (``--jobs 1``) or in N worker processes of one
torch thread each, with the recorders the tables need and a progress bar over them.

Per run directory, besides the harness's files (``record.json``, ``checkpoint.pt``,
``model.pt``) and ``analysis.json`` (:class:`~..analysis.recording.AnalysisRecorder`:
the mean ``|dL/dz|`` per Linear layer, cumulative per epoch):

* ``study_grads.json`` -- :class:`WeightGradRecorder`: the mean ``|dL/dW|`` of every
  Linear weight, averaged over the elements and then over the optimizer steps; one
  cumulative entry per finished epoch (resume-safe in the same way as ``analysis.json``);
* ``study_nets.json`` -- :func:`net_statistics` of the converged weights (``model.pt``)
  on the test set: per hidden layer, how many net values (the activations' inputs) have
  ``|x| > 2`` and, per K, ``|x*K| >= 2^23`` and ``>= 2^15`` in float32.

A finished run whose files are all there is skipped without starting anything; an
unfinished one resumes from its checkpoint (the harness's ``train``), so Ctrl-C loses at
most the epoch in progress of each worker.
"""

from __future__ import annotations

import os
import queue
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import records
from ..analysis.stats import SATURATION  # |x| beyond which tanh saturates (tanh'(2) = 0.07)
from .grid import Study, StudyRun, divergence, fmt_K

if TYPE_CHECKING:
    import torch

__all__ = ["GRADS", "NETS", "NETS_VERSION", "SATURATION", "F32_BITS", "Job", "RunFailure",
           "WeightGradRecorder", "net_statistics", "run_jobs", "run_state", "report_outcome",
           "run_in_workers"]

GRADS, NETS = "study_grads.json", "study_nets.json"
NETS_VERSION = 1
#: x*K in float32 keeps no fractional bit from 2^23 on, fewer than 8 from 2^15 on.
F32_BITS = (23, 15)
PROGRESS_EVERY = 25  # batches between progress messages


@dataclass(frozen=True)
class Job:
    """What a worker needs for one run (picklable)."""

    run: StudyRun
    epochs: int
    patience: int
    train_limit: int | None
    device: str
    runs_dir: str
    data_dir: str | None
    Ks: tuple[float, ...]
    train: bool  # False: the run is finished, only its net statistics are missing
    kind: str = "mlp"  # "cnn": the CNN study's recorders and statistics (.cnn)


@dataclass
class RunFailure:
    label: str
    message: str
    harness: bool  # a HarnessError (bad configuration): exit status 2


def run_state(rdir: Path, Ks: tuple[float, ...]) -> str:
    """``done`` (finished, net statistics there), ``nets`` (finished, statistics missing
    or stale) or ``train`` (not finished)."""
    rec = records.read_finished(rdir)
    if rec is None:
        return "train"
    nets = records.read_record(rdir / NETS)
    return "done" if _nets_current(nets, rec, Ks) else "nets"


def _nets_current(nets: dict | None, rec: dict, Ks: tuple[float, ...]) -> bool:
    return (nets is not None and nets.get("nets_version") == NETS_VERSION
            and nets.get("final") == rec.get("final")
            and all(_k_key(K) in nets.get("float32", {}) for K in Ks))


def _k_key(K: float) -> str:
    return fmt_K(K)


class WeightGradRecorder:
    """Training callback: running sums over optimizer steps of ``mean |dL/dW|`` per
    Linear weight, written to ``study_grads.json`` at every epoch end.

    Entries are cumulative (``grad_sum``, ``grad_steps``), so a resumed run continues
    from the entry at the step it resumes after and drops the entries of redone epochs.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / GRADS
        self.sums: torch.Tensor | None = None
        self.steps = 0
        self.last_step = 0
        self.state: dict[str, Any] | None = None
        self._layers: list = []

    def _start(self, model, step: int) -> None:
        import torch

        from ..analysis.recording import layer_names, linear_layers

        self._layers = linear_layers(model)
        names = layer_names(len(self._layers))
        old = records.read_record(self.path)
        if old is not None and old.get("layers") != names:
            old = None
        kept = [e for e in (old or {}).get("epochs", []) if e["step"] <= step - 1]
        device = next(model.parameters()).device
        self.state = {"layers": names, "first_step": step, "epochs": [],
                      "gradient": "mean over optimizer steps of the mean over the elements "
                                  "of |dL/dW| of each Linear weight (L = mean cross-entropy "
                                  "of the batch), cumulative per epoch"}
        sums = torch.zeros(len(names), dtype=torch.float64, device=device)
        self.steps = 0
        if kept and kept[-1]["step"] == step - 1:
            self.state["first_step"] = (old or {}).get("first_step", 1)
            self.state["epochs"] = kept
            sums += torch.tensor(kept[-1]["grad_sum"], dtype=torch.float64, device=device)
            self.steps = kept[-1]["grad_steps"]
        self.sums = sums

    def on_batch_end(self, model, step: int) -> None:
        import torch

        if self.state is None:
            self._start(model, step)
        self.last_step = step
        grads = [m.weight.grad for m in self._layers]
        if any(g is None for g in grads):
            return
        assert self.sums is not None  # made by _start with the state
        self.sums += torch.stack([g.detach().abs().mean() for g in grads]).double()
        self.steps += 1

    def on_epoch_end(self, model, epoch: int, metrics: dict) -> None:
        if self.state is None or self.sums is None:
            return
        sums = self.sums.cpu().tolist()
        entry = {"epoch": epoch, "step": self.last_step, "grad_steps": self.steps,
                 "grad_sum": sums, "grad_mean": [s / max(self.steps, 1) for s in sums]}
        self.state["epochs"] = [e for e in self.state["epochs"] if e["epoch"] < epoch] + [entry]
        records.write_json_atomic(self.path, self.state)


class _Progress:
    """Training callback: reports batches and epochs through ``report``."""

    def __init__(self, key: str, report: Callable[[tuple], None]) -> None:
        self.key, self.report = key, report
        self.batches = 0

    def on_batch_end(self, model, step: int) -> None:
        self.batches += 1
        if self.batches % PROGRESS_EVERY == 0:
            self.report(("batches", self.key, PROGRESS_EVERY))
            self.batches = 0

    def on_epoch_end(self, model, epoch: int, metrics: dict) -> None:
        self.report(("epoch", self.key, epoch, metrics["val_acc"], metrics["train_loss"]))
        self.batches = 0


_SPLITS: dict[tuple, Any] = {}


def _splits(task, data_dir, train_limit):
    """The task's splits, loaded once per process."""
    from ..datasets import load_splits

    key = (task.name, str(data_dir), train_limit)
    if key not in _SPLITS:
        _SPLITS.clear()
        _SPLITS[key] = load_splits(task, data_dir, train_limit)
    return _SPLITS[key]


def net_statistics(rdir: Path, rec: dict, data_dir, Ks: tuple[float, ...]) -> dict:
    """Counts over the test set of the net values of every hidden Linear layer of the
    converged weights (``model.pt``): total, ``|x| > SATURATION``, non-finite, and per K
    ``|x*K| >= 2^b`` for b in :data:`F32_BITS`, x*K rounded to float32 as the sawtooth
    computes it."""
    import torch

    from ..analysis.recording import linear_layers
    from ..models import build_model
    from ..tasks import get_task

    task = get_task(rec["task"])
    model = build_model(task, rec["variant"], init=False)
    model.load_state_dict(torch.load(rdir / records.MODEL, weights_only=True))
    model.eval()
    test_x = _splits(task, data_dir, rec["config"].get("train_limit")).test_x
    hidden = linear_layers(model)[:-1]
    n = len(hidden)
    Kf = [torch.tensor(K, dtype=torch.float32) for K in Ks]
    counts = {"total": [0] * n, "abs_gt": [0] * n, "nonfinite": [0] * n}
    f32 = {_k_key(K): {f"ge_2^{b}": [0] * n for b in F32_BITS} for K in Ks}

    def hook(i):
        def count(module, inputs, out):
            x = out.detach().float()
            counts["total"][i] += x.numel()
            counts["abs_gt"][i] += int((x.abs() > SATURATION).sum())
            counts["nonfinite"][i] += int((~torch.isfinite(x)).sum())
            for K, k in zip(Ks, Kf):
                xk = (x * k).abs()
                for b in F32_BITS:
                    f32[_k_key(K)][f"ge_2^{b}"][i] += int((xk >= 2.0 ** b).sum())
        return count

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(hidden)]
    try:
        with torch.no_grad():
            for i in range(0, len(test_x), 1000):
                model(test_x[i:i + 1000])
    finally:
        for h in handles:
            h.remove()
    return {"nets_version": NETS_VERSION, "weights": "model.pt (converged epoch)",
            "data": "test set", "saturation": SATURATION, "final": rec["final"],
            "layers": [f"Layer{i + 1}" for i in range(n)], **counts, "float32": f32}


def job_config(job: Job):
    """(run directory, RunConfig) of a study job: one torch thread, no progress bar."""
    from ..train import RunConfig

    run = job.run
    cfg = RunConfig(task=run.task, variant=run.variant, seed=run.seed, epochs=job.epochs,
                    patience=job.patience, device=job.device, out=job.runs_dir,
                    data_dir=job.data_dir, threads=1, train_limit=job.train_limit,
                    progress=False)
    return records.run_dir(job.runs_dir, run.task, run.variant, run.seed), cfg


def start_run(job: Job, cfg, report: Callable[[tuple], None]):
    """The run's splits, after reporting its start (batches per epoch) to the bar."""
    splits = _splits(cfg.spec, job.data_dir, job.train_limit)
    report(("start", job.run.label, -(-len(splits.train_y) // cfg.protocol.batch_size)))
    return splits


def finished_record(rdir: Path) -> dict:
    """The record of a finished run whose statistics are to be (re)computed."""
    found = records.read_record(rdir)
    if found is None:
        raise RuntimeError(f"{rdir}: no run record to summarize (train it first)")
    return found


def run_result(job: Job, rec: dict, t0: float) -> dict:
    """What a worker reports of a finished run (the bar's summary line)."""
    return {"label": job.run.label, "final": rec["final"], "wall_time_s": rec["wall_time_s"],
            "seconds": time.perf_counter() - t0, "trained": job.train,
            "diverged": divergence(rec)}


def _execute(job: Job, report: Callable[[tuple], None]) -> dict:
    """Train (or resume) one run, then its net statistics; return a summary."""
    import torch

    if job.kind == "cnn":
        from .cnn import execute_cnn

        return execute_cnn(job, report)

    from ..analysis.recording import AnalysisRecorder, fixed_batch_indices
    from ..train import train

    run = job.run
    rdir, cfg = job_config(job)
    t0 = time.perf_counter()
    if job.train:
        splits = start_run(job, cfg, report)
        idx = fixed_batch_indices(len(splits.train_y), run.seed)
        recorder = AnalysisRecorder(rdir, splits.train_x[torch.from_numpy(idx)].clone(),
                                    idx.tolist(), seed=run.seed)
        try:
            rec = train(cfg, callbacks=[recorder, WeightGradRecorder(rdir),
                                        _Progress(run.label, report)])
        finally:
            recorder.close()
    else:
        rec = finished_record(rdir)
    nets = net_statistics(rdir, rec, job.data_dir, job.Ks)
    records.write_json_atomic(rdir / NETS, nets)
    return run_result(job, rec, t0)


def report_outcome(execute: Callable[[Any, Callable[[tuple], None]], dict], label: str,
                   job: Any, report: Callable[[tuple], None]) -> None:
    """``execute(job, report)``, its outcome reported as ``done`` or ``failed`` (a
    ``HarnessError`` is a bad configuration: exit status 2)."""
    from ..train import HarnessError

    try:
        report(("done", label, execute(job, report)))
    except HarnessError as exc:
        report(("failed", label, str(exc), True))
    except Exception as exc:  # noqa: BLE001 - reported, the other runs go on
        report(("failed", label, f"{type(exc).__name__}: {exc}", False))
        traceback.print_exc(file=sys.stderr)


def _execute_reporting(job: Job, report: Callable[[tuple], None]) -> None:
    """:func:`_execute`, its outcome reported."""
    report_outcome(_execute, job.run.label, job, report)


def _worker_main(inbox, outbox, run_one: Callable[[Any, Callable[[tuple], None]], None]
                 ) -> None:
    """A worker process: ``run_one(job, outbox.put)`` for each job from ``inbox`` until
    None; one torch thread."""
    import torch

    torch.set_num_threads(1)
    try:
        while (job := inbox.get()) is not None:
            run_one(job, outbox.put)
    except KeyboardInterrupt:
        pass  # the study stops; each run's last checkpoint is kept


class _Bar:
    """The study's progress: epochs done of the most the runs can take, with the latest
    epoch's result as postfix; one summary line per finished run."""

    def __init__(self, jobs: list[Job], study: Study, enabled: bool) -> None:
        from tqdm import tqdm

        self.remaining: dict[str, float] = {}  # epochs a run can still take
        self.partial: dict[str, float] = {}  # of its current epoch, counted already
        self.batches: dict[str, int] = {}
        for job in jobs:
            rec = records.read_record(records.run_dir(job.runs_dir, job.run.task,
                                                      job.run.variant, job.run.seed))
            done = len(rec.get("epochs") or []) if rec else 0
            self.remaining[job.run.label] = max(job.epochs - done, 0) if job.train else 0
        self.bar = tqdm(total=sum(self.remaining.values()), desc=f"study {study.name}",
                        unit="epoch", disable=not enabled, file=sys.stderr, mininterval=1.0,
                        dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} "
                        "epochs [{elapsed}<{remaining}{postfix}]")

    def _advance(self, label: str, amount: float) -> None:
        amount = max(0.0, min(amount, self.remaining.get(label, 0.0)))
        self.remaining[label] = self.remaining.get(label, 0.0) - amount
        self.bar.update(amount)

    def message(self, msg: tuple) -> None:
        kind, label = msg[0], msg[1]
        if kind == "start":
            self.batches[label] = max(1, msg[2])
        elif kind == "batches" and label in self.batches:
            step = min(msg[2] / self.batches[label], 0.99 - self.partial.get(label, 0.0))
            self.partial[label] = self.partial.get(label, 0.0) + max(step, 0.0)
            self._advance(label, max(step, 0.0))
        elif kind == "epoch":
            self._advance(label, 1.0 - self.partial.pop(label, 0.0))
            self.bar.set_postfix_str(f"{label} epoch {msg[2]}: val {msg[3]:.2f}%",
                                     refresh=False)
        elif kind in ("done", "failed"):
            self._advance(label, self.remaining.get(label, 0.0))

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _summary(result: dict) -> str:
    fin = result["final"]
    what = "trained" if result["trained"] else "net statistics"
    return (f"{result['label']}: test {fin['test_acc']:.2f}% at epoch "
            f"{fin['converged_epoch']} (ran {fin['epochs_run']})"
            f"{'; DIVERGED: ' + result['diverged'] if result['diverged'] else ''}; "
            f"{what} in {result['seconds']:.0f} s")


def run_jobs(jobs: list[Job], study: Study, n_workers: int,
             progress: bool) -> list[RunFailure]:
    """Run ``jobs`` (``n_workers`` processes, or this one for 1); return the failures.
    ``KeyboardInterrupt`` propagates once the workers have stopped."""
    return run_with_bar(jobs, n_workers, _Bar(jobs, study, progress), _summary)


def run_with_bar(jobs: list, n_workers: int, bar: Any, summary: Callable[[dict], str],
                 run_one: Callable[[Any, Callable[[tuple], None]], None] = _execute_reporting,
                 label: Callable[[Any], str] = lambda job: job.run.label) -> list[RunFailure]:
    """Run ``jobs`` with ``run_one`` in ``n_workers`` processes (or this one, its torch
    threads put back after), feeding every message to ``bar`` (``message``, ``write``,
    ``close``) and one ``summary`` line per finished run to it; return the failures."""
    failures: list[RunFailure] = []

    def handle(msg: tuple) -> None:
        bar.message(msg)
        if msg[0] == "done":
            bar.write(summary(msg[2]))
        elif msg[0] == "failed":
            failures.append(RunFailure(msg[1], msg[2], msg[3]))
            bar.write(f"{msg[1]}: failed: {msg[2]}")

    try:
        if n_workers == 1 or len(jobs) <= 1:
            import torch

            threads = torch.get_num_threads()
            try:
                for job in jobs:
                    run_one(job, handle)
            finally:
                torch.set_num_threads(threads)
        else:
            run_in_workers(jobs, min(n_workers, len(jobs)), handle, run_one, label)
    finally:
        bar.close()
    return failures


def run_in_workers(jobs: list, n_workers: int, handle: Callable[[tuple], None],
                   run_one: Callable[[Any, Callable[[tuple], None]], None] = _execute_reporting,
                   label: Callable[[Any], str] = lambda job: job.run.label) -> None:
    """Run ``jobs`` in ``n_workers`` spawned processes, each calling ``run_one(job,
    report)`` (a module-level function: it is pickled); every message goes to ``handle``
    here. A worker that dies fails its job and is replaced."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch's threads have started can deadlock
    outbox = ctx.Queue()

    def start() -> tuple:
        inbox = ctx.Queue()
        proc = ctx.Process(target=_worker_main, args=(inbox, outbox, run_one), daemon=True)
        proc.start()
        return proc, inbox

    workers = [start() for _ in range(n_workers)]
    pending, idle = deque(jobs), list(workers)
    busy: dict[str, tuple] = {}  # label -> worker
    try:
        while pending or busy:
            while idle and pending:
                worker, job = idle.pop(), pending.popleft()
                worker[1].put(job)
                busy[label(job)] = worker
            try:
                msg = outbox.get(timeout=1.0)
            except queue.Empty:
                for name, worker in list(busy.items()):
                    if not worker[0].is_alive():  # killed (out of memory, say)
                        del busy[name]
                        handle(("failed", name, f"worker process died (exit code "
                                f"{worker[0].exitcode})", False))
                        workers.remove(worker)
                        workers.append(start())
                        idle.append(workers[-1])
                continue
            handle(msg)
            if msg[0] in ("done", "failed") and msg[1] in busy:
                idle.append(busy.pop(msg[1]))
        for _, inbox in workers:
            inbox.put(None)
        for proc, _ in workers:
            proc.join(timeout=60)
    except KeyboardInterrupt:
        _stop(workers)
        raise
    finally:
        for proc, _ in workers:
            if proc.is_alive():
                proc.terminate()


def _stop(workers: list) -> None:
    """After Ctrl-C: the workers got the SIGINT too (same process group) and stop after
    the current batch; those that did not (the signal was sent to this process only) get
    one. Their last checkpoints are kept."""
    import signal

    deadline = time.monotonic() + 2.0
    for proc, _ in workers:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc, _ in workers:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGINT)
    for proc, _ in workers:
        proc.join(timeout=30)

