"""One run of ``gaaf study lm`` (train, evaluate, checkpoint, resume), and the runs of
the study in this process or in worker processes of one torch thread each.

A run's directory holds ``record.json`` (status ``running`` or ``finished``, config,
corpus, history), ``checkpoint.pt`` while it runs (model, optimizer, RNG states, step,
history; written atomically at every evaluation, so Ctrl-C loses at most the steps since
the last one) and ``model.pt`` (the final weights) once it finished.

Training batches: ``batch_size`` windows of ``context + 1`` bytes at uniformly random
offsets of the training split, from a generator seeded with ``DATA_SEED + seed`` (the same
stream for every variant of a seed); the loss is the mean cross-entropy of the next byte
at every position. Evaluation (step 0, every ``eval_every`` steps, the last step): the
same ``val_windows`` windows, evenly spaced over the validation split, for every run;
their mean next-byte cross-entropy, and the fraction of the GELU inputs below -3 (forward
pre-hooks on the MLP activations), per layer and overall.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import records
from .lm import DATA_SEED, Corpus, LMProtocol, evaluate, lr_at, val_windows
from .runner import RunFailure, report_outcome, run_with_bar

__all__ = ["LMJob", "expected_config", "check_protocol", "run_state",
           "execute", "run_lm_jobs"]

@dataclass(frozen=True)
class LMJob:
    """What a worker needs for one run (picklable)."""

    task: str
    variant: str
    seed: int
    protocol: LMProtocol
    corpus: Corpus
    runs_dir: str
    device: str

    @property
    def label(self) -> str:
        return f"{self.task}/{self.variant}/seed{self.seed}"

    @property
    def rdir(self) -> Path:
        return records.run_dir(self.runs_dir, self.task, self.variant, self.seed)


def expected_config(job: LMJob) -> dict[str, Any]:
    """The ``config`` a run's record must hold to be resumed or reused."""
    protocol = {**job.protocol.to_dict(), "corpus_sha256": job.corpus.sha256()}
    return {"study": "lm", "task": job.task, "variant": job.variant, "seed": job.seed,
            "protocol": protocol}


def check_protocol(job: LMJob) -> None:
    """``HarnessError`` if the run directory holds a run of another protocol."""
    from ..train import HarnessError

    rec = records.read_record(job.rdir)
    if rec is None:
        return
    want, got = expected_config(job), rec.get("config") or {}
    if got != want:
        theirs = got.get("protocol") or {}
        diff = [f"{k} {theirs.get(k)!r} there, {v!r} here"
                for k, v in want["protocol"].items() if theirs.get(k) != v]
        raise HarnessError(f"{job.rdir} holds a run with another protocol"
                           + (f" ({'; '.join(diff)})" if diff else "")
                           + "; use another --runs or delete that directory")


def run_state(job: LMJob) -> str:
    """``done`` (finished with this protocol) or ``train``."""
    rec = records.read_finished(job.rdir) or {}
    return "done" if rec.get("config") == expected_config(job) else "train"


def _record(job: LMJob, cfg: dict, info: dict, dev, state: dict, status: str,
            final: dict | None = None) -> dict:
    from importlib.metadata import version

    return {"record_version": 1, "study": "lm", "status": status, "task": job.task,
            "variant": job.variant, "seed": job.seed, "config": cfg,
            "corpus": job.corpus.info(), "model": info,
            "versions": {**records.versions(), "transformers": version("transformers")},
            "machine": records.machine(dev), "step": state["step"],
            "segments": state["segments"], "wall_time_s": round(state["wall_s"], 3),
            "history": state["history"], "final": final}


def execute(job: LMJob, report: Callable[[tuple], None]) -> dict:
    """Train (or resume) one run to its last step; return its summary. ``report`` gets
    ``("start", label, step)``, ``("step", label, step)`` and ``("eval", label, step,
    val_loss)``; an exception it raises (a KeyboardInterrupt) stops the run, whose last
    checkpoint stays."""
    from ..runlock import RunLock, RunLockedError
    from ..train import HarnessError

    lock = RunLock(job.rdir)
    try:
        lock.acquire()
    except RunLockedError as exc:
        raise HarnessError(str(exc)) from None
    try:
        return _execute(job, report)
    finally:
        lock.release()


