"""Fast Triton twins for float32 compute: what float32, float16 and bfloat16 storage run.

The twins in ``functions.py`` follow the reference operation by operation; on a GPU
their divisions, ``tl.exp`` range fix-ups, software ``tl.log`` and explicit limit
selects cost more than the instruction budget of a memory-bound kernel
(results/performance/predicted-throughput.md). These compute the same functions with

* ``tl.exp2`` of a pre-scaled argument (one MUFU.EX2; results below 2^-126 flush to 0),
* reciprocals of arguments kept in [1, 2^126] as ``rsqrt(d)**2`` plus one Newton step
  (``_rcp``, under an ulp) or without it for 16-bit storage (``_rcp16``, 2^-21),
* short polynomials where a formula cancels (tanh and expm1 near 0, log1p via atanh),
* clamps instead of ``0 * inf`` selects: ``max(x, -2^64) * t`` is 0 where t(-inf) = 0.

The accuracy contract (docs/semantics.md) is tested by ``tests/test_accuracy.py`` on
dense sweeps. Everything is plain ``tl``, so the interpreter runs it too (there with
exact exp2/rsqrt: the GPU units add their documented 2^-22 relative error).
Each ``*_16`` twin is the cheaper variant that 16-bit storage (8 or 11 significant
bits) runs; where there is none, 16-bit storage runs the float32 twin, and where there
is no fast twin at all, the one of ``functions.py``. Where the two variants differ only
in the building blocks' ``FAST`` flag, the float32 twin takes ``FAST`` (the kernels call
it without, as False) and its ``_16`` twin, right below it, passes True. A twin runs
once its entry's record in ``twins.py`` names it; the names (``<entry>_value``,
``<entry>_derivative``, ``<entry>_second_derivative``, ``..._16``) follow the entry's.
"""

import triton
import triton.language as tl

from .approx import (
    BIG,
    INV_SQRT_2PI,
    KAPPA,
    LN2,
    LOG2E,
    QUICK_GELU_ALPHA,
    SELU_ALPHA,
    SELU_SCALE,
    TWO_BETA,
    _clamp,
    _copysign,
    _elu,
    _elu_derivative,
    _erfc_parts,
    _log1p_unit,
    _max,
    _min,
    _mish_parts,
    _rcp,
    _rcp16,
    _sigmoid,
    _sigmoid_both,
    _sigmoid_derivative,
    _tanh,
    _tanh16,
    _tanh_derivative,
)

# --- activations --------------------------------------------------------------------


@triton.jit
def tanh_value(x):
    return _tanh(x)


@triton.jit
def tanh_value_16(x):
    return _tanh16(x)


@triton.jit
def tanh_derivative(x, FAST: tl.constexpr = False):
    return _tanh_derivative(x, FAST)


@triton.jit
def tanh_derivative_16(x):
    return tanh_derivative(x, True)


@triton.jit
def tanh_second_derivative(x):
    # From tanh and tanh' as the forward computes them, which keeps a band backward within
    # its instruction budget where the precise twin's form does not
    # (results/performance/predicted-throughput.md).
    return -2.0 * _tanh(x) * _tanh_derivative(x, False)


@triton.jit
def sigmoid_value(x, FAST: tl.constexpr = False):
    return _sigmoid(x, FAST)


@triton.jit
def sigmoid_value_16(x):
    return sigmoid_value(x, True)


@triton.jit
def sigmoid_derivative(x, FAST: tl.constexpr = False):
    return _sigmoid_derivative(x, FAST)


@triton.jit
def sigmoid_derivative_16(x):
    return sigmoid_derivative(x, True)


@triton.jit
def sigmoid_second_derivative(x):
    return -_sigmoid_derivative(x, False) * _tanh(0.5 * x)


@triton.jit
def softsign_value(x):
    # Clamped to 2^63 the quotient still rounds to +-1 and the reciprocal stays normal.
    xc = _clamp(x, -9.223372036854775808e18, 9.223372036854775808e18)
    return xc * _rcp(1.0 + tl.abs(xc))


