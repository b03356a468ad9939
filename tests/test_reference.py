"""The NumPy reference against hand-worked values, finite differences and the rules."""

import math

import ml_dtypes
import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES

ACTIVATIONS = BUILTIN_ACTIVATIONS  # other test modules register more
SHAPES = BUILTIN_SHAPES


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# --- hand-worked values ----------------------------------------------------------


def test_tanh_default_shape_by_hand():
    # 0.3 * 10000 rounds to exactly 3000.0 in float64: fractional part 0, g = -0.5/K.
    x = 0.3
    expected = math.tanh(x) + (-0.5 / 1e4) * math.exp(-x * x / 3.0)
    assert ref.forward(np.float64(x), "tanh") == pytest.approx(expected, rel=1e-15)


def test_relu_default_shape_by_hand():
    # x*K = 1.2345: floor 1, fraction 0.2345, g = (0.2345 - 0.5) / K.
    x = 0.00012345
    g = (x * 1e4 - 1.0 - 0.5) / 1e4
    s = sigmoid(x + 4.0)
    assert ref.forward(np.float64(x), "relu") == pytest.approx(x + g * s, rel=1e-12)
    ds = s * (1.0 - s)
    grad = ref.backward(np.float64(x), np.float64(2.0), "relu")
    assert grad == pytest.approx(2.0 * (1.0 + s + g * ds), rel=1e-12)


def test_parameters_are_used_by_name():
    x = np.float64(-2.0)
    got = ref.forward(x, "leaky_relu", "none", activation_params={"negative_slope": 0.2})
    assert got == pytest.approx(-0.4, rel=1e-15)
    # shape parameters: constant shape adds value * g(x)
    got = ref.forward(np.float64(0.25), "relu", "constant", K=8.0, shape_params={"value": 3.0})
    assert got == pytest.approx(0.25 + 3.0 * (0.0 - 0.5) / 8.0, rel=1e-15)


def _float32_rounds_up_to_integer(K: float) -> np.float32:
    """An x whose float32 product x*K rounds up to an integer n while the exact product
    (float64 holds it exactly) lies just below n."""
    for n in range(1, 100000):
        x = np.nextafter(np.float32(n / K), np.float32(0))
        if np.float32(x) * np.float32(K) == n and float(x) * K < n:
            return x
    raise AssertionError("no such x")


def test_sawtooth_is_rounded_in_float32():
    # In float32 the fraction is 0 (g = -0.5/K); in float64 it is ~1 (g ~ +0.5/K).
    K = 1e4
    x = _float32_rounds_up_to_integer(K)
    y = ref.forward(x, "tanh", "constant", K=K)
    assert y.dtype == np.float32
    expected = float(np.tanh(np.float64(x))) - 0.5 / K
    assert abs(float(y) - expected) < 1e-6
    y64 = ref.forward(np.float64(x), "tanh", "constant", K=K)
    assert float(y64) - float(y) == pytest.approx(1.0 / K, rel=1e-2)


def test_sigmoid_default_shape_is_gaussian_c12():
    x = np.float64(1.7)
    assert ref.forward(x, "sigmoid") == ref.forward(x, "sigmoid", "gaussian",
                                                    shape_params={"c": 12.0})
    assert ref.forward(x, "sigmoid") != ref.forward(x, "sigmoid", "gaussian")


# --- derivative against finite differences ---------------------------------------

# Points away from the kinks (0 for relu-likes and laplace, +-1 for hardtanh).
POINTS = np.array([-3.7, -1.3, -0.61, -0.23, 0.17, 0.52, 1.41, 2.9], dtype=np.float64)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_finite_differences(activation, shape):
    K = 1e4
    # Put every point in the middle of a sawtooth tooth so x +- h never crosses a jump.
    x = (np.floor(POINTS * K) + 0.5) / K
    h = 1e-3 / K
    numeric = (ref.forward(x + h, activation, shape, K=K)
               - ref.forward(x - h, activation, shape, K=K)) / (2 * h)
    analytic = ref.backward(x, np.ones_like(x), activation, shape, K=K)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


# --- non-finite values -------------------------------------------------------------

