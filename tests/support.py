"""Markers and helpers shared by the tests (imported as ``support``; a module named
``conftest`` would clash with benchmarks/conftest.py when both folders run together)."""

import pytest
import torch

from gaaf_kernels import runtime
from gaaf_kernels.kernels.launch import interpreting

requires_triton = pytest.mark.skipif(
    not (interpreting() or torch.cuda.is_available()),
    reason="Triton kernels need a CUDA device or TRITON_INTERPRET=1 set before import",
)
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def kernel_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def compile_composite(monkeypatch) -> None:
    """The PyTorch composite compiled during this test (``gaaf_kernels.set_options``'s
    value, put back after it; tests/conftest.py starts the suite with it off)."""
    monkeypatch.setitem(runtime._options, "compile", True)
