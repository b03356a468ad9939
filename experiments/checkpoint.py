"""``checkpoint.pt``: the full training state, saved every epoch and loaded safely.

A checkpoint is a dict ``{"config", "model", "optimizer", "rng", "state"}`` of tensors,
plain Python values and, in each process's ``rng`` entry, NumPy's RNG state (a uint32
array). :func:`load` reads it with ``torch.load(weights_only=True)``, which builds nothing
but tensors and plain values; the NumPy globals that rebuild that one array are allowed
for the duration of the load only (``torch.serialization.safe_globals``). So a run
directory copied from elsewhere cannot run code when a run resumes from it: a checkpoint
holding any other object is refused with :class:`CheckpointError`, before anything in it
is built.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import records

__all__ = ["CheckpointError", "KEYS", "load", "rng_state", "save", "set_rng_state"]

KEYS = ("config", "model", "optimizer", "rng", "state")


class CheckpointError(ValueError):
    """A ``checkpoint.pt`` that is refused (unsafe content) or cannot be read."""


def _numpy_rng_globals() -> list:
    """Exactly what unpickling ``np.random.get_state()`` needs: its uint32 key array."""
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy 2
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [np.ndarray, np.dtype, type(np.dtype(np.uint32)),
            # under both names, so checkpoints written with NumPy 1 or 2 load with either
            (_reconstruct, "numpy.core.multiarray._reconstruct"),
            (_reconstruct, "numpy._core.multiarray._reconstruct")]


def _refusal(message: str) -> str:
    """What torch's weights-only unpickler objected to, in a few words."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return f"it references {found.group(1)}"
    found = re.search(r"WeightsUnpickler error: ([^\n.]+)", message)
    return found.group(1).strip() if found else "not a weights-only pickle"


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save` (or by any earlier version of it) onto
    the CPU. Raises :class:`CheckpointError` if it holds anything else."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_rng_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} was refused by the safe loader ({_refusal(str(exc))}): a checkpoint "
            "holds only tensors, plain values and NumPy's RNG state. Nothing in it was "
            "loaded or run; a file from elsewhere may have been made to run code. Delete "
            "it to start the run afresh, or use another --out.") from None
    except (RuntimeError, EOFError) as exc:
        raise CheckpointError(f"{path} cannot be read ({exc}); delete it to start the run "
                              "afresh, or use another --out") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in KEYS):
        raise CheckpointError(f"{path} is not a training checkpoint (expected the keys "
                              f"{', '.join(KEYS)}); delete it or use another --out")
    return ckpt


def save(path: str | Path, *, config: dict, model: torch.nn.Module,
         optimizer: torch.optim.Optimizer, rng: list[dict[str, Any]],
         state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a crash leaves the previous one intact)."""
    records.save_atomic(path, {"config": config, "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(), "rng": rng,
                               "state": state})


def rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    """This process's RNG states: torch (dropout), the data-order generator, NumPy,
    Python and, once CUDA is in use, every CUDA device's."""
    state = {"torch": torch.get_rng_state(), "data": data_gen.get_state(),
             "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
