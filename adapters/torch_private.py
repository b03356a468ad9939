"""Every use of PyTorch's private APIs, in one place, with why and where it was checked.

PyTorch does not promise these across releases; each function names the releases on
which the test suite passed with it (``make test-stack`` runs the suite on another
torch/triton pair). When one breaks, this file is the only one to change.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import CodeType, FrameType
from typing import Any

import torch


def engine_will_execute(node: Any) -> bool:
    """Whether the current backward pass runs autograd ``node``
    (``torch._C._will_engine_execute_node``, what ``torch.autograd.graph`` uses for
    multi-grad hooks). Checked: torch 2.11.0, 2.13.0."""
    return bool(torch._C._will_engine_execute_node(node))


def functorch_transforms_active() -> bool:
    """Whether a torch.func transform is on (``torch._C._are_functorch_transforms_active``,
    what ``autograd.Function.apply`` itself asks). Checked: torch 2.11.0, 2.13.0."""
    return bool(torch._C._are_functorch_transforms_active())


def inductor_config() -> Any:
    """``torch._inductor.config`` (the C++ FP-contraction flag, ``emulate_precision_casts``
    and the per-kernel options of the composite). Checked: torch 2.11.0, 2.13.0."""
    from torch._inductor import config

    return config


def standalone_compile(graph: torch.fx.GraphModule, examples: list[torch.Tensor],
                       options: dict) -> Any:
    """``torch._inductor.standalone_compile`` of a ``make_fx`` graph with symbolic sizes,
    under ``options`` (no Dynamo: 6 us per call against 22 us). Checked: torch 2.11.0,
    2.13.0."""
    with torch._inductor.config.patch(options):
        return torch._inductor.standalone_compile(graph, examples,
                                                  dynamic_shapes="from_graph")


def caller_frames(depth: int) -> Iterator[tuple[CodeType, dict]]:
    """(code, globals) of the Python frames above the caller's, innermost first
    (``sys._getframe``)."""
    frame: FrameType | None = sys._getframe(depth + 1)
    while frame is not None:
        yield frame.f_code, frame.f_globals
        frame = frame.f_back


def traced_frames() -> Iterator[tuple[CodeType, dict]]:
    """(code, globals) of the frames Dynamo is tracing, innermost first: its chain of
    instruction translators (one per inlined call), since the real stack holds Dynamo's
    own frames (``torch._dynamo.symbolic_convert``). Checked: torch 2.11.0, 2.13.0."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx().output.current_tx
    while tx is not None:
        yield tx.f_code, tx.f_globals
        tx = getattr(tx, "parent", None)
