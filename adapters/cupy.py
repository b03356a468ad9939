"""CuPy adapter: GAAF forward and backward on CuPy arrays, zero-copy through DLPack.

Kernels run on CuPy's current stream: torch's current stream is pointed at it for the
duration of the call, so the DLPack hand-over needs no synchronization and work queued
by the caller on a non-default stream is ordered before ours. CuPy is imported lazily;
this module imports (and its checks run) without CuPy or a GPU.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from gaaf_kernels.reference import GAAFConfig, configure

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from gaaf_kernels.reference import GAAFSettings

from . import dlpack

LIBRARY = "CuPy"


def _cupy():
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError("gaaf_kernels.adapters.cupy needs CuPy (pip install cupy-cuda13x)"
                          ) from exc
    return cupy


def _module_of(x):
    """CuPy for CuPy arrays; NumPy arrays are accepted too (CPU, the same code path)."""
    import numpy

    if isinstance(x, numpy.ndarray):
        return numpy
    if type(x).__module__.split(".")[0] == "cupy" and isinstance(x, _cupy().ndarray):
        return _cupy()
    raise TypeError(f"expected a cupy.ndarray, got {type(x).__module__}.{type(x).__name__}")


def _on_current_stream(xp):
    """Make torch's current stream CuPy's current stream (CUDA arrays only)."""
    if xp.__name__ != "cupy":
        return contextlib.nullcontext()
    import torch

    stream = xp.cuda.get_current_stream()
    device = torch.device("cuda", xp.cuda.Device().id)
    return torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr, device=device))


def _call(kind, x, grad_output, cfg: GAAFConfig, out):
    xp = _module_of(x)
    for name, other in (("grad_output", grad_output), ("out", out)):
        if other is not None and _module_of(other) is not xp:
            raise TypeError(f"{name} must be a {xp.__name__} array like x")
    with _on_current_stream(xp):
        return dlpack.run(
            kind, x, grad_output, library=LIBRARY if xp.__name__ == "cupy" else "NumPy",
            from_dlpack=xp.from_dlpack, make_contiguous=xp.ascontiguousarray, cfg=cfg,
            out=out)


def forward(x, activation: str | None = None, shape: str | None = None, *,
            config: GAAFConfig | None = None, out=None, **settings: Unpack[GAAFSettings]):
    """GAAF forward of a CuPy array; the result is a CuPy array (``out`` if given).

    Takes ``gaaf()``'s settings or ``config=``. ``out`` must match x in shape, dtype and
    device and be laid out as the result (x's strides for a dense x, C order otherwise).
    """
    return _call("forward", x, None, configure(activation, shape, config, **settings), out)


def backward(x, grad_output, activation: str | None = None, shape: str | None = None, *,
             config: GAAFConfig | None = None, out=None, **settings: Unpack[GAAFSettings]):
    """dL/dx from x and dL/dy (CuPy arrays of one shape and dtype)."""
    return _call("backward", x, grad_output, configure(activation, shape, config, **settings),
                 out)
