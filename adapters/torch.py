"""PyTorch adapter: ``gaaf()`` (differentiable function) and ``GAAF`` (``nn.Module``).

Three routes to the same computation, all saving only ``x`` for the backward:

* eager calls: a plain ``torch.autograd.Function`` (``_EagerGAAF``) around the fused
  kernels (Triton, or the Inductor-compiled composite);
* under ``torch.compile``: the formulas as pointwise torch ops that Inductor fuses with
  their neighbours (``torch_fused``), where its generated code keeps the semantics;
  else, and under ``torch.export``, the two ``torch.library.custom_op`` operators
  ``gaaf_kernels::forward`` and ``gaaf_kernels::backward`` (fake implementations and a
  registered autograd formula), opaque to the compiler;
* ``torch.ops.gaaf_kernels.*`` called directly: the custom ops (``opcheck`` tests them).

Backends: ``"auto"`` (Triton on CUDA tensors, the fused PyTorch composite elsewhere),
``"triton"`` (CUDA, or CPU under ``TRITON_INTERPRET=1``), ``"torch"`` (the composite on
any device). Under ``torch.compile`` an explicit backend keeps that kernel, opaque.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gaaf_kernels.kernels import launch
from gaaf_kernels.kernels.layout import check_like
from gaaf_kernels.reference import DEFAULT_K, Resolved, get_activation, get_shape, resolve
from gaaf_kernels.reference.registry import DEFAULT_ACTIVATION, band_inverse_bound, records_of

from . import torch_composite, torch_fused
from .torch_private import engine_will_execute, functorch_transforms_active

BACKENDS = ("auto", "triton", "torch")


def _config(activation: str, shape: str, K: float, activation_params: list[float],
            shape_params: list[float], band: bool) -> Resolved:
    act, params = get_activation(activation), tuple(activation_params)
    return Resolved(activation=act, shape=get_shape(shape), activation_params=params,
                    shape_params=tuple(shape_params), K=K, band=band,
                    inv_bound=band_inverse_bound(act, params) if band else None)


def _into(out: Tensor | None, result: Tensor) -> Tensor:
    if out is None:
        return result
    return out.copy_(result)


def _run_forward(x: Tensor, cfg: Resolved, backend: str, out: Tensor | None = None) -> Tensor:
    """The fused forward on ``backend``; the Triton kernel writes ``out`` directly."""
    if backend == "triton":
        return launch.forward(x, cfg, out=out)
    return _into(out, torch_composite.forward(x, cfg))


def _run_backward(x: Tensor, grad_output: Tensor, cfg: Resolved, backend: str,
                  out: Tensor | None = None) -> Tensor:
    """The fused backward on ``backend``; the Triton kernel writes ``out`` directly."""
    if backend == "triton":
        return launch.backward(x, grad_output, cfg, out=out)
    return _into(out, torch_composite.backward(x, grad_output, cfg))


@torch.library.custom_op("gaaf_kernels::forward", mutates_args=())
def _forward_op(x: Tensor, activation: str, shape: str, K: float,
                activation_params: list[float], shape_params: list[float],
                backend: str, band: bool = False) -> Tensor:
    cfg = _config(activation, shape, K, activation_params, shape_params, band)
    return _run_forward(x, cfg, backend)


@_forward_op.register_fake
def _(x, activation, shape, K, activation_params, shape_params, backend, band=False):
    return torch.empty_like(x)


@torch.library.custom_op("gaaf_kernels::backward", mutates_args=())
def _backward_op(x: Tensor, grad_output: Tensor, activation: str, shape: str, K: float,
                 activation_params: list[float], shape_params: list[float],
                 backend: str, band: bool = False) -> Tensor:
    cfg = _config(activation, shape, K, activation_params, shape_params, band)
    return _run_backward(x, grad_output, cfg, backend)


@_backward_op.register_fake
def _(x, grad_output, activation, shape, K, activation_params, shape_params, backend,
      band=False):
    return torch.empty_like(x)


@torch.library.custom_op("gaaf_kernels::second", mutates_args=())
def _second_op(x: Tensor, w: Tensor, activation: str, shape: str, K: float,
               activation_params: list[float], shape_params: list[float],
               backend: str, band: bool = False) -> Tensor:
    """``w * d2y/dx2``: the derivative of ``backward(x, w)`` in x (composite, any device)."""
    cfg = _config(activation, shape, K, activation_params, shape_params, band)
    return torch_composite.second(x, w, cfg)


@_second_op.register_fake
def _(x, w, activation, shape, K, activation_params, shape_params, backend, band=False):
    return torch.empty_like(x)


# Autograd of the custom ops: forward -> backward -> second -> a clear error.

def _save_inputs(ctx, inputs, output):
    n = 2 if len(inputs) > 8 else 1  # (x, config...) or (x, w, config...)
    ctx.save_for_backward(*inputs[:n])  # x (and w): everything else is recomputed
    ctx.config = inputs[n:]


def _forward_op_backward(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return (_backward_op(x, grad_output, *ctx.config),) + (None,) * len(ctx.config)


def _backward_op_backward(ctx, grad):
    x, w = ctx.saved_tensors
    gx = _second_op(x, grad * w, *ctx.config) if ctx.needs_input_grad[0] else None
    gw = _backward_op(x, grad, *ctx.config) if ctx.needs_input_grad[1] else None
    return (gx, gw) + (None,) * len(ctx.config)


def _no_third_derivative(*_):
    raise RuntimeError(NO_THIRD_DERIVATIVE)


NO_THIRD_DERIVATIVE = ("GAAF is differentiable twice, not three times: its third "
                       "derivative (phi''' and s''') is not implemented")

_forward_op.register_autograd(_forward_op_backward, setup_context=_save_inputs)
_backward_op.register_autograd(_backward_op_backward, setup_context=_save_inputs)
_second_op.register_autograd(_no_third_derivative, setup_context=_save_inputs)


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


def _functorch_active() -> bool:
    return functorch_transforms_active()  # torch.func: grad, vmap, jvp


def _backward_any(x: Tensor, grad_output: Tensor, cfg: Resolved, backend: str) -> Tensor:
    """The backward as a differentiable ``_Backward`` where anything may differentiate
    or transform it (grad mode on: double backward; a torch.func transform), else the
    kernel directly (a Function.apply costs tens of microseconds per call)."""
    if torch.is_grad_enabled() or _functorch_active():
        return _Backward.apply(x, grad_output, cfg, backend)
    return _run_backward(x, grad_output, cfg, backend)


class _EagerForward(torch.autograd.Function):
    """y = GAAF(x) in eager mode, outside torch.func transforms.

    ``torch.library`` dispatch costs ~150 us per forward+backward on a CPU, as much as
    the kernels themselves on an MNIST-sized layer; eager calls skip it. Under
    ``torch.compile`` the math is traced (``torch_fused``) or the custom ops are used,
    under export the custom ops, and ``opcheck`` tests them. This old-style Function
    (``ctx`` in ``forward``) is the cheapest to apply; ``_Forward`` is the same for
    torch.func, which needs ``setup_context`` and a ``vmap`` rule. Its backward is
    ``_Backward`` where it can be differentiated, so double backward is exact, not zero.
    """

    @staticmethod
    def forward(ctx, x: Tensor, cfg: Resolved, backend: str) -> Tensor:
        ctx.save_for_backward(x)  # only x, as in the custom op
        ctx.save_for_forward(x)
        ctx.cfg, ctx.backend = cfg, backend
        return _run_forward(x, cfg, backend)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return _backward_any(x, grad_output, ctx.cfg, ctx.backend), None, None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor, *_):
        # The tangent of y is the backward's factor times the tangent.
        (x,) = ctx.saved_tensors
        return _Backward.apply(x, x_tangent, ctx.cfg, ctx.backend)


class _Forward(_EagerForward):
    """``_EagerForward`` for torch.func transforms (``setup_context``, ``vmap``); the
    same backward and jvp."""

    @staticmethod
    def forward(x: Tensor, cfg: Resolved, backend: str) -> Tensor:  # type: ignore[override]
        return _run_forward(x, cfg, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, cfg, backend = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.cfg, ctx.backend = cfg, backend

    @staticmethod
    def vmap(info, in_dims, x, cfg, backend):
        return _Forward.apply(x, cfg, backend), in_dims[0]  # elementwise: any layout


class _Backward(torch.autograd.Function):
    """dx = w * (phi' + s + g s')(x): GAAF's backward as a differentiable function."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, cfg: Resolved, backend: str) -> Tensor:
        return _run_backward(x, w, cfg, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, cfg, backend = inputs
        ctx.save_for_backward(x, w)
        ctx.save_for_forward(x, w)
        ctx.cfg, ctx.backend = cfg, backend

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        gx = _Second.apply(x, grad * w, ctx.cfg) if ctx.needs_input_grad[0] else None
        gw = _Backward.apply(x, grad, ctx.cfg, ctx.backend) if ctx.needs_input_grad[1] else None
        return gx, gw, None, None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor | None, w_tangent: Tensor | None, *_):
        x, w = ctx.saved_tensors
        parts = []
        if x_tangent is not None:
            parts.append(_Second.apply(x, x_tangent * w, ctx.cfg))
        if w_tangent is not None:
            parts.append(_Backward.apply(x, w_tangent, ctx.cfg, ctx.backend))
        return sum(parts[1:], parts[0]) if parts else torch.zeros_like(x)

    @staticmethod
    def vmap(info, in_dims, x, w, cfg, backend):
        x, w = _batch_first((x, w), in_dims[:2], info.batch_size)
        return _Backward.apply(x, w, cfg, backend), 0


