"""Run records: the run directory layout, its writers and readers, versions and machine
details.

Layout (stable; ``gaaf analyze`` reads it)::

    <out>/<task>/<variant>/seed<N>/
        record.json     config, protocol, versions, device, per-epoch metrics, final metrics
        checkpoint.pt   latest full training state (model, optimizer, RNG states, history)
        model.pt        state_dict of the converged (best-validation) weights
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .atomic import write_atomic

__all__ = ["RECORD", "CHECKPOINT", "MODEL", "run_dir", "write_json_atomic", "save_atomic",
           "read_record", "read_finished", "versions", "machine"]

RECORD, CHECKPOINT, MODEL = "record.json", "checkpoint.pt", "model.pt"
RECORD_VERSION = 1


def run_dir(out: str | Path, task: str, variant: str, seed: int) -> Path:
    """``<out>/<task>/<variant>/seed<N>``."""
    return Path(out) / task / variant / f"seed{seed}"


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to a temp file beside ``path``, fsync, then rename over ``path``."""
    write_atomic(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def save_atomic(path: str | Path, obj: Any) -> None:
    """``torch.save`` atomically (a crash leaves the previous file intact)."""
    write_atomic(path, lambda fh: torch.save(obj, fh))


def read_record(path: str | Path) -> dict | None:
    """The record in a run directory (or at a path), or None if absent or unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_finished(rdir: str | Path) -> dict | None:
    """The record of a finished run in ``rdir``; None while it is absent, unreadable or
    still running (an interrupted run)."""
    rec = read_record(rdir)
    return rec if rec is not None and rec.get("status") == "finished" else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    import numpy

    return {"python": platform.python_version(), "torch": torch.__version__,
            "triton": _version("triton"), "numpy": numpy.__version__,
            "gaaf_kernels": _version("gaaf-kernels")}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "cpu_model": cpu_model(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "platform": platform.platform(), "hostname": platform.node(),
                            "argv": sys.argv}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info