LIMITS = {  # plain activation at (-inf, +inf)
    "tanh": (-1, 1), "sigmoid": (0, 1), "hardtanh": (-1, 1), "softsign": (-1, 1),
    "relu": (0, math.inf), "leaky_relu": (-math.inf, math.inf), "elu": (-1, math.inf),
    "selu": (-1.0507009873554805 * 1.6732632423543772, math.inf), "gelu": (0, math.inf),
    "gelu_tanh": (0, math.inf), "silu": (0, math.inf), "softplus": (0, math.inf),
    "mish": (0, math.inf), "hardsigmoid": (0, 1), "hardswish": (0, math.inf),
    "quick_gelu": (0, math.inf), "relu_squared": (0, math.inf),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_infinities_give_limits_not_nan(activation, dtype):
    x = np.array([-np.inf, np.inf], dtype=dtype)
    lo, hi = LIMITS[activation]
    np.testing.assert_allclose(ref.forward(x, activation, "none"), [lo, hi], rtol=1e-6)
    for shape in SHAPES:
        y = ref.forward(x, activation, shape)
        dx = ref.backward(x, np.ones_like(x), activation, shape)
        assert not np.isnan(y).any() and not np.isnan(dx).any(), (shape, y, dx)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_infinity_with_vanishing_shape_is_plain_activation(activation):
    # gaussian vanishes at +-inf, so y(+-inf) = phi(+-inf) exactly.
    x = np.array([-np.inf, np.inf])
    np.testing.assert_array_equal(ref.forward(x, activation, "gaussian"),
                                  ref.forward(x, activation, "none"))


def test_infinity_uses_the_large_x_limit_of_g():
    # x*K not finite: fraction 0, g = -0.5/K. relu + constant(1): y(inf) = inf,
    # backward(inf) = 1 + 1 + g*0 = 2; leaky_relu at -inf with constant shape.
    dx = ref.backward(np.array([np.inf]), np.array([1.0]), "relu", "constant")
    assert dx[0] == 2.0
    y = ref.forward(np.array([-np.inf]), "tanh", "constant", K=4.0)
    assert y[0] == -1.0 - 0.5 / 4.0


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_nan_in_nan_out(activation, shape):
    x = np.array([np.nan, 1.0])
    assert np.isnan(ref.forward(x, activation, shape)[0])
    assert np.isnan(ref.backward(x, np.ones(2), activation, shape)[0])
    assert not np.isnan(ref.forward(x, activation, shape)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_huge_and_denormal_inputs_stay_finite(activation, dtype):
    info = np.finfo(dtype)
    x = np.array([-info.max, info.max, info.smallest_subnormal, -info.smallest_subnormal,
                  info.tiny / 2], dtype=dtype)
    for shape in SHAPES:
        assert not np.isnan(ref.forward(x, activation, shape)).any()
        assert not np.isnan(ref.backward(x, np.ones_like(x), activation, shape)).any()


# --- kinks follow PyTorch ----------------------------------------------------------

KINKS = [
    ("relu", {}, torch.nn.functional.relu, [0.0]),
    ("leaky_relu", {"negative_slope": 0.1},
     lambda t: torch.nn.functional.leaky_relu(t, 0.1), [0.0]),
    ("hardtanh", {}, torch.nn.functional.hardtanh, [-1.0, 1.0]),
    ("elu", {"alpha": 0.7}, lambda t: torch.nn.functional.elu(t, 0.7), [0.0]),
    ("softplus", {"beta": 1.0, "threshold": 20.0}, torch.nn.functional.softplus, [20.0]),
]


@pytest.mark.parametrize("name,params,torch_fn,points", KINKS)
def test_kinks_follow_pytorch_autograd(name, params, torch_fn, points):
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    torch_fn(x).sum().backward()
    ours = ref.backward(np.array(points), np.ones(len(points)), name, "none",
                        activation_params=params)
    np.testing.assert_allclose(ours, x.grad.numpy(), rtol=1e-15, atol=0)


# --- dtypes --------------------------------------------------------------------------


def test_half_precision_output_dtype_and_compute():
    x = np.linspace(-4, 4, 101).astype(np.float16)
    y = ref.forward(x, "tanh")
    assert y.dtype == np.float16
    expected = ref.forward(x.astype(np.float32), "tanh").astype(np.float16)
    np.testing.assert_array_equal(y, expected)


def test_bfloat16_through_ml_dtypes():
    x = np.linspace(-4, 4, 101).astype(ml_dtypes.bfloat16)
    y = ref.forward(x, "relu")
    assert y.dtype == ml_dtypes.bfloat16
    expected = ref.forward(x.astype(np.float32), "relu").astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(y.astype(np.float32), expected.astype(np.float32))


def test_half_precision_gradient_gains_shape():
    # y rounds to phi(x) in float16, but the gradient still gains s(x).
    x = np.array([0.5], dtype=np.float16)
    assert ref.forward(x, "tanh")[0] == np.float16(np.tanh(np.float32(0.5)))
    plain = ref.backward(x, np.ones_like(x), "tanh", "none")[0]
    gaaf = ref.backward(x, np.ones_like(x), "tanh")[0]
    assert float(gaaf) - float(plain) == pytest.approx(math.exp(-0.25 / 3), abs=2e-3)


def test_zero_dim_and_empty():
    assert ref.forward(np.float32(1.0), "tanh").shape == ()
    assert ref.forward(np.zeros((0, 3), np.float32), "tanh").shape == (0, 3)


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64])
def test_unsupported_dtypes(dtype):
    with pytest.raises(TypeError, match="float16, bfloat16, float32, float64"):
        ref.forward(np.zeros(3, dtype=dtype))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="registered activations: tanh, sigmoid"):
        ref.forward(np.zeros(3), "swish")
    with pytest.raises(ValueError, match="registered shapes: gaussian"):
        ref.forward(np.zeros(3), "tanh", "cosine")
    with pytest.raises(ValueError, match="valid parameters: negative_slope"):
        ref.forward(np.zeros(3), "leaky_relu", activation_params={"slope": 1})
    with pytest.raises(ValueError, match="valid parameters: c"):
        ref.forward(np.zeros(3), "tanh", shape_params={"sigma": 1})


