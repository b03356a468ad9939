"""The training loop: one (task, variant, seed) run, checkpointed every epoch, resumable
with bit-identical results, optionally under DistributedDataParallel (torchrun).

Callbacks (for analysis tools) are objects with any of ``on_train_start(model, epoch)``
(``epoch``: the epochs already done), ``on_batch_end(model, step)`` and
``on_epoch_end(model, epoch, metrics)``; ``model`` is the plain module (never the DDP
wrapper), ``step`` counts optimizer steps from 1 over the whole run.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint, distributed, records
from .datasets import Splits, crop_flip, load_splits
from .models import build_model
from .runlock import RunLock, RunLockedError
from .tasks import Protocol, Task, get_task

__all__ = ["RunConfig", "TrainState", "HarnessError", "resolve_device", "train", "evaluate",
           "make_optimizer"]

DEVICES = ("auto", "cpu", "cuda")


class HarnessError(ValueError):
    """Bad arguments or an incompatible run directory (the CLI exits 2)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is an error."""
    if name not in DEVICES:
        raise HarnessError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise HarnessError("--device cuda asked for, but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass(frozen=True)
class RunConfig:
    """What to run. ``epochs`` and ``patience`` override the protocol's values, and
    ``no_grad_clip`` turns its gradient clipping off.

    Validated once, when it is made (:class:`HarnessError` for an unknown task, variant or
    device, or a number out of range); ``spec`` and ``protocol`` are then the task and the
    effective protocol.
    """

    task: str
    variant: str
    seed: int = 0
    epochs: int | None = None
    patience: int | None = None
    device: str = "auto"
    out: str | Path = "runs"
    data_dir: str | Path | None = None
    threads: int | None = None
    train_limit: int | None = None
    progress: bool = True
    no_grad_clip: bool = False
    spec: Task = field(init=False, repr=False, compare=False)
    protocol: Protocol = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            spec = get_task(self.task)
        except KeyError as exc:
            raise HarnessError(exc.args[0]) from None
        if self.variant not in spec.all_variants:
            raise HarnessError(f"unknown variant {self.variant!r} for {spec.name}; "
                               f"choose from {', '.join(spec.all_variants)}")
        for value, low, what in ((self.epochs, 1, "--epochs must be a positive integer"),
                                 (self.patience, 1, "--patience must be a positive integer"),
                                 (self.seed, 0, "--seed must be >= 0"),
                                 (self.threads, 1, "--threads must be >= 1"),
                                 (self.train_limit, 1, "train_limit must be >= 1")):
            if value is not None and value < low:
                raise HarnessError(f"{what}, got {value}")
        resolve_device(self.device)
        protocol = spec.protocol
        if self.epochs is not None:
            protocol = replace(protocol, max_epochs=self.epochs)
        if self.patience is not None:
            protocol = replace(protocol, patience=self.patience)
        # A "noclip" part in the variant's name (a study variant) is the same switch.
        if self.no_grad_clip or "noclip" in self.variant.split("-"):
            protocol = replace(protocol, grad_clip=None)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "protocol", protocol)


@dataclass
class TrainState:
    """How far a run has got; saved in ``checkpoint.pt`` as a dict (``"state"``)."""

    epoch: int = 0
    step: int = 0  # optimizer steps so far
    history: list[dict[str, float]] = field(default_factory=list)  # metrics per epoch
    best_val_acc: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None  # weights of the best epoch
    stopped: bool = False  # by the patience rule
    wall_s: float = 0.0  # wall time of the earlier segments
    segments: list[dict[str, Any]] = field(default_factory=list)  # earlier segments

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TrainState:
        return cls(**{f.name: saved[f.name] for f in fields(cls)})


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             world: distributed.World | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in %) of ``model`` on ``x, y`` (this process's
    ``rank::world_size`` share, summed over processes)."""
    world = world or distributed.World()
    was_training = model.training
    model.eval()
    xs, ys = x[world.rank::world.world_size], y[world.rank::world.world_size]
    sums = torch.zeros(3, dtype=torch.float64, device=x.device)
    for i in range(0, len(ys), batch_size):
        out = model(xs[i:i + batch_size])
        yb = ys[i:i + batch_size]
        sums[0] += F.cross_entropy(out, yb, reduction="sum").double()
        sums[1] += (out.argmax(1) == yb).sum()
        sums[2] += len(yb)
    model.train(was_training)
    loss_sum, correct, count = distributed.all_reduce_sum(sums, world).tolist()
    return loss_sum / max(count, 1), 100.0 * correct / max(count, 1)


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=True,
                mininterval=1.0, unit="batch", dynamic_ncols=True)


