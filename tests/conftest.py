"""Shared test set-up.

The suite runs with TRITON_INTERPRET=1 (the Makefile sets it before Python starts), so
the Triton kernels execute on CPU tensors. The PyTorch composite runs eager unless a
test turns compilation on: compiling hundreds of variants would take an hour on 2 cores.
Markers and helpers live in support.py.
"""

import os

os.environ.setdefault("GAAF_COMPILE", "0")
