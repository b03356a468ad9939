"""Which route a call takes: eager, a torch.func transform, or torch.compile.

Under ``torch.compile`` GAAF is traced as pointwise math that Inductor fuses with its
neighbours (``torch_fused``) where the generated code keeps the semantics, else it stays
the opaque custom operator (``torch_ops``); eager calls take the autograd Functions
(``torch_autograd``), the torch.func-ready ones inside a transform.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gaaf_kernels.reference import GAAFConfig

from . import torch_fused
from .torch_autograd import EagerForward, Forward, backward_any
from .torch_ops import backward_op, forward_op, op_args, select_backend
from .torch_private import functorch_transforms_active

NO_TORCHSCRIPT = (
    "GAAF does not support TorchScript (torch.jit.script / torch.jit.trace, deprecated in "
    "PyTorch): to serialize a model with GAAF use torch.export.export(model, (x,)) and "
    "torch.export.save, or torch.save(model) / its state_dict; to compile it, "
    "torch.compile(model)")


def apply_forward(x: Tensor, cfg: GAAFConfig, requested: str) -> Tensor:
    """``requested``: the backend as the caller named it ("auto" included)."""
    backend = select_backend(requested, x)
    if torch.jit.is_tracing():
        raise RuntimeError(NO_TORCHSCRIPT)
    if torch.compiler.is_compiling():
        if torch_fused.fusable(x, cfg, requested):
            return torch_fused.forward(x, cfg)
        return forward_op(x, *op_args(cfg, backend))
    if functorch_transforms_active():  # torch.func: grad, vmap, jvp
        return Forward.apply(x, cfg, backend)
    return EagerForward.apply(x, cfg, backend)


def apply_backward(x: Tensor, grad_output: Tensor, cfg: GAAFConfig, requested: str) -> Tensor:
    backend = select_backend(requested, x)
    if torch.compiler.is_compiling():
        if torch_fused.fusable(x, cfg, requested):
            return torch_fused.backward_values(x, grad_output, cfg)
        return backward_op(x, grad_output, *op_args(cfg, backend))
    return backward_any(x, grad_output, cfg, backend)


