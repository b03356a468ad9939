"""Training steps of whole models: plain activation, GAAF and the naive formula.

Models and contenders: ``modellib.py``. Every (model, mode) is run with the three
activations side by side, at torch's default thread count and at one thread (groups
"model MODEL threads=N"; the floor of each group is the plain activation, eager).
``extra_info`` records the model, the mode, the threads, the CPU model and its ISA.
On CUDA (marked gpu) the same steps run at the default setting, plus GAAF compiled
with ``emulate_precision_casts`` (the only setting in which Inductor's Triton code may
fuse GAAF: adapters/torch_fused.py) as ``gaaf_fused``.

Under ``--benchmark-disable`` each body runs once, at the default thread count only
(the one-thread cases compile the same code again).
"""

from __future__ import annotations

import time

import pytest
import torch
from modellib import CONTENDERS, MODELS, MODES, cpu_info, make_step

from benchlib import rounds_for, synchronizer

DEFAULT_THREADS = torch.get_num_threads()


def _cases():
    for threads in ("default", "1"):
        for model in MODELS:
            for mode in MODES:
                for contender in CONTENDERS:
                    yield pytest.param("cpu", threads, model, mode, contender,
                                       id=f"cpu-{model}-{mode}-{contender}-threads_{threads}")
    for model in MODELS:
        for mode in MODES:
            for contender in CONTENDERS + (("gaaf_fused",) if mode == "compiled" else ()):
                yield pytest.param("cuda", "default", model, mode, contender,
                                   marks=[pytest.mark.gpu],
                                   id=f"cuda-{model}-{mode}-{contender}")


@pytest.fixture
def threads_set(request):
    """Sets torch's CPU threads for one benchmark and restores them after it."""
    before = torch.get_num_threads()
    yield lambda n: torch.set_num_threads(n)
    torch.set_num_threads(before)


@pytest.mark.parametrize(("device", "threads", "model", "mode", "contender"), list(_cases()))
def test_model_step(benchmark, threads_set, request, device, threads, model, mode,
                    contender):
    if benchmark.disabled and threads != "default":
        pytest.skip("smoke run: the default-thread case runs the same code")
    n_threads = DEFAULT_THREADS if threads == "default" else int(threads)
    threads_set(n_threads)
    if contender == "gaaf_fused":
        from torch._inductor import config

        patch = config.patch(emulate_precision_casts=True)
        patch.__enter__()
        request.addfinalizer(lambda: patch.__exit__(None, None, None))
    step = make_step(model, "gaaf" if contender == "gaaf_fused" else contender, mode,
                     device=device)
    wait = synchronizer(device)

    def timed():
        loss = step()
        wait()
        return loss

    benchmark.group = f"model {device} {model} threads={n_threads}"
    benchmark.extra_info.update(
        suite="models", model=model, task=MODELS[model][0], batch=MODELS[model][1],
        contender=contender, mode=mode, device=device, threads=n_threads,
        role="floor" if (contender, mode) == ("plain", "eager") else "contender",
        **cpu_info())
    rounds = 1
    if benchmark.enabled:
        timed()  # compile, allocator, first-call costs
        timed()
        t0 = time.perf_counter()
        timed()
        rounds = rounds_for(benchmark, time.perf_counter() - t0)
    loss = benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)
    if benchmark.enabled:
        benchmark.extra_info["median_s"] = benchmark.stats.stats.median
    assert torch.isfinite(loss).item()
