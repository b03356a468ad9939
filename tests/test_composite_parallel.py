"""The compiled CPU composite runs on every core for large inputs, correctly at any count.

Inductor's C++ backend decides at code generation whether a loop gets an OpenMP region,
from the size *hint* of the traced example and the thread count of that moment, and its
FX graph cache names symbolic sizes without their hints. The composite therefore builds
two kernels per pass, chosen per call by size: a serial one (``cpp.threads=1``) and one
with an OpenMP region sized at run time (``cpp.dynamic_threads``). No timing here: the
tests check the generated code and the results.
"""

from __future__ import annotations

import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import torch_composite
from gaaf_kernels.verify import compare, reference_on, sample_inputs
from support import compile_composite


@pytest.fixture
def fresh(monkeypatch):
    compile_composite(monkeypatch)
    monkeypatch.setattr(torch_composite, "_compiled", {})
    monkeypatch.setattr(torch_composite, "_failed", set())
    threads = torch.get_num_threads()
    yield torch_composite
    torch.set_num_threads(threads)


def _code(fn, *args) -> str:
    from torch._inductor.utils import run_and_get_code

    _, sources = run_and_get_code(fn, *args)
    return "\n".join(sources)


def test_large_input_gets_an_openmp_kernel_after_a_small_one(fresh, monkeypatch, tmp_path):
    """The order that used to fail: a small call first, then a large one, one cache."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    torch.set_num_threads(2)
    cfg = ref.resolve("tanh")
    small_code = _code(fresh.forward, torch.randn(64), cfg)
    large = torch.randn(fresh.PARALLEL_MIN_NUMEL)
    large_code = _code(fresh.forward, large, cfg)
    assert "kernel(" in small_code and "#pragma omp" not in small_code
    assert "#pragma omp parallel" in large_code
    assert "num_threads(" not in large_code  # sized by the thread count at run time
    assert ("forward", cfg.activation, cfg.shape, torch.float32, torch.device("cpu"),
            True) in fresh._compiled


def test_one_thread_runs_the_serial_kernel(fresh):
    torch.set_num_threads(1)
    cfg = ref.resolve("relu")
    fresh.forward(torch.randn(fresh.PARALLEL_MIN_NUMEL), cfg)
    assert [key[-1] for key in fresh._compiled] == [False]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_compiled_composite_is_right_at_any_thread_count(fresh, threads, dtype):
    torch.set_num_threads(threads)
    cfg = ref.resolve("tanh")
    kwargs = {"activation": "tanh"}
    x = sample_inputs(dtype, n=fresh.PARALLEL_MIN_NUMEL)  # specials at the end
    # No subnormal inputs: torch.set_flush_denormal (which training code calls) sets the
    # calling thread's FTZ/DAZ only, and OpenMP threads started before or after it keep
    # their own (torch's own parallel ops then flush on some threads only, too).
    x = x[(x == 0) | ~(x.abs() < torch.finfo(dtype).tiny)]
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    assert x.numel() >= fresh.PARALLEL_MIN_NUMEL
    y, dx = fresh.forward(x, cfg), fresh.backward(x, dy, cfg)
    assert compare(y, reference_on(ref.forward, x, cfg_kwargs=kwargs))[2]
    assert compare(dx, reference_on(ref.backward, x, dy, cfg_kwargs=kwargs))[2]
    assert {key[-1] for key in fresh._compiled} == {threads > 1}
