"""Markers and helpers shared by the tests (imported as ``support``; a module named
``conftest`` would clash with benchmarks/conftest.py when both folders run together)."""

import pytest
import torch
import triton
import triton.language as tl  # noqa: F401  (the interpreter looks tl up in these globals)

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


# Triton twins of x^3, for the tests that register an activation of their own.
@triton.jit
def cube_twin(x):
    return x * x * x


@triton.jit
def cube_derivative_twin(x):
    return 3.0 * x * x


def untimed(final: dict) -> dict:
    """A run's final numbers without its timing (which differs between equal runs)."""
    return {k: v for k, v in final.items() if k != "mean_train_time_s"}


def straight_and_resumed(job, monkeypatch, *, stop_at_step: int, interrupted=None):
    """A study job run straight (``job("a")``) and with Ctrl-C at optimizer step
    ``stop_at_step`` then resumed (``job("b")``); ``interrupted()`` checks the state in
    between. Returns (straight result, resumed result) and asserts the record files the
    two runs share (besides ``record.json`` and the weights) are equal, timing aside."""
    import json

    from gaaf_kernels.experiments.study import runner

    straight = runner._execute(job("a"), lambda msg: None)
    original = runner._Progress.on_batch_end

    def stop(self, model, step):
        if step == stop_at_step:
            raise KeyboardInterrupt
        original(self, model, step)

    monkeypatch.setattr(runner._Progress, "on_batch_end", stop)
    with pytest.raises(KeyboardInterrupt):
        runner._execute(job("b"), lambda msg: None)
    if interrupted is not None:
        interrupted()
    monkeypatch.setattr(runner._Progress, "on_batch_end", original)
    resumed = runner._execute(job("b"), lambda msg: None)
    assert untimed(resumed["final"]) == untimed(straight["final"])
    a_dir, b_dir = (runner.job_config(job(which))[0] for which in "ab")
    extra = sorted(p.name for p in a_dir.glob("*.json") if p.name != "record.json")
    assert extra and extra == sorted(p.name for p in b_dir.glob("*.json")
                                     if p.name != "record.json")
    for name in extra:
        a, b = (json.loads((d / name).read_text()) for d in (a_dir, b_dir))
        if "final" in a:
            a["final"], b["final"] = untimed(a["final"]), untimed(b["final"])
        assert a == b, name
    return straight, resumed

