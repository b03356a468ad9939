"""NumPy reference: the definition of GAAF forward and backward.

Compute dtype: float16, bfloat16 (``ml_dtypes.bfloat16`` arrays) and float32 compute
in float32; float64 in float64. The result has the input's dtype. ``x*K`` and its
floor are rounded in the compute dtype, exactly as the kernels do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import GAAFConfig, configure
from .dtypes import policy
from .formulas import band, band_derivative, gaaf_gradient, gaaf_second, gaaf_value, sawtooth
from .namespaces import NUMPY
from .registry import FunctionSpec

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .config import GAAFSettings

def compute_dtype(dtype) -> type:
    """The NumPy compute dtype for a storage dtype name or dtype; TypeError otherwise."""
    return np.dtype(policy(dtype).compute).type


def _call(spec: FunctionSpec, which: str, x: np.ndarray, params: tuple) -> np.ndarray:
    fn = getattr(spec, which)
    if spec.array_generic:
        return fn(NUMPY, x, *params)
    return np.asarray(fn(x, *params), dtype=x.dtype)


def _prepare(x, cfg: GAAFConfig):
    x = np.asarray(x)
    cd = compute_dtype(x.dtype)
    xc = x.astype(cd).reshape(-1)  # 1-d keeps ufunc results arrays, never scalars
    act_p = tuple(cd(p) for p in cfg.activation_params)
    shp_p = tuple(cd(p) for p in cfg.shape_params)
    return x, xc, cd(cfg.K), act_p, shp_p


def _grad_like(x: np.ndarray, grad_output) -> np.ndarray:
    gy = np.asarray(grad_output)
    if x.shape != gy.shape or x.dtype != gy.dtype:
        raise ValueError(
            "x and grad_output must have the same shape and dtype; got "
            f"{x.shape}/{x.dtype} and {gy.shape}/{gy.dtype}"
        )
    return gy


def _shape_value(cfg: GAAFConfig, xc, act_p, shp_p):
    """s(x), or s_band(x) = s(x) (1 - phi'(x)/m) under ``band``."""
    s = _call(cfg.shape, "value", xc, shp_p)
    if not cfg.band:
        return s
    dphi = _call(cfg.activation, "derivative", xc, act_p)
    return band(NUMPY, s, dphi, xc.dtype.type(cfg.inv_bound))


def _shape_parts(cfg: GAAFConfig, xc, act_p, shp_p):
    """(s, s') or, under ``band``, (s_band, s_band')."""
    s = _call(cfg.shape, "value", xc, shp_p)
    ds = _call(cfg.shape, "derivative", xc, shp_p)
    if not cfg.band:
        return s, ds
    inv_m = xc.dtype.type(cfg.inv_bound)
    dphi = _call(cfg.activation, "derivative", xc, act_p)
    d2phi = _call(cfg.activation, "second_derivative", xc, act_p)
    return band(NUMPY, s, dphi, inv_m), band_derivative(NUMPY, s, ds, dphi, d2phi, inv_m)


def forward(x, activation: str | None = None, shape: str | None = None, *,
            config: GAAFConfig | None = None,
            **settings: Unpack[GAAFSettings]) -> np.ndarray:
    """y = phi(x) + g(x) * s(x), with g the sawtooth of period 1/K.

    The settings (``K``, ``activation_params``, ``shape_params``, ``band``) as keywords,
    or one ``config=GAAFConfig(...)``; every function here takes the same.
    ``band=True`` uses s_band = s (1 - phi'/m) for s (the saturation band).
    """
    cfg = configure(activation, shape, config, **settings)
    x, xc, k, act_p, shp_p = _prepare(x, cfg)
    with np.errstate(all="ignore"):
        y = gaaf_value(NUMPY, xc, _call(cfg.activation, "value", xc, act_p),
                       sawtooth(NUMPY, xc, k), _shape_value(cfg, xc, act_p, shp_p))
        return y.astype(x.dtype).reshape(x.shape)


def backward(x, grad_output, activation: str | None = None, shape: str | None = None, *,
             config: GAAFConfig | None = None,
             **settings: Unpack[GAAFSettings]) -> np.ndarray:
    """dL/dx = dL/dy * (phi'(x) + s(x) + g(x) * s'(x)), with s_band for s under ``band``."""
    cfg = configure(activation, shape, config, **settings)
    x, xc, k, act_p, shp_p = _prepare(x, cfg)
    gyc = _grad_like(x, grad_output).astype(xc.dtype).reshape(-1)
    with np.errstate(all="ignore"):
        s, ds = _shape_parts(cfg, xc, act_p, shp_p)
        dx = gaaf_gradient(NUMPY, xc, gyc, _call(cfg.activation, "derivative", xc, act_p),
                           s, sawtooth(NUMPY, xc, k), ds)
        return dx.astype(x.dtype).reshape(x.shape)


def check_second_derivative(cfg: GAAFConfig) -> None:
    """RuntimeError naming what d2y/dx2 needs and ``cfg`` lacks (never a silent zero)."""
    if cfg.band:
        raise RuntimeError(
            "second derivatives of GAAF with band=True need the activation's third "
            "derivative (the band's s'' contains phi'''), which the catalogue does not "
            "carry; use band=False to differentiate twice")
    for spec, what in ((cfg.activation, "phi''"), (cfg.shape, "s''")):
        if spec.second_derivative is None:
            raise RuntimeError(
                f"the second derivative of GAAF needs {what}, the second derivative of the "
                f"{spec.kind} {spec.name!r}; register it with numpy_second_derivative= to "
                f"differentiate twice")


def second_derivative(x, grad_output, activation: str | None = None,
                      shape: str | None = None, *, config: GAAFConfig | None = None,
                      **settings: Unpack[GAAFSettings]) -> np.ndarray:
    """d/dx of ``backward(x, grad_output)``: grad_output * (phi'' + 2 s' + g * s''), a.e.

    What double backward, ``hvp`` and Hessians need. RuntimeError where a function lacks
    its second derivative, and under ``band=True`` (that needs phi''').
    """
    cfg = configure(activation, shape, config, **settings)
    check_second_derivative(cfg)
    x, xc, k, act_p, shp_p = _prepare(x, cfg)
    gyc = _grad_like(x, grad_output).astype(xc.dtype).reshape(-1)
    with np.errstate(all="ignore"):
        out = gaaf_second(NUMPY, xc, gyc, _call(cfg.activation, "second_derivative", xc, act_p),
                          _call(cfg.shape, "derivative", xc, shp_p), sawtooth(NUMPY, xc, k),
                          _call(cfg.shape, "second_derivative", xc, shp_p))
        return out.astype(x.dtype).reshape(x.shape)
