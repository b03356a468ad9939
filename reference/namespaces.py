"""Array namespaces for the reference formulas.

The catalogue formulas are written once against a small namespace ``xp`` so that the
NumPy reference and the PyTorch composite evaluate the very same expressions. Each
namespace offers the handful of element-wise functions the formulas need.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

_np_erf_ufunc = np.frompyfunc(math.erf, 1, 1)
_np_erfc_ufunc = np.frompyfunc(math.erfc, 1, 1)


def _np_erf(x: np.ndarray) -> np.ndarray:
    # NumPy has no erf; math.erf in float64, rounded once to the compute dtype.
    return np.asarray(_np_erf_ufunc(x), dtype=np.float64).astype(np.asarray(x).dtype)


def _np_erfc(x: np.ndarray) -> np.ndarray:
    # erfc = 1 - erf without the cancellation (gelu's left tail): math.erfc, as erf above.
    return np.asarray(_np_erfc_ufunc(x), dtype=np.float64).astype(np.asarray(x).dtype)


#: The element-wise functions the formulas may use; an array library's namespace offers
#: exactly these (``array_namespace``), so a formula that needs another fails everywhere.
FUNCTIONS = ("exp", "log", "sqrt", "log1p", "expm1", "tanh", "erf", "erfc", "abs", "sign",
             "floor", "where", "minimum", "maximum", "isnan", "isinf", "isfinite",
             "zeros_like")


def array_namespace(module: object, **overrides: object) -> SimpleNamespace:
    """The formulas' namespace over ``module`` (``numpy``, ``torch``, ...): its functions
    of the names in ``FUNCTIONS``, where ``overrides`` replace those it lacks or gets
    wrong."""
    unknown = sorted(set(overrides) - set(FUNCTIONS))
    if unknown:
        raise ValueError(f"not a formula function: {', '.join(unknown)}; "
                         f"choose from {', '.join(FUNCTIONS)}")
    return SimpleNamespace(**{name: overrides[name] if name in overrides else getattr(module, name)
                              for name in FUNCTIONS})


NUMPY = array_namespace(np, erf=_np_erf, erfc=_np_erfc)
