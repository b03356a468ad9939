"""Forward, backward and forward+backward of GAAF against the alternatives.

Contenders (see benchlib.py): ``gaaf_triton`` (CUDA only), ``gaaf_torch``,
``gaaf_compiled`` (torch.compile of gaaf), ``compile``
(torch.compile of the same formula), ``eager`` (the eager composite) and ``plain``
(torch.tanh / torch.relu, the floor of each group), for tanh and relu with their
default shapes; ``test_copy`` measures the bandwidth ceiling. Sizes 128x512,
128x64x32x32, 2^24 and 2^28 (CUDA only) elements; float32 and bfloat16, and float16
on CUDA (relu at 2^24 and 2^28 only there: every new shape rank and dtype costs
torch.compile time). On CPU only the 128x512 tanh cases run by default (the rest are
marked slow: ``--bench-full``). Cases are listed size first, then dtype, activation, pass and
contender, so the floor of each group runs first.
"""

from __future__ import annotations

import pytest
import torch

from benchlib import ACTIVATIONS, back_to_back, contender_fn, describe, record_bandwidth, run_pass

SUITE_SIZES = ("128x512", "128x64x32x32", "2^24", "2^28")
PASSES = ("fwd", "bwd", "fwdbwd")
CONTENDERS = ("plain", "gaaf_triton", "gaaf_torch", "gaaf_compiled", "compile", "eager")
GPU_ONLY_SIZES = ("2^28",)
GPU_ONLY_CONTENDERS = ("gaaf_triton",)
CPU_DEFAULT_SIZES = ("128x512",)
CPU_DEFAULT_ACTIVATIONS = ("tanh",)
GPU_LARGE_SIZES = ("2^24", "2^28")  # relu on CUDA at these only: compiles cost time there
DEVICES = ("cpu", "cuda")


def _dtypes(device: str) -> tuple[str, ...]:
    return ("float32", "bfloat16", "float16") if device == "cuda" else ("float32", "bfloat16")


def _sizes(device: str) -> tuple[str, ...]:
    return tuple(s for s in SUITE_SIZES if device == "cuda" or s not in GPU_ONLY_SIZES)


def _marks(device: str, slow: bool) -> list:
    if device == "cuda":
        return [pytest.mark.gpu]
    return [pytest.mark.slow] if slow else []


def _cases():
    for device in DEVICES:
        for size in _sizes(device):
            for dtype in _dtypes(device):
                for activation in ACTIVATIONS:
                    if device == "cuda" and activation != "tanh" and size not in GPU_LARGE_SIZES:
                        continue
                    slow = (size not in CPU_DEFAULT_SIZES
                            or activation not in CPU_DEFAULT_ACTIVATIONS)
                    for pass_ in PASSES:
                        for contender in CONTENDERS:
                            if device == "cpu" and contender in GPU_ONLY_CONTENDERS:
                                continue
                            yield pytest.param(
                                device, size, dtype, activation, pass_, contender,
                                marks=_marks(device, slow),
                                id=f"{device}-{size}-{dtype}-{activation}-{pass_}-{contender}")


def _copy_cases():
    for device in DEVICES:
        for size in _sizes(device):
            # cheap even at 2^24 on CPU: it gives the default run its ceiling
            yield pytest.param(device, size, marks=_marks(device, False), id=f"{device}-{size}")


@pytest.mark.parametrize(("device", "size", "dtype", "activation", "pass_", "contender"),
                         list(_cases()))
def test_pass(benchmark, tensors, device, size, dtype, activation, pass_, contender):
    x, dy = tensors.get(device, dtype, size)
    describe(benchmark, contender=contender, role="floor" if contender == "plain" else "contender",
             activation=activation, device=device, dtype=dtype, size=size, pass_=pass_)
    out = run_pass(benchmark, contender_fn(contender, activation), x, dy, pass_, device)
    record_bandwidth(benchmark)
    assert out.shape == x.shape
    assert out.dtype == x.dtype


@pytest.mark.parametrize(("device", "size"), list(_copy_cases()))
def test_copy(benchmark, tensors, device, size):
    """Device-to-device copy of float32: the bandwidth ceiling (2 tensor passes)."""
    x, _ = tensors.get(device, "float32", size)
    dst = torch.empty_like(x)
    describe(benchmark, contender="copy", role="copy", activation="-", device=device,
             dtype="float32", size=size, pass_="copy", group=f"{device} copy", suite="copy")

    def copy():
        dst.copy_(x)
        return dst

    back_to_back(benchmark, copy, device)  # as the passes are timed
    if device == "cuda":
        torch.cuda.synchronize()
    record_bandwidth(benchmark)
    assert torch.equal(dst, x)
