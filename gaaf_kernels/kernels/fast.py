"""Fast Triton twins for float32 compute: what float32, float16 and bfloat16 storage run.

The twins in ``functions.py`` follow the reference operation by operation; on a GPU
their divisions, ``tl.exp`` range fix-ups, software ``tl.log`` and explicit limit
selects cost two to four times the instruction budget of a memory-bound kernel (the
table in docs/performance.md). These compute the same functions with

* ``tl.exp2`` of a pre-scaled argument (one MUFU.EX2; results below 2^-126 flush to 0),
* reciprocals of arguments kept in [1, 2^126] as ``rsqrt(d)**2`` plus one Newton step
  (``_rcp``, under an ulp) or without it for 16-bit storage (``_rcp16``, 2^-21),
* short polynomials where a formula cancels (tanh and expm1 near 0, log1p via atanh),
* clamps instead of ``0 * inf`` selects: ``max(x, -2^64) * t`` is 0 where t(-inf) = 0.

The accuracy contract (docs/semantics.md) is tested by ``tests/test_accuracy.py`` on
dense sweeps. Everything is plain ``tl``, so the interpreter runs it too (there with
exact exp2/rsqrt: the GPU units add their documented 2^-22 relative error).
Each ``*_16`` twin is the cheaper variant that 16-bit storage (8 or 11 significant
bits) runs; where there is none, 16-bit storage runs the float32 twin.
"""

import triton
import triton.language as tl

from gaaf_kernels.reference import formulas as f

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)
BIG = tl.constexpr(18446744073709551616.0)  # 2^64: a finite stand-in for infinity
SQRT1_2 = tl.constexpr(f.SQRT1_2)
INV_SQRT_2PI = tl.constexpr(f.INV_SQRT_2PI)
TWO_BETA = tl.constexpr(2.0 * f.GELU_TANH_BETA)
KAPPA = tl.constexpr(f.GELU_TANH_KAPPA)
SELU_ALPHA = tl.constexpr(f.SELU_ALPHA)
SELU_SCALE = tl.constexpr(f.SELU_SCALE)
QUICK_GELU_ALPHA = tl.constexpr(f.QUICK_GELU_ALPHA)

# tanh(x) = x + x^3 P(x^2) on |x| < 0.625 (Cephes tanhf, relative error 2^-23.5).
TANH_P0 = tl.constexpr(-5.70498872745e-3)
TANH_P1 = tl.constexpr(2.06390887954e-2)
TANH_P2 = tl.constexpr(-5.37397155531e-2)
TANH_P3 = tl.constexpr(1.33314422036e-1)
TANH_P4 = tl.constexpr(-3.33332819422e-1)
TANH_SMALL = tl.constexpr(0.625)

# log(erfc(z) / t) + z^2 = P(t), t = 1 / (1 + z/2), fitted by reweighted least squares
# on z in [0, 12] (beyond, erfc underflows float32): degree 9 and, for 16 bits, degree 5.
ERFC9_0 = tl.constexpr(-1.2654761522729332)
ERFC9_1 = tl.constexpr(0.999206781177823)
ERFC9_2 = tl.constexpr(0.3817081006774977)
ERFC9_3 = tl.constexpr(0.05813607662822274)
ERFC9_4 = tl.constexpr(-0.06771833993950604)
ERFC9_5 = tl.constexpr(0.04908907582231036)
ERFC9_6 = tl.constexpr(-0.8520480268549864)
ERFC9_7 = tl.constexpr(1.2733250432471663)
ERFC9_8 = tl.constexpr(-0.7301832560618651)
ERFC9_9 = tl.constexpr(0.1539607518188743)
ERFC5_0 = tl.constexpr(-1.266493090822163)
ERFC5_1 = tl.constexpr(1.0174392777283845)
ERFC5_2 = tl.constexpr(0.25691151362199777)
ERFC5_3 = tl.constexpr(0.46959797528558395)
ERFC5_4 = tl.constexpr(-0.7046552897855788)
ERFC5_5 = tl.constexpr(0.22720289651916026)
# log1p(e) / e on [0, 1], degree 4, reweighted least squares (for 16-bit storage)
LOG1P4_0 = tl.constexpr(0.9999429756542731)
LOG1P4_1 = tl.constexpr(-0.49697448345876327)
LOG1P4_2 = tl.constexpr(0.3062918599879002)
LOG1P4_3 = tl.constexpr(-0.15741901268688235)
LOG1P4_4 = tl.constexpr(0.041345372531737305)

