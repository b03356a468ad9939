"""One MNIST MLP training epoch, GAAF vs base (target: GAAF <= 1.05x base, at torch's threads).

Each round trains one base epoch (timed in the benchmark's setup) and then one GAAF epoch
(the benchmarked call), interleaved on the same machine and device, so that both see the
same load; ``extra_info`` records both medians and their ratio. Real MNIST is used when
``data/mnist`` holds it, else random images of MNIST's shape (the timing is the same).
Under ``--benchmark-disable`` only a few steps run (a smoke test, not a measurement).

    pytest benchmarks/test_bench_epoch.py --benchmark-only -s     # the real measurement
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from gaaf_kernels.experiments.models import build_model
from gaaf_kernels.experiments.tasks import get_task

BATCH = 128
ROUNDS = 3


def _train_images(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from gaaf_kernels.experiments.datasets import load_splits

        s = load_splits(get_task("mnist-mlp"))
        x, y = s.train_x, s.train_y
    except Exception:  # no MNIST here: random data of the same shape
        g = torch.Generator().manual_seed(0)
        x = torch.rand(50000, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (50000,), generator=g)
    return x.to(device), y.to(device)


def _epoch_runner(variant: str, x: torch.Tensor, y: torch.Tensor, steps: int):
    torch.manual_seed(0)
    model = build_model("mnist-mlp", variant).to(x.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(1)

    def run() -> None:
        perm = torch.randperm(len(y), generator=gen).to(x.device)[: steps * BATCH]
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up: torch.compile of the GAAF composite, allocator
    return run


def test_mnist_mlp_epoch_gaaf_vs_base(benchmark):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_flush_denormal(True)  # as the harness does
    x, y = _train_images(device)
    full = -(-len(y) // BATCH)
    steps = 5 if benchmark.disabled else full
    base, gaaf = _epoch_runner("base", x, y, steps), _epoch_runner("gaaf", x, y, steps)
    base_times: list[float] = []

    def setup():
        t0 = time.perf_counter()
        base()
        base_times.append(time.perf_counter() - t0)

    try:
        benchmark.pedantic(gaaf, setup=setup, rounds=1 if benchmark.disabled else ROUNDS,
                           iterations=1)
    finally:
        torch.set_flush_denormal(False)  # torch's default, for the benchmarks after this
    info = {"device": str(device), "threads": torch.get_num_threads(), "steps": steps,
            "batch": BATCH, "base_median_s": statistics.median(base_times)}
    if not benchmark.disabled:
        gaaf_median = benchmark.stats.stats.median
        info.update(gaaf_median_s=gaaf_median,
                    ratio_gaaf_to_base=gaaf_median / info["base_median_s"])
        print(f"\nMNIST MLP epoch on {device} ({info['threads']} threads): base "
              f"{info['base_median_s']:.2f} s, GAAF {gaaf_median:.2f} s, ratio "
              f"{info['ratio_gaaf_to_base']:.2f} (target <= 1.05)")
    benchmark.extra_info.update(info)
    assert len(base_times) >= 1
