"""The project's Triton kernels called from JAX on CUDA devices, through jax-triton.

The fused forward and backward kernels of ``gaaf_kernels/kernels/gaaf.py`` run as they
do for PyTorch: same functions, same launch rules (block, warps, 64-bit offsets from 2^31
elements, no mul+add contraction). jax-triton passes Python scalars as compile-time
values typed float32, while the kernels take K, 1/K, the parameters and 1/m as runtime
float64 scalars; so thin wrapper kernels here read those scalars from a small array
(of the compute dtype) and call the kernels unchanged. Changing K or a parameter then
never recompiles a kernel.

Under ``TRITON_INTERPRET=1`` the wrappers also run on CPU torch tensors
(:func:`launch_on_torch`), which is how the CPU test suite checks them; jax-triton itself
needs a CUDA device.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

import numpy as np
import triton
import triton.language as tl

from gaaf_kernels.kernels.gaaf import gaaf_backward_kernel, gaaf_forward_kernel
from gaaf_kernels.reference import GAAFConfig

N_SCALARS = 9  # K, 1/K, a0..a2, s0..s2, 1/m (launch.scalar_arguments' order)


@triton.jit
def jax_forward_kernel(x_ptr, scalars_ptr, n_elements, y_ptr,
                       ACTIVATION: tl.constexpr, ACTIVATION_DERIVATIVE: tl.constexpr,
                       N_ACTIVATION_PARAMS: tl.constexpr, SHAPE: tl.constexpr,
                       N_SHAPE_PARAMS: tl.constexpr, BAND: tl.constexpr,
                       COMPUTE_DTYPE: tl.constexpr, BLOCK_SIZE: tl.constexpr,
                       INT64_OFFSETS: tl.constexpr, BF16_AS_BITS: tl.constexpr):
    """gaaf_forward_kernel with its scalars read from ``scalars_ptr``; the output comes
    last, where jax-triton passes it."""
    gaaf_forward_kernel(
        x_ptr, y_ptr, n_elements, tl.load(scalars_ptr), tl.load(scalars_ptr + 1),
        tl.load(scalars_ptr + 2), tl.load(scalars_ptr + 3), tl.load(scalars_ptr + 4),
        tl.load(scalars_ptr + 5), tl.load(scalars_ptr + 6), tl.load(scalars_ptr + 7),
        tl.load(scalars_ptr + 8), ACTIVATION, ACTIVATION_DERIVATIVE, N_ACTIVATION_PARAMS,
        SHAPE, N_SHAPE_PARAMS, BAND, COMPUTE_DTYPE, BLOCK_SIZE, INT64_OFFSETS, BF16_AS_BITS)


@triton.jit
def jax_backward_kernel(x_ptr, dy_ptr, scalars_ptr, n_elements, dx_ptr,
                        ACTIVATION_DERIVATIVE: tl.constexpr,
                        ACTIVATION_SECOND_DERIVATIVE: tl.constexpr,
                        N_ACTIVATION_PARAMS: tl.constexpr, SHAPE: tl.constexpr,
                        SHAPE_DERIVATIVE: tl.constexpr, N_SHAPE_PARAMS: tl.constexpr,
                        BAND: tl.constexpr, COMPUTE_DTYPE: tl.constexpr,
                        BLOCK_SIZE: tl.constexpr, INT64_OFFSETS: tl.constexpr,
                        BF16_AS_BITS: tl.constexpr):
    """gaaf_backward_kernel with its scalars read from ``scalars_ptr``."""
    gaaf_backward_kernel(
        x_ptr, dy_ptr, dx_ptr, n_elements, tl.load(scalars_ptr), tl.load(scalars_ptr + 1),
        tl.load(scalars_ptr + 2), tl.load(scalars_ptr + 3), tl.load(scalars_ptr + 4),
        tl.load(scalars_ptr + 5), tl.load(scalars_ptr + 6), tl.load(scalars_ptr + 7),
        tl.load(scalars_ptr + 8), ACTIVATION_DERIVATIVE, ACTIVATION_SECOND_DERIVATIVE,
        N_ACTIVATION_PARAMS, SHAPE, SHAPE_DERIVATIVE, N_SHAPE_PARAMS, BAND, COMPUTE_DTYPE,
        BLOCK_SIZE, INT64_OFFSETS, BF16_AS_BITS)


def scalars(cfg: GAAFConfig, dtype_name: str) -> np.ndarray:
    """[K, 1/K, a0..a2, s0..s2, 1/m] in the compute dtype, rounded as the kernels round."""
    from gaaf_kernels.kernels import launch

    torch_dtype = _torch_dtype(dtype_name)
    cd = np.float64 if dtype_name == "float64" else np.float32
    return np.asarray(launch.scalar_arguments(cfg, torch_dtype), dtype=np.float64).astype(cd)


def _torch_dtype(dtype_name: str):
    import torch

    return getattr(torch, dtype_name)


def launch_plan(cfg: GAAFConfig, kernel: str, dtype_name: str, n: int,
                interpreted: bool = False) -> tuple[Any, dict, dict, tuple[int]]:
    """(wrapper kernel, function constexprs, launch options, grid): the launch rules of
    ``kernels/launch.py`` for ``n`` elements of storage dtype ``dtype_name``."""
    from gaaf_kernels.kernels import launch

    _, functions = launch.kernel_for(kernel, cfg.activation, cfg.shape, dtype_name, cfg.band)
    if interpreted:  # torch tensors under TRITON_INTERPRET=1: the interpreter's rules
        options = launch._launch_options(n, _torch_dtype(dtype_name), None, False)
    else:  # a CUDA device: the GPU launch of kernels/launch.py
        block_size, num_warps = launch.gpu_launch_config(dtype_name)
        options = {"COMPUTE_DTYPE": tl.float64 if dtype_name == "float64" else tl.float32,
                   "BLOCK_SIZE": block_size, "INT64_OFFSETS": n >= launch.INT32_LIMIT,
                   "BF16_AS_BITS": False, "enable_fp_fusion": False, "num_warps": num_warps}
    grid = (triton.cdiv(max(n, 1), options["BLOCK_SIZE"]),)
    wrapper = jax_forward_kernel if kernel == "forward" else jax_backward_kernel
    return wrapper, functions, options, grid


def import_jax_triton():
    """jax-triton, imported without its side effect on Triton's cache: on import, 0.3.x
    sets ``TRITON_CACHE_DIR=""`` and 0.4.x deletes it, after which every Triton compile of
    the process (the PyTorch kernels, Inductor) fails with "Could not create or locate
    cache dir" (seen with jax-triton 0.3.1 + triton 3.6; 0.4.1 read). The variable is put
    back as it was. Raises ImportError (or what a broken install raises)."""
    before = os.environ.get("TRITON_CACHE_DIR")
    try:
        import jax_triton
    finally:
        if before is None:
            os.environ.pop("TRITON_CACHE_DIR", None)
        else:
            os.environ["TRITON_CACHE_DIR"] = before
    return jax_triton


@functools.cache
def _call_keywords() -> tuple[str, dict]:
    """triton_call's name for the output's shape, and the keywords that turn Triton's
    mul+add contraction off (the sawtooth needs x*K rounded before its floor): up to
    jax-triton 0.3, ``out_shape`` and ``enable_fp_fusion=False`` (its default is True);
    from 0.4, ``out_type`` and ``backend_options``."""
    jax_triton = import_jax_triton()
    params = inspect.signature(jax_triton.triton_call).parameters
    out = "out_type" if "out_type" in params else "out_shape"
    if "backend_options" in params:
        return out, {"backend_options": {"enable_fp_fusion": False}}
    if "enable_fp_fusion" in params:
        return out, {"enable_fp_fusion": False}
    raise RuntimeError(
        f"jax-triton {getattr(jax_triton, '__version__', '?')}: triton_call takes neither "
        "backend_options nor enable_fp_fusion, so GAAF cannot keep x*K uncontracted; "
        "use backend='xla' or jax-triton 0.3 to 0.4")


def _call(kernel: str, arrays: list, cfg: GAAFConfig):
    import jax
    import jax.numpy as jnp

    jax_triton = import_jax_triton()

    x = arrays[0]
    name = jnp.dtype(x.dtype).name
    if x.size == 0:
        return jnp.zeros_like(x)
    wrapper, functions, options, grid = launch_plan(cfg, kernel, name, x.size)
    num_warps = options.pop("num_warps", 4)
    options.pop("enable_fp_fusion")  # False, passed as this jax-triton takes it
    out_keyword, no_contraction = _call_keywords()
    flat = [a.reshape(-1) for a in arrays]
    out = jax_triton.triton_call(
        *flat, jnp.asarray(scalars(cfg, name)), x.size, kernel=wrapper, grid=grid,
        num_warps=num_warps, num_stages=1, **no_contraction,
        **{out_keyword: jax.ShapeDtypeStruct((x.size,), x.dtype)}, **functions, **options)
    return out.reshape(x.shape)


def forward(x, cfg: GAAFConfig):
    """The fused forward kernel on a CUDA JAX array (jax-triton)."""
    return _call("forward", [x], cfg)


def backward(x, dy, cfg: GAAFConfig):
    """The fused backward kernel: dy * (phi' + s + g s'), in x's dtype."""
    return _call("backward", [x, dy], cfg)


def factor(xc, cfg: GAAFConfig):
    """phi' + s + g s' in the compute dtype of ``xc`` (the backward kernel with dy = 1)."""
    import jax.numpy as jnp

    return _call("backward", [xc, jnp.ones_like(xc)], cfg)


def launch_on_torch(kernel: str, cfg: GAAFConfig, *tensors):
    """Run a wrapper kernel on torch tensors (CPU under ``TRITON_INTERPRET=1``, or CUDA):
    the wrappers' own test, without jax-triton."""
    import torch

    from gaaf_kernels.kernels import launch

    x = tensors[0]
    name = launch.dtype_name(x.dtype)
    wrapper, functions, options, grid = launch_plan(cfg, kernel, name, x.numel(),
                                                    interpreted=launch.interpreting())
    bits = options["BF16_AS_BITS"]
    scalar_tensor = torch.from_numpy(scalars(cfg, name)).to(x.device)
    out = torch.empty_like(x)
    flat = [t.contiguous().view(-1) for t in tensors] + [out.view(-1)]
    flat = [t.view(torch.int16) if bits else t for t in flat]
    args = [*flat[:-1], scalar_tensor, x.numel(), flat[-1]]
    wrapper[grid](*args, **functions, **options)
    return out
