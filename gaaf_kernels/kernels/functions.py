"""Triton twins of ``reference/formulas.py``: value and derivative side by side.

Each function takes ``x`` (a block in the compute dtype) and its parameters (scalars
already in the compute dtype) in the order the registry declares them. No libdevice:
tanh, expm1 and log1p are written with ``tl.exp``/``tl.log`` so that the Triton
interpreter runs them too, keeping relative accuracy for tiny arguments.

These follow the reference operation by operation and are what float64 runs; float32
and 16-bit storage run the cheaper twins of ``fast.py`` where one exists. Each built-in
has ``<name>_value`` and ``<name>_derivative`` here, and ``<name>_second_derivative``
(phi'', for the saturation band) where the catalogue gives one; its record in
``twins.py`` names them.
"""

import triton
import triton.language as tl

from gaaf_kernels.reference import formulas as f

from .approx import _max, _min

SQRT1_2 = tl.constexpr(f.SQRT1_2)
INV_SQRT_2PI = tl.constexpr(f.INV_SQRT_2PI)
GELU_TANH_BETA = tl.constexpr(f.GELU_TANH_BETA)
GELU_TANH_KAPPA = tl.constexpr(f.GELU_TANH_KAPPA)
SELU_ALPHA = tl.constexpr(f.SELU_ALPHA)
SELU_SCALE = tl.constexpr(f.SELU_SCALE)
QUICK_GELU_ALPHA = tl.constexpr(f.QUICK_GELU_ALPHA)
GELU_TANH_D2 = tl.constexpr(6.0 * f.GELU_TANH_BETA * f.GELU_TANH_KAPPA)

# --- helpers ------------------------------------------------------------------------


@triton.jit
def const(value: tl.constexpr, like):
    """``value`` in ``like``'s dtype (a bare Python float would be a float32 literal)."""
    return tl.full(like.shape, value, like.dtype)


@triton.jit
def safe_mul(a, b):
    """``a * b`` with ``0 * inf`` taken as 0."""
    product = a * b
    return tl.where((a == 0) | (b == 0), tl.zeros_like(product), product)


@triton.jit
def expm1(x):
    # Kahan's trick: exact to a few ulps, also for tiny |x|.
    u = tl.exp(x)
    um1 = u - 1.0
    r = tl.where(um1 == 0, x, um1 * x / tl.log(u))
    r = tl.where(um1 == -1.0, um1, r)
    return tl.where(u == float("inf"), u, r)


@triton.jit
def log1p(x):
    u = 1.0 + x
    r = tl.where(u == 1.0, x, tl.log(u) * x / (u - 1.0))
    return tl.where(u == float("inf"), u, r)


@triton.jit
def tanh(x):
    # tanh|x| = -m / (m + 2) with m = expm1(-2|x|) in (-1, 0]: no overflow, no cancellation.
    m = expm1(-2.0 * tl.abs(x))
    t = -m / (m + 2.0)
    return tl.where(x < 0, -t, t)


@triton.jit
def sigmoid(x):
    e = tl.exp(-tl.abs(x))
    r = 1.0 / (1.0 + e)
    return tl.where(x >= 0, r, e * r)


