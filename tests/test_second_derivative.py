"""GAAF's second derivative: s'' of the shapes, d2y/dx2 = phi'' + 2 s' + g s'' in the
reference, and every PyTorch route that differentiates twice against it."""

import math

import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters.torch import GAAF, gaaf
from gaaf_kernels.reference import get_shape
from gaaf_kernels.reference.namespaces import NUMPY
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES
from support import requires_triton

K = 1e4
# Away from the kinks (0 for relu-likes and laplace, +-1 for hardtanh, +-3 hardswish).
POINTS = np.array([-3.7, -1.3, -0.61, -0.23, 0.17, 0.52, 1.41, 2.9])


def mid_tooth(points, k=K) -> np.ndarray:
    """Points in the middle of a sawtooth tooth: x +- 0.4/K crosses no jump."""
    return (np.floor(np.asarray(points, dtype=np.float64) * k) + 0.5) / k


# --- the reference ---------------------------------------------------------------


def test_shape_second_derivatives_by_hand():
    x = np.array([0.5, -2.0])
    gauss = get_shape("gaussian").second_derivative(NUMPY, x, 3.0)
    np.testing.assert_allclose(gauss, (4 * x**2 / 9 - 2 / 3) * np.exp(-x**2 / 3), rtol=1e-15)
    lap = get_shape("laplace").second_derivative(NUMPY, x, 2.0)
    np.testing.assert_allclose(lap, np.exp(-np.abs(x) / 2) / 4, rtol=1e-15)
    sig = 1 / (1 + np.exp(-(x + 4)))  # shifted_sigmoid'' = sigma (1 - sigma) (1 - 2 sigma)
    np.testing.assert_allclose(
        get_shape("shifted_sigmoid").second_derivative(NUMPY, x, 4.0, 1.0),
        sig * (1 - sig) * (1 - 2 * sig), rtol=1e-12)


@pytest.mark.parametrize("shape", BUILTIN_SHAPES)
def test_shape_second_derivative_matches_finite_differences(shape):
    spec = get_shape(shape)
    params = [v * 1.3 for _, v in spec.params]
    h = 1e-6
    numeric = (spec.derivative(NUMPY, POINTS + h, *params)
               - spec.derivative(NUMPY, POINTS - h, *params)) / (2 * h)
    np.testing.assert_allclose(spec.second_derivative(NUMPY, POINTS, *params), numeric,
                               rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("shape", BUILTIN_SHAPES)
def test_shape_second_derivative_limits_are_finite(shape):
    spec = get_shape(shape)
    x = np.array([-np.inf, np.inf, -1e30, 1e30, np.nan])
    with np.errstate(all="ignore"):
        got = spec.second_derivative(NUMPY, x, *[v for _, v in spec.params])
    np.testing.assert_array_equal(got[:2], 0.0)
    # at ±1e30 the exponential shapes underflow to 0; a rational one (nelu, ~x^-5) is tiny
    assert np.all(np.abs(got[2:4]) < 1e-140), got[2:4]
    assert np.isnan(got[4]) or shape in ("constant", "none")


@pytest.mark.parametrize("activation", BUILTIN_ACTIVATIONS)
@pytest.mark.parametrize("shape", BUILTIN_SHAPES)
def test_second_derivative_matches_finite_differences_of_backward(activation, shape):
    x = mid_tooth(POINTS)
    h = 1e-3 / K
    ones = np.ones_like(x)
    numeric = (ref.backward(x + h, ones, activation, shape, K=K)
               - ref.backward(x - h, ones, activation, shape, K=K)) / (2 * h)
    got = ref.second_derivative(x, ones, activation, shape, K=K)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-6)


def test_second_derivative_by_hand():
    # relu + constant(1): phi'' = 0, s' = s'' = 0: zero. tanh + none: -2 tanh sech^2.
    x = mid_tooth([0.8, -1.1])
    np.testing.assert_array_equal(ref.second_derivative(x, np.ones(2), "relu", "constant"), 0)
    want = -2 * np.tanh(x) / np.cosh(x) ** 2 * np.array([2.0, -1.0])
    np.testing.assert_allclose(ref.second_derivative(x, np.array([2.0, -1.0]), "tanh", "none"),
                               want, rtol=1e-14)


