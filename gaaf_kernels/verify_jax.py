"""``gaaf verify`` for the JAX adapter: its forward and ``jax.vjp`` against the reference.

The same inputs, reference values and tolerances as the torch rows (``verify.py``); the
row's backend names the path that ran (``jax-xla``, or ``jax-triton`` on a CUDA device
with jax-triton). float64 runs under ``jax.enable_x64``.

XLA treats subnormal inputs as zero (denormals-are-zero, on CPU and on GPU), whatever the
flags: jnp.sign(-1e-40) is -0. So at a subnormal x the JAX path computes GAAF at +-0,
and its rows compare against the reference at +-0 there (:func:`flush_subnormals`);
everywhere else against the reference at x itself.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

from gaaf_kernels import reference
from gaaf_kernels.reference import GAAFConfig

from .verify import TOLERANCES, Row, compare, decisive_error, reference_on, sample_inputs


def available() -> bool:
    """True when JAX is installed (``gaaf verify`` then checks its path too)."""
    return importlib.util.find_spec("jax") is not None


def path() -> str:
    """The JAX path for arrays on JAX's default device: ``jax-xla`` or ``jax-triton``."""
    from gaaf_kernels.adapters import jax as gaaf_jax

    return f"jax-{gaaf_jax.path()}"


def to_jax(t: torch.Tensor):
    """A JAX array with t's values and dtype (bfloat16 through its exact float32 values)."""
    import jax.numpy as jnp

    if t.dtype == torch.bfloat16:
        return jnp.asarray(t.float().numpy()).astype(jnp.bfloat16)
    return jnp.asarray(t.numpy())


def to_torch(a) -> torch.Tensor:
    """A CPU tensor with the JAX array's values and dtype."""
    array = np.asarray(a)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(array.copy())


def flush_subnormals(t: torch.Tensor) -> torch.Tensor:
    """t with the values that are subnormal in its compute dtype (float32, or float64 for
    float64; float16's subnormals are normal there) replaced by zeros of the same sign."""
    compute = torch.float64 if t.dtype == torch.float64 else torch.float32
    subnormal = (t != 0) & (t.to(compute).abs() < torch.finfo(compute).tiny)
    return torch.where(subnormal, torch.copysign(torch.zeros_like(t), t), t)


def run_jax(x: torch.Tensor, dy: torch.Tensor, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, dL/dx) from the JAX adapter: ``gaaf`` and the ``jax.vjp`` of it with ``dy``."""
    import jax

    from gaaf_kernels.adapters import jax as gaaf_jax

    with jax.enable_x64(x.dtype == torch.float64):
        xj, dyj = to_jax(x), to_jax(dy)
        y, pullback = jax.vjp(lambda v: gaaf_jax.gaaf(v, **kwargs), xj)
        (dx,) = pullback(dyj)
        return to_torch(y), to_torch(dx)


def check_case(activation: str, shape: str, dtype: torch.dtype, band: bool = False) -> Row:
    atol, rtol = TOLERANCES[dtype]
    name = str(dtype).removeprefix("torch.")
    row = Row(path(), activation, shape, name, math.nan, math.nan, math.nan, math.nan,
              f"{atol:.0e}+{rtol:.1e}|y|", False, band=band)
    try:
        kwargs = {"config": GAAFConfig(activation, shape, band=band)}
        x = sample_inputs(dtype)
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        flushed = flush_subnormals(x)
        want_y = reference_on(reference.forward, flushed, cfg_kwargs=kwargs)
        want_dx = reference_on(reference.backward, flushed, dy, cfg_kwargs=kwargs)
        got_y, got_dx = run_jax(x, dy, kwargs)
        row.fwd_abs, row.fwd_rel, ok_f = compare(got_y, want_y)
        row.bwd_abs, row.bwd_rel, ok_b = compare(got_dx, want_dx)
        row.fwd_error, row.bwd_error = (decisive_error(got_y, want_y),
                                        decisive_error(got_dx, want_dx))
        row.ok = ok_f and ok_b
    except Exception as exc:  # a crash is a failed case, reported in the table
        row.error = f"{type(exc).__name__}: {exc}"[:200]
    return row
