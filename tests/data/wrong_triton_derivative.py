"""A registration whose Triton derivative is wrong (the NumPy twins are right):
``gaaf verify --import`` must fail the Triton rows and not blame the reference."""

import numpy as np
import triton
import triton.language as tl

import gaaf_kernels as gk


@triton.jit
def sine(x):
    return tl.sin(x)


@triton.jit
def wrong_sine_derivative(x):
    return 2.0 * tl.cos(x)  # should be cos(x)


gk.register_activation(
    "wrong_triton_sine",
    triton_value=sine,
    triton_derivative=wrong_sine_derivative,
    numpy_value=np.sin,
    numpy_derivative=np.cos,
    default_shape="none",
)