def test_second_derivative_nan_and_band():
    assert np.isnan(ref.second_derivative(np.array([np.nan]), np.ones(1), "tanh"))[0]
    with pytest.raises(RuntimeError, match="band=True.*third derivative"):
        ref.second_derivative(np.ones(2), np.ones(2), "tanh", band=True)


# --- PyTorch: every route that differentiates twice --------------------------------

BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["tanh", "gelu", "softplus", "elu"])
def test_gradgradcheck_float64(activation, backend):
    x = torch.tensor(mid_tooth(POINTS), requires_grad=True)
    fn = lambda t: gaaf(t, activation, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-8, atol=1e-6)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-8, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_autograd_functional_jvp_hvp_hessian_are_not_zero(backend):
    """They used to return zeros through GAAF; now the reference's values."""
    x = torch.tensor(mid_tooth([0.3, 0.7, -1.3, 2.2]))
    v = torch.ones_like(x)
    fn = lambda t: gaaf(t, "tanh", backend=backend)  # noqa: E731
    first = ref.backward(x.numpy(), v.numpy(), "tanh")
    second = ref.second_derivative(x.numpy(), v.numpy(), "tanh")
    assert np.abs(first).min() > 0.2 and np.abs(second).min() > 0.2  # not zero by accident
    _, jvp = torch.autograd.functional.jvp(fn, x, v)
    np.testing.assert_allclose(jvp.numpy(), first, rtol=1e-12)
    _, hvp = torch.autograd.functional.hvp(lambda t: fn(t).sum(), x, v)
    np.testing.assert_allclose(hvp.numpy(), second, rtol=1e-12)
    hessian = torch.autograd.functional.hessian(lambda t: fn(t).sum(), x)
    np.testing.assert_allclose(hessian.numpy(), np.diag(second), rtol=1e-12, atol=0)


def test_custom_op_route_differentiates_twice():
    """``torch.ops.gaaf_kernels.forward`` (what export and explicit backends under
    torch.compile use) has a registered double backward too."""
    op = torch.ops.gaaf_kernels.forward.default
    x = torch.tensor(mid_tooth(POINTS), requires_grad=True)
    y = op(x, "gelu", "shifted_sigmoid", K, [], [4.0, 1.0], "torch")
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.detach().numpy(), ref.second_derivative(
        x.detach().numpy(), np.ones(len(POINTS)), "gelu"), rtol=1e-12)


def test_third_derivative_is_a_clear_error():
    x = torch.tensor(mid_tooth(POINTS), requires_grad=True)
    (g,) = torch.autograd.grad(gaaf(x, "tanh").sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="not three times"):
        h.sum().backward()


def test_band_second_derivative_is_a_clear_error():
    x = torch.tensor(mid_tooth(POINTS), requires_grad=True)
    (g,) = torch.autograd.grad(GAAF("tanh", band=True)(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="band=True"):
        g.sum().backward()


def test_user_function_without_second_derivative_is_a_clear_error():
    import triton

    import gaaf_kernels as gk

    @triton.jit
    def _square(x):
        return x * x

    @triton.jit
    def _twice(x):
        return 2 * x

    gk.register_activation("square_no_second", triton_value=_square, triton_derivative=_twice,
                           numpy_value=lambda x: x * x, numpy_derivative=lambda x: 2 * x)
    x = torch.tensor(mid_tooth(POINTS), requires_grad=True)
    (g,) = torch.autograd.grad(gaaf(x, "square_no_second").sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="phi''.*square_no_second.*numpy_second_derivative"):
        g.sum().backward()
    gk.register_activation("square_with_second", triton_value=_square,
                           triton_derivative=_twice, numpy_value=lambda x: x * x,
                           numpy_derivative=lambda x: 2 * x,
                           numpy_second_derivative=lambda x: x * 0 + 2)
    (g,) = torch.autograd.grad(gaaf(x, "square_with_second").sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), ref.second_derivative(
        x.detach().numpy(), np.ones(len(POINTS)), "square_with_second"), rtol=1e-12)
    assert math.isfinite(h.sum().item())
