"""Launchers: torch tensors in, the fused kernels run in memory order, tensors out."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
import triton
import triton.language as tl

from gaaf_kernels.reference import FunctionSpec, GAAFConfig
from gaaf_kernels.reference.dtypes import dtype_name, policy
from gaaf_kernels.reference.registry import MAX_PARAMS

from ..registry import triton_functions, triton_second_derivative
from .gaaf import gaaf_backward_kernel, gaaf_forward_kernel
from .layout import check_like, in_layout_of

# Elements per program and warps on a GPU, per storage dtype (elements per thread =
# BLOCK / (32 * warps)). 16-bit storage takes 16 per thread: the index arithmetic and
# scalar set-up per thread are then spread over more elements, which counts in a 16-bit
# forward's small instruction budget (gaaf verify --compile;
# results/performance/predicted-throughput.md).
GPU_LAUNCH = {"float16": (2048, 4), "bfloat16": (2048, 4), "float32": (1024, 4),
              "float64": (1024, 4)}
# The interpreter's cost is mostly per program instance, not per element: few, large
# programs (results/performance/cpu-2026-12-04.md).
INTERPRETER_MAX_BLOCK = 2**16
INT32_LIMIT = 2**31


def interpreting() -> bool:
    """True when Triton kernels run under the CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def gpu_launch_config(dtype: str) -> tuple[int, int]:
    """(BLOCK_SIZE, num_warps) of the GPU launch for a storage dtype name."""
    return GPU_LAUNCH[dtype]


def check_dtype(dtype: torch.dtype) -> None:
    policy(dtype)  # TypeError naming the supported dtypes


def check_device(x: torch.Tensor) -> None:
    """Kernels run on CUDA tensors, or on CPU tensors under the interpreter."""
    if x.device.type == "cuda":
        return
    if x.device.type == "cpu" and interpreting():
        return
    if x.device.type == "cpu":
        raise RuntimeError(
            "the Triton backend needs a CUDA tensor; to run it on the CPU, set the "
            "environment variable TRITON_INTERPRET=1 before importing gaaf_kernels "
            "(slow, for testing), or use backend='torch' / 'auto'"
        )
    raise RuntimeError(f"the Triton backend does not support device {x.device}")


def inverse_K(K: float, dtype: torch.dtype) -> float:
    """1/K rounded once in the compute dtype, as the reference and the composite round it."""
    if policy(dtype).compute == "float64":
        return 1.0 / K
    return float(np.float32(1.0) / np.float32(K))


def _padded(params: tuple[float, ...]) -> list[float]:
    return list(params) + [0.0] * (MAX_PARAMS - len(params))


def kernel_for(kernel: str, activation: FunctionSpec, shape: FunctionSpec,
               dtype: str, band: bool = False) -> tuple[triton.JITFunction, dict]:
    """The fused kernel for ``"forward"`` or ``"backward"`` and its function constexprs.

    ``dtype`` is the storage dtype's name: it picks the Triton twins (fast ones for 32-
    and 16-bit storage where they exist). The counts of parameters are included. With
    ``band`` the forward also gets phi' and the backward phi''.
    """
    act_value, act_derivative = triton_functions(activation, dtype)
    shape_value, shape_derivative = triton_functions(shape, dtype)
    common = {"N_ACTIVATION_PARAMS": len(activation.params),
              "N_SHAPE_PARAMS": len(shape.params), "BAND": band}
    if kernel == "forward":
        return gaaf_forward_kernel, {"ACTIVATION": act_value, "SHAPE": shape_value,
                                     "ACTIVATION_DERIVATIVE": act_derivative if band else None,
                                     **common}
    second = triton_second_derivative(activation, dtype) if band else None
    return gaaf_backward_kernel, {"ACTIVATION_DERIVATIVE": act_derivative, "SHAPE": shape_value,
                                  "SHAPE_DERIVATIVE": shape_derivative,
                                  "ACTIVATION_SECOND_DERIVATIVE": second, **common}


