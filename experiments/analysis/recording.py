"""Analysis recording during training (``gaaf train --record-analysis``): the quantities of
the paper's Tables 2 and 3 that only exist while a model trains.

* :class:`GradientRecorder` -- the mean absolute gradient ``|dL/dz|`` reaching the net
  values ``z`` of every ``nn.Linear`` (Layer1 = bottom, ..., "Last Layer" = the output
  Linear), averaged over the batch and the nodes at each optimizer step, then over every
  step of the run (Table 2; the GAAF numbers of section 5.1). ``L`` is the trainer's loss,
  the mean cross-entropy of the batch, so each example's gradient carries a ``1/batch``.
* :class:`NetVarianceRecorder` -- at every epoch end, 20 forward passes of one fixed batch
  of 128 training images in train mode (dropout active, no gradient, no update); per layer
  the variance of each net value over the 20 masks (population variance, ``ddof=0``),
  averaged over nodes and examples (Table 3). The global RNG is forked, so training draws
  exactly the numbers it would draw without recording.

Both write into ``<run dir>/analysis.json`` (atomically, at every epoch end) one entry per
finished epoch holding *cumulative* sums, so a resumed run continues from the entry of the
epoch it resumes after and discards entries of epochs the trainer redoes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import records

__all__ = ["ANALYSIS", "ANALYSIS_VERSION", "AnalysisRecorder", "GradientRecorder",
           "NetVarianceRecorder", "fixed_batch_indices", "layer_names", "linear_layers",
           "make_recording_callbacks", "net_variance", "read_analysis"]

ANALYSIS = "analysis.json"
ANALYSIS_VERSION = 1
N_MASKS, BATCH = 20, 128


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's ``nn.Linear`` modules in forward (registration) order."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def layer_names(n: int) -> list[str]:
    """``Layer1 .. Layer{n-1}`` and ``Last Layer`` (the paper's names)."""
    return [f"Layer{i + 1}" for i in range(n - 1)] + ["Last Layer"]


def net_variance(nets: np.ndarray | torch.Tensor) -> float:
    """Mean over examples and nodes of the variance over masks (axis 0, ``ddof=0``) of
    net values shaped ``(masks, examples, nodes)``."""
    if isinstance(nets, torch.Tensor):
        arr = nets.detach().double()
    else:
        arr = torch.from_numpy(np.array(nets, dtype=np.float64))
    return float(arr.var(dim=0, unbiased=False).mean())


class GradientRecorder:
    """Running sum over optimizer steps of ``mean |dL/dz|`` per Linear layer.

    A forward hook on each Linear registers a tensor hook on its output when it takes part
    in autograd (training forward); the tensor hook stores ``grad.abs().mean()`` (one
    reduction per layer, no device sync); ``on_batch_end`` adds them to a float64 sum.
    """

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.steps = 0
        self._pending: list[torch.Tensor | None] = []
        self._handles: list[Any] = []
        self._model: nn.Module | None = None

    def attach(self, model: nn.Module) -> None:
        """Hook ``model``'s Linear layers (idempotent for the same model)."""
        if self._model is model:
            return
        self.detach()
        layers = linear_layers(model)
        if not layers:
            raise ValueError("the model has no nn.Linear layer to record")
        self._model = model
        self._pending = [None] * len(layers)
        for i, layer in enumerate(layers):
            self._handles.append(layer.register_forward_hook(self._forward_hook(i)))
        if self.sums is None:
            self.sums = torch.zeros(len(layers), dtype=torch.float64)

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._model = [], None

    def _forward_hook(self, i: int):
        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            if torch.is_grad_enabled() and out.requires_grad:
                out.register_hook(self._tensor_hook(i))

        return hook

    def _tensor_hook(self, i: int):
        def hook(grad: torch.Tensor) -> None:
            self._pending[i] = grad.detach().abs().mean()

        return hook

    def commit(self) -> None:
        """Add the gradients of the last backward pass to the sums (one step)."""
        if any(p is None for p in self._pending):
            return  # no complete backward pass since the last step
        assert self.sums is not None
        self.sums += torch.stack(self._pending).cpu()  # type: ignore[arg-type]  # float64 sum
        self.steps += 1
        self._pending = [None] * len(self._pending)

    def means(self) -> list[float]:
        """The mean over recorded steps, per layer."""
        if self.sums is None or not self.steps:
            return []
        return (self.sums / self.steps).tolist()


class NetVarianceRecorder:
    """Per-layer mean variance of the net values over ``n_masks`` dropout masks."""

    def __init__(self, batch: torch.Tensor, n_masks: int = N_MASKS, seed: int = 0) -> None:
        self.batch = batch
        self.n_masks = n_masks
        self.seed = seed

    @torch.no_grad()
    def measure(self, model: nn.Module, epoch: int = 0) -> list[float]:
        """Forward the batch ``n_masks`` times in train mode; return the per-layer mean
        variance. Masks come from ``seed + epoch`` inside a forked RNG; the model's mode
        and the global RNG state are restored."""
        layers = linear_layers(model)
        captured: list[list[torch.Tensor]] = [[] for _ in layers]
        handles = [layer.register_forward_hook(
            lambda m, i, o, k=k: captured[k].append(o.detach().double().cpu()))
            for k, layer in enumerate(layers)]
        device = next(model.parameters()).device
        devices = [device.index or 0] if device.type == "cuda" else []
        was_training = model.training
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed * 100_003 + epoch)
                model.train()
                x = self.batch.to(device)
                for _ in range(self.n_masks):
                    model(x)
        finally:
            model.train(was_training)
            for h in handles:
                h.remove()
        return [net_variance(torch.stack(c)) for c in captured]


