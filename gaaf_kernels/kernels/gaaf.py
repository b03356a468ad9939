"""The fused GAAF forward and backward kernels.

Forward reads x and writes y; backward reads x and dy and writes dx: the memory
traffic of a plain activation. The activation and shape functions are constexpr
``@triton.jit`` functions, so each (activation, shape, dtype) pair compiles to straight
line code; K and the function parameters are runtime scalars (changing them never
recompiles). Scalars arrive as float64 and are rounded once to the compute dtype,
exactly as the NumPy reference rounds them.
"""

import triton
import triton.language as tl


@triton.jit
def _apply(fn: tl.constexpr, n_params: tl.constexpr, x, p0, p1, p2):
    """Call ``fn(x, *params[:n_params])``; the branch is resolved at compile time."""
    if n_params == 0:
        result = fn(x)
    elif n_params == 1:
        result = fn(x, p0)
    elif n_params == 2:
        result = fn(x, p0, p1)
    else:
        result = fn(x, p0, p1, p2)
    return result


@triton.jit
def _scalar(value, dtype: tl.constexpr):
    """A runtime float64 scalar rounded once to the compute dtype."""
    return tl.full((1,), value, dtype)


@triton.jit
def _offsets(BLOCK_SIZE: tl.constexpr, INT64_OFFSETS: tl.constexpr):
    pid = tl.program_id(0)
    if INT64_OFFSETS:
        pid = pid.to(tl.int64)
    return pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)


@triton.jit
def _load(ptr, offsets, mask, COMPUTE_DTYPE: tl.constexpr, BF16_AS_BITS: tl.constexpr):
    """Load in the storage dtype and widen to the compute dtype."""
    if BF16_AS_BITS:
        # bfloat16 given as int16 bits (the interpreter's own bf16 casts are inexact):
        # widening is exact, the bits become the top half of a float32.
        bits = tl.load(ptr + offsets, mask=mask).to(tl.uint16, bitcast=True)
        value = (bits.to(tl.uint32) << 16).to(tl.float32, bitcast=True)
    else:
        value = tl.load(ptr + offsets, mask=mask).to(COMPUTE_DTYPE)
    return value


