"""Tensors for training: the train/validation/test splits of a task, normalization,
augmentation, and the synthetic ``tiny`` data of the test-only tasks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .tasks import Task

__all__ = ["Splits", "load_splits", "crop_flip", "tiny_dataset"]


@dataclass
class Splits:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    def to(self, device: torch.device) -> Splits:
        return Splits(*(t.to(device) for t in (self.train_x, self.train_y, self.val_x,
                                                self.val_y, self.test_x, self.test_y)))


def tiny_dataset(task: Task, n_train: int = 256, n_test: int = 64):
    """Random Gaussian inputs labelled by a random linear teacher (fixed seed 0)."""
    from .data import Dataset

    rng = np.random.default_rng(0)
    dim = int(np.prod(task.in_shape))
    teacher = rng.standard_normal((dim, task.num_classes))
    x = rng.standard_normal((n_train + n_test, *task.in_shape)).astype(np.float32)
    y = (x.reshape(len(x), dim) @ teacher).argmax(1).astype(np.int64)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], task.num_classes, "tiny")


def load_splits(task: Task, data_dir: str | Path | None = None,
                train_limit: int | None = None) -> Splits:
    """Load the task's dataset; the last ``val_fraction`` of the training set is the
    validation set (MNIST: the standard last 10000); ``train_limit`` keeps only the first
    examples of the remaining training part (quick runs)."""
    if task.dataset == "tiny":
        ds = tiny_dataset(task)
    else:
        from .data import load_dataset

        ds = load_dataset(task.dataset, data_dir)
    if ds.train_x.shape[1:] != task.in_shape:
        raise ValueError(f"{task.name}: images have shape {ds.train_x.shape[1:]}, "
                         f"expected {task.in_shape}")
    n = len(ds.train_y)
    n_val = int(round(n * task.protocol.val_fraction))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"{task.name}: {n} training examples are too few for a validation split")
    cut = n - n_val
    train_x, train_y = ds.train_x[:cut], ds.train_y[:cut]
    if train_limit is not None:
        train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in
               (train_x, train_y, ds.train_x[cut:], ds.train_y[cut:], ds.test_x, ds.test_y)]
    splits = Splits(*tensors)
    if task.protocol.normalize == "channel":
        mean = splits.train_x.mean(dim=(0, 2, 3), keepdim=True)
        std = splits.train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        for name in ("train_x", "val_x", "test_x"):
            setattr(splits, name, (getattr(splits, name) - mean) / std)
    return splits


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel-padded crop and horizontal flip per image (draws from
    ``generator``, a CPU generator, so that resuming restores the same augmentation)."""
    n, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    rows = dy[:, None] + torch.arange(h, device=dev)
    cols = dx[:, None] + torch.arange(w, device=dev)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    return xp[torch.arange(n, device=dev)[:, None, None, None],
              torch.arange(c, device=dev)[None, :, None, None],
              rows[:, None, :, None], cols[:, None, None, :]]
