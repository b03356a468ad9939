"""gaaf-kernels: GAAF activations as fused Triton kernels, with a NumPy reference.

Importing works without a GPU and without the Triton interpreter; kernels only run on
CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before import.
"""

from __future__ import annotations

from collections.abc import Mapping

from .reference import DEFAULT_ACTIVATION, DEFAULT_K
from .registry import activations, register_activation, register_shape, shapes

__version__ = "0.1.0"

__all__ = ["DEFAULT_K", "GAAF", "__version__", "activations", "backward", "convert", "forward",
           "gaaf", "gaaf_backward", "register_activation", "register_shape", "shapes"]

# The PyTorch names load on first use: `import gaaf_kernels` imports no framework.
_TORCH_NAMES = {"GAAF": "torch", "gaaf": "torch", "gaaf_backward": "torch",
                "convert": "convert", "ConversionReport": "convert"}


def __getattr__(name: str):
    module = _TORCH_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"gaaf_kernels.adapters.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TORCH_NAMES))


def forward(x, activation: str = DEFAULT_ACTIVATION, shape: str | None = None, *,
            K: float = DEFAULT_K,
            activation_params: Mapping[str, float] | None = None,
            shape_params: Mapping[str, float] | None = None, band: bool = False):
    """GAAF forward of a NumPy, PyTorch, JAX or CuPy array, any Array API array
    (array-api-strict, Dask, ...), or a CUDA DLPack array.

    Returns the same kind of array on the same device and dtype (``adapters/arrays.py``);
    JAX arrays stay differentiable (``gaaf_kernels.adapters.jax``).
    ``band=True`` multiplies the shape by the saturation band 1 - phi'/m.
    """
    from gaaf_kernels.adapters.arrays import forward as _forward

    return _forward(x, activation, shape, K=K, activation_params=activation_params,
                    shape_params=shape_params, band=band)


def backward(x, grad_output, activation: str = DEFAULT_ACTIVATION, shape: str | None = None, *,
             K: float = DEFAULT_K, activation_params: Mapping[str, float] | None = None,
             shape_params: Mapping[str, float] | None = None, band: bool = False):
    """dL/dx from x and dL/dy for any array ``forward`` accepts."""
    from gaaf_kernels.adapters.arrays import backward as _backward

    return _backward(x, grad_output, activation, shape, K=K,
                     activation_params=activation_params, shape_params=shape_params,
                     band=band)