# --- building blocks ----------------------------------------------------------------


@triton.jit
def _rcp(d):
    """1/d for d in [1, 2^126]: rsqrt squared (2^-21.6) and one Newton step (< 1 ulp)."""
    r = tl.math.rsqrt(d)
    r = r * r
    return tl.fma(r, tl.fma(-d, r, 1.0), r)


@triton.jit
def _rcp16(d):
    """1/d for d > 0, +inf included (gives 0), to 2^-21.6: enough for 16-bit storage."""
    r = tl.math.rsqrt(d)
    return r * r


@triton.jit
def _copysign(magnitude, sign_of):
    """|magnitude| with the sign of ``sign_of``: one bitwise instruction."""
    m = magnitude.to(tl.uint32, bitcast=True) & 0x7FFFFFFF
    s = sign_of.to(tl.uint32, bitcast=True) & 0x80000000
    return (m | s).to(tl.float32, bitcast=True)


@triton.jit
def _sigmoid_parts(x, FAST: tl.constexpr):
    """e = exp(-|x|) in (0, 1] and r = 1 / (1 + e); sigmoid(x) is r or e*r.

    FAST (16-bit storage): e = exp(-x), which may overflow to +inf, and r = 1 / (1 + e),
    which is then 0, the limit; sigmoid(x) = r. One select fewer.
    """
    if FAST:
        e = tl.exp2(x * -LOG2E)
        r = _rcp16(1.0 + e)
    else:
        e = tl.exp2(tl.abs(x) * -LOG2E)
        r = _rcp(1.0 + e)
    return e, r


@triton.jit
def _sigmoid_both(x, FAST: tl.constexpr):
    """sigmoid(x) and sigmoid'(x) = e r^2 (1 - sigmoid cancels; e r^2 does not)."""
    e, r = _sigmoid_parts(x, FAST)
    if FAST:
        sig = r
        # e = +inf meets r = 0 where x -> -inf: FLT_MAX * 0 = 0 is the limit, and a
        # finite e is left alone (e r is then close to 1)
        e = tl.minimum(e, 3.4028234663852886e38)
    else:
        sig = tl.where(x >= 0, r, e * r)
    return sig, (e * r) * r


@triton.jit
def _sigmoid(x, FAST: tl.constexpr):
    sig, _ = _sigmoid_both(x, FAST)
    return sig


@triton.jit
def _sigmoid_derivative(x, FAST: tl.constexpr):
    _, derivative = _sigmoid_both(x, FAST)
    return derivative


@triton.jit
def _tanh(x):
    """Polynomial near 0, 1 - 2e/(1 + e) with e = exp(-2|x|) beyond: no cancellation."""
    a = tl.abs(x)
    e = tl.exp2(a * (-2.0 * LOG2E))
    big = tl.fma(e * -2.0, _rcp(1.0 + e), 1.0)
    z = x * x
    p = tl.fma(tl.fma(tl.fma(tl.fma(z, TANH_P0, TANH_P1), z, TANH_P2), z, TANH_P3), z,
               TANH_P4)
    small = tl.fma(x * z, p, x)
    return tl.where(a < TANH_SMALL, small, _copysign(big, x))


@triton.jit
def _tanh16(x):
    """2 / (1 + exp(-2x)) - 1; x itself below 2^-8, where that cancels (tanh = x there)."""
    e = tl.exp2(x * (-2.0 * LOG2E))  # +inf for x < -44: then the reciprocal is 0
    t = tl.fma(_rcp16(1.0 + e), 2.0, -1.0)
    return tl.where(tl.abs(x) < 0.00390625, x, t)


@triton.jit
def _tanh_derivative(x, FAST: tl.constexpr):
    """4e / (1 + e)^2 with e = exp(-2|x|): no cancellation near saturation."""
    e = tl.exp2(tl.abs(x) * (-2.0 * LOG2E))
    if FAST:
        r = _rcp16(1.0 + e)
    else:
        r = _rcp(1.0 + e)
    return ((4.0 * e) * r) * r