@triton.jit
def softsign_derivative(x):
    xc = _clamp(x, -9.223372036854775808e18, 9.223372036854775808e18)
    r = _rcp(1.0 + tl.abs(xc))
    # From 2^63 on, 1 / (1 + |x|)^2 is below float32's normal range: 0, as at +-inf (the
    # clamp alone gave 2^-126 there, a gradient of 2^-126 dy instead of 0).
    return tl.where(tl.abs(x) >= 9.223372036854775808e18, 0.0, r * r)


@triton.jit
def elu_value(x, alpha, FAST: tl.constexpr = False):
    return _elu(x, alpha, FAST)


@triton.jit
def elu_value_16(x, alpha):
    return elu_value(x, alpha, True)


@triton.jit
def elu_derivative(x, alpha):
    return _elu_derivative(x, alpha)


@triton.jit
def selu_value(x, FAST: tl.constexpr = False):
    return SELU_SCALE * _elu(x, SELU_ALPHA, FAST)


@triton.jit
def selu_value_16(x):
    return selu_value(x, True)


@triton.jit
def selu_derivative(x):
    return SELU_SCALE * _elu_derivative(x, SELU_ALPHA)


@triton.jit
def gelu_value(x, FAST: tl.constexpr = False):
    z, t, p = _erfc_parts(x, FAST)
    tail = (0.5 * t) * tl.exp2(tl.fma(-z, z, p) * LOG2E)  # cdf(-|x|) = erfc(z) / 2
    cdf = tl.where(x < 0, tail, 1.0 - tail)
    return _max(x, -BIG) * cdf


@triton.jit
def gelu_value_16(x):
    return gelu_value(x, True)


@triton.jit
def gelu_derivative(x):
    z, t, p = _erfc_parts(x, False)
    ez = tl.exp2((z * z) * -LOG2E)  # exp(-x^2 / 2), shared by the cdf's tail and the pdf
    tail = ((0.5 * t) * tl.exp2(p * LOG2E)) * ez
    cdf = tl.where(x < 0, tail, 1.0 - tail)
    xc = _clamp(x, -BIG, BIG)  # the pdf is 0 at +-inf: the clamp keeps x * 0 finite
    return tl.fma(xc, ez * INV_SQRT_2PI, cdf)


@triton.jit
def gelu_second_derivative(x):
    # pdf(x) (2 - x^2); |x| clamped to 2^32 keeps x^2 finite where pdf is already 0
    xc = _clamp(x, -4294967296.0, 4294967296.0)
    pdf = tl.exp2((xc * xc) * (-0.5 * LOG2E)) * INV_SQRT_2PI
    return pdf * (2.0 - xc * xc)


@triton.jit
def _gelu_tanh_arg(x):
    """2u = 2 beta x (1 + kappa x^2): gelu_tanh(x) = x sigmoid(2u), no 1 + tanh to cancel."""
    return (x * TWO_BETA) * tl.fma(x * x, KAPPA, 1.0)


@triton.jit
def gelu_tanh_value(x, FAST: tl.constexpr = False):
    if FAST:
        # sigmoid(2u) = 1 / (1 + exp2(-2u log2 e)), the constant folded into 2 beta
        e = tl.exp2((x * (-LOG2E * TWO_BETA)) * tl.fma(x * x, KAPPA, 1.0))
        sig = _rcp16(1.0 + e)
    else:
        sig = _sigmoid(_gelu_tanh_arg(x), FAST)
    return _max(x, -BIG) * sig


@triton.jit
def gelu_tanh_value_16(x):
    return gelu_tanh_value(x, True)


@triton.jit
def gelu_tanh_derivative(x, FAST: tl.constexpr = False):
    sig, dsig = _sigmoid_both(_gelu_tanh_arg(x), FAST)
    # Beyond 2^20 the sigmoid' factor is 0 and the clamped polynomial stays finite.
    xc = _clamp(x, -1048576.0, 1048576.0)
    slope = (xc * TWO_BETA) * tl.fma(xc * xc, 3.0 * KAPPA, 1.0)
    return tl.fma(slope, dsig, sig)


@triton.jit
def gelu_tanh_derivative_16(x):
    return gelu_tanh_derivative(x, True)


