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

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from gaaf_kernels import reference
from gaaf_kernels.reference import GAAFConfig, resolve
from gaaf_kernels.reference.dtypes import POLICIES
from gaaf_kernels.runtime import options
from gaaf_kernels.table import format_table

if TYPE_CHECKING:
    from gaaf_kernels.adapters.torch_ops import Backend

DTYPES = {name: getattr(torch, name) for name in POLICIES}
TOLERANCES = {DTYPES[name]: (p.atol, p.rtol) for name, p in POLICIES.items()}


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


def decisive_error(got: torch.Tensor, want: torch.Tensor) -> str:
    """The error of the element that decided the verdict, as the tolerance judged it:
    ``"3.1e-07 abs"`` where the absolute tolerance was the larger part of that element's
    bound, ``"2.0e-06 rel"`` where the relative one was ("inf/nan" where those
    disagree)."""
    atol, rtol = TOLERANCES[want.dtype]
    g = got.detach().cpu().double().numpy().reshape(-1)
    w = want.detach().cpu().double().numpy().reshape(-1)
    if g.shape != w.shape:
        return "shape"
    special = ~(np.isfinite(w) & np.isfinite(g))
    if not np.array_equal(g[special], w[special], equal_nan=True):
        return "inf/nan"
    g, w = g[~special], w[~special]
    if w.size == 0:
        return "0 abs"
    err = np.abs(g - w)
    i = int(np.argmax(err / (atol + rtol * np.abs(w))))
    if atol >= rtol * abs(w[i]):
        return f"{err[i]:.1e} abs"
    return f"{err[i] / abs(w[i]):.1e} rel"


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
    fwd_error: str = ""  # the decisive error (decisive_error)
    bwd_error: str = ""


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


#: The default CPU path as it runs: the composite compiled by TorchInductor (the other
#: "torch" rows run it eagerly, which compiles nothing).
COMPILED = "torch-compiled"
DEFAULT_SHAPE = "default"  # in --shape: each activation's default shape


def check_case(backend: str, activation: str, shape: str, dtype: torch.dtype,
               band: bool = False) -> Row:
    if backend == "jax":
        from .verify_jax import check_case as check_jax_case

        return check_jax_case(activation, shape, dtype, band)
    from gaaf_kernels.adapters.torch import gaaf, gaaf_backward

    atol, rtol = TOLERANCES[dtype]
    name = str(dtype).removeprefix("torch.")
    row = Row(backend, activation, shape, name, math.nan, math.nan, math.nan, math.nan,
              f"{atol:.0e}+{rtol:.1e}|y|", False, band=band)
    run_as: Backend = "torch" if backend in ("torch", COMPILED) else "triton"
    try:
        cfg = GAAFConfig(activation, shape, band=band)
        x = sample_inputs(dtype)
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        want_y = reference_on(reference.forward, x, cfg_kwargs={"config": cfg})
        want_dx = reference_on(reference.backward, x, dy, cfg_kwargs={"config": cfg})
        device = device_for(backend)
        with options(compile=True if backend == COMPILED else None):
            got_y = gaaf(x.to(device), config=cfg, backend=run_as)
            got_dx = gaaf_backward(x.to(device), dy.to(device), config=cfg, backend=run_as)
        row.fwd_abs, row.fwd_rel, ok_f = compare(got_y, want_y)
        row.bwd_abs, row.bwd_rel, ok_b = compare(got_dx, want_dx)
        row.fwd_error, row.bwd_error = decisive_error(got_y, want_y), decisive_error(got_dx,
                                                                                     want_dx)
        row.ok = ok_f and ok_b
    except Exception as exc:  # a crash is a failed case, reported in the table
        row.error = f"{type(exc).__name__}: {exc}"[:200]
    return row