@triton.jit
def _expm1_negative(x, FAST: tl.constexpr):
    """exp(x) - 1 for x <= 0 (other x give a finite value that callers discard)."""
    big = tl.exp2(x * LOG2E) - 1.0  # exact subtraction: exp(x) is in [1/2, 1] or below
    if FAST:
        # x + x^2/2: relative error x^2/6 < 2^-13 on [-2^-6, 0]; below, exp(x) - 1 is
        # off by the unit's 2^-22.5 absolute, 2^-16.5 relative at most
        small = tl.fma(x * 0.5, x, x)
        result = tl.where(x > -0.015625, small, big)
    else:
        # Taylor to x^8 on [-0.35, 0]: truncation below 2^-26 relative
        p = tl.fma(x, 1.0 / 40320.0, 1.0 / 5040.0)
        p = tl.fma(p, x, 1.0 / 720.0)
        p = tl.fma(p, x, 1.0 / 120.0)
        p = tl.fma(p, x, 1.0 / 24.0)
        p = tl.fma(p, x, 1.0 / 6.0)
        p = tl.fma(p, x, 0.5)
        small = tl.fma(x * x, p, x)
        result = tl.where(x > -0.35, small, big)
    return result


@triton.jit
def _elu(x, alpha, FAST: tl.constexpr):
    return tl.where(x > 0, x, alpha * _expm1_negative(x, FAST))


@triton.jit
def _elu_derivative(x, alpha):
    return tl.where(x > 0, tl.zeros_like(x) + 1.0, alpha * tl.exp2(x * LOG2E))


@triton.jit
def _log1p_unit(e, FAST: tl.constexpr):
    """log(1 + e) for e in [0, 1]: 2 atanh(s), s = e / (2 + e) <= 1/3, odd series in s.

    FAST: e P(e), P of degree 4 fitted to log1p(e)/e on [0, 1] (relative error 2^-14.1),
    no reciprocal.
    """
    if FAST:
        p = tl.fma(e, LOG1P4_4, LOG1P4_3)
        p = tl.fma(p, e, LOG1P4_2)
        p = tl.fma(p, e, LOG1P4_1)
        p = tl.fma(p, e, LOG1P4_0)
        result = e * p
    else:
        s = e * _rcp(2.0 + e)
        z = s * s
        p = tl.fma(z, 2.0 / 13.0, 2.0 / 11.0)
        p = tl.fma(p, z, 2.0 / 9.0)
        p = tl.fma(p, z, 2.0 / 7.0)
        p = tl.fma(p, z, 2.0 / 5.0)
        p = tl.fma(p, z, 2.0 / 3.0)
        p = tl.fma(p, z, 2.0)
        result = s * p
    return result


@triton.jit
def _mish_parts(x, FAST: tl.constexpr):
    """tanh(softplus(x)) = num / den without a log; den - num = 1 - t times den."""
    e = tl.exp2(tl.abs(x) * -LOG2E)
    positive = x >= 0
    # x >= 0: (1 + 2e) / (1 + 2e + 2e^2); x < 0: (e^2 + 2e) / (e^2 + 2e + 2)
    num = tl.where(positive, tl.fma(e, 2.0, 1.0), e * (e + 2.0))
    extra = tl.where(positive, 2.0 * (e * e), tl.zeros_like(e) + 2.0)
    den = num + extra
    if FAST:
        r = _rcp16(den)
    else:
        r = _rcp(den)
    return e, positive, num * r, extra * r


# --- activations --------------------------------------------------------------------


@triton.jit
def tanh_value(x):
    return _tanh(x)


@triton.jit
def tanh_value_16(x):
    return _tanh16(x)


@triton.jit
def tanh_derivative(x):
    return _tanh_derivative(x, False)


@triton.jit
def tanh_derivative_16(x):
    return _tanh_derivative(x, True)


@triton.jit
def sigmoid_value(x):
    return _sigmoid(x, False)


@triton.jit
def sigmoid_value_16(x):
    return _sigmoid(x, True)


@triton.jit
def sigmoid_derivative(x):
    return _sigmoid_derivative(x, False)


