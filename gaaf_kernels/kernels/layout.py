"""Memory layouts: process any dense tensor in memory order, without a copy.

A dense, non-overlapping tensor (contiguous, channels_last, permuted) occupies one
block of ``numel`` elements starting at its data pointer, in some order of its
dimensions. An elementwise op can walk that block as a flat array, and its result,
walked in the same order, has the input's strides. ``torch.empty_like`` keeps the
strides of exactly such tensors and picks a dense layout for every other tensor, so it
serves as the reference layout everywhere (the fake kernels return it too).
"""

from __future__ import annotations

import torch


def in_layout_of(t: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """``t`` itself when it already has ``layout``'s strides, else a copy in that layout.

    ``layout`` comes from ``torch.empty_like`` and is dense, so equal strides mean that
    ``t`` is dense too and both can be walked in the same memory order.
    """
    if t.stride() == layout.stride():
        return t
    copy = torch.empty_like(layout)
    copy.copy_(t)
    return copy


def flat(t: torch.Tensor) -> torch.Tensor:
    """The 1-d view of a dense tensor, in memory order."""
    return t.as_strided((t.numel(),), (1,))



def check_like(x: torch.Tensor, other: torch.Tensor, name: str = "grad_output") -> None:
    """``other`` must have x's shape, dtype and device (never converted silently)."""
    if other.shape != x.shape or other.dtype != x.dtype or other.device != x.device:
        raise ValueError(
            f"x and {name} must have the same shape, dtype and device; got "
            f"{tuple(x.shape)}/{x.dtype}/{x.device} and "
            f"{tuple(other.shape)}/{other.dtype}/{other.device}")