def run(activations: Iterable[str], shapes: Iterable[str] | None, dtypes: Iterable[str],
        backends: Iterable[str], progress=None, bands: Iterable[bool] = (False,),
        compiled: bool = False) -> list[Row]:
    """Every backend x activation x shape x dtype x band; ``shapes=None`` means all
    shapes, and the shape named ``DEFAULT_SHAPE`` stands for each activation's own. Band
    cases cover the activations that have a band (``reference.band_activations()``); the
    others are left out (the CLI names them).
    ``compiled``: also the compiled CPU path, with each activation's default shape (or
    the shapes asked for)."""
    from gaaf_kernels import shapes as all_shapes

    with_band = set(reference.band_activations())
    activations = list(activations)

    def shapes_of(activation: str, asked: Iterable[str]) -> list[str]:
        default = resolve(activation).shape.name
        return list(dict.fromkeys(default if s == DEFAULT_SHAPE else s for s in asked))

    cases = [(b, a, s, d, band) for band in bands for b in backends for a in activations
             if not band or a in with_band
             for s in shapes_of(a, shapes or all_shapes()) for d in dtypes]
    if compiled:
        cases += [(COMPILED, a, s, d, band) for band in bands for a in activations
                  if not band or a in with_band
                  for s in shapes_of(a, shapes or [DEFAULT_SHAPE]) for d in dtypes]
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
    """One line per case: the error that decided each pass (``decisive_error``), the
    tolerance, the verdict."""
    header = ("backend", "activation", "shape", "band", "dtype", "fwd error", "bwd error",
              "tolerance", "result")
    return format_table(header, [
        (r.backend, r.activation, r.shape, "yes" if r.band else "no", r.dtype,
         r.fwd_error or "-", r.bwd_error or "-", r.tolerance,
         "ok" if r.ok else ("FAIL " + r.error).strip())
        for r in rows])


@dataclass(frozen=True)
class Fault:
    """A registered function whose NumPy twin disagrees with a finite difference of the
    function below it: the reference, not the path compared with it, is wrong."""

    kind: str      # "activation" or "shape"
    name: str
    function: str  # "numpy_derivative" or "numpy_second_derivative"
    message: str

    def __str__(self) -> str:
        return self.message

    def concerns(self, row: Row) -> bool:
        """Whether ``row`` compared a path against this wrong function: phi'' is used
        by the band only, s'' by no row."""
        if self.kind == "shape":
            return row.shape == self.name and self.function == "numpy_derivative"
        return row.activation == self.name and (
            self.function == "numpy_derivative" or row.band)


def check_registered_derivatives(kinds_names: Iterable[tuple[str, str]]) -> list[Fault]:
    """Each registered function's derivative (and second derivative, if given) against a
    central finite difference of its value, in float64, on points away from 0 and +-1
    (where the catalogue's kinks sit). Returns one ``Fault`` per function at fault,
    naming it; a wrong NumPy derivative would otherwise show as a Triton mismatch."""
    x = np.array([-3.7, -2.3, -1.3, -0.61, -0.23, 0.17, 0.52, 1.41, 2.9, 4.3])
    h = 1e-6
    problems = []
    for kind, name in kinds_names:
        spec = reference.get_activation(name) if kind == "activation" else \
            reference.get_shape(name)
        params = tuple(v for _, v in spec.params)

        def call(which: str, at: np.ndarray, spec=spec, params=params) -> np.ndarray:
            fn = getattr(spec, which)
            if spec.array_generic:
                from gaaf_kernels.reference.namespaces import NUMPY
                return np.asarray(fn(NUMPY, at, *params), dtype=np.float64)
            return np.asarray(fn(at, *params), dtype=np.float64)

        pairs = [("value", "derivative", "numpy_derivative")]
        if spec.second_derivative is not None:
            pairs.append(("derivative", "second_derivative", "numpy_second_derivative"))
        for lower, upper, label in pairs:
            with np.errstate(all="ignore"):
                numeric = (call(lower, x + h) - call(lower, x - h)) / (2 * h)
                given = call(upper, x)
            # where the difference is not finite (outside the function's domain, an
            # overflow) it cannot judge
            bad = np.isfinite(numeric) & ~np.isclose(given, numeric, rtol=1e-5, atol=1e-6)
            if bad.any():
                i = int(np.argmax(bad))
                problems.append(Fault(kind, name, label, (
                    f"{kind} {name!r}: {label} disagrees with a finite difference of "
                    f"numpy_{lower} at x={x[i]:g}: {given[i]:.6g} against {numeric[i]:.6g}")))
    return problems


def blame_reference(rows: list[Row], faults: Iterable[Fault]) -> None:
    """Mark the rows that compared against a function at fault: they fail, and say the
    reference is wrong, not the path (a right Triton twin would otherwise be blamed, and
    a path that shares the wrong function would pass)."""
    faults = list(faults)
    for row in rows:
        at_fault = [f for f in faults if f.concerns(row)]
        if at_fault:
            row.ok = False
            names = ", ".join(f"{f.kind} {f.name!r} {f.function}" for f in at_fault)
            row.error = f"reference at fault: {names}"


def torch_compile_disabled():
    """The torch backend runs eager inside: compiling hundreds of variants takes hours on
    a small CPU, and the formulas are the same (compilation only fuses them); the
    ``torch-compiled`` rows turn it back on for themselves."""
    return options(compile=False)
