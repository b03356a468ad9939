"""The kernels behind every PyTorch route, and the custom operators around them.

``run_forward``/``run_backward`` run the fused kernels on a chosen backend: the Triton
kernels, or the Inductor-compiled composite. ``gaaf_kernels::forward``, ``::backward``
and ``::second`` are ``torch.library`` custom operators (fake implementations and an
autograd formula each: forward -> backward -> second -> a clear error), what
``torch.compile`` and ``torch.export`` see when GAAF stays opaque; their schema carries
the configuration flattened by ``GAAFConfig.op_args`` and rebuilt, validated, on the
other side.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from gaaf_kernels.kernels import launch
from gaaf_kernels.reference import GAAFConfig

from . import torch_composite

Backend = Literal["auto", "triton", "torch"]
BACKENDS: tuple[str, ...] = get_args(Backend)


def select_backend(backend: str, x: Tensor) -> Backend:
    """Resolve ``"auto"`` and check that the chosen backend can run on ``x``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "triton" if x.device.type == "cuda" else "torch"
    if backend == "triton":
        launch.check_device(x)
        return "triton"
    return "torch"


def _into(out: Tensor | None, result: Tensor) -> Tensor:
    if out is None:
        return result
    return out.copy_(result)


def run_forward(x: Tensor, cfg: GAAFConfig, backend: str, out: Tensor | None = None) -> Tensor:
    """The fused forward on ``backend``; the Triton kernel writes ``out`` directly."""
    if backend == "triton":
        return launch.forward(x, cfg, out=out)
    return _into(out, torch_composite.forward(x, cfg))


def run_backward(x: Tensor, grad_output: Tensor, cfg: GAAFConfig, backend: str,
                  out: Tensor | None = None) -> Tensor:
    """The fused backward on ``backend``; the Triton kernel writes ``out`` directly."""
    if backend == "triton":
        return launch.backward(x, grad_output, cfg, out=out)
    return _into(out, torch_composite.backward(x, grad_output, cfg))


@torch.library.custom_op("gaaf_kernels::forward", mutates_args=())
def forward_op(x: Tensor, activation: str, shape: str, K: float,
                activation_params: list[float], shape_params: list[float],
                backend: str, band: bool = False) -> Tensor:
    cfg = GAAFConfig.from_op_args(activation, shape, K, activation_params, shape_params, band)
    return run_forward(x, cfg, backend)


@torch.library.custom_op("gaaf_kernels::backward", mutates_args=())
def backward_op(x: Tensor, grad_output: Tensor, activation: str, shape: str, K: float,
                 activation_params: list[float], shape_params: list[float],
                 backend: str, band: bool = False) -> Tensor:
    cfg = GAAFConfig.from_op_args(activation, shape, K, activation_params, shape_params, band)
    return run_backward(x, grad_output, cfg, backend)


@torch.library.custom_op("gaaf_kernels::second", mutates_args=())
def second_op(x: Tensor, w: Tensor, activation: str, shape: str, K: float,
               activation_params: list[float], shape_params: list[float],
               backend: str, band: bool = False) -> Tensor:
    """``w * d2y/dx2``: the derivative of ``backward(x, w)`` in x (composite, any device)."""
    cfg = GAAFConfig.from_op_args(activation, shape, K, activation_params, shape_params, band)
    return torch_composite.second(x, w, cfg)


def _like_x(x: Tensor, *_, **__) -> Tensor:
    return torch.empty_like(x)  # every op's output has x's shape, dtype and layout


for _op in (forward_op, backward_op, second_op):
    _op.register_fake(_like_x)


# Autograd of the custom ops: forward -> backward -> second -> a clear error.

def _save_inputs(ctx, inputs, output):
    n = 2 if len(inputs) > 8 else 1  # (x, config...) or (x, w, config...)
    ctx.save_for_backward(*inputs[:n])  # x (and w): everything else is recomputed
    ctx.config = inputs[n:]


def _forward_op_backward(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return (backward_op(x, grad_output, *ctx.config),) + (None,) * len(ctx.config)


def _backward_op_backward(ctx, grad):
    x, w = ctx.saved_tensors
    gx = second_op(x, grad * w, *ctx.config) if ctx.needs_input_grad[0] else None
    gw = backward_op(x, grad, *ctx.config) if ctx.needs_input_grad[1] else None
    return (gx, gw) + (None,) * len(ctx.config)


def _no_third_derivative(*_):
    raise RuntimeError(NO_THIRD_DERIVATIVE)


NO_THIRD_DERIVATIVE = ("GAAF is differentiable twice, not three times: its third "
                       "derivative (phi''' and s''') is not implemented")

forward_op.register_autograd(_forward_op_backward, setup_context=_save_inputs)
backward_op.register_autograd(_backward_op_backward, setup_context=_save_inputs)
second_op.register_autograd(_no_third_derivative, setup_context=_save_inputs)


def op_args(cfg: GAAFConfig, backend: str) -> tuple:
    """The custom ops' arguments after x (and w): the config's, backend before band."""
    *settings, band = cfg.op_args()
    return (*settings, backend, band)


