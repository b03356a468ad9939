"""The XLA path of the JAX adapter: the reference formulas evaluated with ``jax.numpy``.

The catalogue formulas are written once against a namespace ``xp``; here ``xp`` is
:data:`JAX` (``jax.numpy``, with ``erf`` and ``erfc`` from ``jax.scipy.special``), so the
JAX path evaluates the very expressions of the NumPy reference and the PyTorch
composite. Under ``jax.jit`` XLA fuses each pass into one loop.

Compute dtype: float16, bfloat16 and float32 compute in float32, float64 in float64 (which
needs ``jax_enable_x64``). ``x*K`` and its floor are rounded in the compute dtype:
XLA's CPU backend does not contract ``x*K - floor(x*K)`` into a fused multiply-add
(``tests/test_jax.py`` checks this bit for bit at points where contraction would change
the result).

Three values per element, each a function of x alone:

* :func:`value`: y = phi + g*s (the forward);
* :func:`factor`: phi' + s + g*s' (the backward's factor: dL/dx = dL/dy * factor, and the
  tangent of y is factor * t);
* :func:`second`: d(factor)/dx = phi'' + 2 s' + g s'' (a.e.; g' = 1), with the saturation
  band's s_band and its derivatives under ``band``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from gaaf_kernels.reference import FunctionSpec, GAAFConfig
from gaaf_kernels.reference import formulas as f
from gaaf_kernels.reference.dtypes import policy
from gaaf_kernels.reference.namespaces import array_namespace

# Special functions come from jax.scipy.special, the rest from jax.numpy.
JAX = array_namespace(jnp, erf=jsp.erf, erfc=jsp.erfc)


def compute_dtype(dtype) -> np.dtype:
    """The compute dtype of a storage dtype (the dtype policy); TypeError otherwise."""
    return jnp.dtype(policy(jnp.dtype(dtype)).compute)


def numpy_only(cfg: GAAFConfig) -> bool:
    """True when the activation or the shape has NumPy functions only (JAX cannot trace
    them): the values then come from the NumPy reference through ``jax.pure_callback``."""
    return not (cfg.activation.array_generic and cfg.shape.array_generic)


def _reference_callback(fn: str, cfg: GAAFConfig, x, *rest):
    """``fn`` ("forward" or "backward" of the reference) on the host, as a JAX value of
    x's shape and dtype; elementwise, so ``vmap`` passes whole batches."""
    from gaaf_kernels import reference

    target = getattr(reference, fn)

    def host(*arrays):
        with np.errstate(all="ignore"):
            return np.asarray(target(*(np.asarray(a) for a in arrays), config=cfg))

    result = jax.ShapeDtypeStruct(x.shape, x.dtype)
    return jax.pure_callback(host, result, x, *rest, vmap_method="broadcast_all")


class _Parts:
    """The parameters of one configuration as scalars of the compute dtype."""

    def __init__(self, cfg: GAAFConfig, cd: np.dtype):
        self.cfg = cfg
        scalar = np.dtype(cd).type
        self.k = scalar(cfg.K)
        self.ap = tuple(scalar(p) for p in cfg.activation_params)
        self.sp = tuple(scalar(p) for p in cfg.shape_params)
        self.inv_m = scalar(cfg.inv_bound) if cfg.band else None

    def act(self, which: str, x):
        fn = getattr(self.cfg.activation, which)
        if fn is None:
            raise ValueError(f"activation {self.cfg.activation.name!r} has no {which} "
                             "(second derivatives of GAAF need phi'')")
        return fn(JAX, x, *self.ap)

    def shape(self, which: str, x):
        return getattr(self.cfg.shape, which)(JAX, x, *self.sp)


def value(x, cfg: GAAFConfig):
    """y = phi(x) + g(x) s(x) in x's dtype (NaN where x is NaN)."""
    if numpy_only(cfg):
        return _reference_callback("forward", cfg, x)
    p = _Parts(cfg, compute_dtype(x.dtype))
    xc = x.astype(compute_dtype(x.dtype))
    s = p.shape("value", xc)
    if cfg.band:
        s = f.band(JAX, s, p.act("derivative", xc), p.inv_m)
    return f.gaaf_value(JAX, xc, p.act("value", xc), f.sawtooth(JAX, xc, p.k), s).astype(x.dtype)


def factor(xc, cfg: GAAFConfig):
    """phi' + s + g s' in the compute dtype of ``xc`` (NaN where x is NaN)."""
    if numpy_only(cfg):
        return _reference_callback("backward", cfg, xc, jnp.ones_like(xc))
    p = _Parts(cfg, xc.dtype)
    dphi = p.act("derivative", xc)
    s, ds = p.shape("value", xc), p.shape("derivative", xc)
    if cfg.band:
        d2phi = p.act("second_derivative", xc)
        s, ds = (f.band(JAX, s, dphi, p.inv_m),
                 f.band_derivative(JAX, s, ds, dphi, d2phi, p.inv_m))
    one = jnp.ones_like(xc)
    return f.gaaf_gradient(JAX, xc, one, dphi, s, f.sawtooth(JAX, xc, p.k), ds)


# --- second derivatives ------------------------------------------------------------


def shape_second_derivative(spec: FunctionSpec) -> Callable:
    """s'' of a shape (the catalogue's, or a registration's ``numpy_second_derivative``);
    ValueError where it has none."""
    if spec.second_derivative is None:
        raise ValueError(
            f"second derivatives of GAAF need s'' of shape {spec.name!r}, which it does "
            "not provide; first derivatives (jax.grad, jax.jvp, jax.vjp) work without it")
    return spec.second_derivative


def _third_of_activation(p: _Parts, xc):
    """phi''' (the band's s_band'' needs it): JAX's derivative of the catalogue's phi''."""
    return jax.jvp(lambda t: p.act("second_derivative", t), (xc,), (jnp.ones_like(xc),))[1]


def second(xc, cfg: GAAFConfig):
    """d/dx (phi' + s + g s') = phi'' + 2 s' + g s'' in the compute dtype, a.e."""
    if numpy_only(cfg):
        raise ValueError(
            f"second derivatives of GAAF need phi'' and s'' as JAX-traceable functions; "
            f"{cfg.activation.name!r}/{cfg.shape.name!r} has NumPy functions only "
            "(register it with array_generic=True)")
    p = _Parts(cfg, xc.dtype)
    s2_fn = shape_second_derivative(cfg.shape)
    d2phi = p.act("second_derivative", xc)
    s, ds, d2s = p.shape("value", xc), p.shape("derivative", xc), s2_fn(JAX, xc, *p.sp)
    if cfg.band:
        dphi = p.act("derivative", xc)
        d3phi = _third_of_activation(p, xc)
        w = 1.0 - dphi * p.inv_m
        d2s = d2s * w - 2.0 * ds * (d2phi * p.inv_m) - s * (d3phi * p.inv_m)
        ds = f.band_derivative(JAX, s, ds, dphi, d2phi, p.inv_m)
    return f.gaaf_second(JAX, xc, 1.0, d2phi, ds, f.sawtooth(JAX, xc, p.k), d2s)