class _Second(torch.autograd.Function):
    """w * d2y/dx2 = w * (phi'' + 2 s' + g s''); not differentiable (a clear error)."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, cfg: Resolved) -> Tensor:
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
        return None, _Second.apply(x, grad, ctx.cfg), None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor | None, w_tangent: Tensor | None, _):
        if x_tangent is not None:
            raise RuntimeError(NO_THIRD_DERIVATIVE)
        (x,) = ctx.saved_tensors
        return _Second.apply(x, w_tangent, ctx.cfg)

    @staticmethod
    def vmap(info, in_dims, x, w, cfg):
        x, w = _batch_first((x, w), in_dims[:2], info.batch_size)
        return _Second.apply(x, w, cfg), 0


def _apply_forward(x: Tensor, cfg: Resolved, requested: str) -> Tensor:
    """``requested``: the backend as the caller named it ("auto" included)."""
    backend = select_backend(requested, x)
    if torch.jit.is_tracing():
        raise RuntimeError(_NO_TORCHSCRIPT)
    if torch.compiler.is_compiling():
        if torch_fused.fusable(x, cfg, requested):
            return torch_fused.forward(x, cfg)
        return _forward_op(x, *_op_args(cfg, backend))
    if _functorch_active():
        return _Forward.apply(x, cfg, backend)
    return _EagerForward.apply(x, cfg, backend)


def _apply_backward(x: Tensor, grad_output: Tensor, cfg: Resolved, requested: str) -> Tensor:
    backend = select_backend(requested, x)
    if torch.compiler.is_compiling():
        if torch_fused.fusable(x, cfg, requested):
            return torch_fused.backward_values(x, grad_output, cfg)
        return _backward_op(x, grad_output, *_op_args(cfg, backend))
    return _backward_any(x, grad_output, cfg, backend)


_resolved: dict = {}


def _resolve(activation, shape, K, activation_params, shape_params, band=False) -> Resolved:
    """``resolve`` memoized on its (hashable) arguments and the specs they name."""
    if torch.compiler.is_compiling():
        return resolve(activation, shape, K=K, activation_params=activation_params,
                       shape_params=shape_params, band=band)
    try:
        key = (activation, shape, K, band, records_of(activation, shape),
               tuple(sorted((activation_params or {}).items())),
               tuple(sorted((shape_params or {}).items())))
        cfg = _resolved.get(key)
    except (TypeError, ValueError):  # unhashable, unsortable or unknown: no caching
        key, cfg = None, None
    if cfg is None:
        cfg = resolve(activation, shape, K=K, activation_params=activation_params,
                      shape_params=shape_params, band=band)
        if key is not None:
            if len(_resolved) > 1024:
                _resolved.clear()
            _resolved[key] = cfg
    return cfg


def select_backend(backend: str, x: Tensor) -> str:
    """Resolve ``"auto"`` and check that the chosen backend can run on ``x``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "triton" if x.device.type == "cuda" else "torch"
    if backend == "triton":
        launch.check_device(x)
    return backend


