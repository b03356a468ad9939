"""``gaaf verify``: every path against the NumPy reference, as a table.

Tolerances (``|got - want| <= atol + rtol * |want|``, elementwise; infinities must
match exactly and NaN where the reference has NaN):

* float64: 1e-13. Both sides compute in float64 with the same rounded ``x*K``; what is
  left is a few ulps from exp/log/erf implementations (seen: 2e-15).
* float32: 1e-5. Same argument in float32 (a few ulps, ~1e-7), amplified by up to
  |x|/2 where formulas cancel (1 + tanh, 1 + erf for x < 0) and by the GPU's
  approximate exp2/log2; seen on CPU: 5e-7.
* float16 / bfloat16: float32's tolerance plus one unit in the last place of the
  storage dtype (2^-10 / 2^-7 relative): a float32 difference can move the final
  rounding across a boundary.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from gaaf_kernels import reference
from gaaf_kernels.reference import resolve
from gaaf_kernels.table import format_table

TOLERANCES = {  # dtype -> (atol, rtol)
    torch.float64: (1e-13, 1e-13),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-5, 2.0**-10 + 1e-5),
    torch.bfloat16: (1e-5, 2.0**-7 + 1e-5),
}
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
          "float64": torch.float64}


def sample_inputs(dtype: torch.dtype, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """A sweep over [-12, 12], random normals, and the special values of the dtype."""
    gen = torch.Generator().manual_seed(seed)
    info = torch.finfo(dtype)
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, info.max, -info.max,
                info.tiny, -info.tiny, info.tiny / 4, -info.tiny / 4, 1e-7, -1e-7,
                0.5, -0.5, 1.0, -1.0, 4.0, -4.0]
    values = torch.cat([
        torch.linspace(-12, 12, n, dtype=torch.float64),
        3 * torch.randn(n, dtype=torch.float64, generator=gen),
        torch.tensor(specials, dtype=torch.float64),
    ])
    return values.to(dtype)


def reference_on(fn: Callable, *tensors: torch.Tensor, cfg_kwargs: dict) -> torch.Tensor:
    """Run the NumPy reference on tensors of any supported dtype.

    bfloat16 goes in as its exact float32 values and the float32 result is rounded to
    bfloat16 (nearest even), which is what the reference does for bfloat16 arrays.
    """
    dtype = tensors[0].dtype
    if dtype == torch.bfloat16:
        arrays = [t.detach().cpu().float().numpy() for t in tensors]
        return torch.from_numpy(fn(*arrays, **cfg_kwargs)).to(torch.bfloat16)
    arrays = [t.detach().cpu().numpy() for t in tensors]
    return torch.from_numpy(fn(*arrays, **cfg_kwargs))


def compare(got: torch.Tensor, want: torch.Tensor) -> tuple[float, float, bool]:
    """Max abs error, max relative error, and whether all elements are within tolerance."""
    atol, rtol = TOLERANCES[want.dtype]
    g = got.detach().cpu().double().numpy().reshape(-1)
    w = want.detach().cpu().double().numpy().reshape(-1)
    if got.shape != want.shape:
        return math.inf, math.inf, False
    nan_ok = np.array_equal(np.isnan(g), np.isnan(w))
    inf_ok = np.array_equal(np.isinf(w), np.isinf(g)) and np.array_equal(g[np.isinf(w)],
                                                                          w[np.isinf(w)])
    finite = np.isfinite(w) & np.isfinite(g)
    err = np.abs(g[finite] - w[finite])
    max_abs = float(err.max(initial=0.0))
    max_rel = float((err / np.maximum(np.abs(w[finite]), np.finfo(np.float64).tiny)).max(
        initial=0.0))
    within = bool(np.all(err <= atol + rtol * np.abs(w[finite])))
    return max_abs, max_rel, nan_ok and inf_ok and within


@dataclass
class Row:
    backend: str
    activation: str
    shape: str
    dtype: str
    fwd_abs: float
    fwd_rel: float
    bwd_abs: float
    bwd_rel: float
    tolerance: str
    ok: bool
    error: str = ""
    band: bool = False


def available_backends() -> list[str]:
    from gaaf_kernels.kernels.launch import interpreting

    backends = []
    if torch.cuda.is_available() or interpreting():
        backends.append("triton")
    backends.append("torch")
    from . import verify_jax

    if verify_jax.available():
        backends.append("jax")  # the JAX adapter (verify_jax.py), when JAX is installed
    return backends


def device_for(backend: str) -> torch.device:
    if backend == "triton" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def check_case(backend: str, activation: str, shape: str, dtype: torch.dtype,
               band: bool = False) -> Row:
    if backend == "jax":
        from .verify_jax import check_case as check_jax_case

        return check_jax_case(activation, shape, dtype, band)
    from gaaf_kernels.adapters.torch import gaaf, gaaf_backward

    kwargs = {"activation": activation, "shape": shape, "band": band}
    atol, rtol = TOLERANCES[dtype]
    name = str(dtype).removeprefix("torch.")
    row = Row(backend, activation, shape, name, math.nan, math.nan, math.nan, math.nan,
              f"{atol:.0e}+{rtol:.1e}|y|", False, band=band)
    try:
        resolve(activation, shape, band=band)
        x = sample_inputs(dtype)
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        want_y = reference_on(reference.forward, x, cfg_kwargs=kwargs)
        want_dx = reference_on(reference.backward, x, dy, cfg_kwargs=kwargs)
        device = device_for(backend)
        got_y = gaaf(x.to(device), activation, shape, band=band, backend=backend)
        got_dx = gaaf_backward(x.to(device), dy.to(device), activation, shape, band=band,
                               backend=backend)
        row.fwd_abs, row.fwd_rel, ok_f = compare(got_y, want_y)
        row.bwd_abs, row.bwd_rel, ok_b = compare(got_dx, want_dx)
        row.ok = ok_f and ok_b
    except Exception as exc:  # a crash is a failed case, reported in the table
        row.error = f"{type(exc).__name__}: {exc}"[:200]
    return row


def run(activations: Iterable[str], shapes: Iterable[str] | None, dtypes: Iterable[str],
        backends: Iterable[str], progress=None, bands: Iterable[bool] = (False,)) -> list[Row]:
    """Every backend x activation x shape x dtype x band; ``shapes=None`` means all
    shapes. Band cases cover the activations that have a band
    (``reference.band_activations()``); the others are left out (the CLI names them)."""
    from gaaf_kernels import shapes as all_shapes

    with_band = set(reference.band_activations())
    activations = list(activations)
    cases = [(b, a, s, d, band) for band in bands for b in backends for a in activations
             if not band or a in with_band for s in (shapes or all_shapes()) for d in dtypes]
    rows = []
    for backend, activation, shape, dtype, band in cases:
        # Overflow inside the formulas is expected (and handled); keep the table clean.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            rows.append(check_case(backend, activation, shape, DTYPES[dtype], band))
        if progress is not None:
            progress(len(rows), len(cases))
    return rows


def format_rows(rows: list[Row]) -> str:
    header = ("backend", "activation", "shape", "band", "dtype", "fwd max abs", "fwd max rel",
              "bwd max abs", "bwd max rel", "tolerance", "result")
    return format_table(header, [
        (r.backend, r.activation, r.shape, "yes" if r.band else "no", r.dtype,
         f"{r.fwd_abs:.2e}", f"{r.fwd_rel:.2e}",
         f"{r.bwd_abs:.2e}", f"{r.bwd_rel:.2e}", r.tolerance,
         "ok" if r.ok else ("FAIL " + r.error).strip())
        for r in rows])


@contextlib.contextmanager
def torch_compile_disabled():
    """The torch backend runs eager inside: compiling hundreds of variants takes hours on
    a small CPU, and the formulas are the same (compilation only fuses them)."""
    old = os.environ.get("GAAF_COMPILE")
    os.environ["GAAF_COMPILE"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GAAF_COMPILE", None)
        else:
            os.environ["GAAF_COMPILE"] = old
