"""A registration with a band whose NumPy phi'' is wrong (the rest is right):
``gaaf verify --import`` must name ``numpy_second_derivative`` and fail only the rows
that use it (the band's)."""

import numpy as np
import triton
import triton.language as tl

import gaaf_kernels as gk


@triton.jit
def sine(x):
    return tl.sin(x)


@triton.jit
def sine_derivative(x):
    return tl.cos(x)


@triton.jit
def sine_second_derivative(x):
    return -tl.sin(x)


gk.register_activation(
    "wrong_second_sine",
    triton_value=sine,
    triton_derivative=sine_derivative,
    numpy_value=np.sin,
    numpy_derivative=np.cos,
    triton_second_derivative=sine_second_derivative,
    numpy_second_derivative=np.sin,  # should be -sin(x)
    derivative_bound=lambda: 1.0,
)
