"""The sawtooth's /K (before) against *(1/K) (after), compiled, side by side on the CPU.

    python scripts/bench_sawtooth_reciprocal.py [THREADS]

The PyTorch composite shares the reference's formulas. This times forward + backward of
the GAAF formula (torch.compile, 10^6 float32) with the former division by K and the
current multiplication by 1/K, alternating the two for 40 pairs, and prints the median
of the pairwise ratios (after / before).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from gaaf_kernels.adapters.torch_composite import TORCH as T
from gaaf_kernels.reference import formulas as f


def sawtooth_divided(xp, x, K):
    """The sawtooth as it was: (x*K - floor(x*K) - 0.5) / K."""
    xk = x * K
    frac = xp.where(xp.isfinite(xk), xk - xp.floor(xk), xp.zeros_like(xk))
    return (frac - 0.5) / K


def compiled_passes(sawtooth, act, dact, shape, dshape, params):
    def forward(x, k):
        return f.gaaf_value(T, x, act(T, x), sawtooth(T, x, k), shape(T, x, *params))

    def backward(x, dy, k):
        return f.gaaf_gradient(T, x, dy, dact(T, x), shape(T, x, *params), sawtooth(T, x, k),
                               dshape(T, x, *params))

    fwd, bwd = torch.compile(forward, dynamic=False), torch.compile(backward, dynamic=False)
    return lambda x, dy, k: (fwd(x, k), bwd(x, dy, k))


CASES = {
    "tanh/gaussian": (f.tanh, f.tanh_derivative, f.gaussian, f.gaussian_derivative, (3.0,)),
    "relu/shifted_sigmoid": (f.relu, f.relu_derivative, f.shifted_sigmoid,
                             f.shifted_sigmoid_derivative, (4.0, 1.0)),
}


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    torch.set_num_threads(threads)
    x, dy, k = torch.randn(10**6), torch.randn(10**6), torch.tensor(1e4)
    print(f"torch {torch.__version__}, {threads} threads, 10^6 float32, forward + backward")
    for name, functions in CASES.items():
        before = compiled_passes(sawtooth_divided, *functions)
        after = compiled_passes(f.sawtooth, *functions)
        for run in (before, after, before, after):
            run(x, dy, k)
        t_before, t_after, ratios = [], [], []
        for _ in range(40):
            t0 = time.perf_counter()
            before(x, dy, k)
            t1 = time.perf_counter()
            after(x, dy, k)
            t2 = time.perf_counter()
            t_before.append(t1 - t0)
            t_after.append(t2 - t1)
            ratios.append((t2 - t1) / (t1 - t0))
        print(f"{name:22s} before {1e3 * statistics.median(t_before):7.3f} ms, after "
              f"{1e3 * statistics.median(t_after):7.3f} ms, after/before median "
              f"{statistics.median(ratios):.3f} (pairs {min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    main()
