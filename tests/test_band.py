"""The saturation band (band=True): reference by hand and by finite differences, the
bounds m, the limits, the errors, and every path against the reference."""

import math

import numpy as np
import pytest
import torch
import triton
import triton.language as tl  # noqa: F401  (the interpreter looks tl up in these globals)

import gaaf_kernels as gk
from gaaf_kernels import reference as ref
from gaaf_kernels.reference import formulas as f
from gaaf_kernels.reference.namespaces import NUMPY
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES
from gaaf_kernels.verify import compare, reference_on, sample_inputs

BAND = [name for name in BUILTIN_ACTIVATIONS if name in ref.band_activations()]


# x^3 / (1 + x^2) and its derivatives, for a user registration with a band (|phi'| <= 9/8).
@triton.jit
def cube_value(x):
    return x * x * x / (1.0 + x * x)


@triton.jit
def cube_derivative(x):
    d = 1.0 + x * x
    return x * x * (3.0 + x * x) / (d * d)


@triton.jit
def cube_second(x):
    d = 1.0 + x * x
    return 2.0 * x * (3.0 - x * x) / (d * d * d)


@triton.jit
def ident(x):
    return x


@triton.jit
def one(x):
    return x * 0.0 + 1.0


def test_every_builtin_but_relu_squared_has_a_band():
    assert set(BUILTIN_ACTIVATIONS) - set(BAND) == {"relu_squared"}


# --- hand-worked values -------------------------------------------------------------


def test_tanh_band_by_hand():
    # x*K = 3000 exactly: g = -0.5/K. m = 1, so s_band = s (1 - tanh'(x)).
    x, K = 0.3, 1e4
    t = math.tanh(x)
    dphi, d2phi = 1 - t * t, -2 * t * (1 - t * t)
    s, ds = math.exp(-x * x / 3), -2 * x / 3 * math.exp(-x * x / 3)
    g = -0.5 / K
    band, dband = s * (1 - dphi), ds * (1 - dphi) - s * d2phi
    assert ref.forward(np.float64(x), "tanh", band=True) == pytest.approx(t + g * band,
                                                                         rel=1e-15)
    grad = ref.backward(np.float64(x), np.float64(1.0), "tanh", band=True)
    assert grad == pytest.approx(dphi + band + g * dband, rel=1e-14)


def test_relu_band_is_the_shape_left_of_zero_and_nothing_right_of_it():
    x = np.array([-0.5, 0.00012345])
    plain = ref.backward(x, np.ones_like(x), "relu")
    banded = ref.backward(x, np.ones_like(x), "relu", band=True)
    assert banded[0] == plain[0]  # relu' = 0: the band is the whole shape
    assert banded[1] == 1.0  # relu' = 1 = m: no shape, no sawtooth term
    assert ref.forward(x[1:], "relu", band=True)[0] == x[1]


def test_sigmoid_band_divides_by_its_bound():
    # sigma'(0) = 1/4 = m: the band vanishes at 0, so the derivative is exactly 1/4.
    assert ref.backward(np.float64(0.0), np.float64(1.0), "sigmoid", band=True) == 0.25


# --- finite differences (float64) --------------------------------------------------

POINTS = np.array([-3.7, -1.3, -0.61, -0.23, 0.17, 0.52, 1.41, 2.9], dtype=np.float64)


@pytest.mark.parametrize("activation", BAND)
@pytest.mark.parametrize("shape", BUILTIN_SHAPES)
def test_band_backward_matches_finite_differences(activation, shape):
    K = 1e4
    x = (np.floor(POINTS * K) + 0.5) / K  # mid-tooth: x +- h never crosses a jump
    h = 1e-3 / K
    numeric = (ref.forward(x + h, activation, shape, K=K, band=True)
               - ref.forward(x - h, activation, shape, K=K, band=True)) / (2 * h)
    analytic = ref.backward(x, np.ones_like(x), activation, shape, K=K, band=True)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", BAND + ["relu_squared"])
def test_second_derivative_matches_finite_differences(activation):
    spec = ref.get_activation(activation)
    params = tuple(v for _, v in spec.params)
    x, h = POINTS, 1e-6
    numeric = (spec.derivative(NUMPY, x + h, *params)
               - spec.derivative(NUMPY, x - h, *params)) / (2 * h)
    np.testing.assert_allclose(spec.second_derivative(NUMPY, x, *params), numeric,
                               rtol=1e-6, atol=1e-7)


# --- the bound m --------------------------------------------------------------------


