"""NumPy reference for GAAF: the semantics every other path is tested against."""

from .core import SUPPORTED_DTYPES, backward, compute_dtype, forward, second_derivative
from .registry import (
    DEFAULT_ACTIVATION,
    DEFAULT_K,
    FunctionSpec,
    Resolved,
    activation_names,
    band_activations,
    get_activation,
    get_shape,
    resolve,
    shape_names,
)

__all__ = [
    "DEFAULT_ACTIVATION", "DEFAULT_K", "SUPPORTED_DTYPES", "FunctionSpec", "Resolved",
    "activation_names", "backward", "band_activations", "compute_dtype", "forward",
    "get_activation", "get_shape", "resolve", "second_derivative", "shape_names",
]