@triton.jit
def _store(ptr, offsets, value, mask, BF16_AS_BITS: tl.constexpr):
    """Round to the storage dtype (nearest even) and store."""
    if BF16_AS_BITS:
        u = value.to(tl.uint32, bitcast=True)
        rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).to(tl.uint16)
        rounded = tl.where(value != value, tl.full(rounded.shape, 0x7FC0, tl.uint16), rounded)
        tl.store(ptr + offsets, rounded.to(tl.int16, bitcast=True), mask=mask)
    else:
        tl.store(ptr + offsets, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _sawtooth(x, K, inv_K):
    """g(x) = (x*K - floor(x*K) - 0.5) * (1/K); fractional part 0 where x*K is not finite.

    1/K arrives rounded once in the compute dtype, as every path rounds it.
    """
    # Clamped to +-2^24 (2^53 in float64) x*K keeps its fractional part, which is 0 from
    # 2^23 (2^52) on, and +-inf becomes finite: one instruction instead of three selects.
    if x.dtype == tl.float32:
        xk = tl.clamp(x * K, -16777216.0, 16777216.0)
    else:  # tl.clamp of float64 does not compile for GPUs (triton 3.7): min and max
        xk = tl.minimum(tl.maximum(x * K, -9007199254740992.0), 9007199254740992.0)
    frac = xk - tl.floor(xk)
    # GPUs floor with flush-to-zero: floor(-subnormal) is -0 there, frac = x*K < 0; the
    # reference floors to -1 and gets 1 - tiny, which rounds to 1 as frac + 1 does.
    frac = tl.where(frac < 0, frac + 1.0, frac)
    return (frac - 0.5) * inv_K


@triton.jit
def gaaf_forward_kernel(
    x_ptr,
    y_ptr,
    n_elements,
    K: tl.float64,
    inv_K: tl.float64,
    a0: tl.float64,
    a1: tl.float64,
    a2: tl.float64,
    s0: tl.float64,
    s1: tl.float64,
    s2: tl.float64,
    inv_m: tl.float64,
    ACTIVATION: tl.constexpr,
    ACTIVATION_DERIVATIVE: tl.constexpr,
    N_ACTIVATION_PARAMS: tl.constexpr,
    SHAPE: tl.constexpr,
    N_SHAPE_PARAMS: tl.constexpr,
    BAND: tl.constexpr,
    COMPUTE_DTYPE: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    INT64_OFFSETS: tl.constexpr,
    BF16_AS_BITS: tl.constexpr,
):
    """y = phi(x) + g(x) * s(x), element by element in memory order.

    Args:
        x_ptr: input, ``n_elements`` values in memory order (any dense layout).
        y_ptr: output, same dtype and layout as the input.
        n_elements: number of elements to process.
        K: frequency constant of the sawtooth (float64, rounded to the compute dtype).
        inv_K: 1/K as rounded in the compute dtype (exact in float64).
        a0, a1, a2: activation parameters in declared order (unused slots are 0).
        s0, s1, s2: shape-function parameters in declared order.
        inv_m: 1/m, m = sup |phi'|, for the saturation band (unused without BAND).
        ACTIVATION: ``@triton.jit`` activation value function phi.
        ACTIVATION_DERIVATIVE: ``@triton.jit`` phi' (BAND only; None otherwise).
        N_ACTIVATION_PARAMS: how many of a0..a2 the activation takes.
        SHAPE: ``@triton.jit`` shape value function s.
        N_SHAPE_PARAMS: how many of s0..s2 the shape function takes.
        BAND: use s * (1 - phi' * inv_m) for s (the saturation band).
        COMPUTE_DTYPE: tl.float32 for 16/32-bit storage, tl.float64 for float64.
        BLOCK_SIZE: elements per program instance.
        INT64_OFFSETS: 64-bit offsets, needed from 2**31 elements on.
        BF16_AS_BITS: pointers are int16 holding bfloat16 bits (interpreter only).
    """
    offsets = _offsets(BLOCK_SIZE, INT64_OFFSETS)
    mask = offsets < n_elements
    x = _load(x_ptr, offsets, mask, COMPUTE_DTYPE, BF16_AS_BITS)
    k, inv_k = _scalar(K, COMPUTE_DTYPE), _scalar(inv_K, COMPUTE_DTYPE)
    p0 = _scalar(a0, COMPUTE_DTYPE)
    p1 = _scalar(a1, COMPUTE_DTYPE)
    p2 = _scalar(a2, COMPUTE_DTYPE)
    phi = _apply(ACTIVATION, N_ACTIVATION_PARAMS, x, p0, p1, p2)
    s = _apply(SHAPE, N_SHAPE_PARAMS, x, _scalar(s0, COMPUTE_DTYPE),
               _scalar(s1, COMPUTE_DTYPE), _scalar(s2, COMPUTE_DTYPE))
    if BAND:
        dphi = _apply(ACTIVATION_DERIVATIVE, N_ACTIVATION_PARAMS, x, p0, p1, p2)
        s = s * (1.0 - dphi * _scalar(inv_m, COMPUTE_DTYPE))
    # One FMA (rounded once, where the reference rounds the product and the sum): within
    # an ulp of the reference; only x*K must not be contracted, and it is not (see launch).
    y = tl.fma(_sawtooth(x, k, inv_k), s, phi)
    y = tl.where(x != x, x, y)  # NaN in, NaN out
    _store(y_ptr, offsets, y, mask, BF16_AS_BITS)


@triton.jit
def gaaf_backward_kernel(
    x_ptr,
    dy_ptr,
    dx_ptr,
    n_elements,
    K: tl.float64,
    inv_K: tl.float64,
    a0: tl.float64,
    a1: tl.float64,
    a2: tl.float64,
    s0: tl.float64,
    s1: tl.float64,
    s2: tl.float64,
    inv_m: tl.float64,
    ACTIVATION_DERIVATIVE: tl.constexpr,
    ACTIVATION_SECOND_DERIVATIVE: tl.constexpr,
    N_ACTIVATION_PARAMS: tl.constexpr,
    SHAPE: tl.constexpr,
    SHAPE_DERIVATIVE: tl.constexpr,
    N_SHAPE_PARAMS: tl.constexpr,
    BAND: tl.constexpr,
    COMPUTE_DTYPE: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    INT64_OFFSETS: tl.constexpr,
    BF16_AS_BITS: tl.constexpr,
):
    """dx = dy * (phi'(x) + s(x) + g(x) * s'(x)), recomputed from x alone.

    Args:
        x_ptr: the forward input, ``n_elements`` values in memory order.
        dy_ptr: gradient of the loss with respect to y, same dtype and layout as x.
        dx_ptr: output gradient with respect to x, same dtype and layout as x.
        n_elements: number of elements to process.
        K: frequency constant of the sawtooth (float64, rounded to the compute dtype).
        inv_K: 1/K as rounded in the compute dtype (exact in float64).
        a0, a1, a2: activation parameters in declared order (unused slots are 0).
        s0, s1, s2: shape-function parameters in declared order.
        inv_m: 1/m, m = sup |phi'|, for the saturation band (unused without BAND).
        ACTIVATION_DERIVATIVE: ``@triton.jit`` derivative phi' of the activation.
        ACTIVATION_SECOND_DERIVATIVE: ``@triton.jit`` phi'' (BAND only; None otherwise).
        N_ACTIVATION_PARAMS: how many of a0..a2 the activation takes.
        SHAPE: ``@triton.jit`` shape value function s.
        SHAPE_DERIVATIVE: ``@triton.jit`` derivative s' of the shape function.
        N_SHAPE_PARAMS: how many of s0..s2 the shape function takes.
        BAND: use the saturation band s (1 - phi'/m) and its derivative for s and s'.
        COMPUTE_DTYPE: tl.float32 for 16/32-bit storage, tl.float64 for float64.
        BLOCK_SIZE: elements per program instance.
        INT64_OFFSETS: 64-bit offsets, needed from 2**31 elements on.
        BF16_AS_BITS: pointers are int16 holding bfloat16 bits (interpreter only).
    """
    offsets = _offsets(BLOCK_SIZE, INT64_OFFSETS)
    mask = offsets < n_elements
    x = _load(x_ptr, offsets, mask, COMPUTE_DTYPE, BF16_AS_BITS)
    dy = _load(dy_ptr, offsets, mask, COMPUTE_DTYPE, BF16_AS_BITS)
    k, inv_k = _scalar(K, COMPUTE_DTYPE), _scalar(inv_K, COMPUTE_DTYPE)
    q0 = _scalar(s0, COMPUTE_DTYPE)
    q1 = _scalar(s1, COMPUTE_DTYPE)
    q2 = _scalar(s2, COMPUTE_DTYPE)
    p0 = _scalar(a0, COMPUTE_DTYPE)
    p1 = _scalar(a1, COMPUTE_DTYPE)
    p2 = _scalar(a2, COMPUTE_DTYPE)
    dphi = _apply(ACTIVATION_DERIVATIVE, N_ACTIVATION_PARAMS, x, p0, p1, p2)
    s = _apply(SHAPE, N_SHAPE_PARAMS, x, q0, q1, q2)
    ds = _apply(SHAPE_DERIVATIVE, N_SHAPE_PARAMS, x, q0, q1, q2)
    if BAND:  # formulas.band / band_derivative, operation for operation
        d2phi = _apply(ACTIVATION_SECOND_DERIVATIVE, N_ACTIVATION_PARAMS, x, p0, p1, p2)
        im = _scalar(inv_m, COMPUTE_DTYPE)
        w = 1.0 - dphi * im
        ds = ds * w - s * (d2phi * im)
        s = s * w
    dx = dy * tl.fma(_sawtooth(x, k, inv_k), ds, dphi + s)
    dx = tl.where(x != x, x, dx)  # NaN in, NaN out
    _store(dx_ptr, offsets, dx, mask, BF16_AS_BITS)
