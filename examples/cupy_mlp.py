"""A small MLP in plain CuPy, trained with hand-written backpropagation through GAAF.

Runs on a GPU with CuPy; without one it runs the same code on NumPy arrays (the CuPy
adapter accepts both). Usage: ``python examples/cupy_mlp.py [--steps 50]``.
"""

from __future__ import annotations

import argparse

from gaaf_kernels.adapters import cupy as gaaf_cupy


def array_module():
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        return cupy
    except Exception:  # no CuPy, or no GPU: NumPy takes the same path on the CPU
        import numpy

        return numpy


def train(steps: int = 50, batch: int = 64, lr: float = 0.1, seed: int = 0, xp=None):
    """Fit a 20-64-64-3 GAAF-tanh MLP to random labels; returns the loss per step."""
    xp = xp or array_module()
    rng = xp.random.RandomState(seed)
    x = rng.standard_normal((batch, 20)).astype(xp.float32)
    labels = rng.randint(0, 3, size=batch)
    sizes = [20, 64, 64, 3]
    weights = [(rng.standard_normal((m, n)) * (2.0 / (m + n)) ** 0.5).astype(xp.float32)
               for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [xp.zeros(n, dtype=xp.float32) for n in sizes[1:]]
    losses = []
    for _ in range(steps):
        # forward: keep each layer's pre-activation z, the only thing GAAF's backward needs
        h, zs, hs = x, [], [x]
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = h @ w + b
            if i < len(weights) - 1:
                zs.append(z)
                h = gaaf_cupy.forward(z, "tanh")
                hs.append(h)
            else:
                logits = z
        logits = logits - logits.max(axis=1, keepdims=True)
        p = xp.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        losses.append(float(-xp.log(p[xp.arange(batch), labels]).mean()))
        # backward by hand
        grad = p
        grad[xp.arange(batch), labels] -= 1.0
        grad /= batch
        for i in reversed(range(len(weights))):
            grad_w, grad_b = hs[i].T @ grad, grad.sum(axis=0)
            if i > 0:
                grad = gaaf_cupy.backward(zs[i - 1], grad @ weights[i].T, "tanh")
            weights[i] -= lr * grad_w
            biases[i] -= lr * grad_b
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    xp = array_module()
    losses = train(args.steps, xp=xp)
    print(f"{xp.__name__}: loss {losses[0]:.4f} -> {losses[-1]:.4f} after {args.steps} steps")


if __name__ == "__main__":
    main()
