"""GAAF for JAX: ``from gaaf_kernels.jax import GAAF, gaaf, gaaf_backward``.

The names of ``gaaf_kernels.adapters.jax`` (see docs/jax.md); importing ``gaaf_kernels``
alone does not import JAX.
"""

from gaaf_kernels.adapters.jax import (
    BACKENDS,
    GAAF,
    Backend,
    gaaf,
    gaaf_backward,
    path,
    triton_available,
)

__all__ = ["BACKENDS", "GAAF", "Backend", "gaaf", "gaaf_backward", "path", "triton_available"]
