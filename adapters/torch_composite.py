"""The PyTorch composite: the reference formulas evaluated with torch ops.

Used by ``backend="torch"`` and by ``"auto"`` on CPU, outside ``torch.compile`` (inside
it, ``torch_fused`` hands the same formulas to the user's compile). Each pass is
compiled by TorchInductor into one kernel per (pass, activation, shape, dtype, device,
serial or parallel), and falls back to eager PyTorch with a one-time warning where
compilation fails. ``gaaf_kernels.set_options(compile=False)`` (or ``GAAF_COMPILE=0`` at
start-up) skips compilation (eager, many small kernels).
"""

from __future__ import annotations

import logging
import math
import warnings

import torch

from gaaf_kernels import runtime
from gaaf_kernels.kernels.layout import flat, in_layout_of
from gaaf_kernels.reference import GAAFConfig
from gaaf_kernels.reference import backward as reference_backward
from gaaf_kernels.reference import forward as reference_forward
from gaaf_kernels.reference import second_derivative as reference_second
from gaaf_kernels.reference.core import check_second_derivative
from gaaf_kernels.reference.dtypes import policy
from gaaf_kernels.reference.formulas import (
    band,
    band_derivative,
    gaaf_gradient,
    gaaf_second,
    gaaf_value,
    sawtooth,
)
from gaaf_kernels.reference.namespaces import array_namespace

from .torch_private import standalone_compile


def _isfinite(t: torch.Tensor) -> torch.Tensor:
    # Not torch.isfinite: it decomposes to (t == t) & ..., and AOTAutograd's partitioner
    # never recomputes a bool computed from two float operands (4x smaller than its
    # inputs: "a reduction"), so under torch.compile the masks were saved for the
    # backward beside x (2 extra bytes per element). |t| < inf is the same test.
    return t.abs() < math.inf


def _is_number(t: torch.Tensor) -> torch.Tensor:
    """False exactly where ``t`` is NaN, from one operand (for the reason above)."""
    return t.abs() >= 0


def _isnan(t: torch.Tensor) -> torch.Tensor:
    return ~_is_number(t)  # torch.isnan compiled to a scalar loop


def _expm1(t: torch.Tensor) -> torch.Tensor:
    """e^t - 1 to a few ulp, from exp and log (Kahan's formula).

    Not torch.expm1: Inductor's vectorized C++ computes it as ``exp(t) - 1``, which is 0
    for |t| below 2^-24 in float32 (elu(-1e-8) was 0). (u - 1) t / log(u) with u = e^t
    cancels the rounding of u instead. Where u - 1 rounds to 0, -1 or inf the result is
    t, -1 or inf (log of a subnormal u would be inexact).
    """
    u = torch.exp(t)
    um1 = u - 1.0
    kahan = um1 * (t / torch.log(u))
    return torch.where(um1 == 0, t, torch.where((um1 == -1.0) | (um1 == math.inf), um1, kahan))


TORCH = array_namespace(torch, expm1=_expm1, isnan=_isnan, isfinite=_isfinite)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return getattr(torch, policy(dtype).compute)


# GAAF's combination and NaN rule are formulas.gaaf_value / gaaf_gradient, called with
# the namespace above: its NaN test is ~(|x| >= 0), one operand. x != x has two, and
# under torch.compile the partitioner saved that bool mask for the backward beside x
# (memory and time: results/performance/cpu-2026-12-02.md).


def forward_values(x, act_value, shape_value, k, ap, sp, act_derivative=None, inv_m=None):
    """``phi(x) + g(x) * s(x)`` in x's dtype, NaN where x is NaN; ``k``, ``ap``, ``sp``:
    K and the activation and shape parameters, in the compute dtype. With
    ``act_derivative`` (phi') and ``inv_m`` (1/m), s is the saturation band."""
    xc = x.to(compute_dtype(x.dtype))
    s = shape_value(TORCH, xc, *sp)
    if act_derivative is not None:
        s = band(TORCH, s, act_derivative(TORCH, xc, *ap), inv_m)
    return gaaf_value(TORCH, xc, act_value(TORCH, xc, *ap), sawtooth(TORCH, xc, k),
                      s).to(x.dtype)