@triton.jit
def sigmoid_derivative_16(x):
    return _sigmoid_derivative(x, True)


@triton.jit
def softsign_value(x):
    # Clamped to 2^63 the quotient still rounds to +-1 and the reciprocal stays normal.
    xc = tl.clamp(x, -9.223372036854775808e18, 9.223372036854775808e18)
    return xc * _rcp(1.0 + tl.abs(xc))


@triton.jit
def softsign_derivative(x):
    xc = tl.clamp(x, -9.223372036854775808e18, 9.223372036854775808e18)
    r = _rcp(1.0 + tl.abs(xc))
    return r * r


@triton.jit
def elu_value(x, alpha):
    return _elu(x, alpha, False)


@triton.jit
def elu_value_16(x, alpha):
    return _elu(x, alpha, True)


@triton.jit
def elu_derivative(x, alpha):
    return _elu_derivative(x, alpha)


@triton.jit
def selu_value(x):
    return SELU_SCALE * _elu(x, SELU_ALPHA, False)


@triton.jit
def selu_value_16(x):
    return SELU_SCALE * _elu(x, SELU_ALPHA, True)


@triton.jit
def selu_derivative(x):
    return SELU_SCALE * _elu_derivative(x, SELU_ALPHA)


@triton.jit
def _erfc_parts(x, FAST: tl.constexpr):
    """t and P(t) with erfc(z) = t exp(P(t) - z^2), z = |x|/sqrt(2), t = 1 / (1 + z/2).

    P fits log(erfc(z) / t) + z^2 on z >= 0 (relative error of erfc 2^-24.1 with degree
    9, 2^-16.9 with degree 5 for 16-bit storage), so the tail keeps relative accuracy
    where 1 + erf(x/sqrt 2) would cancel. (gelu' = cdf + x pdf has a root near -0.75,
    where degree 5 is not enough for 2^-12 relative: 16-bit gelu' runs degree 9.)
    """
    z = tl.abs(x) * SQRT1_2
    if FAST:
        t = _rcp16(tl.fma(z, 0.5, 1.0))  # z = +inf gives t = 0
        p = tl.fma(t, ERFC5_5, ERFC5_4)
        p = tl.fma(p, t, ERFC5_3)
        p = tl.fma(p, t, ERFC5_2)
        p = tl.fma(p, t, ERFC5_1)
        p = tl.fma(p, t, ERFC5_0)
    else:
        z = tl.minimum(z, 1e18)  # keeps the Newton step finite; erfc is 0 long before
        t = _rcp(tl.fma(z, 0.5, 1.0))
        p = tl.fma(t, ERFC9_9, ERFC9_8)
        p = tl.fma(p, t, ERFC9_7)
        p = tl.fma(p, t, ERFC9_6)
        p = tl.fma(p, t, ERFC9_5)
        p = tl.fma(p, t, ERFC9_4)
        p = tl.fma(p, t, ERFC9_3)
        p = tl.fma(p, t, ERFC9_2)
        p = tl.fma(p, t, ERFC9_1)
        p = tl.fma(p, t, ERFC9_0)
    return z, t, p


@triton.jit
def _gelu(x, FAST: tl.constexpr):
    z, t, p = _erfc_parts(x, FAST)
    tail = (0.5 * t) * tl.exp2(tl.fma(-z, z, p) * LOG2E)  # cdf(-|x|) = erfc(z) / 2
    cdf = tl.where(x < 0, tail, 1.0 - tail)
    return tl.maximum(x, -BIG) * cdf


@triton.jit
def _gelu_derivative(x, FAST: tl.constexpr):
    z, t, p = _erfc_parts(x, FAST)
    ez = tl.exp2((z * z) * -LOG2E)  # exp(-x^2 / 2), shared by the cdf's tail and the pdf
    tail = ((0.5 * t) * tl.exp2(p * LOG2E)) * ez
    cdf = tl.where(x < 0, tail, 1.0 - tail)
    xc = tl.clamp(x, -BIG, BIG)  # the pdf is 0 at +-inf: the clamp keeps x * 0 finite
    return tl.fma(xc, ez * INV_SQRT_2PI, cdf)


@triton.jit
def gelu_value(x):
    return _gelu(x, False)