def make_optimizer(model: nn.Module, protocol: Protocol) -> torch.optim.Optimizer:
    """The protocol's optimizer over ``model``'s parameters: ``"sgd"`` (with ``momentum``)
    or ``"adam"`` (PyTorch's default betas and eps; ``momentum`` is not used)."""
    if protocol.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                               weight_decay=protocol.weight_decay)
    if protocol.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=protocol.lr,
                                weight_decay=protocol.weight_decay)
    raise HarnessError(f"unknown optimizer {protocol.optimizer!r}; choose from sgd, adam")


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: Splits,
                 protocol: Protocol, data_gen: torch.Generator, world: distributed.World,
                 step: int, callbacks: Sequence[Any], bar, plain: nn.Module) -> tuple:
    """One pass over this process's shard; returns (train loss, train acc, examples, step)."""
    n = len(data.train_y)
    perm = torch.randperm(n, generator=data_gen).to(data.train_x.device)
    shard = perm[world.rank::world.world_size][: n // world.world_size]
    local_batch = protocol.batch_size // world.world_size
    sums = torch.zeros(3, dtype=torch.float64, device=data.train_x.device)
    model.train()
    start = time.perf_counter()
    for i in range(0, len(shard), local_batch):
        idx = shard[i:i + local_batch]
        xb, yb = data.train_x[idx], data.train_y[idx]
        if protocol.augment == "crop-flip":
            xb = crop_flip(xb, data_gen)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if protocol.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
        optimizer.step()
        step += 1
        sums[0] += loss.detach().double() * len(yb)
        sums[1] += (out.detach().argmax(1) == yb).sum()
        sums[2] += len(yb)
        for cb in callbacks:
            if hasattr(cb, "on_batch_end"):
                cb.on_batch_end(plain, step)
        bar.update(1)
        if bar.n % 20 == 0 or i + local_batch >= len(shard):
            seen = sums[2].item() * world.world_size
            bar.set_postfix(loss=f"{sums[0].item() / sums[2].item():.4f}",
                            acc=f"{100 * sums[1].item() / sums[2].item():.2f}",
                            ex_s=f"{seen / (time.perf_counter() - start):.0f}", refresh=False)
    loss_sum, correct, count = distributed.all_reduce_sum(sums, world).tolist()
    return loss_sum / count, 100.0 * correct / count, int(count), step


def train(cfg: RunConfig, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Run (or resume, or skip if finished) one run; return its record.

    The run sets torch's thread count, flush-denormal mode and deterministic algorithms
    for the process; they are the caller's again when ``train`` returns or raises.
    """
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    world = distributed.init(device.type)
    try:
        with _torch_settings_restored():
            return _Run(cfg, device, world, t_start).run(callbacks)
    finally:
        distributed.shutdown(world)


def _flush_denormal() -> bool:
    """Whether torch flushes subnormals on this thread (torch has no getter): a subnormal
    doubled comes out 0 where inputs are treated as zero."""
    return (torch.tensor([1e-39], dtype=torch.float32) * 2.0).item() == 0.0


@contextlib.contextmanager
def _torch_settings_restored():
    """Give back torch's process-wide settings that a run changes."""
    threads = torch.get_num_threads()
    flush = _flush_denormal()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


class _Run:
    """One run of the loop: what it trains and where it writes."""

    def __init__(self, cfg: RunConfig, device: torch.device, world: distributed.World,
                 t_start: float) -> None:
        task, protocol = cfg.spec, cfg.protocol
        if device.type == "cuda" and world.distributed:
            device = torch.device("cuda", world.local_rank)
        if protocol.batch_size % world.world_size:
            raise HarnessError(f"batch size {protocol.batch_size} is not divisible by "
                               f"{world.world_size} processes")
        self.cfg, self.task, self.protocol = cfg, task, protocol
        self.device, self.world, self.t_start = device, world, t_start
        self.rdir = records.run_dir(cfg.out, task.name, cfg.variant, cfg.seed)
        self.ckpt_path = self.rdir / records.CHECKPOINT
        self.config = json.loads(json.dumps({
            "task": task.name, "variant": cfg.variant, "seed": cfg.seed,
            "dataset": task.dataset, "arch": task.arch, "widths": task.widths,
            "world_size": world.world_size, "train_limit": cfg.train_limit,
            "protocol": protocol.to_dict()}))
        self.state = TrainState()

    def _refuse(self, what: Path, holds: str) -> HarnessError:
        return HarnessError(f"{what} {holds} another configuration; use another --out or "
                            "delete that directory")

    def run(self, callbacks: Sequence[Any]) -> dict[str, Any]:
        """The run, holding its directory's lock (rank 0 writes; it holds the lock)."""
        if not self.world.main:
            return self._run(callbacks)
        try:
            lock = RunLock(self.rdir)
            lock.acquire()
        except RunLockedError as exc:
            raise HarnessError(str(exc)) from None
        except OSError as exc:
            raise HarnessError(f"cannot write the run directory {self.rdir} (--out "
                               f"{self.cfg.out}): {exc}") from None
        try:
            return self._run(callbacks)
        finally:
            lock.release()

    def _run(self, callbacks: Sequence[Any]) -> dict[str, Any]:
        cfg, protocol, world = self.cfg, self.protocol, self.world
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        elif world.distributed and self.device.type == "cpu":
            torch.set_num_threads(max(1, torch.get_num_threads() // world.world_size))
        torch.set_flush_denormal(protocol.flush_denormal)
        torch.use_deterministic_algorithms(True, warn_only=True)
        existing = records.read_record(self.rdir)
        if existing is not None and existing.get("status") == "finished":
            if existing.get("config") != self.config:
                raise self._refuse(self.rdir, "holds a finished run with")
            return existing
        saved = None
        if self.ckpt_path.is_file():
            try:
                saved = checkpoint.load(self.ckpt_path)
            except checkpoint.CheckpointError as exc:
                raise HarnessError(str(exc)) from None
            if saved["config"] != self.config:
                raise self._refuse(self.ckpt_path, "was written with")

        self.data = load_splits(self.task, cfg.data_dir, cfg.train_limit).to(self.device)
        torch.manual_seed(cfg.seed)
        self.plain = build_model(self.task, cfg.variant).to(self.device)
        self.optimizer = make_optimizer(self.plain, protocol)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
        torch.manual_seed(cfg.seed * 1000 + 7 + world.rank)  # dropout: a stream per process
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        if saved is not None:
            self.plain.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            checkpoint.set_rng_state(saved["rng"][world.rank], self.data_gen)
            self.state = TrainState.from_dict(saved["state"])
        self.record: dict[str, Any] = {
            "record_version": records.RECORD_VERSION, "status": "running",
            "task": self.task.name, "variant": cfg.variant, "seed": cfg.seed,
            "config": self.config, "versions": records.versions(),
            "machine": records.machine(self.device), "device": str(self.device),
            "data_sizes": self.data.sizes(),
            "files": {"checkpoint": records.CHECKPOINT, "model": records.MODEL}}
        self.segment = {"start_epoch": self.state.epoch,
                        "start": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._loop(callbacks)
        return self._finish()

    def _loop(self, callbacks: Sequence[Any]) -> None:
        cfg, protocol, world, state, data = (self.cfg, self.protocol, self.world, self.state,
                                             self.data)
        plain = self.plain
        model = plain
        if world.distributed:
            model = nn.parallel.DistributedDataParallel(
                plain, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        n_batches = -(-(len(data.train_y) // world.world_size)
                      // (protocol.batch_size // world.world_size))
        label = f"{self.task.name}/{cfg.variant}/seed{cfg.seed}"
        epoch = state.epoch
        for cb in callbacks:
            if hasattr(cb, "on_train_start"):  # before the first step, e.g. to hook grads
                cb.on_train_start(plain, epoch)
        while not state.stopped and epoch < protocol.max_epochs:
            epoch += 1
            t0 = time.perf_counter()
            with _progress_bar(n_batches, f"{label} epoch {epoch}/{protocol.max_epochs}",
                               cfg.progress and world.main) as bar:
                tr_loss, tr_acc, seen, state.step = _train_epoch(
                    model, self.optimizer, data, protocol, self.data_gen, world, state.step,
                    callbacks, bar, plain)
                train_time = time.perf_counter() - t0
                val_loss, val_acc = evaluate(plain, data.val_x, data.val_y,
                                             protocol.eval_batch_size, world)
                test_loss, test_acc = evaluate(plain, data.test_x, data.test_y,
                                               protocol.eval_batch_size, world)
                bar.set_postfix(loss=f"{tr_loss:.4f}", acc=f"{tr_acc:.2f}",
                                val_acc=f"{val_acc:.2f}", ex_s=f"{seen / train_time:.0f}")
            metrics = {"epoch": epoch, "train_loss": tr_loss, "train_acc": tr_acc,
                       "val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss,
                       "test_acc": test_acc, "train_time_s": train_time,
                       "epoch_time_s": time.perf_counter() - t0,
                       "examples_per_s": seen / train_time}
            state.history.append(metrics)
            if val_acc > state.best_val_acc:
                state.best_val_acc, state.best_epoch = val_acc, epoch
                state.best_state = {k: v.detach().cpu().clone()
                                    for k, v in plain.state_dict().items()}
            if epoch - state.best_epoch >= protocol.patience:
                state.stopped = True
            state.epoch = epoch
            for cb in callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(plain, epoch, metrics)
            self._checkpoint()

    def _wall(self) -> float:
        return self.state.wall_s + time.perf_counter() - self.t_start

    def _segments(self) -> list[dict[str, Any]]:
        return [*self.state.segments, dict(self.segment, end_epoch=self.state.epoch)]

    def _checkpoint(self) -> None:
        rngs = distributed.all_gather_objects(checkpoint.rng_state(self.data_gen), self.world)
        if self.world.main:
            saved = replace(self.state, wall_s=self._wall(), segments=self._segments())
            checkpoint.save(self.ckpt_path, config=self.config, model=self.plain,
                            optimizer=self.optimizer, rng=rngs, state=saved.to_dict())
            self._write_record(final=None)
        distributed.barrier(self.world)

    def _write_record(self, final: dict | None) -> dict:
        out = dict(self.record, epochs=self.state.history, final=final,
                   segments=self._segments(), wall_time_s=self._wall())
        if final is not None:
            out["status"] = "finished"
        records.write_json_atomic(self.rdir / records.RECORD, out)
        return out

    def _finish(self) -> dict:
        state = self.state
        best = state.history[state.best_epoch - 1]
        last = state.history[-1]
        final = {"converged_epoch": state.best_epoch, "epochs_run": state.epoch,
                 "stopped_early": state.stopped, "best_val_acc": best["val_acc"],
                 "val_loss": best["val_loss"], "test_acc": best["test_acc"],
                 "test_loss": best["test_loss"], "train_acc": best["train_acc"],
                 "last_epoch_test_acc": last["test_acc"],
                 "mean_train_time_s": float(np.mean([h["train_time_s"]
                                                     for h in state.history])),
                 "model_weights": "converged epoch (best validation accuracy)"}
        if state.best_state is not None:  # set by every finished epoch
            self.plain.load_state_dict(state.best_state)
        out = dict(self.record, status="finished", final=final)
        if self.world.main:
            records.save_atomic(self.rdir / records.MODEL, self.plain.state_dict())
            out = self._write_record(final)
        distributed.barrier(self.world)
        return out
