"""Deprecated alias of :mod:`gaaf_kernels.experiments.analysis.recording` (the module
moved there); it will be removed in the next release."""

import warnings

from .analysis.recording import *  # noqa: F403
from .analysis.recording import __all__  # noqa: F401

warnings.warn("gaaf_kernels.experiments.recording moved to "
              "gaaf_kernels.experiments.analysis.recording", DeprecationWarning, stacklevel=2)
