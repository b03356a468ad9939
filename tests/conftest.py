"""Shared test set-up.

The suite runs with TRITON_INTERPRET=1 (the Makefile sets it before Python starts), so
the Triton kernels execute on CPU tensors. The PyTorch composite runs eager unless a
test turns compilation on: compiling hundreds of variants would take an hour on 2 cores.
"""

import os

import pytest
import torch

os.environ.setdefault("GAAF_COMPILE", "0")

from gaaf_kernels.kernels.launch import interpreting  # noqa: E402

requires_triton = pytest.mark.skipif(
    not (interpreting() or torch.cuda.is_available()),
    reason="Triton kernels need a CUDA device or TRITON_INTERPRET=1 set before import",
)
gpu = pytest.mark.gpu
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def kernel_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
