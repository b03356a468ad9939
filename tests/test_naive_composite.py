"""The benchmarks' naive contender computes GAAF, gradient included (benchmarks/benchlib.py).

The "eager composite" of the benchmarks is the formula ``phi(x) + g(x) * s(x)`` written
from plain torch ops and differentiated by autograd. ``floor`` has a zero gradient,
so autograd gives ``dg/dx = 1`` and the exact a.e. derivative ``phi' + s + g * s'``
without any straight-through trick. These checks keep the benchmark honest: it times
the same function the package computes, against the NumPy reference.

Inputs stay finite (the naive formula makes no promise at +-inf) and their sawtooth
phase ``frac(x*K)`` is kept away from the jumps, where the two roundings of ``x*K``
(the same dtype in both) could still disagree by one ulp of the product.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from gaaf_kernels import reference

BENCHLIB = Path(__file__).resolve().parents[1] / "benchmarks" / "benchlib.py"


@pytest.fixture(scope="module")
def benchlib():
    spec = importlib.util.spec_from_file_location("gaaf_benchlib_under_test", BENCHLIB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(dtype: torch.dtype, n: int = 4096) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn(n, generator=gen, dtype=torch.float64) * 3).to(dtype)
    frac = torch.frac(x * 10000.0)
    keep = (frac.abs() > 0.01) & (frac.abs() < 0.99)  # away from the sawtooth's jumps
    return torch.cat([x[keep], torch.zeros(1, dtype=dtype)])


# float64 agrees to rounding; float32 to its rounding of phi and phi' (torch's tanh'
# is 1 - tanh^2, the reference's 4e/(1+e)^2; both within a few ulp of 1 here).
TOLERANCES = {torch.float64: (1e-12, 1e-12), torch.float32: (2e-6, 2e-6)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_naive_matches_reference(benchlib, activation, dtype):
    x = _inputs(dtype).requires_grad_(True)
    gen = torch.Generator().manual_seed(8)
    dy = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(dtype)

    y = benchlib.naive_gaaf(x, activation)
    (dx,) = torch.autograd.grad(y, x, dy)

    xn = x.detach().numpy()
    y_ref = reference.forward(xn, activation)
    dx_ref = reference.backward(xn, dy.numpy(), activation)
    rtol, atol = TOLERANCES[dtype]
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose(dx.numpy(), dx_ref, rtol=rtol, atol=atol)


def test_naive_gradient_is_phi_prime_plus_s_plus_g_s_prime(benchlib):
    """Spelled out for tanh with gaussian(c=3), in float64."""
    x = _inputs(torch.float64).requires_grad_(True)
    (dx,) = torch.autograd.grad(benchlib.naive_gaaf(x, "tanh").sum(), x)
    xd = x.detach()
    g = (xd * 1e4 - torch.floor(xd * 1e4) - 0.5) / 1e4
    s = torch.exp(-xd * xd / 3.0)
    expected = (1 - torch.tanh(xd) ** 2) + s + g * (-2 * xd / 3.0) * s
    torch.testing.assert_close(dx, expected, rtol=1e-12, atol=1e-12)
    # the gain GAAF is about: the gradient exceeds phi' by about s(x)
    assert torch.all((dx - (1 - torch.tanh(xd) ** 2) - s).abs() <= 1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_naive_half_precision_computes_in_float32(benchlib, dtype):
    """Half inputs: computed in float32 and rounded once, like the package."""
    x = _inputs(dtype, 512).requires_grad_(True)
    y = benchlib.naive_gaaf(x, "tanh")
    assert y.dtype == dtype
    expected = benchlib.naive_gaaf(x.detach().float(), "tanh").to(dtype)
    torch.testing.assert_close(y.detach(), expected, rtol=0, atol=0)
    (dx,) = torch.autograd.grad(y.float().sum(), x)
    assert dx.dtype == dtype and torch.isfinite(dx).all()


def test_contenders_agree_with_package_on_cpu(benchlib):
    """The naive formula and ``gaaf(backend="torch")`` give the same values (eager here)."""
    from gaaf_kernels.adapters.torch import gaaf

    x = _inputs(torch.float32).requires_grad_(True)
    for activation in ("tanh", "relu"):
        y_naive = benchlib.naive_gaaf(x, activation)
        y_pkg = gaaf(x, activation, backend="torch")
        torch.testing.assert_close(y_naive, y_pkg, rtol=2e-6, atol=2e-6)
        (dx_naive,) = torch.autograd.grad(y_naive.sum(), x)
        (dx_pkg,) = torch.autograd.grad(y_pkg.sum(), x)
        torch.testing.assert_close(dx_naive, dx_pkg, rtol=2e-6, atol=2e-6)
