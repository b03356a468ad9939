"""Zero-copy exchange with any DLPack array library (CuPy, NumPy, JAX, ...).

Arrays come in as torch tensors through ``torch.from_dlpack`` (no copy), run through
the PyTorch adapter's public ``gaaf`` / ``gaaf_backward`` (or, to write ``out=`` on the
Triton backend, straight through the kernel launchers), and go back out through the
library's own ``from_dlpack`` (no copy). Where a layout cannot be shared (negative strides, which
``torch.from_dlpack`` cannot represent), the input is first made contiguous by its own
library: a documented copy, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gaaf_kernels.kernels import launch
from gaaf_kernels.kernels.layout import check_like
from gaaf_kernels.reference import GAAFConfig
from gaaf_kernels.reference.dtypes import SUPPORTED_DTYPES, dtype_name

from . import torch as torch_adapter

# DLPack readers such as NumPy and CuPy have no bfloat16
SUPPORTED = tuple(name for name in SUPPORTED_DTYPES if name != "bfloat16")


def check_dtype(array, name: str, library: str) -> None:
    dtype = dtype_name(getattr(array, "dtype", "?"))
    if dtype == "bfloat16":
        raise TypeError(
            f"{name}: bfloat16 cannot cross DLPack from {library} (DLPack readers such as "
            "NumPy and CuPy have no bfloat16); use torch tensors for bfloat16")
    if dtype not in SUPPORTED:
        raise TypeError(f"{name}: GAAF supports floating dtypes {', '.join(SUPPORTED)} "
                        f"through {library}; got {dtype}")


def import_array(array, name: str, library: str,
                 make_contiguous: Callable | None = None) -> torch.Tensor:
    """A torch view of ``array`` (no copy unless it has negative strides)."""
    check_dtype(array, name, library)
    strides = getattr(array, "strides", None) or ()
    if any(s < 0 for s in strides):
        if make_contiguous is None:
            raise ValueError(f"{name} has negative strides, which DLPack cannot share")
        array = make_contiguous(array)
    try:
        return torch.from_dlpack(array)
    except (BufferError, RuntimeError, TypeError) as exc:
        raise TypeError(f"{name}: cannot import this {library} array through DLPack: "
                        f"{exc}") from None


def check_out(out, x_tensor: torch.Tensor, out_tensor: torch.Tensor) -> None:
    """``out``: same shape, dtype and device as x, writable, laid out as the result."""
    flags = getattr(out, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):
        raise ValueError("out is read-only")
    launch.output_like(x_tensor, out_tensor, "out")


def run(
    kind: str,
    x,
    grad_output,
    *,
    library: str,
    from_dlpack: Callable,
    make_contiguous: Callable | None,
    cfg: GAAFConfig,
    out=None,
):
    """Forward (``grad_output is None``) or backward of GAAF on DLPack arrays."""
    xt = import_array(x, "x", library, make_contiguous)
    args = [xt]
    if kind == "backward":
        gt = import_array(grad_output, "grad_output", library, make_contiguous)
        check_like(xt, gt)
        args.append(gt)
    out_tensor = None
    if out is not None:  # checked before any work is done
        out_tensor = import_array(out, "out", library)
        check_out(out, xt, out_tensor)
    backend = torch_adapter.select_backend("auto", xt)
    with torch.no_grad():
        if kind == "forward":
            if out_tensor is not None and backend == "triton":  # the kernel writes out
                launch.forward(xt, cfg, out=out_tensor)
                return out
            result = torch_adapter.gaaf(xt, config=cfg, backend=backend)
        else:
            if out_tensor is not None and backend == "triton":
                launch.backward(xt, args[1], cfg, out=out_tensor)
                return out
            result = torch_adapter.gaaf_backward(xt, args[1], config=cfg, backend=backend)
    if out_tensor is None:
        return from_dlpack(result)
    out_tensor.copy_(result)
    return out
