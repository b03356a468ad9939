"""gaaf-kernels: GAAF activations as fused Triton kernels, with a NumPy reference.

Importing works without a GPU and without the Triton interpreter; kernels only run on
CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before import.
"""

from .registry import activations, register_activation, register_shape, shapes

__version__ = "0.1.0"

__all__ = ["__version__", "activations", "register_activation", "register_shape", "shapes"]
