"""A registration whose NumPy derivative is wrong (the Triton twins are right):
``gaaf verify --import`` must name ``numpy_derivative`` as the function at fault."""

import triton

import gaaf_kernels as gk


@triton.jit
def cube(x):
    return x * x * x


@triton.jit
def cube_derivative(x):
    return 3.0 * x * x


gk.register_activation(
    "wrong_numpy_cube",
    triton_value=cube,
    triton_derivative=cube_derivative,
    numpy_value=lambda x: x * x * x,
    numpy_derivative=lambda x: 2.0 * x * x,  # should be 3 x^2
    default_shape="none",
)
