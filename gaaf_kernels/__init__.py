"""gaaf-kernels: GAAF activations as fused Triton kernels, with a NumPy reference.

Importing works without a GPU and without the Triton interpreter; kernels only run on
CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before import.
"""

from __future__ import annotations

# forward/backward (any array: NumPy, PyTorch, JAX, CuPy, Array API, DLPack) import their
# framework on first call, as do the names below.
from .adapters.arrays import backward, forward
from .kernels.twins import Twins
from .reference import DEFAULT_K, GAAFConfig
from .registry import activations, register_activation, register_shape, shapes
from .runtime import get_options, options, set_options

__version__ = "0.1.0"

__all__ = ["DEFAULT_K", "GAAF", "ConversionReport", "GAAFConfig", "Twins", "__version__",
           "activations", "backward", "convert", "convert_report", "forward", "gaaf",
           "gaaf_backward", "get_options", "options", "register_activation", "register_shape",
           "set_options", "shapes"]

# The PyTorch names load on first use: `import gaaf_kernels` imports no framework.
_TORCH_NAMES = {"GAAF": "torch", "gaaf": "torch", "gaaf_backward": "torch",
                "convert": "convert", "convert_report": "convert",
                "ConversionReport": "convert"}


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
