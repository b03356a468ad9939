"""``back_to_back``: on CUDA one synchronization per round, not per call (the host's
launch latency stays out of the time), checked with a stand-in for the CUDA calls."""

from __future__ import annotations

import torch

from benchlib import back_to_back, run_pass


class FakeBenchmark:
    enabled = True

    def __init__(self) -> None:
        self.rounds = self.iterations = 0

    def pedantic(self, fn, rounds, iterations, warmup_rounds):
        self.rounds, self.iterations = rounds, iterations
        for _ in range((rounds + warmup_rounds) * iterations):
            fn()


def test_cuda_rounds_synchronize_once_each(monkeypatch):
    syncs, calls = [], []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: syncs.append(len(calls)))
    bench = FakeBenchmark()
    back_to_back(bench, lambda: calls.append(1), "cuda")
    assert bench.iterations > 1
    # the probe syncs after each of its two calls, then each round (warm-up included)
    # syncs once, after its last call
    n = bench.iterations
    assert syncs == [1, 2] + [2 + k * n for k in range(1, bench.rounds + 2)]


def test_cpu_is_a_plain_benchmark_call():
    seen = []
    back_to_back(lambda fn: seen.append(fn()), lambda: 7, "cpu")
    assert seen == [7]


def test_cuda_backward_alone_waits_for_its_kernels(monkeypatch):
    """The backward-only pass cannot be queued back to back (a graph per round): it must
    synchronize after each backward, or it times the host's launches alone."""
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: events.append("sync"))

    class Bench:
        enabled = True

        def pedantic(self, fn, setup, rounds, warmup_rounds):
            for _ in range(rounds + warmup_rounds):
                args, _ = setup()
                events.append("setup")
                fn(*args)
                events.append("backward")

    x, dy = torch.randn(8), torch.randn(8)
    run_pass(Bench(), torch.tanh, x, dy, "bwd", "cuda")
    timed = events[events.index("setup"):]  # the rounds (after the untimed probe)
    assert timed[:3] == ["setup", "sync", "backward"]  # the backward's own wait
    assert all(timed[i - 1] == "sync" for i, e in enumerate(timed) if e == "backward")
