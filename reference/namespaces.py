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


NUMPY = SimpleNamespace(
    exp=np.exp,
    log=np.log,
    sqrt=np.sqrt,
    log1p=np.log1p,
    expm1=np.expm1,
    tanh=np.tanh,
    erf=_np_erf,
    erfc=_np_erfc,
    abs=np.abs,
    sign=np.sign,
    floor=np.floor,
    where=np.where,
    minimum=np.minimum,
    maximum=np.maximum,
    isnan=np.isnan,
    isinf=np.isinf,
    isfinite=np.isfinite,
    zeros_like=np.zeros_like,
)
