"""The JAX path on CPU, side by side: GAAF under ``jax.jit`` against ``jnp.tanh`` and
against the naive formula written by hand under ``jax.jit``, and the MNIST MLP's
training step with and without GAAF.

Groups (10^7 float32 elements, XLA's default CPU threads: one per core):

* "jax cpu fwd float32 1e7": ``jnp.tanh`` (floor), ``gaaf`` (the package's XLA path),
  ``naive`` (tanh + sawtooth * exp(-x^2/3), written inline).
* "jax cpu fwdbwd float32 1e7": the same through ``jax.vjp`` (forward and backward in
  one jitted call, as in training; the naive formula's gradient is JAX's autodiff of it,
  which is GAAF's backward too: d floor/dx = 0).
* "jax mlp step": one jitted SGD step of the 784-512-256-256-10 MLP, batch 128, tanh and
  GAAF-tanh (``examples/jax_mlp.py``).

Targets (docs/performance.md): GAAF within 1.15x of ``jnp.tanh`` and no slower than the
naive formula. Reported (``ratio_to_floor``), never asserted: timings on a shared
machine are not a test. With ``--benchmark-disable`` each body runs once (a smoke test).
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import numpy as np
import pytest

from benchlib import describe, record_bandwidth

jax = pytest.importorskip("jax", reason="the JAX benchmarks need jax")
import jax.numpy as jnp  # noqa: E402

from gaaf_kernels.adapters.jax import GAAF  # noqa: E402

K = 10000.0
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "jax_mlp.py"


def naive(x):
    """tanh-GAAF as a user would write it (the catalogue's tanh shape, exp(-x^2/3))."""
    xk = x * K
    return jnp.tanh(x) + (xk - jnp.floor(xk) - 0.5) / K * jnp.exp(-(x * x) / 3.0)


FUNCTIONS = {"jnp.tanh": jnp.tanh, "gaaf": GAAF("tanh"), "naive": naive}
ROLES = {"jnp.tanh": "floor", "gaaf": "contender", "naive": "contender"}


def _environment(benchmark) -> None:
    benchmark.extra_info.update(
        jax=jax.__version__, jax_backend=jax.default_backend(),
        jax_cpu_devices=len(jax.devices("cpu")), cpu_count=os.cpu_count(),
        xla_flags=os.environ.get("XLA_FLAGS", ""))


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = jnp.asarray((rng.standard_normal(10**7) * 2).astype(np.float32))
    dy = jnp.asarray(rng.standard_normal(10**7).astype(np.float32))
    return x, dy


def _timed(benchmark, fn, *args):
    def call():
        return jax.block_until_ready(fn(*args))

    if benchmark.enabled:
        call()  # compile outside the timing
    return benchmark(call)


@pytest.mark.parametrize("size", ["1e7"])
@pytest.mark.parametrize("contender", list(FUNCTIONS))
def test_jax_forward(benchmark, arrays, contender, size):
    x, _ = arrays
    describe(benchmark, contender=contender, role=ROLES[contender], activation="tanh",
             device="cpu", dtype="float32", size=size, pass_="fwd",
             group="jax cpu fwd float32 1e7", suite="jax")
    _environment(benchmark)
    y = _timed(benchmark, jax.jit(FUNCTIONS[contender]), x)
    record_bandwidth(benchmark)
    assert y.shape == x.shape


@pytest.mark.parametrize("size", ["1e7"])
@pytest.mark.parametrize("contender", list(FUNCTIONS))
def test_jax_forward_backward(benchmark, arrays, contender, size):
    x, dy = arrays
    fn = FUNCTIONS[contender]

    @jax.jit
    def forward_backward(x, dy):
        y, pullback = jax.vjp(fn, x)
        return y, pullback(dy)[0]

    describe(benchmark, contender=contender, role=ROLES[contender], activation="tanh",
             device="cpu", dtype="float32", size=size, pass_="fwdbwd",
             group="jax cpu fwdbwd float32 1e7", suite="jax")
    _environment(benchmark)
    y, dx = _timed(benchmark, forward_backward, x, dy)
    record_bandwidth(benchmark)
    assert dx.shape == x.shape


@pytest.mark.parametrize("activation", ["tanh", "gaaf"])
def test_jax_mlp_step(benchmark, activation):
    example = runpy.run_path(str(EXAMPLE))
    act = GAAF("tanh") if activation == "gaaf" else jnp.tanh
    optimizer, apply_updates = example["make_optimizer"](0.01)
    params = example["init_params"](jax.random.key(0))
    opt_state = optimizer.init(params)
    step = example["make_step"](act, optimizer, apply_updates)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0, 1, (128, 784)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, 128))
    benchmark.group = "jax mlp step (784-512-256-256-10, batch 128)"
    benchmark.extra_info.update(suite="jax-models", contender=f"mlp-{activation}",
                                role="floor" if activation == "tanh" else "contender",
                                activation="tanh", device="cpu", dtype="float32",
                                size="128x784", pass_name="step")
    _environment(benchmark)
    out = _timed(benchmark, step, params, opt_state, x, y)
    assert np.isfinite(float(out[2]))