def backward_values(x, dy, act_derivative, shape_value, shape_derivative, k, ap, sp,
                    act_second=None, inv_m=None):
    """``dy * (phi'(x) + s(x) + g(x) * s'(x))`` in x's dtype, NaN where x is NaN. With
    ``act_second`` (phi'') and ``inv_m`` (1/m), s and s' are the saturation band's."""
    xc = x.to(compute_dtype(x.dtype))
    dphi = act_derivative(TORCH, xc, *ap)
    s, ds = shape_value(TORCH, xc, *sp), shape_derivative(TORCH, xc, *sp)
    if act_second is not None:
        d2phi = act_second(TORCH, xc, *ap)
        s, ds = band(TORCH, s, dphi, inv_m), band_derivative(TORCH, s, ds, dphi, d2phi, inv_m)
    return gaaf_gradient(TORCH, xc, dy.to(xc.dtype), dphi, s, sawtooth(TORCH, xc, k),
                         ds).to(x.dtype)


def second_values(x, w, act_second, shape_derivative, shape_second, k, ap, sp):
    """``w * (phi''(x) + 2 s'(x) + g(x) s''(x))`` in x's dtype, NaN where x is NaN: the
    derivative of the backward in x (double backward, Hessians)."""
    xc = x.to(compute_dtype(x.dtype))
    return gaaf_second(TORCH, xc, w.to(xc.dtype), act_second(TORCH, xc, *ap),
                       shape_derivative(TORCH, xc, *sp), sawtooth(TORCH, xc, k),
                       shape_second(TORCH, xc, *sp)).to(x.dtype)


def _unpack(scalars: torch.Tensor, dtype: torch.dtype, n_act: int, n_shape: int):
    """[K, activation params..., shape params..., (1/m)] as 0-d tensors of ``dtype``;
    1/m is None where the scalars end with the shape parameters (no band)."""
    s = scalars.to(dtype)
    n = 1 + n_act + n_shape
    inv_m = s[n] if s.shape[0] > n else None
    return (s[0], [s[1 + i] for i in range(n_act)], [s[1 + n_act + i] for i in range(n_shape)],
            inv_m)


def _forward_math(x, scalars, act_value, shape_value, n_act: int, n_shape: int,
                  act_derivative=None):
    k, ap, sp, inv_m = _unpack(scalars, compute_dtype(x.dtype), n_act, n_shape)
    return forward_values(x, act_value, shape_value, k, ap, sp, act_derivative, inv_m)


def _backward_math(x, dy, scalars, act_derivative, shape_value, shape_derivative,
                   n_act: int, n_shape: int, act_second=None):
    k, ap, sp, inv_m = _unpack(scalars, compute_dtype(x.dtype), n_act, n_shape)
    return backward_values(x, dy, act_derivative, shape_value, shape_derivative, k, ap, sp,
                           act_second, inv_m)


def _second_math(x, w, scalars, act_second, shape_derivative, shape_second, n_act: int,
                 n_shape: int):
    k, ap, sp, _ = _unpack(scalars, compute_dtype(x.dtype), n_act, n_shape)
    return second_values(x, w, act_second, shape_derivative, shape_second, k, ap, sp)


compile_enabled = runtime.compile_enabled  # gaaf_kernels.set_options(compile=...)


#: Below this many elements a CPU pass runs the serial kernel, at or above it the
#: OpenMP one: above where the two break even (results/performance/cpu-2026-12-02.md),
#: with a margin for busier machines (torch's own ops split at 32768), and low enough to
#: send the MNIST layers (128x256, 128x512) to every core.
PARALLEL_MIN_NUMEL = 16384

_compiled: dict = {}
_failed: set = set()
_warned = False
#: Length of the 1-d example tensors traced with symbolic sizes (any length >= 2 works:
#: 0 and 1 would be specialized on). The kernels do not depend on it (see _options).
_EXAMPLE_LENGTH = 17


def _options(device: torch.device, parallel: bool) -> dict:
    """Inductor settings for one kernel; every one of them is part of Inductor's cache key.

    Inductor's C++ backend decides at code generation whether a loop gets an OpenMP
    region, from the *hint* of the symbolic size (the example's length: 17 elements are
    "not enough work") and the thread count of that moment, and its FX graph cache keys
    symbolic sizes by name, not by hint: a kernel once built serial was loaded serial
    again for any later example. So the choice is made explicit: ``cpp.threads=1``
    (serial) or ``cpp.dynamic_threads`` (an OpenMP region that runs on
    ``omp_get_max_threads()``, torch's thread count at the time of the call).
    ``-ffp-contract=off`` (Inductor's default, pinned here) and, for Inductor's Triton
    kernels, ``emulate_precision_casts`` (which turns Triton's ``enable_fp_fusion`` off)
    keep ``x*K`` rounded before the floor instead of contracted into an FMA.
    """
    if device.type == "cuda":
        return {"emulate_precision_casts": True}
    options: dict[str, str | bool | int] = {"cpp.enable_floating_point_contract_flag": "off"}
    if parallel:
        options["cpp.dynamic_threads"] = True
    else:
        options["cpp.threads"] = 1
    return options


