"""Array-agnostic entry points behind ``gaaf_kernels.forward`` / ``backward``.

The result is the same kind of array as the input, on the same device:

* torch tensors go to the PyTorch adapter (differentiable);
* NumPy arrays are viewed as CPU tensors without a copy and take the fused PyTorch CPU
  path; they take the NumPy reference where PyTorch is not installed, and when they are
  bfloat16 (``ml_dtypes``), which DLPack cannot carry;
* CuPy arrays go through the CuPy adapter (zero-copy, CuPy's current stream);
* JAX arrays go to the JAX adapter (XLA, or the Triton kernels through jax-triton on
  CUDA devices), traced values under ``jax.jit`` included;
* any other Array API array (array-api-strict, Dask, ...) takes the reference formulas
  evaluated in its own namespace (``array_api.py``), on its own device;
* any other array exporting DLPack on a CUDA device goes to the Triton kernels through
  ``torch.from_dlpack`` and comes back through its library's ``from_dlpack``.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

import numpy as np

from gaaf_kernels import reference
from gaaf_kernels.reference import GAAFConfig, configure

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from gaaf_kernels.reference import GAAFSettings

# DLPack device types (dlpack.h: kDLCPU, kDLCUDA); kept here so that this module
# imports without PyTorch.
DLPACK_CPU, DLPACK_CUDA = 1, 2
SUPPORTED_KINDS = ("torch.Tensor, numpy.ndarray, cupy.ndarray, jax.Array, any Array API array "
                   "(array-api-compat), or a CUDA array exporting DLPack")


def _kind(x) -> str:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    if isinstance(x, np.ndarray | np.generic):
        return "numpy"
    if type(x).__module__.split(".")[0] == "cupy":
        return "cupy"
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        return "jax"
    from . import array_api

    if array_api.is_array_api_obj(x):
        return "array-api"
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        if x.__dlpack_device__()[0] == DLPACK_CUDA:
            return "dlpack-cuda"
    raise TypeError(f"unsupported array type {type(x).__module__}.{type(x).__name__}; "
                    f"GAAF accepts {SUPPORTED_KINDS}")


def _library_from_dlpack(x):
    """The ``from_dlpack`` of the library that made ``x`` (jax.numpy for JAX arrays)."""
    root = type(x).__module__.split(".")[0]
    candidates = {"jax": "jax.numpy", "jaxlib": "jax.numpy"}.get(root, root)
    module = importlib.import_module(candidates)
    if not hasattr(module, "from_dlpack"):
        raise TypeError(f"{root} has no from_dlpack; GAAF accepts {SUPPORTED_KINDS}")
    return module.from_dlpack


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _numpy_reference(kind: str, x: np.ndarray, grad_output, cfg: GAAFConfig) -> np.ndarray:
    if kind == "forward":
        return reference.forward(x, config=cfg)
    return reference.backward(x, np.asarray(grad_output), config=cfg)


def _call(kind: str, x, grad_output, cfg: GAAFConfig):
    which = _kind(x)
    if grad_output is not None and _kind(grad_output) != which:
        raise TypeError("x and grad_output must be the same kind of array")
    if which == "torch":
        from . import torch as torch_adapter

        if kind == "forward":
            return torch_adapter.gaaf(x, config=cfg)
        return torch_adapter.gaaf_backward(x, grad_output, config=cfg)
    if which == "numpy":
        x = np.asarray(x)
        # DLPack cannot carry ml_dtypes' bfloat16, and without PyTorch there is no fused path.
        if x.dtype.name == "bfloat16" or not _torch_available():
            return _numpy_reference(kind, x, grad_output, cfg)
        from . import dlpack

        if grad_output is not None:
            grad_output = np.asarray(grad_output)
        return dlpack.run(kind, x, grad_output, library="NumPy", from_dlpack=np.from_dlpack,
                          make_contiguous=np.ascontiguousarray, cfg=cfg)
    if which == "cupy":
        from . import cupy as cupy_adapter

        if kind == "forward":
            return cupy_adapter.forward(x, config=cfg)
        return cupy_adapter.backward(x, grad_output, config=cfg)
    if which == "jax":
        from . import jax as jax_adapter

        if kind == "forward":
            return jax_adapter.gaaf(x, config=cfg)
        return jax_adapter.gaaf_backward(x, grad_output, config=cfg)
    if which == "array-api":
        from . import array_api

        if kind == "forward":
            return array_api.forward(x, config=cfg)
        return array_api.backward(x, grad_output, config=cfg)
    from . import dlpack

    return dlpack.run(kind, x, grad_output, library=type(x).__module__.split(".")[0],
                      from_dlpack=_library_from_dlpack(x), make_contiguous=None, cfg=cfg)


def forward(x, activation: str | None = None, shape: str | None = None, *,
            config: GAAFConfig | None = None, **settings: Unpack[GAAFSettings]):
    """GAAF forward of a NumPy, PyTorch, JAX or CuPy array, any Array API array
    (array-api-strict, Dask, ...), or a CUDA DLPack array: ``gaaf()``'s settings, or
    ``config=``. The result is the same kind of array on the same device and dtype; JAX
    arrays stay differentiable."""
    return _call("forward", x, None, configure(activation, shape, config, **settings))


def backward(x, grad_output, activation: str | None = None, shape: str | None = None, *,
             config: GAAFConfig | None = None, **settings: Unpack[GAAFSettings]):
    """dL/dx from x and dL/dy for any array ``forward`` accepts, as the same kind."""
    return _call("backward", x, grad_output, configure(activation, shape, config, **settings))