@triton.jit
def sigmoid_derivative(x):
    e = tl.exp(-tl.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


@triton.jit
def _step(condition, x):
    zeros = tl.zeros_like(x)
    return tl.where(condition, zeros + 1.0, zeros)


# --- activations --------------------------------------------------------------------


@triton.jit
def tanh_value(x):
    return tanh(x)


@triton.jit
def tanh_derivative(x):
    e = tl.exp(-2.0 * tl.abs(x))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


@triton.jit
def tanh_second_derivative(x):
    return -2.0 * tanh(x) * tanh_derivative(x)


@triton.jit
def sigmoid_value(x):
    return sigmoid(x)


@triton.jit
def sigmoid_second_derivative(x):
    return -sigmoid_derivative(x) * tanh(0.5 * x)


@triton.jit
def hardtanh_value(x, min_val, max_val):
    return _min(_max(x, min_val), max_val)


@triton.jit
def hardtanh_derivative(x, min_val, max_val):
    return _step((x > min_val) & (x < max_val), x)


@triton.jit
def hardtanh_second_derivative(x, min_val, max_val):
    return tl.zeros_like(x)


@triton.jit
def softsign_value(x):
    inf = float("inf")
    sign = tl.where(x > 0, 1.0, -1.0).to(x.dtype)
    return tl.where((x == inf) | (x == -inf), sign, x / (1.0 + tl.abs(x)))


@triton.jit
def softsign_derivative(x):
    d = 1.0 + tl.abs(x)
    return 1.0 / (d * d)


@triton.jit
def softsign_second_derivative(x):
    d = 1.0 + tl.abs(x)
    zeros = tl.zeros_like(x)
    sign = tl.where(x > 0, zeros + 1.0, tl.where(x < 0, zeros - 1.0, zeros))
    return -2.0 * sign / (d * d * d)


@triton.jit
def relu_value(x):
    return tl.where(x > 0, x, tl.zeros_like(x))


@triton.jit
def relu_derivative(x):
    return _step(x > 0, x)


@triton.jit
def relu_second_derivative(x):
    return tl.zeros_like(x)


@triton.jit
def leaky_relu_value(x, negative_slope):
    return tl.where(x > 0, x, safe_mul(x, negative_slope))


@triton.jit
def leaky_relu_derivative(x, negative_slope):
    zeros = tl.zeros_like(x)
    return tl.where(x > 0, zeros + 1.0, zeros + negative_slope)


@triton.jit
def leaky_relu_second_derivative(x, negative_slope):
    return tl.zeros_like(x)


@triton.jit
def elu_value(x, alpha):
    return tl.where(x > 0, x, safe_mul(expm1(x), alpha))


@triton.jit
def elu_derivative(x, alpha):
    return tl.where(x > 0, tl.zeros_like(x) + 1.0, alpha * tl.exp(x))


@triton.jit
def elu_second_derivative(x, alpha):
    return tl.where(x > 0, tl.zeros_like(x), alpha * tl.exp(x))


@triton.jit
def selu_value(x):
    return const(SELU_SCALE, x) * elu_value(x, const(SELU_ALPHA, x))


@triton.jit
def selu_derivative(x):
    return const(SELU_SCALE, x) * elu_derivative(x, const(SELU_ALPHA, x))


@triton.jit
def selu_second_derivative(x):
    return const(SELU_SCALE, x) * elu_second_derivative(x, const(SELU_ALPHA, x))


@triton.jit
def gelu_value(x):
    cdf = 0.5 * (1.0 + tl.erf(x * const(SQRT1_2, x)))
    return safe_mul(x, cdf)


@triton.jit
def gelu_derivative(x):
    cdf = 0.5 * (1.0 + tl.erf(x * const(SQRT1_2, x)))
    pdf = tl.exp(-0.5 * x * x) * const(INV_SQRT_2PI, x)
    return cdf + safe_mul(x, pdf)


@triton.jit
def gelu_second_derivative(x):
    pdf = tl.exp(-0.5 * x * x) * const(INV_SQRT_2PI, x)
    return safe_mul(pdf, 2.0 - x * x)


@triton.jit
def _gelu_tanh_inner(x):
    return const(GELU_TANH_BETA, x) * (x + const(GELU_TANH_KAPPA, x) * (x * x * x))


@triton.jit
def gelu_tanh_value(x):
    right = 1.0 + tanh(_gelu_tanh_inner(x))
    return safe_mul(0.5 * x, right)


@triton.jit
def gelu_tanh_derivative(x):
    inner = _gelu_tanh_inner(x)
    right = 1.0 + tanh(inner)
    sech2 = tanh_derivative(inner)
    inner_derivative = const(GELU_TANH_BETA, x) * (
        1.0 + 3.0 * const(GELU_TANH_KAPPA, x) * (x * x))
    return 0.5 * right + safe_mul(0.5 * x, safe_mul(sech2, inner_derivative))


@triton.jit
def gelu_tanh_second_derivative(x):
    u = _gelu_tanh_inner(x)
    sech2 = tanh_derivative(u)
    du = const(GELU_TANH_BETA, x) * (1.0 + 3.0 * const(GELU_TANH_KAPPA, x) * (x * x))
    d2u = const(GELU_TANH_D2, x) * x
    return safe_mul(sech2, du + 0.5 * x * (d2u - 2.0 * tanh(u) * (du * du)))


@triton.jit
def silu_value(x):
    return safe_mul(x, sigmoid(x))


@triton.jit
def silu_derivative(x):
    sig = sigmoid(x)
    return sig + safe_mul(sig, safe_mul(x, 1.0 - sig))


@triton.jit
def silu_second_derivative(x):
    return safe_mul(sigmoid_derivative(x), 2.0 - x * tanh(0.5 * x))


@triton.jit
def softplus_value(x, beta, threshold):
    bx = x * beta
    return tl.where(bx > threshold, x, log1p(tl.exp(bx)) / beta)


@triton.jit
def softplus_derivative(x, beta, threshold):
    bx = x * beta
    return tl.where(bx > threshold, tl.zeros_like(x) + 1.0, sigmoid(bx))


@triton.jit
def softplus_second_derivative(x, beta, threshold):
    bx = x * beta
    return tl.where(bx > threshold, tl.zeros_like(x), beta * sigmoid_derivative(bx))


@triton.jit
def mish_value(x):
    return safe_mul(x, tanh(log1p(tl.exp(x))))


@triton.jit
def mish_derivative(x):
    softplus_x = log1p(tl.exp(x))
    sech2 = tanh_derivative(softplus_x)
    return tanh(softplus_x) + safe_mul(x, safe_mul(sigmoid(x), sech2))


@triton.jit
def mish_second_derivative(x):
    softplus_x = log1p(tl.exp(x))
    sig = sigmoid(x)
    s_sig = tanh_derivative(softplus_x) * sig
    return safe_mul(s_sig, 2.0 + x * (sigmoid(-x) - 2.0 * tanh(softplus_x) * sig))


@triton.jit
def hardsigmoid_value(x):
    zeros = tl.zeros_like(x)
    return _min(_max(x + 3.0, zeros), zeros + 6.0) / 6.0


@triton.jit
def _on_ramp(x, slope):
    """``slope`` on hardsigmoid's ramp (-3, 3), 0 outside it and at its ends."""
    zeros = tl.zeros_like(x)
    return tl.where((x > -3.0) & (x < 3.0), zeros + slope, zeros)


@triton.jit
def hardsigmoid_derivative(x):
    return _on_ramp(x, 1.0 / 6.0)


@triton.jit
def hardsigmoid_second_derivative(x):
    return tl.zeros_like(x)


@triton.jit
def hardswish_value(x):
    return safe_mul(x, hardsigmoid_value(x))


@triton.jit
def hardswish_derivative(x):
    zeros = tl.zeros_like(x)
    return tl.where(x <= -3.0, zeros, tl.where(x < 3.0, x / 3.0 + 0.5, zeros + 1.0))


@triton.jit
def hardswish_second_derivative(x):
    return _on_ramp(x, 1.0 / 3.0)


@triton.jit
def quick_gelu_value(x):
    return safe_mul(x, sigmoid(const(QUICK_GELU_ALPHA, x) * x))


@triton.jit
def quick_gelu_derivative(x):
    alpha = const(QUICK_GELU_ALPHA, x)
    sig = sigmoid(alpha * x)
    return sig + safe_mul(alpha * sig, safe_mul(x, 1.0 - sig))


@triton.jit
def quick_gelu_second_derivative(x):
    alpha = const(QUICK_GELU_ALPHA, x)
    ax = alpha * x
    return safe_mul(alpha * sigmoid_derivative(ax), 2.0 - ax * tanh(0.5 * ax))


@triton.jit
def relu_squared_value(x):
    r = relu_value(x)
    return r * r


@triton.jit
def relu_squared_derivative(x):
    return 2.0 * relu_value(x)


@triton.jit
def relu_squared_second_derivative(x):
    return _step(x > 0, x) * 2.0


# --- shape functions ----------------------------------------------------------------


@triton.jit
def gaussian_value(x, c):
    return tl.exp(-(x * x) / c)


@triton.jit
def gaussian_derivative(x, c):
    return safe_mul(-2.0 * x / c, tl.exp(-(x * x) / c))


@triton.jit
def laplace_value(x, c):
    return tl.exp(-tl.abs(x) / c)


@triton.jit
def laplace_derivative(x, c):
    zeros = tl.zeros_like(x)
    sign = tl.where(x > 0, zeros + 1.0, tl.where(x < 0, zeros - 1.0, zeros))
    sign = tl.where(x != x, x, sign)
    return -sign / c * tl.exp(-tl.abs(x) / c)


@triton.jit
def shifted_sigmoid_value(x, shift, slope):
    return sigmoid(safe_mul(x + shift, slope))


@triton.jit
def shifted_sigmoid_derivative(x, shift, slope):
    return slope * sigmoid_derivative(safe_mul(x + shift, slope))


@triton.jit
def bsilu_value(x, alpha):
    a = -tl.abs(x)
    e = tl.exp(a)
    r = 1.0 / (1.0 + e)
    right = (x - expm1(a)) + (alpha - 2.0)
    left = (x + (alpha + 1.0)) + e
    return safe_mul(e * r * r, tl.where(x > 0, right, left))


@triton.jit
def bsilu_derivative(x, alpha):
    return safe_mul(sigmoid_derivative(x), 2.0 - (x + alpha) * tanh(0.5 * x))


@triton.jit
def nelu_value(x, alpha):
    t = 1.0 / (1.0 + x * x)
    left = (2.0 * alpha) * safe_mul(x, t) * t
    return tl.where(x > 0, tl.zeros_like(x), left)


@triton.jit
def nelu_derivative(x, alpha):
    t = 1.0 / (1.0 + x * x)
    left = (2.0 * alpha) * (t - 3.0 * safe_mul(x, safe_mul(x, t))) * t * t
    return tl.where(x > 0, tl.zeros_like(x), left)


@triton.jit
def constant_value(x, value):
    return tl.zeros_like(x) + value


@triton.jit
def constant_derivative(x, value):
    return tl.zeros_like(x)


@triton.jit
def none_value(x):
    return tl.zeros_like(x)


@triton.jit
def none_derivative(x):
    return tl.zeros_like(x)
