"""The accuracy contract of the float32-compute Triton twins, on dense sweeps.

Every built-in activation and shape, value and derivative, as float32 and as 16-bit
storage run them (``triton_functions(spec, dtype)``), is evaluated by a one-function
kernel under the interpreter on every multiple of 2^-12 in [-20, 20] plus edge values,
and compared with the reference formula evaluated in float64 at the same inputs:

* float32 twins:  |got - want| <= n ulp(want) + cond(x) + floor(x), n = 4 for values and
  8 for derivatives (12 for gelu_tanh'): silu', mish', gelu_tanh' and the sigmoid-type
  derivatives add terms that partly cancel near x = -2, amplifying their roundings
* 16-bit twins:   |got - want| <= 2^-12 |want| + cond(x) + floor(x)

cond(x) = max |f(x (1 +- 2^-22)) - f(x)| is what four units of float32 rounding of x's
argument (x*c, x*x, ...) may change; no float32 formula of exp(-x^2/c) or e^x can do
better, and the float32 reference itself does not. The floor 2^-125 max(1, |x|) covers
what GPUs flush to zero below 2^-126: a result, or an intermediate such as exp(-|x|) in
x sigmoid(x), which then loses up to |x| 2^-126 (the sweeps pass with and without
flush-to-zero). 2^-12 relative keeps a 16-bit result within one ulp of the
correctly rounded value (fp16 has 11 significant bits, bfloat16 8).
The interpreter evaluates exp2 and rsqrt exactly; on a GPU, MUFU.EX2 and MUFU.RSQ add
their 2^-22 relative error (PTX ISA), about one ulp more on a GPU.
The interpreter's ``tl.fma`` rounds the product before the sum; the GPU's does not, and
the Newton steps of the twins rely on that, so these tests run a fused one (the float32
product is exact in float64, then one sum and the final rounding).
Where the reference formula itself cancels in float64 (gelu_tanh's 1 + tanh for
x < -5), it is exact only to 2^-53 |x|, which the tolerance adds for that function.
"""

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton.runtime import interpreter

from gaaf_kernels.kernels.gaaf import _apply
from gaaf_kernels.kernels.launch import interpreting
from gaaf_kernels.reference import get_activation, get_shape
from gaaf_kernels.reference.namespaces import NUMPY
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES
from gaaf_kernels.registry import triton_functions

pytestmark = pytest.mark.skipif(not interpreting() and not torch.cuda.is_available(),
                                reason="needs TRITON_INTERPRET=1 or a CUDA device")

FLOOR = 2.0**-125
ULPS = {"value": 4, "derivative": 8}
DERIVATIVE_ULPS = {"gelu_tanh": 12}
DELTA = 2.0**-22
# Absolute error per |x| allowed on top: the float64 references of gelu and gelu_tanh
# compute 1 + erf and 1 + tanh, which cancel for x < 0 (exact to 2^-53 |x| only), and
# gelu' = cdf + x pdf cancels in float32 for x < 0 (2^-24 |x pdf|).
# bsilu' = sigma' (2 - (x + alpha) tanh(x/2)) cancels in float32 near its root x = 1.49
# (like silu'', whose band bound below has an absolute term); bsilu = B-SiLU' - 1 loses
# up to 7 ulp just right of 0, where it is about -0.06.
ABSOLUTE_PER_X = {("gelu", "value"): 2.0**-51, ("gelu", "derivative"): 2.0**-22,
                  ("bsilu", "value"): 2.0**-22, ("bsilu", "derivative"): 2.0**-22,
                  ("gelu_tanh", "value"): 2.0**-51, ("gelu_tanh", "derivative"): 2.0**-51}


@pytest.fixture(autouse=True)
def gradual_underflow():
    """Subnormals as IEEE has them: the harness's training (run by earlier tests in the
    suite) turns on flush-to-zero for the process's main thread, which the interpreter's
    NumPy arithmetic would inherit. False is torch's default."""
    torch.set_flush_denormal(False)


