"""The JAX adapter: agreement with the reference, JAX's transformations, second
derivatives, the sawtooth under XLA, the Triton wrappers, errors.

Tolerances are ``gaaf verify``'s (``verify.TOLERANCES``, justified there): the JAX path
evaluates the reference's formulas operation for operation, so what is left is the
rounding of exp/tanh/erf implementations (a few ulps in the compute dtype) and, for 16-bit
storage, one unit in the last place of the final rounding. Subnormal inputs are compared
at +-0, as XLA reads them (``verify_jax.flush_subnormals``).
"""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the JAX adapter needs jax (pip install jax)")

import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

from gaaf_kernels import reference as ref  # noqa: E402
from gaaf_kernels import verify, verify_jax  # noqa: E402
from gaaf_kernels.adapters import jax as gj  # noqa: E402
from gaaf_kernels.adapters import jax_xla  # noqa: E402
from gaaf_kernels.reference.namespaces import NUMPY  # noqa: E402

DTYPES = [torch.float32, torch.bfloat16, torch.float64, torch.float16]
# Every activation in float32 and bfloat16 with and without the band; four of them (one
# per kind of formula: tanh-based, erf, piecewise, exp/log) in float64 and float16 too.
CASES = [(a, d) for a in ref.activation_names()[:17] for d in (torch.float32, torch.bfloat16)]
CASES += [(a, d) for a in ("tanh", "gelu", "leaky_relu", "mish")
          for d in (torch.float64, torch.float16)]


def _case_ids(case):
    return f"{case[0]}-{str(case[1]).removeprefix('torch.')}"


@pytest.mark.parametrize("band", [False, True], ids=["plain", "band"])
@pytest.mark.parametrize("case", CASES, ids=_case_ids)
def test_forward_and_vjp_match_the_reference(case, band):
    activation, dtype = case
    if band and activation not in ref.band_activations():
        with pytest.raises(ValueError, match="band=True needs"):
            gj.gaaf(jnp.zeros(3), activation, band=True)
        return
    row = verify_jax.check_case(activation, None, dtype, band)
    assert row.ok, verify.format_rows([row])


@pytest.mark.parametrize("shape", ref.shape_names()[:5])
def test_every_shape_matches_the_reference(shape):
    row = verify_jax.check_case("tanh", shape, torch.float32, False)
    assert row.ok, verify.format_rows([row])


def test_the_namespace_has_every_function_of_the_formulas():
    for name in {*vars(NUMPY), "erfc"}:
        assert callable(getattr(jax_xla.JAX, name)), name
    x = jnp.asarray([-1.0, 0.5])
    np.testing.assert_allclose(jax_xla.JAX.erfc(x), 1.0 - jax_xla.JAX.erf(x), rtol=1e-6)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_sawtooth_is_rounded_before_floor_at_the_teeth(x64):
    """x*K must be rounded in the compute dtype before floor and the subtraction. At these
    points a fused multiply-add (x*K - floor(x*K) in one rounding) gives another result;
    relu is 0 and the constant shape 1 for x < 0, so y is g itself, bit for bit."""
    dtype = np.float64 if x64 else np.float32
    K = dtype(10000.0)
    x = -np.random.default_rng(0).uniform(0.001, 3.0, 200_000).astype(dtype)
    xk = x * K
    fused = (xk - np.floor(xk)) + _product_error(x, K)  # one rounding of x*K - floor
    assert np.count_nonzero(fused != xk - np.floor(xk)) > 1000  # so the test can fail
    with jax.enable_x64(x64):
        y = np.asarray(gj.gaaf(jnp.asarray(x), "relu", "constant", K=float(K)))
    want = ref.forward(x, "relu", "constant", K=float(K))
    np.testing.assert_array_equal(y, want)


