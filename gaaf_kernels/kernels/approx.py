"""Building blocks of the fast twins (``fast.py``): cheap, accurate float32 formulations.

``tl.exp2`` of a pre-scaled argument is one MUFU.EX2 (results below 2^-126 flush to
0); reciprocals of arguments in [1, 2^126] are ``rsqrt(d)**2`` and a Newton step.
``FAST`` selects the variant for 16-bit storage. Coefficients of the fitted
polynomials are named constants below, with their error bounds.
"""

import math

import triton
import triton.language as tl

from gaaf_kernels.reference import formulas as f


# NaN in, NaN out, in every twin by itself. A GPU's min and max (PTX min.f32 / max.f32,
# tl.minimum / tl.maximum / tl.clamp by default) return the other operand when one is NaN,
# and so does triton 3.8's interpreter; before 3.8 the interpreter propagated NaN (NumPy's
# minimum), which hid this. With PropagateNan.ALL the GPU runs min.NaN / max.NaN (one
# instruction on sm_80 and later) and the interpreter np.minimum / np.clip.
@triton.jit
def _min(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _max(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _clamp(x, lo, hi):
    return tl.clamp(x, lo, hi, propagate_nan=tl.PropagateNan.ALL)

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

# Polynomials are tuples of coefficients from the constant term up (for ``_horner``).
# tanh(x) = x + x^3 P(x^2) on |x| < 0.625 (Cephes tanhf, relative error 2^-23.5).
TANH_P = tl.constexpr((-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2,
                       2.06390887954e-2, -5.70498872745e-3))
TANH_SMALL = tl.constexpr(0.625)

# log(erfc(z) / t) + z^2 = P(t), t = 1 / (1 + z/2), fitted by reweighted least squares
# on z in [0, 12] (beyond, erfc underflows float32): degree 9 and, for 16 bits, degree 5.
ERFC9 = tl.constexpr((-1.2654761522729332, 0.999206781177823, 0.3817081006774977,
                      0.05813607662822274, -0.06771833993950604, 0.04908907582231036,
                      -0.8520480268549864, 1.2733250432471663, -0.7301832560618651,
                      0.1539607518188743))
ERFC5 = tl.constexpr((-1.266493090822163, 1.0174392777283845, 0.25691151362199777,
                      0.46959797528558395, -0.7046552897855788, 0.22720289651916026))
# log1p(e) / e on [0, 1], degree 4, reweighted least squares (for 16-bit storage)
LOG1P4 = tl.constexpr((0.9999429756542731, -0.49697448345876327, 0.3062918599879002,
                       -0.15741901268688235, 0.041345372531737305))
# (exp(x) - 1 - x) / x^2 = 1/2 + x/6 + ..., Taylor to x^6
EXPM1_TAYLOR = tl.constexpr(tuple(1.0 / math.factorial(n) for n in range(2, 9)))
# atanh(s) / s = sum s^2k / (2k + 1), doubled: log1p(e) = 2 atanh(e / (2 + e))
ATANH_SERIES = tl.constexpr(tuple(2.0 / (2 * k + 1) for k in range(7)))


@triton.jit
def _horner(t, C: tl.constexpr, DEGREE: tl.constexpr):
    """C[0] + C[1] t + ... + C[DEGREE] t^DEGREE by Horner's rule, one FMA a step; the
    coefficients are compile-time immediates."""
    p = tl.fma(t, C[DEGREE], C[DEGREE - 1])
    for i in tl.static_range(2, DEGREE + 1):
        p = tl.fma(p, t, C[DEGREE - i])
    return p


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
        e = _min(e, 3.4028234663852886e38)
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
    small = tl.fma(x * z, _horner(z, TANH_P, 4), x)
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
        # rsqrt(2)^2 is 1 - 2^-23, not 1/2: exactly 1 where tanh' is 1 (x = 0), else the
        # band factor 1 - phi'/m is 1e-7 there and bf16 GAAF(0) = g(0) 1e-7, not 0
        return tl.where(e == 1.0, 1.0, ((4.0 * e) * r) * r)
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
        p = _horner(x, EXPM1_TAYLOR, 6)
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
        result = e * _horner(e, LOG1P4, 4)
    else:
        s = e * _rcp(2.0 + e)
        p = _horner(s * s, ATANH_SERIES, 6)
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
        p = _horner(t, ERFC5, 5)
    else:
        z = _min(z, 1e18)  # keeps the Newton step finite; erfc is 0 long before
        t = _rcp(tl.fma(z, 0.5, 1.0))
        p = _horner(t, ERFC9, 9)
    return z, t, p