@pytest.fixture(autouse=True)
def fused_multiply_add(monkeypatch):
    """The GPU's fma, rounded once, in place of the interpreter's x * y + z."""
    def create_fma(self, x, y, z):
        exact = x.data.astype(np.float64) * y.data.astype(np.float64) + z.data
        return interpreter.TensorHandle(exact.astype(z.data.dtype), z.dtype.scalar)

    if interpreting():
        monkeypatch.setattr(interpreter.InterpreterBuilder, "create_fma", create_fma)


@pytest.fixture(autouse=True)
def gpu_min_max(monkeypatch):
    """A GPU's min and max in the interpreter: PTX min.f32 / max.f32 (tl.minimum,
    tl.maximum and tl.clamp without PropagateNan.ALL) return the other operand where one
    is NaN. Triton 3.8's interpreter does so; earlier ones propagated NaN (NumPy's
    minimum), which hid twins that lose NaN on a GPU. Every triton version is tested as
    the GPU runs."""
    def clampf(self, arg, lo, hi, propagate_nans):
        if propagate_nans == interpreter._ir.PROPAGATE_NAN.NONE:
            return self.binary_op(self.binary_op(arg, lo, np.fmax), hi, np.fmin)
        return self.ternary_op(arg, lo, hi, np.clip)

    if interpreting():
        builder = interpreter.InterpreterBuilder
        monkeypatch.setattr(builder, "create_minnumf",
                            lambda self, lhs, rhs: self.binary_op(lhs, rhs, np.fmin))
        monkeypatch.setattr(builder, "create_maxnumf",
                            lambda self, lhs, rhs: self.binary_op(lhs, rhs, np.fmax))
        monkeypatch.setattr(builder, "create_clampf", clampf)


@triton.jit
def _eval_kernel(x_ptr, y_ptr, n, p0, p1, p2, FN: tl.constexpr, N_PARAMS: tl.constexpr,
                 BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    one = tl.full((1,), 1.0, tl.float32)
    y = _apply(FN, N_PARAMS, x, one * p0, one * p1, one * p2)
    tl.store(y_ptr + offsets, y, mask=mask)


def sweep() -> np.ndarray:
    info = np.finfo(np.float32)
    dense = np.arange(-20 * 4096, 20 * 4096 + 1, dtype=np.float64) / 4096
    magnitudes = np.logspace(-44, 38, 400)
    edges = [0.0, -0.0, info.tiny, -info.tiny, info.tiny / 8, -info.tiny / 8, info.max,
             -info.max, np.inf, -np.inf, np.nan, 0.625, -0.625, 3.0, -3.0, 88.0, -88.0,
             -103.0, 2.0**63, -(2.0**63), 2.0**70, -(2.0**70)]
    return np.concatenate([dense, magnitudes, -magnitudes, edges]).astype(np.float32)


def run_twin(fn, x: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    device = "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"
    xt = torch.from_numpy(x).to(device)
    out = torch.full_like(xt, 12345.0)  # poisoned: an unwritten element shows
    padded = list(params) + [0.0] * (3 - len(params))
    block = 2**16 if interpreting() else 1024
    _eval_kernel[(triton.cdiv(x.size, block),)](xt, out, x.size, *padded, FN=fn,
                                               N_PARAMS=len(params), BLOCK=block)
    return out.cpu().numpy()


def reference64(spec, which: str, x: np.ndarray, params) -> np.ndarray:
    with np.errstate(all="ignore"):
        return getattr(spec, which)(NUMPY, x.astype(np.float64), *map(float, params))


def ulp32(values: np.ndarray) -> np.ndarray:
    v = np.abs(values).astype(np.float32)
    return np.spacing(np.minimum(v, np.finfo(np.float32).max)).astype(np.float64)


CASES = [("activation", name) for name in BUILTIN_ACTIVATIONS] + [
    ("shape", name) for name in BUILTIN_SHAPES]


@pytest.mark.parametrize("storage", ["float32", "bfloat16"])
@pytest.mark.parametrize("which", ["value", "derivative"])
@pytest.mark.parametrize("kind,name", CASES)
def test_twin_within_contract(kind, name, which, storage):
    spec = get_activation(name) if kind == "activation" else get_shape(name)
    params = tuple(v for _, v in spec.params)
    fn = triton_functions(spec, storage)[0 if which == "value" else 1]
    x = sweep()
    got = run_twin(fn, x, params).astype(np.float64)
    assert_within_contract(spec, which, storage, x, got, f"{storage} twin")


def assert_within_contract(spec, which: str, storage: str, x: np.ndarray, got: np.ndarray,
                           path: str) -> None:
    """``got`` (float64 values of what ``path`` computed for ``x``) within the contract
    above against the float64 reference of ``spec``'s value or derivative."""
    name = spec.name
    params = tuple(v for _, v in spec.params)
    want = reference64(spec, which, x, params)
    with np.errstate(over="ignore"):
        want = np.where(np.isinf(want.astype(np.float32)), want.astype(np.float32), want)
    up = reference64(spec, which, (x.astype(np.float64) * (1 + DELTA)), params)
    down = reference64(spec, which, (x.astype(np.float64) * (1 - DELTA)), params)
    with np.errstate(all="ignore"):
        cond = np.nan_to_num(np.maximum(np.abs(up - want), np.abs(down - want)),
                             nan=0.0, posinf=0.0)

    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), x[np.isnan(got) != nan][:8]
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), (x[inf], got[inf], want[inf])
    ok = ~nan & ~inf
    err = np.abs(got[ok] - want[ok])
    if storage == "float32":
        ulps = ULPS[which]
        if which == "derivative":
            ulps = DERIVATIVE_ULPS.get(name, ulps)
        tol = ulps * ulp32(want[ok])
    else:
        tol = 2.0**-12 * np.abs(want[ok])
    # |x| between 1 and 2^64 (a NaN or infinite input has a finite result here at most)
    scale = np.clip(np.nan_to_num(np.abs(x[ok].astype(np.float64)), nan=1.0), 1.0, 2.0**64)
    tol = tol + cond[ok] + FLOOR * scale
    if (name, which) in ABSOLUTE_PER_X:
        tol = tol + ABSOLUTE_PER_X[name, which] * np.abs(x[ok].astype(np.float64))
    worst = np.argmax(err - tol)
    assert np.all(err <= tol), (
        f"{name} {which} ({path}) at x={x[ok][worst]!r}: got {got[ok][worst]!r}, "
        f"want {want[ok][worst]!r}, error {err[worst]:.3g} > {tol[worst]:.3g}")