def _inductor_artifact(math_fn, constants: tuple, examples: list[torch.Tensor],
                       options: dict):
    """``math_fn`` compiled by Inductor for 1-d tensors of any length, without Dynamo.

    The one compile strategy, chosen by measurement
    (results/performance/cpu-2026-12-02.md): the graph is traced once with symbolic
    sizes (``make_fx``) and compiled with
    ``torch._inductor.standalone_compile``, without Dynamo, whose frame entry, guards and
    wrappers cost more per call than the kernel on small tensors. Its fallback is eager
    (``_run``).
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    def graph(*tensors):
        return math_fn(*tensors, *constants)

    with torch.no_grad():
        traced = make_fx(graph, tracing_mode="symbolic")(*examples)
    return standalone_compile(traced, examples, options)


def _build(math_fn, constants: tuple, tensors: tuple[torch.Tensor, ...], parallel: bool):
    *data, scalars = tensors
    examples = [torch.zeros(_EXAMPLE_LENGTH, dtype=t.dtype, device=t.device) for t in data]
    examples.append(scalars)
    artifact = _inductor_artifact(math_fn, constants, examples,
                                  _options(scalars.device, parallel))
    return lambda *ts: artifact(*[t.detach() for t in ts])


def _parallel(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.numel() >= PARALLEL_MIN_NUMEL
            and torch.get_num_threads() > 1)


logger = logging.getLogger("gaaf_kernels")
_announced = False


def _announce_first_compile() -> None:
    """One INFO line per process: the first call of each (pass, activation, shape, dtype)
    compiles a CPU kernel, which takes seconds."""
    global _announced
    if not _announced:
        _announced = True
        logger.info("gaaf_kernels: compiling the CPU kernels with TorchInductor (a few seconds "
                    "per activation, shape and dtype, once per process; Inductor caches them "
                    "on disk). gaaf_kernels.set_options(compile=False) or GAAF_COMPILE=0 skips "
                    "compilation (eager PyTorch, slower).")


def _run(key, math_fn, constants: tuple, *tensors: torch.Tensor) -> torch.Tensor:
    """``math_fn(*tensors, *constants)``, compiled once per key; eager after a failure.

    A compiler that is missing or broken costs one warning, never a wrong answer.
    """
    global _warned
    if compile_enabled():
        key = (*key, _parallel(tensors[0]))
        if key not in _failed:
            try:
                compiled = _compiled.get(key)
                if compiled is None:
                    _announce_first_compile()
                    compiled = _compiled[key] = _build(math_fn, constants, tensors, key[-1])
                return compiled(*tensors)
            except Exception as exc:
                _failed.add(key)
                _compiled.pop(key, None)
                if not _warned:
                    _warned = True
                    warnings.warn(
                        f"gaaf_kernels: compiling the PyTorch composite failed "
                        f"({exc!r:.200}); using eager PyTorch (unfused, slower)",
                        RuntimeWarning, stacklevel=3)
    return math_fn(*tensors, *constants)


_scalar_cache: dict = {}


def _scalars(cfg: GAAFConfig, device: torch.device) -> torch.Tensor:
    """[K, activation params..., shape params..., (1/m under band)] as float64 on
    ``device``, cached: on a GPU a fresh tensor per call would be a blocking
    host-to-device copy."""
    key = (cfg, device)
    scalars = _scalar_cache.get(key)
    if scalars is None:
        if len(_scalar_cache) > 256:
            _scalar_cache.clear()
        values = [cfg.K, *cfg.activation_params, *cfg.shape_params]
        if cfg.inv_bound is not None:  # the band
            values.append(cfg.inv_bound)
        scalars = _scalar_cache[key] = torch.tensor(values, dtype=torch.float64,
                                                    device=device)
    return scalars


def numpy_only(cfg: GAAFConfig) -> bool:
    return not (cfg.activation.array_generic and cfg.shape.array_generic)


def _via_reference(fn, x: torch.Tensor, *rest: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    """User functions given only for NumPy: evaluate through the reference (CPU only)."""
    if x.device.type != "cpu":
        raise RuntimeError(
            f"{cfg.activation.name!r}/{cfg.shape.name!r} has NumPy functions only; on "
            f"{x.device} use backend='triton', or register it with array_generic=True")
    cd = compute_dtype(x.dtype)
    arrays = [t.detach().to(cd).numpy() for t in (x, *rest)]
    out = fn(*arrays, cfg.activation.name, cfg.shape.name, K=cfg.K,
             activation_params=dict(zip(cfg.activation.param_names, cfg.activation_params)),
             shape_params=dict(zip(cfg.shape.param_names, cfg.shape_params)), band=cfg.band)
    return torch.from_numpy(out).to(x.dtype)


def _owned(flat_result: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """The fresh 1-d result with ``layout``'s shape and strides, as a tensor of its own.

    A view (``.view``, ``as_strided``) returned from an ``autograd.Function`` cannot be
    modified in place afterwards (``y += r``, ``Dropout(inplace=True)``): autograd
    forbids in-place ops on views created inside a custom Function. ``set_`` gives a
    tensor that shares the storage without being a view.
    """
    out = torch.empty(0, dtype=flat_result.dtype, device=flat_result.device)
    with torch.no_grad():
        return out.set_(flat_result.untyped_storage(), flat_result.storage_offset(),
                        layout.shape, layout.stride())


def _elementwise(key, math_fn, constants: tuple, cfg: GAAFConfig, x: torch.Tensor,
                 *others: torch.Tensor) -> torch.Tensor:
    """``math_fn`` over x and the same-shaped ``others`` in x's memory order, the result
    in x's layout. Flat 1-d inputs: one compiled graph per dtype serves every shape."""
    scalars = _scalars(cfg, x.device)
    if x.is_contiguous() and all(t.is_contiguous() for t in others):
        # the common case, without a layout tensor (it costs per call)
        result = _run(key, math_fn, constants, x.view(-1), *[t.view(-1) for t in others],
                      scalars)
        return _owned(result, x)
    layout = torch.empty_like(x)  # the output layout the fake kernel promises
    result = _run(key, math_fn, constants,
                  *[flat(in_layout_of(t, layout)) for t in (x, *others)], scalars)
    return _owned(result, layout)