@pytest.mark.parametrize("activation", BAND)
def test_bound_is_the_supremum_of_the_derivative(activation):
    spec = ref.get_activation(activation)
    params = tuple(v for _, v in spec.params)
    # A dense grid, the floats beside each kink (hardswish' -> 3/2 at 3-, elu' -> alpha
    # at 0-), where a kinked derivative comes closest to its bound, and softplus's
    # linear part beyond its threshold (phi' = 1 only there).
    kinks = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    x = np.concatenate([np.linspace(-20, 20, 4_000_001), np.nextafter(kinks, -np.inf),
                        np.nextafter(kinks, np.inf), [-25.0, 25.0]])
    sup = np.abs(spec.derivative(NUMPY, x, *params)).max()
    m = spec.derivative_bound(*params)
    assert sup <= m * (1 + 1e-15)
    assert sup >= m * (1 - 1e-9)


def test_closed_form_and_solved_bounds():
    from scipy.optimize import brentq

    # silu: phi'' = 0 where 2 = x tanh(x/2)
    root = brentq(lambda v: 2 - v * math.tanh(v / 2), 1, 4, xtol=1e-15)
    assert f.silu_derivative(NUMPY, np.float64(root)) == pytest.approx(
        f.SILU_DERIVATIVE_MAX, rel=1e-15)
    assert f.gelu_derivative(NUMPY, np.float64(math.sqrt(2))) == pytest.approx(
        f.GELU_DERIVATIVE_MAX, rel=1e-15)
    for name, lo in (("gelu_tanh", 1.0), ("mish", 1.0)):
        second = getattr(f, f"{name}_second_derivative")
        root = brentq(lambda v, fn=second: float(fn(NUMPY, np.float64(v))), lo, 2.0,
                      xtol=1e-15)
        value = getattr(f, f"{name}_derivative")(NUMPY, np.float64(root))
        assert value == pytest.approx(getattr(f, f"{name.upper()}_DERIVATIVE_MAX"), rel=1e-14)


@pytest.mark.parametrize(("activation", "params", "m"), [
    ("leaky_relu", {"negative_slope": 0.01}, 1.0),
    ("leaky_relu", {"negative_slope": -2.0}, 2.0),
    ("elu", {"alpha": 3.0}, 3.0),
    ("selu", {}, f.SELU_SCALE * f.SELU_ALPHA),
])
def test_parameter_dependent_bounds(activation, params, m):
    cfg = ref.resolve(activation, activation_params=params, band=True)
    assert cfg.inv_bound == pytest.approx(1 / m, rel=1e-15)


# --- limits, NaN and errors ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", BAND)
def test_band_limits_at_infinity_are_finite_or_the_activation_limit(activation, dtype):
    x = np.array([-np.inf, np.inf, np.nan], dtype=dtype)
    for shape in BUILTIN_SHAPES:
        y = ref.forward(x, activation, shape, band=True)
        dx = ref.backward(x, np.ones_like(x), activation, shape, band=True)
        assert not np.isnan(y[:2]).any() and not np.isnan(dx[:2]).any(), (shape, y, dx)
        assert np.isnan(y[2]) and np.isnan(dx[2])
    np.testing.assert_array_equal(ref.forward(x[:2], activation, "gaussian", band=True),
                                  ref.forward(x[:2], activation, "none"))


def test_unbounded_derivative_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="relu_squared.*activations with a band: tanh"):
        ref.forward(np.zeros(3), "relu_squared", band=True)


def test_band_must_be_a_bool():
    with pytest.raises(TypeError, match="band must be True or False"):
        ref.resolve("tanh", band="yes")


# --- every path against the reference ------------------------------------------------

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", BAND)
def test_paths_match_the_reference(activation, dtype, backend):
    from gaaf_kernels.adapters.torch import gaaf, gaaf_backward

    x = sample_inputs(dtype, n=2048)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    kwargs = {"activation": activation, "band": True}
    with np.errstate(all="ignore"):
        want_y = reference_on(ref.forward, x, cfg_kwargs=kwargs)
        want_dx = reference_on(ref.backward, x, dy, cfg_kwargs=kwargs)
    got_y = gaaf(x, activation, band=True, backend=backend)
    got_dx = gaaf_backward(x, dy, activation, band=True, backend=backend)
    assert compare(got_y, want_y)[2], compare(got_y, want_y)
    assert compare(got_dx, want_dx)[2], compare(got_dx, want_dx)


