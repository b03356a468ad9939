"""JAX adapter: GAAF as a pure, differentiable JAX function.

``gaaf(x, ...)`` and the frozen, hashable ``GAAF(...)`` callable work under ``jax.jit``,
``jax.grad``, ``jax.jvp``, ``jax.vjp``, ``jax.vmap``, ``jax.jacfwd`` and ``jax.hessian``:

* the forward is ``jax.custom_jvp`` whose tangent is (phi' + s + g s') * t, the factor
  of the backward;
* that factor is itself a ``custom_jvp`` whose tangent is (phi'' + 2 s' + g s'') * t, so
  second derivatives (``jax.hessian``) follow; a third derivative raises.

Where it runs: on CPU and TPU, and on CUDA without jax-triton, the catalogue formulas in
a ``jax.numpy`` namespace, fused by XLA (``adapters/jax_xla.py``); on a CUDA device with
jax-triton installed, the project's Triton kernels through ``jax_triton.triton_call``
(``adapters/jax_kernels.py``). Functions registered for NumPy only run through the NumPy
reference on the host (``jax.pure_callback``), first derivatives included.
:func:`path` says which one runs for an array.
Nothing here holds state: the functions are cached per configuration, and pytrees are
left alone (``gaaf`` takes one array; map it over a pytree with ``jax.tree.map``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import jax

from gaaf_kernels.reference import GAAFConfig, configure

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from gaaf_kernels.reference import GAAFSettings

from . import jax_xla

Backend = Literal["auto", "triton", "xla"]
BACKENDS: tuple[str, ...] = get_args(Backend)

__all__ = ["BACKENDS", "GAAF", "Backend", "gaaf", "gaaf_backward", "path", "triton_available"]


def triton_available() -> bool:
    """True when jax-triton imports (the Triton kernels can then run on CUDA devices)."""
    from . import jax_kernels

    try:
        jax_kernels.import_jax_triton()
    except Exception:  # ImportError, or a jax-triton built for another JAX
        return False
    return True


def _cuda_present() -> bool:
    try:
        return len(jax.devices("cuda")) > 0
    except RuntimeError:
        return False


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs jax-triton (pip install jax-triton); "
                               "backend='auto' or 'xla' runs the XLA path")
        if not _cuda_present():
            raise RuntimeError("backend='triton' needs a CUDA device; the Triton kernels "
                               "run from JAX only there (backend='xla' runs anywhere)")
    return backend


def _uses_triton(backend: str) -> bool:
    if backend == "auto":
        return triton_available() and _cuda_present()
    return backend == "triton"


def path(x=None, *, backend: Backend = "auto") -> str:
    """``"triton"`` or ``"xla"``: what ``gaaf`` runs for ``x`` (or for the default device).

    ``"triton"``: the project's Triton kernels through jax-triton (CUDA arrays, jax-triton
    installed). ``"xla"``: the reference formulas fused by XLA (everything else).
    """
    _check_backend(backend)
    if not _uses_triton(backend):
        return "xla"
    if x is None or isinstance(x, jax.core.Tracer):
        platform = jax.default_backend()
    else:
        platform = next(iter(x.devices())).platform
    return "triton" if platform in ("gpu", "cuda") else "xla"


def _platform_split(xla_fn: Callable, triton_fn: Callable | None, backend: str) -> Callable:
    """``xla_fn`` everywhere, or ``triton_fn`` when lowered for CUDA (chosen by XLA at
    lowering, so it also holds inside a user's ``jit``)."""
    if triton_fn is None:
        return xla_fn
    if backend == "triton":
        return triton_fn
    return lambda *args: jax.lax.platform_dependent(*args, default=xla_fn, cuda=triton_fn)


def _with_jvp(value: Callable, tangent: Callable) -> Callable:
    """``value`` as a ``jax.custom_jvp`` function whose tangent at x along t is
    ``tangent(x, t)``."""
    fn = jax.custom_jvp(value)

    @fn.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return fn(x), tangent(x, t)

    return fn


@functools.lru_cache(maxsize=256)
def _functions(cfg: GAAFConfig, backend: str) -> tuple[Callable, Callable]:
    """(forward, backward) for one configuration, both jitted; forward differentiable."""
    triton_fwd = triton_factor = triton_bwd = None
    if _uses_triton(backend):
        from . import jax_kernels

        triton_fwd = functools.partial(jax_kernels.forward, cfg=cfg)
        triton_factor = functools.partial(jax_kernels.factor, cfg=cfg)
        triton_bwd = functools.partial(jax_kernels.backward, cfg=cfg)
    value = _platform_split(functools.partial(jax_xla.value, cfg=cfg), triton_fwd, backend)
    factor_value = _platform_split(functools.partial(jax_xla.factor, cfg=cfg), triton_factor,
                                   backend)

    def no_third(xc, t):
        raise NotImplementedError(
            "GAAF is differentiable twice (jax.hessian); a third derivative needs s''' "
            "and phi''', which the catalogue does not define")

    second = _with_jvp(functools.partial(jax_xla.second, cfg=cfg), no_third)
    factor = _with_jvp(factor_value, lambda xc, t: second(xc) * t)

    def backward_xla(x, dy):  # also forward's tangent: dy = factor(x) * t
        cd = jax_xla.compute_dtype(x.dtype)
        return (factor(x.astype(cd)) * dy.astype(cd)).astype(x.dtype)

    forward = _with_jvp(value, backward_xla)
    backward = _platform_split(backward_xla, triton_bwd, backend)
    return jax.jit(forward), jax.jit(backward)


def _prepare(x, cfg: GAAFConfig, backend: str):
    if not isinstance(x, jax.Array):
        raise TypeError(f"expected a JAX array, got {type(x).__module__}.{type(x).__name__}; "
                        "convert it with jnp.asarray")
    jax_xla.compute_dtype(x.dtype)  # TypeError for unsupported dtypes, at trace time
    return _functions(cfg, _check_backend(backend))


def gaaf(x: jax.Array, activation: str | None = None, shape: str | None = None, *,
         config: GAAFConfig | None = None, backend: Backend = "auto",
         **settings: Unpack[GAAFSettings]) -> jax.Array:
    """y = phi(x) + g(x) s(x), differentiable (first and second order) by JAX.

    Same arguments as the PyTorch ``gaaf`` (the settings, or ``config=``); ``backend``:
    ``"auto"`` (the Triton kernels on CUDA devices when jax-triton is installed, XLA
    elsewhere), ``"xla"`` or ``"triton"``.
    """
    forward, _ = _prepare(x, configure(activation, shape, config, **settings), backend)
    return forward(x)


def gaaf_backward(x: jax.Array, grad_output: jax.Array, activation: str | None = None,
                  shape: str | None = None, *, config: GAAFConfig | None = None,
                  backend: Backend = "auto", **settings: Unpack[GAAFSettings]) -> jax.Array:
    """dL/dx = dL/dy (phi' + s + g s'), from x and dL/dy (one shape and dtype)."""
    _, backward = _prepare(x, configure(activation, shape, config, **settings), backend)
    if not isinstance(grad_output, jax.Array):
        raise TypeError("grad_output must be a JAX array like x")
    if grad_output.shape != x.shape or grad_output.dtype != x.dtype:
        raise ValueError("x and grad_output must have the same shape and dtype; got "
                         f"{x.shape}/{x.dtype} and {grad_output.shape}/{grad_output.dtype}")
    return backward(x, grad_output)


@dataclass(frozen=True, init=False)
class GAAF:
    """GAAF as a frozen, hashable callable: a static argument of ``jax.jit``, a field of a
    Flax or Equinox module, or a plain function in a JAX model.

    ``GAAF("relu", K=5000.0)(x)`` is ``gaaf(x, "relu", K=5000.0)``; it takes ``gaaf()``'s
    arguments (or ``config=``). The configuration is validated when the object is made;
    ``self.config`` is the ``GAAFConfig``.
    """

    config: GAAFConfig
    backend: Backend = "auto"

    def __init__(self, activation: str | None = None, shape: str | None = None, *,
                 config: GAAFConfig | None = None, backend: Backend = "auto",
                 **settings: Unpack[GAAFSettings]) -> None:
        if backend not in BACKENDS:  # "triton" is checked where it runs
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        object.__setattr__(self, "config", configure(activation, shape, config, **settings))
        object.__setattr__(self, "backend", backend)

    def resolved(self) -> GAAFConfig:
        """The validated configuration (the earlier name of ``self.config``)."""
        return self.config

    def __call__(self, x: jax.Array) -> jax.Array:
        return gaaf(x, config=self.config, backend=self.backend)