# --- phi'' twins (the saturation band's backward) ------------------------------------

SECOND = [name for name in BUILTIN_ACTIVATIONS
          if get_activation(name).second_derivative is not None]


@pytest.mark.parametrize("name", SECOND)
def test_second_derivative_twin_within_contract(name):
    """phi'' as float32 and 16-bit storage run it (fast twin or precise one): 8 ulp plus
    2^-22 sup |phi''| absolute, plus cond and floor as above. The absolute term is what
    the band's backward sees (s phi'' / m is added to terms of that size) and covers the
    roots of phi'' (silu's at 2.3994, tanh's at 0), where the factors cancel."""
    from gaaf_kernels.registry import triton_second_derivative

    spec = get_activation(name)
    params = tuple(v for _, v in spec.params)
    x = sweep()
    got = run_twin(triton_second_derivative(spec, "float32"), x, params).astype(np.float64)
    want = reference64(spec, "second_derivative", x, params)
    up = reference64(spec, "second_derivative", x.astype(np.float64) * (1 + DELTA), params)
    down = reference64(spec, "second_derivative", x.astype(np.float64) * (1 - DELTA), params)
    with np.errstate(all="ignore"):
        cond = np.nan_to_num(np.maximum(np.abs(up - want), np.abs(down - want)),
                             nan=0.0, posinf=0.0)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), x[np.isnan(got) != nan][:8]
    ok = ~nan
    peak = np.abs(want[ok]).max()
    scale = np.clip(np.nan_to_num(np.abs(x[ok].astype(np.float64)), nan=1.0), 1.0, 2.0**64)
    tol = 8 * ulp32(want[ok]) + DELTA * peak + cond[ok] + FLOOR * scale
    err = np.abs(got[ok] - want[ok])
    worst = np.argmax(err - tol)
    assert np.all(err <= tol), (
        f"{name}'' at x={x[ok][worst]!r}: got {got[ok][worst]!r}, want {want[ok][worst]!r}, "
        f"error {err[worst]:.3g} > {tol[worst]:.3g}")