def inverse_bound(cfg: GAAFConfig, dtype: torch.dtype) -> float:
    """1/m of the saturation band rounded once in the compute dtype (0 without band)."""
    if cfg.inv_bound is None:  # no band
        return 0.0
    if policy(dtype).compute == "float64":
        return cfg.inv_bound
    return float(np.float32(cfg.inv_bound))


def scalar_arguments(cfg: GAAFConfig, dtype: torch.dtype) -> list[float]:
    """K, 1/K, the padded activation and shape parameters and 1/m, in the kernels' order."""
    return [cfg.K, inverse_K(cfg.K, dtype), *_padded(cfg.activation_params),
            *_padded(cfg.shape_params), inverse_bound(cfg, dtype)]


def _bf16_as_bits(dtype: torch.dtype) -> bool:
    # The interpreter's bfloat16 casts mishandle subnormals and ties; hand it the bits.
    return dtype == torch.bfloat16 and interpreting()


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int16) if _bf16_as_bits(t.dtype) else t


def _launch_options(n: int, dtype: torch.dtype, block_size: int | None,
                    force_int64: bool) -> dict:
    gpu_block, gpu_warps = gpu_launch_config(dtype_name(dtype))
    if block_size is None:
        if interpreting():
            block_size = min(INTERPRETER_MAX_BLOCK, max(16, triton.next_power_of_2(n)))
        else:
            block_size = gpu_block
    options = {
        "COMPUTE_DTYPE": getattr(tl, policy(dtype).triton_compute),
        "BLOCK_SIZE": block_size,
        "INT64_OFFSETS": force_int64 or n >= INT32_LIMIT,
        "BF16_AS_BITS": _bf16_as_bits(dtype),
        # No mul+add contraction: x*K must be rounded before floor, as in the reference.
        "enable_fp_fusion": False,
    }
    if not interpreting():
        options["num_warps"] = gpu_warps
    return options


def _device_guard(x: torch.Tensor):
    # Triton launches on the current stream of the current device: make that x's.
    if x.device.type == "cuda":
        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


def output_like(x: torch.Tensor, out: torch.Tensor | None, name: str = "out") -> torch.Tensor:
    """A new output in x's dense layout, or ``out`` checked to be exactly that."""
    layout = torch.empty_like(x)
    if out is None:
        return layout
    check_like(x, out, name)
    if out.stride() != layout.stride():
        raise ValueError(
            f"{name} must be dense with the strides of torch.empty_like(x) "
            f"{layout.stride()}; got {out.stride()}")
    return out


def _launch(kernel_name: str, x: torch.Tensor, inputs: list[torch.Tensor],
            out: torch.Tensor | None, cfg: GAAFConfig, block_size: int | None,
            force_int64: bool) -> torch.Tensor:
    """Run the kernel over ``inputs`` (read in the output's memory order) into the output."""
    check_dtype(x.dtype)
    check_device(x)
    result = output_like(x, out)
    n = x.numel()
    if n == 0:
        return result
    pointers = [_bits(in_layout_of(t, result)) for t in inputs] + [_bits(result)]
    options = _launch_options(n, x.dtype, block_size, force_int64)
    grid = (triton.cdiv(n, options["BLOCK_SIZE"]),)
    kernel, functions = kernel_for(kernel_name, cfg.activation, cfg.shape, dtype_name(x.dtype),
                                   cfg.band)
    with _device_guard(x):
        kernel[grid](*pointers, n, *scalar_arguments(cfg, x.dtype), **functions, **options)
    return result


def forward(x: torch.Tensor, cfg: GAAFConfig, *, out: torch.Tensor | None = None,
            block_size: int | None = None, force_int64: bool = False) -> torch.Tensor:
    """Fused GAAF forward; the output keeps x's strides when x is dense."""
    return _launch("forward", x, [x], out, cfg, block_size, force_int64)


def backward(x: torch.Tensor, grad_output: torch.Tensor, cfg: GAAFConfig, *,
             out: torch.Tensor | None = None, block_size: int | None = None,
             force_int64: bool = False) -> torch.Tensor:
    """Fused GAAF backward from x and dL/dy alone; dx keeps x's strides when x is dense."""
    check_like(x, grad_output)
    return _launch("backward", x, [x, grad_output], out, cfg, block_size, force_int64)
