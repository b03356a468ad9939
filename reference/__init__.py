"""NumPy reference for GAAF: the semantics every other path is tested against."""

from .config import GAAFConfig, GAAFSettings, configure, resolve
from .core import backward, compute_dtype, forward, second_derivative
from .dtypes import SUPPORTED_DTYPES, DtypePolicy, policy
from .registry import (
    DEFAULT_ACTIVATION,
    DEFAULT_K,
    FunctionSpec,
    activation_names,
    band_activations,
    get_activation,
    get_shape,
    shape_names,
)

Resolved = GAAFConfig  # the earlier name

__all__ = [
    "DEFAULT_ACTIVATION", "DEFAULT_K", "SUPPORTED_DTYPES", "DtypePolicy", "FunctionSpec",
    "GAAFConfig", "GAAFSettings", "Resolved", "activation_names", "backward",
    "band_activations", "compute_dtype", "configure", "forward", "get_activation",
    "get_shape", "policy", "resolve", "second_derivative", "shape_names",
]
