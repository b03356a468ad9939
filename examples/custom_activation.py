"""Register a custom GAAF activation: ISRU, the inverse square root unit.

    isru(x)  = x / sqrt(1 + alpha * x^2)        (alpha > 0, default 1)
    isru'(x) = (1 + alpha * x^2) ** (-3/2)

Importing this module registers ``isru`` for every path (Triton kernels, PyTorch,
NumPy reference). Check it with

    gaaf verify --activation isru --import examples/custom_activation.py

ISRU saturates on both sides (at +-1/sqrt(alpha)), so its default shape is the
two-sided ``gaussian`` with c = 3, as for tanh.

The value is written in two branches so that the limits at +-inf are the
mathematical ones (+-1/sqrt(alpha)), never NaN: for |x| > 1 it uses the equivalent
sign(x) / sqrt(alpha + (1/x)^2), which neither divides inf by inf nor overflows x^2.
"""

import triton
import triton.language as tl

import gaaf_kernels as gk

# --- Triton: x is a block in the compute dtype (float32, or float64 for float64
# inputs); parameters arrive as scalars of that dtype, in the order of ``params``.


@triton.jit
def isru_value(x, alpha):
    zeros = tl.zeros_like(x)
    sign = tl.where(x > 0, zeros + 1.0, zeros - 1.0)
    t = 1.0 / x
    far = sign / tl.sqrt(alpha + t * t)
    near = x / tl.sqrt(1.0 + alpha * (x * x))
    return tl.where(tl.abs(x) > 1.0, far, near)


@triton.jit
def isru_derivative(x, alpha):
    r = 1.0 / tl.sqrt(1.0 + alpha * (x * x))  # 0 at +-inf
    return r * r * r


# --- Array-generic twins: ``xp`` is the NumPy namespace in the reference and the
# torch namespace in the PyTorch path. It offers exp, log1p, expm1, tanh, erf, abs,
# sign, floor, where, minimum, maximum, isnan, isinf, isfinite and zeros_like;
# everything else is written with operators (``** 0.5`` is a square root in both).


def isru_value_xp(xp, x, alpha):
    t = 1.0 / x
    far = xp.sign(x) / (alpha + t * t) ** 0.5
    near = x / (1.0 + alpha * (x * x)) ** 0.5
    return xp.where(xp.abs(x) > 1.0, far, near)


def isru_derivative_xp(xp, x, alpha):
    r = 1.0 / (1.0 + alpha * (x * x)) ** 0.5
    return r * r * r


gk.register_activation(
    "isru",
    triton_value=isru_value,
    triton_derivative=isru_derivative,
    numpy_value=isru_value_xp,
    numpy_derivative=isru_derivative_xp,
    params={"alpha": 1.0},
    default_shape="gaussian",
    default_shape_params={"c": 3.0},
    array_generic=True,
)