@triton.jit
def gelu_tanh_second_derivative(x):
    """x sigmoid(v), v = 2u: phi'' = sigmoid'(v) (2 v' + x v'' + x v'^2 (1 - 2 sigmoid(v)))
    (one exp and a reciprocal: the precise twin's tanh form does not fit a band backward's
    instruction budget; results/performance/predicted-throughput.md)."""
    sig, dsig = _sigmoid_both(_gelu_tanh_arg(x), False)
    # Beyond 2^20 sigmoid' is 0 and the clamped polynomial stays finite (x v'^2 < 2^100).
    xc = _clamp(x, -1048576.0, 1048576.0)
    dv = TWO_BETA * tl.fma(xc * xc, 3.0 * KAPPA, 1.0)
    d2v = (6.0 * KAPPA * TWO_BETA) * xc
    inner = tl.fma(xc * (dv * dv), 1.0 - 2.0 * sig, tl.fma(xc, d2v, 2.0 * dv))
    return dsig * inner


@triton.jit
def _silu_scaled(x, a, FAST: tl.constexpr):
    """x sigmoid(a x) and its derivative's parts (silu: a = 1, quick_gelu: a = 1.702)."""
    return _max(x, -BIG) * _sigmoid(x * a, FAST)


@triton.jit
def _silu_scaled_derivative(x, a, FAST: tl.constexpr):
    sig, dsig = _sigmoid_both(x * a, FAST)
    xc = _clamp(x, -BIG, BIG)  # sigmoid' is 0 at +-inf: the clamp keeps x * 0 finite
    return tl.fma(xc * a, dsig, sig)


@triton.jit
def _silu_scaled_second_derivative(x, a):
    """a sigmoid'(a x) (2 + a x (1 - 2 sigmoid(a x))): one exp2 and one reciprocal,
    where the precise twin adds a tanh."""
    sig, dsig = _sigmoid_both(x * a, False)
    ax = _clamp(x * a, -BIG, BIG)  # sigmoid' is 0 at +-inf: keeps ax * (...) finite
    return (a * dsig) * tl.fma(ax, 1.0 - 2.0 * sig, 2.0)


@triton.jit
def silu_value(x, FAST: tl.constexpr = False):
    return _silu_scaled(x, 1.0, FAST)


@triton.jit
def silu_value_16(x):
    return silu_value(x, True)


@triton.jit
def silu_derivative(x, FAST: tl.constexpr = False):
    return _silu_scaled_derivative(x, 1.0, FAST)


@triton.jit
def silu_derivative_16(x):
    return silu_derivative(x, True)


@triton.jit
def silu_second_derivative(x):
    return _silu_scaled_second_derivative(x, 1.0)


@triton.jit
def quick_gelu_value(x, FAST: tl.constexpr = False):
    return _silu_scaled(x, QUICK_GELU_ALPHA, FAST)


@triton.jit
def quick_gelu_value_16(x):
    return quick_gelu_value(x, True)


@triton.jit
def quick_gelu_derivative(x, FAST: tl.constexpr = False):
    return _silu_scaled_derivative(x, QUICK_GELU_ALPHA, FAST)


@triton.jit
def quick_gelu_derivative_16(x):
    return quick_gelu_derivative(x, True)


@triton.jit
def quick_gelu_second_derivative(x):
    return _silu_scaled_second_derivative(x, QUICK_GELU_ALPHA)


@triton.jit
def softplus_value(x, beta, threshold, FAST: tl.constexpr = False):
    bx = x * beta
    # log(1 + exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)): no overflow, no log of a sum
    sp = _max(bx, 0.0) + _log1p_unit(tl.exp2(tl.abs(bx) * -LOG2E), FAST)
    return tl.where(bx > threshold, x, sp * (1.0 / beta))


@triton.jit
def softplus_value_16(x, beta, threshold):
    return softplus_value(x, beta, threshold, True)


@triton.jit
def softplus_derivative(x, beta, threshold, FAST: tl.constexpr = False):
    bx = x * beta
    return tl.where(bx > threshold, tl.zeros_like(x) + 1.0, _sigmoid(bx, FAST))


@triton.jit
def softplus_derivative_16(x, beta, threshold):
    return softplus_derivative(x, beta, threshold, True)


@triton.jit
def mish_value(x, FAST: tl.constexpr = False):
    _, _, t, _ = _mish_parts(x, FAST)
    return _max(x, -BIG) * t


@triton.jit
def mish_value_16(x):
    return mish_value(x, True)


