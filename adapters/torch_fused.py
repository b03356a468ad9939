"""GAAF inside ``torch.compile``: pointwise math that Inductor fuses with its neighbours.

When Dynamo traces ``gaaf()`` or a ``GAAF`` module, the activation is traced as the
composite's formulas (``torch_composite.forward_values`` / ``backward_values``) inside
an ``autograd.Function`` whose backward recomputes everything from ``x``, the one
tensor it saves. Inductor then sees ordinary pointwise ops and fuses them with the
bias-add before and the ops after, forward and backward, where an opaque custom op
would cost a kernel and a tensor pass of its own on each side. Which tensors the
backward finally keeps is AOTAutograd's partitioner's choice: ``x``, or a tensor it
can recompute ``x`` from at no cost (the matmul output before the bias-add).

The math is traced only where Inductor's code keeps ``x*K`` rounded in the compute
dtype before the floor (:func:`fusable`), for ``backend="auto"``. Everywhere else, under
``torch.export`` and for an explicit backend, the custom ops ``gaaf_kernels::forward`` /
``::backward`` stay in the graph, opaque.
"""

from __future__ import annotations

import numpy as np
import torch

from gaaf_kernels.reference import GAAFConfig
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES

from . import torch_composite as composite
from .torch_private import exporting, inductor_config, traced_route_supported


def fusable(x: torch.Tensor, cfg: GAAFConfig, backend: str) -> bool:
    """Whether the activation is traced as pointwise math (else: the opaque custom op).

    * an explicit ``backend`` ("triton", "torch"): never; the caller asked for that
      kernel (on CPU the two routes measured alike: results/performance/cpu-2026-12-02.md).
    * ``torch.export``: never; the exported program keeps the custom op.
    * NumPy-only registrations: never (no torch formula to trace).
    * torch before 2.13: never (its compiled backward of the traced math was wrong:
      ``torch_private.TRACED_ROUTE_SINCE``).
    * CPU: when Inductor's C++ is compiled with ``-ffp-contract=off``
      (``torch._inductor.config.cpp.enable_floating_point_contract_flag``, "off" by
      default): then no ``x*K - floor(x*K)`` becomes an FMA.
    * CUDA: when ``torch._inductor.config.emulate_precision_casts`` is set. Inductor
      compiles its Triton kernels with ``enable_fp_fusion = not emulate_precision_casts``,
      so by default ``x*K`` followed by the subtraction may be contracted into one FMA,
      which skips the rounding of ``x*K``; the Triton kernel (fp fusion off) runs then.
    * Other devices: never.

    The settings are read when Dynamo traces the call, so they must be set globally
    (``torch._inductor.config``, or its ``TORCHINDUCTOR_*`` environment variables),
    not through ``torch.compile(options=...)``.
    """
    if (backend != "auto" or not traced_route_supported() or exporting()
            or composite.numpy_only(cfg)):
        return False
    return _rounds_x_times_k(x.device.type)


@torch.compiler.assume_constant_result  # Dynamo cannot trace Inductor's config module
def _rounds_x_times_k(device_type: str) -> bool:
    config = inductor_config()
    if device_type == "cpu":
        return config.cpp.enable_floating_point_contract_flag == "off"
    if device_type == "cuda":
        return bool(config.emulate_precision_casts)
    return False


def _scalars(x: torch.Tensor, cfg: GAAFConfig):
    """K as a 0-d tensor of the compute dtype, as the composite has it (``1/K`` is then
    rounded in that dtype); the parameters of the built-in functions as Python floats
    holding values of the compute dtype, those of user functions as 0-d tensors.

    Why floats: AOTAutograd's partitioner treats a comparison with a 0-d tensor
    (``x * beta > threshold`` in softplus, the limits of hardtanh) as a reduction, its
    bool result being 4x smaller than its inputs, and saves it for the backward beside
    x instead of recomputing it; against a Python float it recomputes. The built-in
    formulas only combine parameters with tensors, where a float of the compute dtype
    and a 0-d tensor round alike (tests/test_compile_fusion.py checks it); user
    functions may call ``xp.exp(param)``, which needs a tensor.
    """
    cd = composite.compute_dtype(x.dtype)
    k = torch.full((), cfg.K, dtype=cd, device=x.device)
    builtin = cfg.activation.name in BUILTIN_ACTIVATIONS and cfg.shape.name in BUILTIN_SHAPES
    bound = (cfg.inv_bound,) if cfg.inv_bound is not None else ()
    if builtin:
        ap = _rounded(cfg.activation_params, cd == torch.float64)
        sp = _rounded(cfg.shape_params, cd == torch.float64)
        inv_m = _rounded(bound, cd == torch.float64)
    else:
        ap, sp, inv_m = ([torch.full((), v, dtype=cd, device=x.device) for v in values]
                         for values in (cfg.activation_params, cfg.shape_params, bound))
    return k, list(ap), list(sp), (inv_m[0] if cfg.band else None)


@torch.compiler.assume_constant_result  # NumPy outside the trace: a constant for Dynamo
def _rounded(values: tuple, double: bool) -> tuple:
    if double:
        return tuple(float(v) for v in values)
    with np.errstate(over="ignore"):  # out of float32's range: +-inf, as the cast gives
        return tuple(float(np.float32(v)) for v in values)


def forward_values(x: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    k, ap, sp, inv_m = _scalars(x, cfg)
    return composite.forward_values(x, cfg.activation.value, cfg.shape.value, k, ap, sp,
                                    cfg.activation.derivative if cfg.band else None, inv_m)


def backward_values(x: torch.Tensor, grad_output: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    k, ap, sp, inv_m = _scalars(x, cfg)
    return composite.backward_values(
        x, grad_output, cfg.activation.derivative, cfg.shape.value, cfg.shape.derivative,
        k, ap, sp, cfg.activation.second_derivative if cfg.band else None, inv_m)


class _TracedGAAF(torch.autograd.Function):
    """Forward and backward as traceable torch ops; the backward recomputes from x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.cfg = cfg
        return forward_values(x, cfg)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return backward_values(x, grad_output, ctx.cfg), None


def forward(x: torch.Tensor, cfg: GAAFConfig) -> torch.Tensor:
    """Differentiable GAAF as pointwise ops, for Dynamo to trace."""
    return _TracedGAAF.apply(x, cfg)