@triton.jit
def gelu_value_16(x):
    return _gelu(x, True)


@triton.jit
def gelu_derivative(x):
    return _gelu_derivative(x, False)


@triton.jit
def _gelu_tanh_arg(x):
    """2u = 2 beta x (1 + kappa x^2): gelu_tanh(x) = x sigmoid(2u), no 1 + tanh to cancel."""
    return (x * TWO_BETA) * tl.fma(x * x, KAPPA, 1.0)


@triton.jit
def _gelu_tanh(x, FAST: tl.constexpr):
    if FAST:
        # sigmoid(2u) = 1 / (1 + exp2(-2u log2 e)), the constant folded into 2 beta
        e = tl.exp2((x * (-LOG2E * TWO_BETA)) * tl.fma(x * x, KAPPA, 1.0))
        sig = _rcp16(1.0 + e)
    else:
        sig = _sigmoid(_gelu_tanh_arg(x), FAST)
    return tl.maximum(x, -BIG) * sig


@triton.jit
def _gelu_tanh_derivative(x, FAST: tl.constexpr):
    sig, dsig = _sigmoid_both(_gelu_tanh_arg(x), FAST)
    # Beyond 2^20 the sigmoid' factor is 0 and the clamped polynomial stays finite.
    xc = tl.clamp(x, -1048576.0, 1048576.0)
    slope = (xc * TWO_BETA) * tl.fma(xc * xc, 3.0 * KAPPA, 1.0)
    return tl.fma(slope, dsig, sig)


@triton.jit
def gelu_tanh_value(x):
    return _gelu_tanh(x, False)


@triton.jit
def gelu_tanh_value_16(x):
    return _gelu_tanh(x, True)


@triton.jit
def gelu_tanh_derivative(x):
    return _gelu_tanh_derivative(x, False)


@triton.jit
def gelu_tanh_derivative_16(x):
    return _gelu_tanh_derivative(x, True)


@triton.jit
def _silu_scaled(x, a, FAST: tl.constexpr):
    """x sigmoid(a x) and its derivative's parts (silu: a = 1, quick_gelu: a = 1.702)."""
    return tl.maximum(x, -BIG) * _sigmoid(x * a, FAST)


@triton.jit
def _silu_scaled_derivative(x, a, FAST: tl.constexpr):
    sig, dsig = _sigmoid_both(x * a, FAST)
    xc = tl.clamp(x, -BIG, BIG)  # sigmoid' is 0 at +-inf: the clamp keeps x * 0 finite
    return tl.fma(xc * a, dsig, sig)


@triton.jit
def silu_value(x):
    return _silu_scaled(x, 1.0, False)


@triton.jit
def silu_value_16(x):
    return _silu_scaled(x, 1.0, True)


@triton.jit
def silu_derivative(x):
    return _silu_scaled_derivative(x, 1.0, False)


@triton.jit
def silu_derivative_16(x):
    return _silu_scaled_derivative(x, 1.0, True)


@triton.jit
def quick_gelu_value(x):
    return _silu_scaled(x, QUICK_GELU_ALPHA, False)


@triton.jit
def quick_gelu_value_16(x):
    return _silu_scaled(x, QUICK_GELU_ALPHA, True)


@triton.jit
def quick_gelu_derivative(x):
    return _silu_scaled_derivative(x, QUICK_GELU_ALPHA, False)


@triton.jit
def quick_gelu_derivative_16(x):
    return _silu_scaled_derivative(x, QUICK_GELU_ALPHA, True)


@triton.jit
def _softplus(x, beta, threshold, FAST: tl.constexpr):
    bx = x * beta
    # log(1 + exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)): no overflow, no log of a sum
    sp = tl.maximum(bx, 0.0) + _log1p_unit(tl.exp2(tl.abs(bx) * -LOG2E), FAST)
    return tl.where(bx > threshold, x, sp * (1.0 / beta))


@triton.jit
def softplus_value(x, beta, threshold):
    return _softplus(x, beta, threshold, False)


@triton.jit
def softplus_value_16(x, beta, threshold):
    return _softplus(x, beta, threshold, True)