@triton.jit
def mish_derivative(x, FAST: tl.constexpr = False):
    """t + x sech^2(softplus x) sigmoid(x), with sech^2 = (1 - t)(1 + t) from the parts."""
    e, positive, t, one_minus_t = _mish_parts(x, FAST)
    if FAST:
        r = _rcp16(1.0 + e)
    else:
        r = _rcp(1.0 + e)
    sig = tl.where(positive, r, e * r)  # e = exp(-|x|) here, whatever FAST says
    xc = _clamp(x, -BIG, BIG)  # the product is 0 at both infinities
    return tl.fma(xc * (one_minus_t * (1.0 + t)), sig, t)


@triton.jit
def mish_derivative_16(x):
    return mish_derivative(x, True)


@triton.jit
def mish_second_derivative(x):
    """S sigma(x) (2 + x (sigma(-x) - 2 t sigma(x))), S = (1 - t)(1 + t), t = tanh(sp x),
    from the parts of mish', which the precise twin recomputes (far over a band
    backward's instruction budget: results/performance/predicted-throughput.md)."""
    e, positive, t, one_minus_t = _mish_parts(x, False)
    r = _rcp(1.0 + e)
    er = e * r
    sig = tl.where(positive, r, er)
    sig_neg = tl.where(positive, er, r)
    xc = _clamp(x, -BIG, BIG)  # S sigma is 0 at +-inf: keeps x * (...) finite
    return ((one_minus_t * (1.0 + t)) * sig) * tl.fma(xc, sig_neg - 2.0 * t * sig, 2.0)


@triton.jit
def hardswish_value(x):
    hs = _min(_max(x + 3.0, 0.0), 6.0) * (1.0 / 6.0)
    return _max(x, -BIG) * hs


@triton.jit
def leaky_relu_value(x, negative_slope):
    # 0 where the slope is 0 (also at -inf, where x * 0 is NaN): one select, no safe_mul
    negative = tl.where(negative_slope == 0, tl.zeros_like(x), x * negative_slope)
    return tl.where(x > 0, x, negative)


# --- shape functions ----------------------------------------------------------------


@triton.jit
def gaussian_value(x, c):
    return tl.exp2((x * x) * (-LOG2E / c))


@triton.jit
def gaussian_derivative(x, c):
    k = -LOG2E / c
    xc = _clamp(x, -BIG, BIG)  # s(+-inf) = 0: keeps the product x * s finite
    # -2x/c exp(-x^2/c), with -2/c = 2 ln2 k
    return (xc * (k * (2.0 * LN2))) * tl.exp2((xc * xc) * k)


@triton.jit
def laplace_value(x, c):
    return tl.exp2(tl.abs(x) * (-LOG2E / c))


@triton.jit
def laplace_derivative(x, c):
    k = -LOG2E / c
    d = _copysign(tl.exp2(tl.abs(x) * k) * (k * -LN2), -x)  # -sign(x)/c exp(-|x|/c)
    return tl.where(x == 0, tl.zeros_like(x), d)  # 0 at the kink


@triton.jit
def _shifted_arg(x, shift, slope):
    return (_clamp(x, -BIG, BIG) + shift) * slope  # finite, so slope = 0 gives 0


@triton.jit
def _shifted_parts16(x, shift, slope):
    """sigmoid(slope (x + shift)) = r and its derivative factor e r^2, 16-bit storage.

    -log2(e) * slope is folded into one scalar: one multiply per element fewer.
    """
    e = tl.exp2((_clamp(x, -BIG, BIG) + shift) * (slope * -LOG2E))
    r = _rcp16(1.0 + e)
    return r, (_min(e, 3.4028234663852886e38) * r) * r


@triton.jit
def shifted_sigmoid_value(x, shift, slope):
    return _sigmoid(_shifted_arg(x, shift, slope), False)


@triton.jit
def shifted_sigmoid_value_16(x, shift, slope):
    r, _ = _shifted_parts16(x, shift, slope)
    return r


@triton.jit
def shifted_sigmoid_derivative(x, shift, slope):
    return slope * _sigmoid_derivative(_shifted_arg(x, shift, slope), False)


@triton.jit
def shifted_sigmoid_derivative_16(x, shift, slope):
    _, derivative = _shifted_parts16(x, shift, slope)
    return slope * derivative