def _execute(job: LMJob, report: Callable[[tuple], None]) -> dict:
    import torch
    import torch.nn.functional as F

    from .. import checkpoint
    from ..train import resolve_device
    from .lm import build_lm_model

    p, rdir = job.protocol, job.rdir
    cfg = expected_config(job)
    rec = records.read_record(rdir)  # a running one is resumed below
    if rec is not None and rec.get("status") == "finished" and rec.get("config") == cfg:
        return _summary(job, rec, trained=False)
    dev = resolve_device(job.device)
    model, info = build_lm_model(job.variant, p, job.seed)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr_at(1, p), betas=p.betas,
                            weight_decay=p.weight_decay)
    gen = torch.Generator().manual_seed(DATA_SEED + job.seed)
    state: dict[str, Any] = {"step": 0, "history": [], "train_seconds": 0.0,
                             "timed_steps": 0, "wall_s": 0.0, "segments": []}
    ck = rdir / records.CHECKPOINT
    if ck.exists() and rec is not None and rec.get("config") == cfg:
        saved = checkpoint.load(ck)
        if saved["config"] == cfg:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            checkpoint.set_rng_state(saved["rng"][0], gen)
            state = saved["state"]
    train_data = torch.frombuffer(bytearray(job.corpus.train), dtype=torch.uint8)
    val = val_windows(torch.frombuffer(bytearray(job.corpus.val), dtype=torch.uint8), p)
    offsets = torch.arange(p.context + 1)
    start_step, t_seg = state["step"], time.perf_counter()
    wall_before, segments = state["wall_s"], list(state["segments"])
    threads = torch.get_num_threads()

    def save(status: str, final: dict | None = None) -> None:
        state["wall_s"] = wall_before + time.perf_counter() - t_seg
        state["segments"] = [*segments, {"start_step": start_step, "end_step": state["step"],
                                         "torch_threads": threads}]
        if status == "running":
            checkpoint.save(ck, config=cfg, model=model, optimizer=opt,
                            rng=[checkpoint.rng_state(gen)], state=state)
        records.write_json_atomic(rdir / records.RECORD,
                                  _record(job, cfg, info, dev, state, status, final))

    report(("start", job.label, start_step))
    if not state["history"]:
        state["history"].append({"step": 0, "lr": 0.0, "train_loss": None,
                                 "grad_norm": None, **evaluate(model, val, p.below)})
        save("running")
    sums = [0.0, 0.0, 0]  # training loss, gradient norm, steps since the last evaluation
    model.train()
    diverged = None
    for step in range(start_step + 1, p.steps + 1):
        t = time.perf_counter()
        lr = lr_at(step, p)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(train_data) - p.context, (p.batch_size,), generator=gen)
        batch = train_data[starts[:, None] + offsets].long().to(dev)
        logits = model(batch[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.get_total_norm([q.grad for q in model.parameters()
                                                   if q.grad is not None])
        opt.step()
        value = loss.item()
        if step > start_step + 1:  # the first step of a segment compiles GAAF: not timed
            state["train_seconds"] += time.perf_counter() - t
            state["timed_steps"] += 1
        sums[0] += value
        sums[1] += float(grad_norm)
        sums[2] += 1
        report(("step", job.label, step))
        if not math.isfinite(value):
            diverged = step
        if step % p.eval_every == 0 or step == p.steps or diverged:
            state["step"] = step
            state["history"].append({"step": step, "lr": lr, "train_loss": sums[0] / sums[2],
                                     "grad_norm": sums[1] / sums[2],
                                     **evaluate(model, val, p.below)})
            sums = [0.0, 0.0, 0]
            if diverged:
                break
            save("running")
            report(("eval", job.label, step, state["history"][-1]["val_loss"]))
    last, first = state["history"][-1], state["history"][0]
    tokens = state["timed_steps"] * p.batch_size * p.context
    final = {"step": last["step"], "diverged_step": diverged,
             **{k: last[k] for k in ("val_loss", "val_bpb", "train_loss", "below",
                                     "below_layers", "input_min_layers", "input_std_layers")},
             "below_start": first["below"], "tokens_per_s": (tokens / state["train_seconds"]
                                                             if state["train_seconds"] else None),
             "train_seconds": round(state["train_seconds"], 3),
             "timed_steps": state["timed_steps"]}
    records.save_atomic(rdir / records.MODEL, model.state_dict())
    save("finished", final)
    ck.unlink(missing_ok=True)  # the optimizer's state is no longer needed
    rec = records.read_record(rdir)
    assert rec is not None  # written just above
    return _summary(job, rec, trained=True)


def _summary(job: LMJob, rec: dict, trained: bool) -> dict:
    fin = rec["final"]
    return {"label": job.label, "final": fin, "trained": trained,
            "wall_time_s": rec["wall_time_s"]}


def _execute_reporting(job: LMJob, report: Callable[[tuple], None]) -> None:
    """:func:`execute`, its outcome reported as ``done`` or ``failed``."""
    report_outcome(execute, job.label, job, report)


class _Bar:
    """Steps done of all the runs to do, the latest validation loss as postfix."""

    def __init__(self, jobs: list[LMJob], enabled: bool) -> None:
        from tqdm import tqdm

        self.at: dict[str, int] = {}
        total = 0
        for job in jobs:
            rec = records.read_record(job.rdir) or {}
            self.at[job.label] = rec.get("step", 0) if rec.get("status") == "running" else 0
            total += job.protocol.steps - self.at[job.label]
        self.bar = tqdm(total=total, desc="study lm", unit="step", disable=not enabled,
                        file=sys.stderr, mininterval=1.0, dynamic_ncols=True)

    def message(self, msg: tuple) -> None:
        kind, label = msg[0], msg[1]
        if kind == "start":
            self.at[label] = msg[2]
        elif kind == "step":
            self.bar.update(max(0, msg[2] - self.at.get(label, 0)))
            self.at[label] = msg[2]
        elif kind == "eval":
            self.bar.set_postfix_str(f"{label} step {msg[2]}: val {msg[3]:.3f}", refresh=False)

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _line(result: dict) -> str:
    fin = result["final"]
    speed = fin["tokens_per_s"]
    return (f"{result['label']}: val loss {fin['val_loss']:.4f} ({fin['val_bpb']:.3f} "
            f"bits/byte) at step {fin['step']}"
            + (f", DIVERGED at step {fin['diverged_step']}" if fin["diverged_step"] else "")
            + (f", {speed:.0f} tokens/s" if speed else "")
            + f"; {result['wall_time_s']:.0f} s")


def run_lm_jobs(jobs: list[LMJob], n_workers: int, progress: bool) -> list[RunFailure]:
    """Run ``jobs`` (``n_workers`` processes of one torch thread, or this process and its
    threads for 1); return the failures. ``KeyboardInterrupt`` propagates once the workers
    have stopped."""
    return run_with_bar(jobs, n_workers, _Bar(jobs, progress), _line,
                        run_one=_execute_reporting, label=lambda job: job.label)
