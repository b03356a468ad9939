"""The training loop: one (task, variant, seed) run, checkpointed every epoch, resumable
with bit-identical results, optionally under DistributedDataParallel (torchrun).

Callbacks (for analysis tools) are objects with any of ``on_batch_end(model, step)`` and
``on_epoch_end(model, epoch, metrics)``; ``model`` is the plain module (never the DDP
wrapper), ``step`` counts optimizer steps from 1 over the whole run.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import distributed, records
from .datasets import Splits, crop_flip, load_splits
from .models import build_model
from .tasks import Protocol, Task, get_task

__all__ = ["RunConfig", "HarnessError", "resolve_device", "train", "evaluate"]

DEVICES = ("auto", "cpu", "cuda")


class HarnessError(ValueError):
    """Bad arguments or an incompatible run directory (the CLI exits 2)."""


@dataclass(frozen=True)
class RunConfig:
    """What to run. ``epochs`` and ``patience`` override the protocol's values."""

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


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is an error."""
    if name not in DEVICES:
        raise HarnessError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise HarnessError("--device cuda asked for, but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def check_config(cfg: RunConfig) -> tuple[Task, Protocol]:
    """Validate names and numbers; return the task and the effective protocol."""
    try:
        task = get_task(cfg.task)
    except KeyError as exc:
        raise HarnessError(exc.args[0]) from None
    if cfg.variant not in task.variants:
        raise HarnessError(f"unknown variant {cfg.variant!r} for {task.name}; "
                           f"choose from {', '.join(task.variants)}")
    if cfg.epochs is not None and cfg.epochs < 1:
        raise HarnessError(f"--epochs must be a positive integer, got {cfg.epochs}")
    if cfg.patience is not None and cfg.patience < 1:
        raise HarnessError(f"--patience must be a positive integer, got {cfg.patience}")
    if cfg.seed < 0:
        raise HarnessError(f"--seed must be >= 0, got {cfg.seed}")
    if cfg.threads is not None and cfg.threads < 1:
        raise HarnessError(f"--threads must be >= 1, got {cfg.threads}")
    if cfg.train_limit is not None and cfg.train_limit < 1:
        raise HarnessError(f"train_limit must be >= 1, got {cfg.train_limit}")
    resolve_device(cfg.device)
    protocol = task.protocol
    if cfg.epochs is not None:
        protocol = replace(protocol, max_epochs=cfg.epochs)
    if cfg.patience is not None:
        protocol = replace(protocol, patience=cfg.patience)
    return task, protocol


def _rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "data": data_gen.get_state(),
             "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def _json_roundtrip(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=True,
                mininterval=1.0, unit="batch", dynamic_ncols=True)


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
    """Run (or resume, or skip if finished) one run; return its record."""
    t_start = time.perf_counter()
    task, protocol = check_config(cfg)
    device = resolve_device(cfg.device)
    world = distributed.init(device.type)
    try:
        return _train(cfg, task, protocol, device, world, callbacks, t_start)
    finally:
        distributed.shutdown(world)


def _train(cfg: RunConfig, task: Task, protocol: Protocol, device: torch.device,
           world: distributed.World, callbacks: Sequence[Any], t_start: float) -> dict:
    if device.type == "cuda" and world.distributed:
        device = torch.device("cuda", world.local_rank)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    elif world.distributed and device.type == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads() // world.world_size))
    torch.set_flush_denormal(protocol.flush_denormal)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if protocol.batch_size % world.world_size:
        raise HarnessError(f"batch size {protocol.batch_size} is not divisible by "
                           f"{world.world_size} processes")
    rdir = records.run_dir(cfg.out, task.name, cfg.variant, cfg.seed)
    config = _json_roundtrip({
        "task": task.name, "variant": cfg.variant, "seed": cfg.seed, "dataset": task.dataset,
        "arch": task.arch, "widths": task.widths, "world_size": world.world_size,
        "train_limit": cfg.train_limit, "protocol": protocol.to_dict()})
    existing = records.read_record(rdir)
    if existing is not None and existing.get("status") == "finished":
        if existing.get("config") != config:
            raise HarnessError(f"{rdir} holds a finished run with another configuration; "
                               "use another --out or delete that directory")
        return existing

    data = load_splits(task, cfg.data_dir, cfg.train_limit).to(device)
    torch.manual_seed(cfg.seed)
    plain = build_model(task, cfg.variant).to(device)
    if protocol.optimizer != "sgd":
        raise HarnessError(f"unknown optimizer {protocol.optimizer!r}")
    optimizer = torch.optim.SGD(plain.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                                weight_decay=protocol.weight_decay)
    data_gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    torch.manual_seed(cfg.seed * 1000 + 7 + world.rank)  # dropout: a stream per process
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best_val_acc": -1.0,
                             "best_epoch": 0, "best_state": None, "stopped": False,
                             "wall_s": 0.0, "segments": []}
    ckpt_path = rdir / records.CHECKPOINT
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["config"] != config:
            raise HarnessError(f"{ckpt_path} was written with another configuration; "
                               "use another --out or delete that directory")
        plain.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"][world.rank], data_gen)
        state = ckpt["state"]
    model = plain
    if world.distributed:
        model = nn.parallel.DistributedDataParallel(
            plain, device_ids=[device.index] if device.type == "cuda" else None)

    record: dict[str, Any] = {
        "record_version": records.RECORD_VERSION, "status": "running", "task": task.name,
        "variant": cfg.variant, "seed": cfg.seed, "config": config,
        "versions": records.versions(), "machine": records.machine(device),
        "device": str(device), "data_sizes": data.sizes(), "files": {
            "checkpoint": records.CHECKPOINT, "model": records.MODEL}}
    segment = {"start_epoch": state["epoch"], "start": time.strftime("%Y-%m-%dT%H:%M:%S")}
    n_batches = -(-(len(data.train_y) // world.world_size) // (protocol.batch_size
                                                                // world.world_size))
    label = f"{task.name}/{cfg.variant}/seed{cfg.seed}"
    epoch = state["epoch"]
    while not state["stopped"] and epoch < protocol.max_epochs:
        epoch += 1
        t0 = time.perf_counter()
        with _progress_bar(n_batches, f"{label} epoch {epoch}/{protocol.max_epochs}",
                           cfg.progress and world.main) as bar:
            tr_loss, tr_acc, seen, state["step"] = _train_epoch(
                model, optimizer, data, protocol, data_gen, world, state["step"], callbacks,
                bar, plain)
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
        state["history"].append(metrics)
        if val_acc > state["best_val_acc"]:
            state["best_val_acc"], state["best_epoch"] = val_acc, epoch
            state["best_state"] = {k: v.detach().cpu().clone()
                                   for k, v in plain.state_dict().items()}
        if epoch - state["best_epoch"] >= protocol.patience:
            state["stopped"] = True
        state["epoch"] = epoch
        for cb in callbacks:
            if hasattr(cb, "on_epoch_end"):
                cb.on_epoch_end(plain, epoch, metrics)
        _checkpoint(ckpt_path, plain, optimizer, data_gen, state, config, world, record,
                    segment, t_start)
    return _finish(rdir, plain, state, record, segment, world, t_start)


def _wall(state: dict, t_start: float) -> float:
    return state["wall_s"] + time.perf_counter() - t_start


def _checkpoint(path: Path, plain: nn.Module, optimizer, data_gen, state: dict, config: dict,
                world: distributed.World, record: dict, segment: dict, t_start: float) -> None:
    rngs = distributed.all_gather_objects(_rng_state(data_gen), world)
    if world.main:
        saved = dict(state, wall_s=_wall(state, t_start),
                     segments=[*state["segments"], dict(segment, end_epoch=state["epoch"])])
        records.save_atomic(path, {"config": config, "model": plain.state_dict(),
                                   "optimizer": optimizer.state_dict(), "rng": rngs,
                                   "state": saved})
        _write_record(path.parent, record, state, segment, t_start, final=None)
    distributed.barrier(world)


def _write_record(rdir: Path, record: dict, state: dict, segment: dict, t_start: float,
                  final: dict | None) -> dict:
    out = dict(record, epochs=state["history"], final=final,
               segments=[*state["segments"], dict(segment, end_epoch=state["epoch"])],
               wall_time_s=_wall(state, t_start))
    if final is not None:
        out["status"] = "finished"
    records.write_json_atomic(rdir / records.RECORD, out)
    return out


def _finish(rdir: Path, plain: nn.Module, state: dict, record: dict, segment: dict,
            world: distributed.World, t_start: float) -> dict:
    best = state["history"][state["best_epoch"] - 1]
    last = state["history"][-1]
    final = {"converged_epoch": state["best_epoch"], "epochs_run": state["epoch"],
             "stopped_early": state["stopped"], "best_val_acc": best["val_acc"],
             "val_loss": best["val_loss"], "test_acc": best["test_acc"],
             "test_loss": best["test_loss"], "train_acc": best["train_acc"],
             "last_epoch_test_acc": last["test_acc"],
             "mean_train_time_s": float(np.mean([h["train_time_s"] for h in state["history"]])),
             "model_weights": "converged epoch (best validation accuracy)"}
    plain.load_state_dict(state["best_state"])
    out = dict(record, status="finished", final=final)
    if world.main:
        records.save_atomic(rdir / records.MODEL, plain.state_dict())
        out = _write_record(rdir, record, state, segment, t_start, final)
    distributed.barrier(world)
    return out
