"""A deliberately wrong registration: the Triton derivative disagrees with NumPy's.

``gaaf verify --activation broken_square --import tests/data/broken_activation.py``
must report the mismatch and exit 1.
"""

import triton

import gaaf_kernels as gk


@triton.jit
def square(x):
    return x * x


@triton.jit
def wrong_square_derivative(x):
    return 3.0 * x  # should be 2x


gk.register_activation(
    "broken_square",
    triton_value=square,
    triton_derivative=wrong_square_derivative,
    numpy_value=lambda x: x * x,
    numpy_derivative=lambda x: 2 * x,
    default_shape="none",
)