def forward(x: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    if x.numel() == 0:
        return torch.empty_like(x)
    if numpy_only(cfg):
        return in_layout_of(_via_reference(reference_forward, x, cfg=cfg), torch.empty_like(x))
    key = ("forward-band" if cfg.band else "forward", cfg.activation, cfg.shape, x.dtype,
           x.device)
    constants = (cfg.activation.value, cfg.shape.value, len(cfg.activation_params),
                 len(cfg.shape_params), cfg.activation.derivative if cfg.band else None)
    return _elementwise(key, _forward_math, constants, cfg, x)


def backward(x: torch.Tensor, grad_output: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    if x.numel() == 0:
        return torch.empty_like(x)
    if numpy_only(cfg):
        return in_layout_of(_via_reference(reference_backward, x, grad_output, cfg=cfg),
                            torch.empty_like(x))
    key = ("backward-band" if cfg.band else "backward", cfg.activation, cfg.shape, x.dtype,
           x.device)
    constants = (cfg.activation.derivative, cfg.shape.value, cfg.shape.derivative,
                 len(cfg.activation_params), len(cfg.shape_params),
                 cfg.activation.second_derivative if cfg.band else None)
    return _elementwise(key, _backward_math, constants, cfg, x, grad_output)


def second(x: torch.Tensor, w: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    """``w * d2y/dx2`` (the derivative of ``backward(x, w)`` in x) on any device, for
    every backend (the Triton kernels have no second pass). RuntimeError where a
    function lacks its second derivative, and under ``band=True`` (it needs phi''')."""
    check_second_derivative(cfg)
    if x.numel() == 0:
        return torch.empty_like(x)
    if numpy_only(cfg):
        return in_layout_of(_via_reference(reference_second, x, w, cfg=cfg),
                            torch.empty_like(x))
    key = ("second", cfg.activation, cfg.shape, x.dtype, x.device)
    constants = (cfg.activation.second_derivative, cfg.shape.derivative,
                 cfg.shape.second_derivative, len(cfg.activation_params),
                 len(cfg.shape_params))
    return _elementwise(key, _second_math, constants, cfg, x, w)
