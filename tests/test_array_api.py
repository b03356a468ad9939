"""``gaaf_kernels.forward`` / ``backward`` on JAX arrays and on other Array API arrays.

array-api-strict wraps NumPy and evaluates the formulas operation for operation as the
reference does (same ufuncs, same compute dtype, 1/K divided in it), so its results equal
the reference's bit for bit; JAX's are within ``gaaf verify``'s tolerances.
"""

import numpy as np
import pytest

import gaaf_kernels as gk
from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import array_api

xs = pytest.importorskip("array_api_strict", reason="needs array-api-strict")
pytest.importorskip("array_api_compat", reason="needs array-api-compat")


def sample(n=300, seed=0, dtype=np.float32) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal(n) * 3
    values[:4] = [np.inf, -np.inf, np.nan, 0.0]
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation,shape,band", [
    ("tanh", None, False), ("silu", "laplace", True), ("elu", "constant", False),
    ("softplus", None, True), ("hardswish", "gaussian", False), ("mish", None, True)])
def test_array_api_strict_in_and_out_equal_the_reference(activation, shape, band, dtype):
    x, dy = sample(dtype=dtype), sample(seed=1, dtype=dtype)
    xa, dya = xs.asarray(x), xs.asarray(dy)
    kwargs = dict(activation=activation, shape=shape, band=band, K=5000.0)
    y, dx = gk.forward(xa, **kwargs), gk.backward(xa, dya, **kwargs)
    for got in (y, dx):
        assert type(got) is type(xa) and got.dtype == xa.dtype and got.device == xa.device
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.asarray(y), ref.forward(x, **kwargs))
        np.testing.assert_array_equal(np.asarray(dx), ref.backward(x, dy, **kwargs))


def test_array_api_keeps_the_device():
    device = xs.Device("device1")
    xa = xs.asarray(sample(), device=device)
    assert gk.forward(xa, "relu").device == device
    assert gk.backward(xa, xs.ones_like(xa), "relu").device == device


def test_a_missing_function_is_named():
    xa = xs.asarray(sample())
    with pytest.raises(array_api.MissingFunctionError,
                       match="array_api_strict has no 'erfc', which 'gelu'"):
        gk.forward(xa, "gelu")
    assert np.all(np.isfinite(np.asarray(gk.forward(xa, "gelu_tanh"))[4:]))  # tanh: present


def test_array_api_errors():
    xa = xs.asarray(sample())
    with pytest.raises(TypeError, match="floating dtypes"):
        gk.forward(xs.asarray([1, 2]))
    with pytest.raises(ValueError, match="same shape and dtype"):
        gk.backward(xa, xs.asarray(sample(10)))
    with pytest.raises(TypeError, match="same kind of array"):
        gk.backward(xa, np.zeros(300, np.float32))


# --- JAX arrays through the array-agnostic entry points --------------------------------


def test_jax_in_jax_out_and_differentiable():
    jax = pytest.importorskip("jax", reason="needs jax")
    import jax.numpy as jnp

    x, dy = sample(), sample(seed=1)
    xj, dyj = jnp.asarray(x), jnp.asarray(dy)
    y, dx = gk.forward(xj, "gelu", band=True), gk.backward(xj, dyj, "gelu", band=True)
    for got in (y, dx):
        assert isinstance(got, jax.Array) and got.dtype == xj.dtype
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(y, ref.forward(x, "gelu", band=True), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dx, ref.backward(x, dy, "gelu", band=True), rtol=1e-5,
                                   atol=1e-5)
    grad = jax.jit(jax.grad(lambda v: (gk.forward(v, "gelu", band=True) * dyj).sum()))(xj)
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(dx))
    bf = gk.forward(xj.astype(jnp.bfloat16), "tanh")
    assert bf.dtype == jnp.bfloat16


def test_unknown_objects_name_every_accepted_kind():
    with pytest.raises(TypeError, match="jax.Array, any Array API array"):
        gk.forward([1.0, 2.0])
