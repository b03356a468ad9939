"""PyTorch adapter: ``gaaf()`` (differentiable function) and ``GAAF`` (``nn.Module``).

One vertical stack, a file per job:

* ``torch_ops``: the fused kernels on a backend (Triton, or the Inductor-compiled
  composite of ``torch_composite``), and the custom operators ``gaaf_kernels::forward``,
  ``::backward`` and ``::second`` around them (what ``torch.export``, an explicit backend
  under ``torch.compile``, and ``opcheck`` see);
* ``torch_autograd``: the eager autograd Functions (and those for torch.func);
* ``torch_route``: which of them a call takes (eager, torch.func, or ``torch.compile``,
  where ``torch_fused`` traces GAAF as math Inductor fuses with its neighbours);
* this module: the public function and module. All routes save only x for the backward.

Backends: ``"auto"`` (Triton on CUDA tensors, the fused PyTorch composite elsewhere),
``"triton"`` (CUDA, or CPU under ``TRITON_INTERPRET=1``), ``"torch"`` (the composite on
any device). Under ``torch.compile`` an explicit backend keeps that kernel, opaque.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gaaf_kernels.kernels import launch
from gaaf_kernels.kernels.layout import check_like
from gaaf_kernels.reference import GAAFConfig, configure

from .torch_ops import BACKENDS, Backend, select_backend
from .torch_route import NO_TORCHSCRIPT, apply_backward, apply_forward

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from gaaf_kernels.reference import GAAFSettings

__all__ = ["BACKENDS", "GAAF", "Backend", "gaaf", "gaaf_backward", "select_backend"]


def _check_tensor(x, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    launch.check_dtype(x.dtype)


def _configure(activation, shape, config, settings) -> GAAFConfig:
    # No memo while Dynamo traces: a dict of configs is no part of a graph.
    return configure(activation, shape, config, memo=not torch.compiler.is_compiling(),
                     **settings)


def gaaf(x: Tensor, activation: str | None = None, shape: str | None = None, *,
         config: GAAFConfig | None = None, backend: Backend = "auto",
         **settings: Unpack[GAAFSettings]) -> Tensor:
    """GAAF activation ``phi(x) + g(x) * s(x)``, differentiable (backward saves only x).

    ``activation`` (default tanh) and ``shape`` (default: the activation's) are
    registered names; the settings ``K``, ``activation_params``, ``shape_params`` and
    ``band`` (the saturation band s (1 - phi'/m) as the shape) are keywords, or pass one
    ``config=GAAFConfig(...)`` instead of all of them.
    """
    _check_tensor(x)
    return apply_forward(x, _configure(activation, shape, config, settings), backend)


def gaaf_backward(x: Tensor, grad_output: Tensor, activation: str | None = None,
                  shape: str | None = None, *, config: GAAFConfig | None = None,
                  backend: Backend = "auto", **settings: Unpack[GAAFSettings]) -> Tensor:
    """dL/dx from x and dL/dy (for hand-written backpropagation); ``gaaf()``'s arguments.

    Differentiable in both arguments: its derivative in x is GAAF's second derivative
    (``reference.second_derivative``).
    """
    _check_tensor(x)
    _check_tensor(grad_output, "grad_output")
    check_like(x, grad_output)
    cfg = _configure(activation, shape, config, settings)
    return apply_backward(x, grad_output, cfg, backend)


class GAAF(nn.Module):
    """GAAF activation as a module: ``GAAF("relu")`` replaces ``nn.ReLU()``.

    Takes ``gaaf()``'s arguments (or ``config=GAAFConfig(...)``); ``self.config`` is the
    validated ``GAAFConfig``.

    Args:
        activation: a registered activation name (``gaaf_kernels.activations()``).
        shape: a registered shape name, or None for the activation's default.
        K: frequency constant of the sawtooth, finite and > 0 (keyword).
        activation_params: overrides of the activation's parameters by name.
        shape_params: overrides of the shape function's parameters by name.
        band: multiply the shape by the saturation band ``1 - phi'(x)/m`` (m = sup
            |phi'|), so the added gradient fades where the activation is not saturated.
        backend: "auto", "triton" or "torch".
    """

    def __init__(self, activation: str | None = None, shape: str | None = None, *,
                 config: GAAFConfig | None = None, backend: Backend = "auto",
                 **settings: Unpack[GAAFSettings]) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
        self.config = configure(activation, shape, config, **settings)
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        _check_tensor(x)
        return apply_forward(x, self.config, self.backend)

    def __prepare_scriptable__(self):
        # torch.jit.script calls this on every submodule before compiling it.
        raise RuntimeError(NO_TORCHSCRIPT)

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
    # convert() lives in adapters/convert.py, which imports GAAF from here; a lazy lookup
    # keeps `from gaaf_kernels.adapters.torch import convert` without a cycle.
    if name in ("convert", "convert_report"):
        import importlib

        return getattr(importlib.import_module(".convert", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
