"""GAAF on any Array API array: the reference formulas in the array's own namespace.

For arrays that no dedicated adapter serves (array-api-strict, Dask, ...), the catalogue
formulas are evaluated with the namespace that ``array_api_compat.array_namespace``
returns for the array: the result is an array of the same library, device and dtype, and
nothing goes through NumPy. Float16 computes in float32, float64 in float64, as
everywhere; K, 1/K and the parameters are 0-d arrays of the compute dtype (1/K divided
there), so the sawtooth is rounded exactly as the reference rounds it.

The Array API standard has no ``erf``: a namespace that lacks a function the formulas
need (gelu needs ``erf``) raises :class:`MissingFunctionError`, naming the function, the
library and the activation or shape that asked for it.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from gaaf_kernels.reference import FunctionSpec, GAAFConfig, configure
from gaaf_kernels.reference import formulas as f
from gaaf_kernels.reference.dtypes import SUPPORTED_DTYPES, policy
from gaaf_kernels.reference.namespaces import FUNCTIONS

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from gaaf_kernels.reference import GAAFSettings


class MissingFunctionError(TypeError):
    """The array's namespace lacks a function that the formulas need."""


def namespace_of(x) -> ModuleType:
    """The Array API namespace of ``x``; TypeError if array-api-compat knows none."""
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - a test dependency; optional for users
        raise TypeError("Array API arrays need array-api-compat (pip install "
                        "array-api-compat)") from None
    try:
        return array_api_compat.array_namespace(x)
    except TypeError as exc:
        raise TypeError(f"{type(x).__module__}.{type(x).__name__} is not an Array API "
                        f"array: {exc}") from None


def is_array_api_obj(x) -> bool:
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover
        return False
    return bool(array_api_compat.is_array_api_obj(x))


class Namespace:
    """The formulas' ``xp`` for one Array API namespace; missing functions raise
    :class:`MissingFunctionError` when the formulas first reach for them."""

    def __init__(self, xp: ModuleType, asking: str):
        self._xp, self._asking = xp, asking
        for name in FUNCTIONS:
            fn = getattr(xp, name, None)
            if fn is not None:
                setattr(self, name, fn)

    def __getattr__(self, name: str):
        library = getattr(self._xp, "__name__", type(self._xp).__name__)
        raise MissingFunctionError(
            f"the Array API namespace {library} has no {name!r}, which {self._asking} "
            f"needs; use a library that has it (PyTorch, JAX, CuPy, NumPy) or another "
            f"activation")


def _compute_dtype(xp: ModuleType, dtype):
    # The namespace's own dtype objects (they need not have names): the policy's dtypes
    # that this namespace has, found by equality (the standard has no bfloat16).
    for name in SUPPORTED_DTYPES:
        if getattr(xp, name, None) is not None and dtype == getattr(xp, name):
            return getattr(xp, policy(name).compute)
    names = ", ".join(n for n in SUPPORTED_DTYPES if getattr(xp, n, None) is not None)
    raise TypeError(f"GAAF supports floating dtypes {names} on Array API arrays; got {dtype}")


def _scalars(xp, values, dtype, device) -> tuple:
    return tuple(xp.asarray(v, dtype=dtype, device=device) for v in values)


def _check(spec: FunctionSpec) -> None:
    if not spec.array_generic:
        raise TypeError(f"{spec.kind} {spec.name!r} has NumPy functions only; register it "
                        "with array_generic=True to run it on other arrays")


def _evaluate(kind: str, x, grad_output, cfg: GAAFConfig):
    # Overflow inside the formulas is expected and handled (NumPy-backed namespaces such
    # as array-api-strict would warn about it, as the reference would without this).
    with np.errstate(all="ignore"):
        return _evaluate_quietly(kind, x, grad_output, cfg)


def _evaluate_quietly(kind: str, x, grad_output, cfg: GAAFConfig):
    xp = namespace_of(x)
    _check(cfg.activation)
    _check(cfg.shape)
    if grad_output is not None:
        if namespace_of(grad_output) is not xp:
            raise TypeError("x and grad_output must be the same kind of array")
        if grad_output.shape != x.shape or grad_output.dtype != x.dtype:
            raise ValueError("x and grad_output must have the same shape and dtype; got "
                             f"{x.shape}/{x.dtype} and {grad_output.shape}/"
                             f"{grad_output.dtype}")
    import array_api_compat

    cd = _compute_dtype(xp, x.dtype)
    device = array_api_compat.device(x)
    ns = Namespace(xp, f"{cfg.activation.name!r} with shape {cfg.shape.name!r}")
    xc = xp.astype(x, cd)
    k, = _scalars(xp, (cfg.K,), cd, device)
    ap = _scalars(xp, cfg.activation_params, cd, device)
    sp = _scalars(xp, cfg.shape_params, cd, device)
    inv_m = _scalars(xp, (cfg.inv_bound,), cd, device)[0] if cfg.band else None
    s = cfg.shape.value(ns, xc, *sp)
    g = f.sawtooth(ns, xc, k)
    if kind == "forward":
        if cfg.band:
            s = f.band(ns, s, cfg.activation.derivative(ns, xc, *ap), inv_m)
        out = f.gaaf_value(ns, xc, cfg.activation.value(ns, xc, *ap), g, s)
    else:
        dphi = cfg.activation.derivative(ns, xc, *ap)
        ds = cfg.shape.derivative(ns, xc, *sp)
        if cfg.band:
            second = cfg.activation.second_derivative
            assert second is not None  # GAAFConfig refuses band=True without phi''
            d2phi = second(ns, xc, *ap)
            s, ds = f.band(ns, s, dphi, inv_m), f.band_derivative(ns, s, ds, dphi, d2phi, inv_m)
        out = f.gaaf_gradient(ns, xc, xp.astype(grad_output, cd), dphi, s, g, ds)
    return xp.astype(out, x.dtype)


def forward(x, activation: str | None = None, shape: str | None = None, *,
            config: GAAFConfig | None = None, **settings: Unpack[GAAFSettings]):
    """GAAF forward of an Array API array, in its own namespace."""
    return _evaluate("forward", x, None, configure(activation, shape, config, **settings))


def backward(x, grad_output, activation: str | None = None, shape: str | None = None, *,
             config: GAAFConfig | None = None, **settings: Unpack[GAAFSettings]):
    """dL/dx = dL/dy (phi' + s + g s') of Array API arrays, in their own namespace."""
    return _evaluate("backward", x, grad_output,
                     configure(activation, shape, config, **settings))