def _check_tensor(x, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    launch.check_dtype(x.dtype)


def _op_args(cfg: Resolved, backend: str) -> tuple:
    return (cfg.activation.name, cfg.shape.name, cfg.K, list(cfg.activation_params),
            list(cfg.shape_params), backend, cfg.band)


def gaaf(
    x: Tensor,
    activation: str = DEFAULT_ACTIVATION,
    shape: str | None = None,
    *,
    K: float = DEFAULT_K,
    activation_params: Mapping[str, float] | None = None,
    shape_params: Mapping[str, float] | None = None,
    band: bool = False,
    backend: str = "auto",
) -> Tensor:
    """GAAF activation ``phi(x) + g(x) * s(x)``, differentiable (backward saves only x).

    ``band=True`` uses the saturation band s (1 - phi'/m) as the shape.
    """
    _check_tensor(x)
    cfg = _resolve(activation, shape, K, activation_params, shape_params, band)
    return _apply_forward(x, cfg, backend)


def gaaf_backward(
    x: Tensor,
    grad_output: Tensor,
    activation: str = DEFAULT_ACTIVATION,
    shape: str | None = None,
    *,
    K: float = DEFAULT_K,
    activation_params: Mapping[str, float] | None = None,
    shape_params: Mapping[str, float] | None = None,
    band: bool = False,
    backend: str = "auto",
) -> Tensor:
    """dL/dx from x and dL/dy (for hand-written backpropagation).

    Differentiable in both arguments: its derivative in x is GAAF's second derivative
    (``reference.second_derivative``).
    """
    _check_tensor(x)
    _check_tensor(grad_output, "grad_output")
    check_like(x, grad_output)
    cfg = _resolve(activation, shape, K, activation_params, shape_params, band)
    return _apply_backward(x, grad_output, cfg, backend)


_NO_TORCHSCRIPT = (
    "GAAF does not support TorchScript (torch.jit.script / torch.jit.trace, deprecated in "
    "PyTorch): to serialize a model with GAAF use torch.export.export(model, (x,)) and "
    "torch.export.save, or torch.save(model) / its state_dict; to compile it, "
    "torch.compile(model)")


class GAAF(nn.Module):
    """GAAF activation as a module: ``GAAF("relu")`` replaces ``nn.ReLU()``.

    Args:
        activation: a registered activation name (``gaaf_kernels.activations()``).
        shape: a registered shape name, or None for the activation's default.
        K: frequency constant of the sawtooth, finite and > 0.
        activation_params: overrides of the activation's parameters by name.
        shape_params: overrides of the shape function's parameters by name.
        band: multiply the shape by the saturation band ``1 - phi'(x)/m`` (m = sup
            |phi'|), so the added gradient fades where the activation is not saturated.
        backend: "auto", "triton" or "torch".
    """

    def __init__(
        self,
        activation: str = DEFAULT_ACTIVATION,
        shape: str | None = None,
        K: float = DEFAULT_K,
        activation_params: Mapping[str, float] | None = None,
        shape_params: Mapping[str, float] | None = None,
        band: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
        self.config = resolve(activation, shape, K=K, activation_params=activation_params,
                              shape_params=shape_params, band=band)
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        _check_tensor(x)
        return _apply_forward(x, self.config, self.backend)

    def __prepare_scriptable__(self):
        # torch.jit.script calls this on every submodule before compiling it.
        raise RuntimeError(_NO_TORCHSCRIPT)

    def extra_repr(self) -> str:
        cfg = self.config
        parts = [repr(cfg.activation.name)]
        parts += [f"{n}={v:g}" for n, v in zip(cfg.activation.param_names,
                                                cfg.activation_params)]
        shape = ", ".join(f"{n}={v:g}" for n, v in zip(cfg.shape.param_names, cfg.shape_params))
        parts.append(f"shape={cfg.shape.name}({shape})")
        parts.append(f"K={cfg.K:g}")
        if cfg.band:
            parts.append("band=True")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)


def __getattr__(name: str):
    # convert() and CONVERTIBLE live in adapters/convert.py, which imports GAAF from here;
    # a lazy lookup keeps `from gaaf_kernels.adapters.torch import convert` without a cycle.
    if name in ("convert", "CONVERTIBLE"):
        import importlib

        return getattr(importlib.import_module(".convert", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