@triton.jit
def _softplus_derivative(x, beta, threshold, FAST: tl.constexpr):
    bx = x * beta
    return tl.where(bx > threshold, tl.zeros_like(x) + 1.0, _sigmoid(bx, FAST))


@triton.jit
def softplus_derivative(x, beta, threshold):
    return _softplus_derivative(x, beta, threshold, False)


@triton.jit
def softplus_derivative_16(x, beta, threshold):
    return _softplus_derivative(x, beta, threshold, True)


@triton.jit
def _mish(x, FAST: tl.constexpr):
    _, _, t, _ = _mish_parts(x, FAST)
    return tl.maximum(x, -BIG) * t


@triton.jit
def _mish_derivative(x, FAST: tl.constexpr):
    """t + x sech^2(softplus x) sigmoid(x), with sech^2 = (1 - t)(1 + t) from the parts."""
    e, positive, t, one_minus_t = _mish_parts(x, FAST)
    if FAST:
        r = _rcp16(1.0 + e)
    else:
        r = _rcp(1.0 + e)
    sig = tl.where(positive, r, e * r)  # e = exp(-|x|) here, whatever FAST says
    xc = tl.clamp(x, -BIG, BIG)  # the product is 0 at both infinities
    return tl.fma(xc * (one_minus_t * (1.0 + t)), sig, t)


@triton.jit
def mish_value(x):
    return _mish(x, False)


@triton.jit
def mish_value_16(x):
    return _mish(x, True)


@triton.jit
def mish_derivative(x):
    return _mish_derivative(x, False)


@triton.jit
def mish_derivative_16(x):
    return _mish_derivative(x, True)


@triton.jit
def hardswish_value(x):
    hs = tl.minimum(tl.maximum(x + 3.0, 0.0), 6.0) * (1.0 / 6.0)
    return tl.maximum(x, -BIG) * hs


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
    xc = tl.clamp(x, -BIG, BIG)  # s(+-inf) = 0: keeps the product x * s finite
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
    return (tl.clamp(x, -BIG, BIG) + shift) * slope  # finite, so slope = 0 gives 0


@triton.jit
def _shifted_parts16(x, shift, slope):
    """sigmoid(slope (x + shift)) = r and its derivative factor e r^2, 16-bit storage.

    -log2(e) * slope is folded into one scalar: one multiply per element fewer.
    """
    e = tl.exp2((tl.clamp(x, -BIG, BIG) + shift) * (slope * -LOG2E))
    r = _rcp16(1.0 + e)
    return r, (tl.minimum(e, 3.4028234663852886e38) * r) * r


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


# name -> (float32 value, float32 derivative, 16-bit value, 16-bit derivative); None: the
# precise twin of functions.py (already within budget) or the float32 one for 16 bits.
FAST = {
    "tanh": (tanh_value, tanh_derivative, tanh_value_16, tanh_derivative_16),
    "sigmoid": (sigmoid_value, sigmoid_derivative, sigmoid_value_16, sigmoid_derivative_16),
    "softsign": (softsign_value, softsign_derivative, None, None),
    "elu": (elu_value, elu_derivative, elu_value_16, None),
    "selu": (selu_value, selu_derivative, selu_value_16, None),
    "gelu": (gelu_value, gelu_derivative, gelu_value_16, None),
    "gelu_tanh": (gelu_tanh_value, gelu_tanh_derivative, gelu_tanh_value_16,
                  gelu_tanh_derivative_16),
    "silu": (silu_value, silu_derivative, silu_value_16, silu_derivative_16),
    "softplus": (softplus_value, softplus_derivative, softplus_value_16,
                 softplus_derivative_16),
    "mish": (mish_value, mish_derivative, mish_value_16, mish_derivative_16),
    "quick_gelu": (quick_gelu_value, quick_gelu_derivative, quick_gelu_value_16,
                   quick_gelu_derivative_16),
    "hardswish": (hardswish_value, None, None, None),
    "leaky_relu": (leaky_relu_value, None, None, None),
    "gaussian": (gaussian_value, gaussian_derivative, None, None),
    "laplace": (laplace_value, laplace_derivative, None, None),
    "shifted_sigmoid": (shifted_sigmoid_value, shifted_sigmoid_derivative,
                        shifted_sigmoid_value_16, shifted_sigmoid_derivative_16),
}