@pytest.mark.parametrize("activation,shape,params,match", [
    ("tanh", "gaussian", {"shape_params": {"c": 0.0}}, "'c' must be > 0"),
    ("tanh", "laplace", {"shape_params": {"c": -1.0}}, "'c' must be > 0"),
    ("softplus", "none", {"activation_params": {"beta": 0.0}}, "'beta' must be > 0"),
    ("hardtanh", "none", {"activation_params": {"min_val": 1.5}}, "min_val <= max_val"),
    ("relu", "constant", {"shape_params": {"value": float("nan")}}, "must be finite"),
])
def test_parameter_domains(activation, shape, params, match):
    with pytest.raises(ValueError, match=match):
        ref.forward(np.zeros(3), activation, shape, **params)


@pytest.mark.parametrize("K", [0.0, -1.0, math.inf, math.nan])
def test_bad_K(K):
    with pytest.raises(ValueError, match="K must be finite and > 0"):
        ref.forward(np.zeros(3), K=K)


def test_backward_shape_and_dtype_mismatch():
    with pytest.raises(ValueError, match="same shape and dtype"):
        ref.backward(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same shape and dtype"):
        ref.backward(np.zeros(3), np.zeros(3, np.float32))


# --- surrogate-gradient shapes (SUGAR, arXiv:2505.22074) ------------------------------


def _bsilu_surrogate_derivative(x, alpha=1.67):
    """B-SiLU'(x) for B-SiLU(x) = (x + alpha) sigmoid(x) - alpha/2, straight from the
    definition."""
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig + (x + alpha) * sig * (1.0 - sig)


def _nelu_surrogate_derivative(x, alpha=0.05):
    """NeLU'(x): 1 for x > 0, the derivative of -alpha / (1 + x^2) otherwise."""
    return np.where(x > 0, 1.0, 2.0 * alpha * x / (1.0 + x * x) ** 2)


def _shape(name):
    """s, s', s'' of the registered shape at its default alpha (float64), and alpha."""
    from gaaf_kernels.reference import get_shape
    spec = get_shape(name)
    alpha = dict(spec.params)["alpha"]
    funcs = [lambda x, fn=fn: fn(np, np.asarray(x, np.float64), alpha)
             for fn in (spec.value, spec.derivative, spec.second_derivative)]
    return (*funcs, alpha)


def test_surrogate_shape_defaults():
    assert _shape("bsilu")[3] == 1.67  # the paper's B-SiLU alpha
    assert _shape("nelu")[3] == 0.05


def test_bsilu_by_hand():
    s, ds, _, _ = _shape("bsilu")
    # x = -1: relu' = 0, so s = sigma(-1) + 0.67 sigma'(-1)
    sig = sigmoid(-1.0)
    assert s(-1.0) == pytest.approx(sig + 0.67 * sig * (1 - sig), rel=1e-14)
    # x = 0 takes the x <= 0 side: s = 1/2 + 1.67/4 = 0.9175, s' = 2 sigma'(0) = 0.5
    assert s(0.0) == pytest.approx(0.9175, rel=1e-15)
    assert ds(0.0) == pytest.approx(0.5, rel=1e-15)
    # x = 2: relu' = 1, so s = sigma(2) + 3.67 sigma'(2) - 1
    sig = sigmoid(2.0)
    assert s(2.0) == pytest.approx(sig + 3.67 * sig * (1 - sig) - 1.0, rel=1e-14)
    # s' = sigma' (2 - (x + alpha) tanh(x/2)) at x = 2
    assert ds(2.0) == pytest.approx(sig * (1 - sig) * (2 - 3.67 * math.tanh(1.0)), rel=1e-13)
    # the jump of relu' at 0 is s's jump: -1
    assert s(1e-300) - s(-1e-300) == pytest.approx(-1.0, rel=1e-15)


def test_nelu_by_hand():
    s, ds, d2s, _ = _shape("nelu")
    # x = -1: 2 * 0.05 * (-1) / 2^2 = -0.025; s' = 0.1 * (1 - 3) / 2^3 = -0.025
    assert s(-1.0) == pytest.approx(-0.025, rel=1e-15)
    assert ds(-1.0) == pytest.approx(-0.025, rel=1e-15)
    # x = -2: 0.1 * (-2) / 25 = -0.008; s'' = 1.2 * (-2) * 3 / 625
    assert s(-2.0) == pytest.approx(-0.008, rel=1e-15)
    assert d2s(-2.0) == pytest.approx(1.2 * -2.0 * 3.0 / 625.0, rel=1e-14)
    # x > 0: NeLU' = relu' = 1, nothing added; continuous at 0, s'(0) = 2 alpha (left side)
    assert s(3.0) == 0.0 and ds(3.0) == 0.0 and d2s(3.0) == 0.0
    assert s(0.0) == 0.0 and ds(0.0) == pytest.approx(0.1, rel=1e-15)


@pytest.mark.parametrize("name", ["bsilu", "nelu"])
def test_surrogate_shapes_limits_and_nan(name):
    s, ds, d2s, _ = _shape(name)
    x = np.array([-np.inf, -1e300, 1e300, np.inf])
    with np.errstate(all="ignore"):  # safe_mul forms 0 * inf on purpose
        for fn in (s, ds, d2s):
            np.testing.assert_array_equal(np.abs(fn(x)), np.zeros(4))
    for fn in (s, ds, d2s):
        assert np.isnan(fn(np.array([np.nan])))[0]
    for dtype in (np.float32, np.float64):
        x = np.array([-np.inf, np.inf, np.nan], dtype=dtype)
        y = ref.forward(x, "relu", name)
        dx = ref.backward(x, np.ones_like(x), "relu", name)
        np.testing.assert_array_equal(y[:2], [0.0, np.inf])  # s(+-inf) = 0: plain relu
        np.testing.assert_array_equal(dx[:2], [0.0, 1.0])
        assert np.isnan(y[2]) and np.isnan(dx[2])


@pytest.mark.parametrize("name", ["bsilu", "nelu"])
def test_surrogate_shapes_finite_differences(name):
    s, ds, d2s, _ = _shape(name)
    x = np.concatenate([np.linspace(-9.0, -0.05, 200), np.linspace(0.05, 9.0, 200)])
    h = 1e-6  # away from the jump at 0
    np.testing.assert_allclose(ds(x), (s(x + h) - s(x - h)) / (2 * h), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(d2s(x), (ds(x + h) - ds(x - h)) / (2 * h), rtol=1e-7,
                               atol=1e-9)


@pytest.mark.parametrize("name,surrogate", [("bsilu", _bsilu_surrogate_derivative),
                                            ("nelu", _nelu_surrogate_derivative)])
def test_relu_with_surrogate_shape_is_sugar_within_half_over_k(name, surrogate):
    """relu' + s + g s' = surrogate' + g s', |g| <= 0.5/K: the backward is the surrogate
    gradient within 0.5/K max|s'|, and the forward relu within 0.5/K max|s|."""
    s, ds, _, _ = _shape(name)
    K = 1e4
    x = np.concatenate([np.linspace(-12.0, 12.0, 24001), [0.0, -0.0, 1e-9, -1e-9]])
    dx = ref.backward(x, np.ones_like(x), "relu", name, K=K)
    dense = np.linspace(-30.0, 30.0, 600001)
    bound = 0.5 / K * np.max(np.abs(ds(dense)))
    assert np.max(np.abs(dx - surrogate(x))) <= bound + 1e-12
    y = ref.forward(x, "relu", name, K=K)
    assert np.max(np.abs(y - np.maximum(x, 0.0))) <= 0.5 / K * np.max(np.abs(s(dense))) + 1e-15
