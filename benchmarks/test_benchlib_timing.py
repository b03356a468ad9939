"""``back_to_back``: on CUDA one synchronization per round, not per call (the host's
launch latency stays out of the time), checked with a stand-in for the CUDA calls."""

from __future__ import annotations

import torch

from benchlib import back_to_back


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
