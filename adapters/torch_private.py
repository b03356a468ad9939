"""Every use of PyTorch's private APIs, in one place, with why and where it was checked.

PyTorch does not promise these across releases; each function names the releases on
which the test suite passed with it (``make test-stack`` runs the suite on another
torch/triton pair). When one breaks, this file is the only one to change.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
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


def standalone_compile(graph: torch.fx.GraphModule, examples: Sequence[torch.Tensor],
                       options: dict) -> Any:
    """``torch._inductor.standalone_compile`` of a ``make_fx`` graph with symbolic sizes,
    under ``options`` (no Dynamo: cheaper per call). Checked: torch 2.11.0,
    2.13.0."""
    with torch._inductor.config.patch(options):
        return torch._inductor.standalone_compile(graph, list(examples),
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

    tx: Any = InstructionTranslator.current_tx().output.current_tx
    while tx is not None:
        yield tx.f_code, tx.f_globals
        tx = getattr(tx, "parent", None)


@torch.compiler.assume_constant_result  # run for real while Dynamo traces, not traced
def exporting() -> bool:
    """``torch.compiler.is_exporting()``, read outside the trace.

    Dynamo in torch 2.11 folds ``is_exporting()`` to True under every ``torch.compile``
    (2.13 reads the flag), which sent every compiled GAAF to the opaque custom op there.
    Checked: torch 2.11.0, 2.13.0."""
    return torch.compiler.is_exporting()


def _release(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


#: Traced (fused) GAAF under torch.compile gives wrong gradients on torch 2.11 (dx = 0
#: for most inputs of tests/test_compile_fusion.py's sweep; the forward is right), so
#: below this release the opaque custom op runs instead: correct, one kernel more.
TRACED_ROUTE_SINCE = (2, 13)


_TRACED_ROUTE = _release(torch.__version__) >= TRACED_ROUTE_SINCE  # once, not in a trace


def traced_route_supported() -> bool:
    """Whether this torch traces GAAF as fusable math correctly (checked: 2.13.0; 2.11.0
    does not)."""
    return _TRACED_ROUTE
