"""examples/jax_mlp.py trains: the paper's MNIST MLP with GAAF in JAX, a short run."""

import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX example needs jax (pip install jax)")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "jax_mlp.py"


def test_jax_mlp_example_learns(tmp_path):
    example = runpy.run_path(str(EXAMPLE))
    data = example["load_data"](str(tmp_path))  # no MNIST files there: synthetic data
    assert data[4].startswith("synthetic") and data[0].shape[1] == 784
    result = example["train"](steps=120, data=data)
    losses = result["losses"]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.25 * losses[0]
    assert result["test_accuracy"] > 0.9  # 10 separable prototypes under noise


def test_jax_mlp_example_uses_gaaf_and_jit():
    example = runpy.run_path(str(EXAMPLE))
    import jax.numpy as jnp

    from gaaf_kernels.adapters.jax import GAAF

    params = example["init_params"](__import__("jax").random.key(0))
    assert [p["w"].shape for p in params] == [(784, 512), (512, 256), (256, 256), (256, 10)]
    x = jnp.ones((2, 784)) * 0.1
    with_gaaf = example["forward"](params, x, GAAF("tanh"))
    plain = example["forward"](params, x, jnp.tanh)
    assert not np.array_equal(np.asarray(with_gaaf), np.asarray(plain))  # GAAF is in it
    np.testing.assert_allclose(with_gaaf, plain, atol=1e-3)  # |g s| <= 0.5/K per layer