def read_analysis(run_dir: str | Path) -> dict | None:
    """The ``analysis.json`` of a run directory, or None."""
    return records.read_record(Path(run_dir) / ANALYSIS)


def _is_main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class AnalysisRecorder:
    """The training callback: gradients every step, net variances every epoch end, the
    cumulative state in ``analysis.json`` (resume-safe, see the module docstring).

    The trainer gives callbacks the model only after a step, so until then a global
    forward pre-hook waits for the first forward in training mode with autograd on (the
    trainer's first step) and hooks that model before its layers run; :meth:`close`
    removes it if training never started (a finished run is skipped).
    """

    def __init__(self, run_dir: str | Path, batch: torch.Tensor, batch_indices: Sequence[int],
                 seed: int = 0, n_masks: int = N_MASKS, wait_for_model: bool = True) -> None:
        self.path = Path(run_dir) / ANALYSIS
        self.grad = GradientRecorder()
        self.var = NetVarianceRecorder(batch, n_masks, seed)
        self.batch_indices = [int(i) for i in batch_indices]
        self.state: dict[str, Any] | None = None
        self.last_step = 0
        self._global = (nn.modules.module.register_module_forward_pre_hook(self._first_forward)
                        if wait_for_model else None)

    def _first_forward(self, module: nn.Module, inputs: Any) -> None:
        if module.training and torch.is_grad_enabled() and linear_layers(module):
            self.close()
            self.grad.attach(module)

    def close(self) -> None:
        """Remove the global hook (idempotent)."""
        if self._global is not None:
            self._global.remove()
            self._global = None

    def _start(self, model: nn.Module, step: int) -> bool:
        """First step seen by this process: continue from the entry ending at ``step - 1``.
        Returns whether this step's gradients were hooked."""
        self.close()
        hooked = self.grad._model is not None
        if not hooked:
            self.grad.attach(model)
        names = layer_names(len(linear_layers(model)))
        old = read_analysis(self.path.parent)
        if old is not None and old.get("layers") != names:
            old = None
        kept = [e for e in (old or {}).get("epochs", []) if e["step"] <= step - 1]
        first = step if hooked else step + 1
        state = {"analysis_version": ANALYSIS_VERSION, "layers": names,
                 "gradient": "mean over steps of mean over batch and nodes of |dL/dz|, "
                             "L = mean cross-entropy of the batch, z = Linear outputs",
                 "net_variance": f"mean over examples and nodes of the variance (ddof=0) of "
                                 f"z over {self.var.n_masks} dropout masks, train mode, "
                                 f"one fixed batch of {len(self.batch_indices)} training "
                                 f"images, at each epoch end",
                 "batch_indices": self.batch_indices, "first_step": first, "epochs": []}
        if kept and kept[-1]["step"] == step - 1 and hooked:
            state["first_step"], state["epochs"] = (old or {}).get("first_step", 1), kept
            self.grad.sums = torch.tensor(kept[-1]["grad_sum"], dtype=torch.float64)
            self.grad.steps = kept[-1]["grad_steps"]
        self.state = state
        return hooked

    def on_batch_end(self, model: nn.Module, step: int) -> None:
        if self.state is None and not self._start(model, step):
            self.last_step = step
            return
        self.grad.commit()
        self.last_step = step

    def on_epoch_end(self, model: nn.Module, epoch: int, metrics: dict) -> None:
        if self.state is None:
            return
        assert self.grad.sums is not None
        entry = {"epoch": epoch, "step": self.last_step, "grad_steps": self.grad.steps,
                 "grad_sum": self.grad.sums.tolist(), "grad_mean": self.grad.means(),
                 "net_variance": self.var.measure(model, epoch)}
        self.state["epochs"] = [e for e in self.state["epochs"] if e["epoch"] < epoch] + [entry]
        if _is_main_process():
            records.write_json_atomic(self.path, self.state)


def fixed_batch_indices(n_train: int, seed: int, size: int = BATCH) -> np.ndarray:
    """``size`` distinct training indices drawn with ``seed`` (sorted)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_train, size=min(size, n_train), replace=False))


def make_recording_callbacks(cfg: Any) -> list[AnalysisRecorder]:
    """The callbacks of ``gaaf train --record-analysis`` for ``cfg`` (a ``RunConfig``):
    loads the task's training split once more to take the fixed batch of Table 3."""
    from ..datasets import load_splits
    from ..tasks import get_task

    task = get_task(cfg.task)
    splits = load_splits(task, cfg.data_dir, cfg.train_limit)
    idx = fixed_batch_indices(len(splits.train_y), cfg.seed)
    batch = splits.train_x[torch.from_numpy(idx)].clone()
    rdir = records.run_dir(cfg.out, task.name, cfg.variant, cfg.seed)
    return [AnalysisRecorder(rdir, batch, idx.tolist(), seed=cfg.seed)]
