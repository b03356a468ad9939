"""The eager routes: ``torch.autograd.Function`` classes around the fused kernels.

``EagerForward`` (old style, the cheapest to apply) serves plain eager calls; ``Forward``
is the same with ``setup_context`` and a ``vmap`` rule for torch.func; ``Backward`` is
GAAF's backward as a differentiable function (double backward, jvp, vmap) and ``Second``
its derivative in x, which refuses a third derivative. Each saves only x (and w).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gaaf_kernels.reference import GAAFConfig

from . import torch_composite
from .torch_ops import NO_THIRD_DERIVATIVE, run_backward, run_forward
from .torch_private import engine_will_execute, functorch_transforms_active


def _engine_needs(ctx, index: int) -> bool:
    """Whether this backward pass computes the gradient of input ``index``.

    ``ctx.needs_input_grad`` says only that the input requires grad; ``hvp`` asks for the
    gradient in w alone, and the engine then never runs the node of x.
    """
    node = ctx.next_functions[index][0]
    return node is not None and engine_will_execute(node)


def _batch_first(tensors, in_dims, batch_size: int) -> list[Tensor]:
    """Every tensor with its vmap batch dimension first (an unbatched one expanded), so
    that elementwise inputs line up: the kernels see plain tensors of equal shapes."""
    return [t.movedim(d, 0) if d is not None else t.expand(batch_size, *t.shape)
            for t, d in zip(tensors, in_dims)]


def backward_any(x: Tensor, grad_output: Tensor, cfg: GAAFConfig, backend: str) -> Tensor:
    """The backward as a differentiable ``Backward`` where anything may differentiate
    or transform it (grad mode on: double backward; a torch.func transform), else the
    kernel directly (a Function.apply costs more per call than a small layer's kernel)."""
    if torch.is_grad_enabled() or functorch_transforms_active():
        return Backward.apply(x, grad_output, cfg, backend)
    return run_backward(x, grad_output, cfg, backend)


class EagerForward(torch.autograd.Function):
    """y = GAAF(x) in eager mode, outside torch.func transforms.

    ``torch.library`` dispatch costs as much per call as the kernels themselves on an
    MNIST-sized layer on a CPU (results/performance/cpu-2026-12-02.md); eager calls skip it. Under
    ``torch.compile`` the math is traced (``torch_fused``) or the custom ops are used,
    under export the custom ops, and ``opcheck`` tests them. This old-style Function
    (``ctx`` in ``forward``) is the cheapest to apply; ``Forward`` is the same for
    torch.func, which needs ``setup_context`` and a ``vmap`` rule. Its backward is
    ``Backward`` where it can be differentiated, so double backward is exact, not zero.
    """

    @staticmethod
    def forward(ctx, x: Tensor, cfg: GAAFConfig, backend: str) -> Tensor:
        ctx.save_for_backward(x)  # only x, as in the custom op
        ctx.save_for_forward(x)
        ctx.cfg, ctx.backend = cfg, backend
        return run_forward(x, cfg, backend)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return backward_any(x, grad_output, ctx.cfg, ctx.backend), None, None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor, *_):
        # The tangent of y is the backward's factor times the tangent.
        (x,) = ctx.saved_tensors
        return Backward.apply(x, x_tangent, ctx.cfg, ctx.backend)


class Forward(EagerForward):
    """``EagerForward`` for torch.func transforms (``setup_context``, ``vmap``); the
    same backward and jvp."""

    @staticmethod
    def forward(x: Tensor, cfg: GAAFConfig, backend: str) -> Tensor:  # type: ignore[override]
        return run_forward(x, cfg, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, cfg, backend = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.cfg, ctx.backend = cfg, backend

    @staticmethod
    def vmap(info, in_dims, x, cfg, backend):
        return Forward.apply(x, cfg, backend), in_dims[0]  # elementwise: any layout


class Backward(torch.autograd.Function):
    """dx = w * (phi' + s + g s')(x): GAAF's backward as a differentiable function."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, cfg: GAAFConfig, backend: str) -> Tensor:
        return run_backward(x, w, cfg, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, cfg, backend = inputs
        ctx.save_for_backward(x, w)
        ctx.save_for_forward(x, w)
        ctx.cfg, ctx.backend = cfg, backend

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        gx = Second.apply(x, grad * w, ctx.cfg) if ctx.needs_input_grad[0] else None
        gw = Backward.apply(x, grad, ctx.cfg, ctx.backend) if ctx.needs_input_grad[1] else None
        return gx, gw, None, None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor | None, w_tangent: Tensor | None, *_):
        x, w = ctx.saved_tensors
        parts = []
        if x_tangent is not None:
            parts.append(Second.apply(x, x_tangent * w, ctx.cfg))
        if w_tangent is not None:
            parts.append(Backward.apply(x, w_tangent, ctx.cfg, ctx.backend))
        return sum(parts[1:], parts[0]) if parts else torch.zeros_like(x)

    @staticmethod
    def vmap(info, in_dims, x, w, cfg, backend):
        x, w = _batch_first((x, w), in_dims[:2], info.batch_size)
        return Backward.apply(x, w, cfg, backend), 0


class Second(torch.autograd.Function):
    """w * d2y/dx2 = w * (phi'' + 2 s' + g s''); not differentiable (a clear error)."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, cfg: GAAFConfig) -> Tensor:
        return torch_composite.second(x, w, cfg)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, cfg = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.cfg = cfg

    @staticmethod
    def backward(ctx, grad: Tensor):
        # Linear in w (hvp differentiates in w); in x it would need a third derivative.
        if ctx.needs_input_grad[0] and _engine_needs(ctx, 0):
            raise RuntimeError(NO_THIRD_DERIVATIVE)
        (x,) = ctx.saved_tensors
        return None, Second.apply(x, grad, ctx.cfg), None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor | None, w_tangent: Tensor | None, _):
        if x_tangent is not None:
            raise RuntimeError(NO_THIRD_DERIVATIVE)
        (x,) = ctx.saved_tensors
        return Second.apply(x, w_tangent, ctx.cfg)

    @staticmethod
    def vmap(info, in_dims, x, w, cfg):
        x, w = _batch_first((x, w), in_dims[:2], info.batch_size)
        return Second.apply(x, w, cfg), 0