def _product_error(a: np.ndarray, b) -> np.ndarray:
    """x*K - fl(x*K), exactly (Dekker's two-product, for float32 and float64 alike)."""
    split = a.dtype.type(2 ** (np.finfo(a.dtype).nmant // 2 + 1) + 1)

    def halves(v):
        c = split * v
        hi = c - (c - v)
        return hi, v - hi

    ah, al = halves(a)
    bh, bl = halves(np.full_like(a, b))
    p = a * b
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


def test_one_xla_fusion_per_pass():
    x = jnp.ones(4096)

    def fusions(fn, *args) -> int:
        text = jax.jit(fn).lower(*args).compile().as_text()
        entry = text[text.index("ENTRY"):]
        return entry.count(" fusion(")

    assert fusions(lambda v: gj.gaaf(v, "gelu", band=True), x) == 1
    assert fusions(lambda v, dy: jax.vjp(lambda u: gj.gaaf(u, "gelu", band=True), v)[1](dy)[0],
                   x, x) == 1


# --- JAX transformations ------------------------------------------------------------


def _sample(n=257, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(n) * 3).astype(dtype)


def test_grad_jvp_vjp_jacfwd_and_jit_agree_with_the_backward():
    x, t = _sample(), _sample(seed=1)
    want = ref.backward(x, t, "silu", band=True)
    fn = gj.GAAF("silu", band=True)
    xj, tj = jnp.asarray(x), jnp.asarray(t)
    tol = dict(rtol=1e-5, atol=1e-6)
    _, tangent = jax.jvp(fn, (xj,), (tj,))
    np.testing.assert_allclose(tangent, want, **tol)
    _, pullback = jax.vjp(fn, xj)
    np.testing.assert_allclose(pullback(tj)[0], want, **tol)
    grad = jax.jit(jax.grad(lambda v: jnp.sum(fn(v) * tj)))(xj)
    np.testing.assert_allclose(grad, want, **tol)
    jac = jax.jacfwd(lambda v: fn(v) * tj[:16])(xj[:16])
    np.testing.assert_allclose(np.diag(jac), want[:16], **tol)
    np.testing.assert_array_equal(jax.jacrev(lambda v: fn(v) * tj[:16])(xj[:16]), jac)
    np.testing.assert_allclose(gj.gaaf_backward(xj, tj, "silu", band=True), want, **tol)


def test_vmap_and_a_batch_agree():
    x = jnp.asarray(_sample(6 * 40).reshape(6, 40))
    fn = gj.GAAF("mish", "laplace")
    np.testing.assert_array_equal(jax.vmap(fn)(x), fn(x))
    rows = jax.vmap(jax.grad(lambda v: fn(v).sum()))(x)
    np.testing.assert_allclose(rows, ref.backward(np.asarray(x), np.ones((6, 40), np.float32),
                                                  "mish", "laplace"), rtol=1e-5, atol=1e-6)


# Second derivatives at mid-tooth points (x*K = n + 1/2): finite differences of the
# float64 reference's backward with step h = 1e-7 stay inside the tooth (half-width
# 0.5/K = 5e-5), where g' = 1 exactly; their error is ~h^2 |y''''| + 1e-16/h ~ 1e-9.
SECOND = [("tanh", None, False), ("tanh", None, True), ("gelu", None, True),
          ("mish", "laplace", False), ("sigmoid", "gaussian", True),
          ("softplus", "constant", False), ("elu", "shifted_sigmoid", True),
          ("silu", "none", False), ("gelu_tanh", "gaussian", True)]


def _mid_tooth(K=10000.0, n=64):
    x = np.linspace(-4.0, 4.0, n)
    x = (np.floor(x * K) + 0.5) / K
    return x[np.abs(x) > 0.05]  # away from the kinks at 0 (elu, laplace)


@pytest.mark.parametrize("activation,shape,band", SECOND)
def test_hessian_matches_finite_differences_of_the_reference(activation, shape, band):
    x, h = _mid_tooth(), 1e-7
    kwargs = dict(activation=activation, shape=shape, band=band)
    one = np.ones_like(x)
    fd = (ref.backward(x + h, one, **kwargs) - ref.backward(x - h, one, **kwargs)) / (2 * h)
    with jax.enable_x64(True):
        fn = gj.GAAF(activation, shape, band=band)
        got = np.asarray(jax.vmap(jax.hessian(fn))(jnp.asarray(x)))
        # float32: the same second derivative, rounded (cancellation costs a few ulps)
        got32 = np.asarray(jax.vmap(jax.hessian(fn))(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got32, got, rtol=1e-4, atol=1e-5)


def test_third_derivative_raises_instead_of_a_wrong_value():
    third = jax.grad(jax.grad(jax.grad(lambda v: gj.gaaf(v, "tanh"))))
    with pytest.raises(NotImplementedError, match="third derivative"):
        third(jnp.float32(0.3))


def test_hessian_of_a_shape_without_second_derivative_is_refused():
    """A shape with value and s' but no s'' (the catalogue's fields, a function of its
    own): jax.grad works, jax.hessian says what is missing."""
    spec = ref.get_shape("gaussian")
    user = dataclasses.replace(spec, name="test_jax_bump", second_derivative=None,
                               value=lambda xp, x, c: xp.exp(-(x * x) / c))
    cfg = ref.GAAFConfig("tanh", "gaussian")
    object.__setattr__(cfg, "shape", user)  # a spec that no registry holds (test only)
    x = jnp.asarray([0.3, -1.2])
    forward, _ = gj._functions(cfg, "xla")
    grad = jax.grad(lambda v: forward(v).sum())(x)  # first derivatives need no s''
    assert np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="need s'' of shape 'test_jax_bump'"):
        jax.hessian(lambda v: forward(v).sum())(x)


# --- semantics at the edges -----------------------------------------------------------


def test_non_finite_inputs():
    x = jnp.asarray([jnp.inf, -jnp.inf, jnp.nan], jnp.float32)
    for activation in ("tanh", "silu", "gelu", "softsign", "mish"):
        y = np.asarray(gj.gaaf(x, activation))
        dx = np.asarray(jax.grad(lambda v, a=activation: gj.gaaf(v, a).sum())(x))
        np.testing.assert_array_equal(y[:2], ref.forward(np.asarray(x[:2]), activation))
        assert np.isnan(y[2]) and np.isnan(dx[2]) and np.all(np.isfinite(dx[:2])), activation


def test_half_precision_gradient_gains_the_shape():
    """In bfloat16 y rounds to phi(x) almost everywhere, while the gradient gains s(x)."""
    x = jnp.asarray(np.linspace(-0.5, 0.5, 101), jnp.bfloat16)
    y = gj.gaaf(x, "tanh")
    phi = jnp.tanh(x.astype(jnp.float32)).astype(jnp.bfloat16)
    assert np.count_nonzero(np.asarray(y) == np.asarray(phi)) >= 90  # 5 of 101 differ by an ulp
    grad = jax.grad(lambda v: gj.gaaf(v, "tanh").astype(jnp.float32).sum())(x)
    plain = jax.grad(lambda v: jnp.tanh(v).astype(jnp.float32).sum())(x)
    assert grad.dtype == jnp.bfloat16
    assert np.all(np.asarray(grad, np.float32) > np.asarray(plain, np.float32) + 0.5)


def test_GAAF_is_frozen_hashable_and_a_static_argument():
    a = gj.GAAF("elu", activation_params={"alpha": 0.5}, K=5000)
    b = gj.GAAF("elu", activation_params={"alpha": 0.5}, K=5000.0)
    assert a == b and hash(a) == hash(b) and a != gj.GAAF("elu")
    with pytest.raises(AttributeError):
        a.K = 1.0

    @jax.jit
    def apply(x):
        return a(x)

    x = jnp.asarray(_sample())
    step = jax.jit(lambda fn, v: fn(v), static_argnums=0)
    np.testing.assert_array_equal(step(a, x), apply(x))
    np.testing.assert_allclose(apply(x), ref.forward(np.asarray(x), "elu",
                                                     activation_params={"alpha": 0.5},
                                                     K=5000.0), rtol=1e-5, atol=1e-6)


def test_errors_are_clear_and_raised_at_trace_time():
    with pytest.raises(ValueError, match="unknown activation"):
        gj.GAAF("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        gj.gaaf(jnp.zeros(2), "elu", activation_params={"beta": 1.0})
    with pytest.raises(TypeError, match="floating dtypes"):
        gj.gaaf(jnp.zeros(2, jnp.int32))
    with pytest.raises(TypeError, match="expected a JAX array"):
        gj.gaaf(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="backend must be one of"):
        gj.GAAF(backend="cuda")
    with pytest.raises(ValueError, match="same shape and dtype"):
        gj.gaaf_backward(jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(TypeError, match="floating dtypes"):
        jax.jit(lambda v: gj.gaaf(v))(jnp.zeros(2, jnp.int32))


@pytest.mark.skipif(gj.triton_available() and gj._cuda_present(),
                    reason="this machine can run the Triton path")
def test_path_is_xla_here_and_triton_is_refused_with_the_reason():
    assert gj.path(jnp.zeros(2)) == "xla"
    with pytest.raises(RuntimeError, match="backend='triton' needs"):
        gj.gaaf(jnp.zeros(2), backend="triton")


def test_import_gaaf_kernels_imports_no_framework():
    code = ("import sys, gaaf_kernels, gaaf_kernels.reference\n"
            "bad = [m for m in ('jax', 'torch', 'array_api_compat') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_only_user_functions_run_through_the_reference(own_store):
    """An activation registered with NumPy functions only: jax.pure_callback to the
    reference, under jit, grad and vmap; its second derivative is refused."""
    import gaaf_kernels as gk
    from support import cube_derivative_twin, cube_twin

    gk.register_activation("jax_test_cube", triton_value=cube_twin,
                           triton_derivative=cube_derivative_twin,
                           numpy_value=lambda x: x * x * x,
                           numpy_derivative=lambda x: 3 * x * x, default_shape="gaussian")
    x = _sample(64)
    xj = jnp.asarray(x.reshape(8, 8))
    y = jax.jit(lambda v: gj.gaaf(v, "jax_test_cube"))(xj)
    np.testing.assert_array_equal(np.asarray(y).ravel(), ref.forward(x, "jax_test_cube"))
    grad = jax.vmap(jax.grad(lambda v: gj.gaaf(v, "jax_test_cube").sum()))(xj)
    np.testing.assert_array_equal(np.asarray(grad).ravel(),
                                  ref.backward(x, np.ones_like(x), "jax_test_cube"))
    with pytest.raises(ValueError, match="has NumPy functions only"):
        jax.hessian(lambda v: gj.gaaf(v, "jax_test_cube"))(jnp.float32(0.5))


def test_the_examples_of_the_readme_and_docs_run():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), flags=re.S)
    namespace: dict = {}
    block = next(b for b in readme if "gaaf_kernels.jax" in b)
    exec(compile(block, "README.md", "exec"), namespace)
    assert float(namespace["grad"][3]) == 2.0  # tanh'(0) + s(0) = 1 + 1
    for block in re.findall(r"```python\n(.*?)```", (root / "docs" / "jax.md").read_text(),
                            flags=re.S)[1:]:
        namespace = {}
        exec(compile(block, "docs/jax.md", "exec"), namespace)
    assert namespace["y"].shape == (3,)