def test_band_differs_from_the_plain_shape_on_every_path():
    # A band wired to nothing would pass the comparisons above only if the reference
    # ignored it too: check that it changes the result where tanh' is far from 0.
    from gaaf_kernels.adapters.torch import gaaf_backward

    x = torch.linspace(-1, 1, 101)
    for backend in ("triton", "torch"):
        plain = gaaf_backward(x, torch.ones_like(x), "tanh", backend=backend)
        banded = gaaf_backward(x, torch.ones_like(x), "tanh", band=True, backend=backend)
        assert (plain - banded).abs().max() > 0.5


def test_torch_compile_traces_the_band():
    from gaaf_kernels.adapters.torch import gaaf

    x = sample_inputs(torch.float32, n=1024)
    fn = torch.compile(lambda t: gaaf(t, "silu", band=True), fullgraph=True)
    leaf = x.clone().requires_grad_()
    y = fn(leaf)
    y.backward(torch.ones_like(y))
    with np.errstate(all="ignore"):
        want_y = reference_on(ref.forward, x, cfg_kwargs={"activation": "silu", "band": True})
        want_dx = reference_on(ref.backward, x, torch.ones_like(x),
                               cfg_kwargs={"activation": "silu", "band": True})
    assert compare(y, want_y)[2] and compare(leaf.grad, want_dx)[2]


def test_module_convert_and_array_entry_points_carry_the_band():
    from torch import nn

    from gaaf_kernels.adapters.torch import GAAF, convert

    assert "band=True" in repr(GAAF("tanh", band=True))
    model = convert(nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.ReLU()), band=True)
    assert [m.config.band for m in model if isinstance(m, GAAF)] == [True, True]
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(gk.forward(x, "tanh", band=True),
                               ref.forward(x, "tanh", band=True), rtol=1e-13)
    np.testing.assert_allclose(gk.backward(x, np.ones_like(x), "tanh", band=True),
                               ref.backward(x, np.ones_like(x), "tanh", band=True), rtol=1e-13)


def test_user_activation_with_band_parts_runs_everywhere():
    gk.register_activation(
        "band_test_cube", triton_value=cube_value, triton_derivative=cube_derivative,
        numpy_value=lambda xp, x: x * x * x / (1.0 + x * x),
        numpy_derivative=lambda xp, x: x * x * (3.0 + x * x) / ((1.0 + x * x) ** 2),
        numpy_second_derivative=lambda xp, x: 2.0 * x * (3.0 - x * x) / ((1.0 + x * x) ** 3),
        triton_second_derivative=cube_second, derivative_bound=lambda: 9.0 / 8.0,
        array_generic=True)
    from gaaf_kernels.adapters.torch import gaaf_backward

    x = torch.linspace(-3, 3, 257, dtype=torch.float64)
    want = ref.backward(x.numpy(), np.ones(257), "band_test_cube", band=True)
    for backend in ("triton", "torch"):
        got = gaaf_backward(x, torch.ones_like(x), "band_test_cube", band=True,
                            backend=backend)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-15)


def test_user_activation_without_band_parts_is_refused():
    gk.register_activation("band_test_plain", triton_value=ident, triton_derivative=one,
                           numpy_value=lambda x: x, numpy_derivative=lambda x: x * 0 + 1)
    with pytest.raises(ValueError, match="needs its second derivative.*band_test_plain"):
        ref.resolve("band_test_plain", band=True)
    with pytest.raises(TypeError, match="triton_second_derivative must be a @triton.jit"):
        gk.register_activation("band_test_half", triton_value=ident, triton_derivative=one,
                               numpy_value=lambda x: x, numpy_derivative=lambda x: x * 0 + 1,
                               triton_second_derivative=lambda x: x,
                               numpy_second_derivative=lambda x: x * 0,
                               derivative_bound=lambda: 1.0)
    with pytest.raises(TypeError, match="together"):
        gk.register_activation("band_test_half", triton_value=ident, triton_derivative=one,
                               numpy_value=lambda x: x, numpy_derivative=lambda x: x * 0 + 1,
                               derivative_bound=lambda: 1.0)


def test_convert_with_band_leaves_an_activation_without_one_and_says_why():
    from torch import nn

    from gaaf_kernels.adapters.torch import convert_report

    transformers = pytest.importorskip("transformers.activations")
    model = nn.Sequential(nn.Linear(2, 2), transformers.ReLUSquaredActivation(), nn.Tanh())
    report = convert_report(model, band=True)
    model = report.model
    assert type(model[1]).__name__ == "ReLUSquaredActivation"
    assert type(model[2]).__name__ == "GAAF" and model[2].config.band
    assert "band=True needs a bounded derivative" in report.summary()
