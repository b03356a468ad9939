"""First-call latency of the default CPU path: a new process's first ``gaaf()`` forward
and backward of a (activation, dtype) compiles its kernels with TorchInductor.

cold: an empty Inductor cache directory (a fresh machine); warm: the same directory
again in a new process (Inductor's on-disk FX graph cache, what every later process on
the machine gets). The benchmark's time is the whole warm process (Python, torch's import
and the first call); ``extra_info`` holds the first call alone, from the first GAAF call
to the end of its first backward, cold and warm (median of the rounds). Marked slow (a
cold run compiles for tens of seconds): ``--bench-full`` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

FIRST_CALL = """
import time, torch
from gaaf_kernels.adapters.torch import gaaf
x = torch.randn(128, 512, requires_grad=True)
start = time.perf_counter()
gaaf(x, "tanh").sum().backward()
print(time.perf_counter() - start)
"""


def first_call_seconds(cache_dir: str) -> float:
    env = dict(os.environ, GAAF_COMPILE="1", TORCHINDUCTOR_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return float(out.split()[-1])


@pytest.mark.slow
def test_first_call_cold_then_warm(benchmark, tmp_path):
    cache = str(tmp_path / "inductor")
    cold = first_call_seconds(cache)
    warm: list[float] = []
    benchmark.pedantic(lambda: warm.append(first_call_seconds(cache)), rounds=3,
                       iterations=1)
    warm_median = sorted(warm)[len(warm) // 2]
    benchmark.group = "first call cpu fwdbwd float32 128x512 tanh"
    benchmark.extra_info.update(suite="first-call", contender="gaaf", role="contender",
                                activation="tanh", device="cpu", dtype="float32",
                                size="128x512", first_call_cold_s=cold,
                                first_call_warm_s=warm_median)
    assert cold > warm_median > 0
