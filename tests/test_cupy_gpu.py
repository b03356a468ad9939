"""CuPy on a GPU: results, streams and ``out=`` (run by scripts/gpu_check.sh)."""

import runpy
from pathlib import Path

import numpy as np
import pytest

from gaaf_kernels import reference as ref

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
try:
    HAVE_GPU = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:  # CuPy imports without a GPU but cannot run anything
    HAVE_GPU = False

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not HAVE_GPU, reason="needs a CUDA device for CuPy")]

from gaaf_kernels.adapters import cupy as gaaf_cupy  # noqa: E402

TOL = {"float16": dict(rtol=2e-3, atol=1e-5), "float32": dict(rtol=1e-5, atol=1e-5),
       "float64": dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "mish"])
def test_results_match_reference(activation, dtype):
    host = (np.random.default_rng(0).standard_normal((64, 129)) * 3).astype(dtype)
    x = cupy.asarray(host)
    y = gaaf_cupy.forward(x, activation)
    dx = gaaf_cupy.backward(x, x, activation)
    assert isinstance(y, cupy.ndarray) and y.dtype == x.dtype
    np.testing.assert_allclose(cupy.asnumpy(y).astype(np.float64),
                               ref.forward(host, activation).astype(np.float64), **TOL[dtype])
    np.testing.assert_allclose(cupy.asnumpy(dx).astype(np.float64),
                               ref.backward(host, host, activation).astype(np.float64),
                               **TOL[dtype])


def test_non_default_stream_orders_work():
    n = 1 << 24
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = cupy.zeros(n, dtype=cupy.float32)
        for _ in range(20):  # keep the stream busy so a race would show
            x += 0.05
        y = gaaf_cupy.forward(x, "tanh")
        total = float(y[-1])  # synchronizes on this stream
    want = float(ref.forward(np.array([np.float32(0.05) * 20], np.float32), "tanh")[0])
    assert total == pytest.approx(want, abs=1e-4)
    assert cupy.cuda.get_current_stream() != stream  # restored


def test_out_and_non_contiguous():
    x = cupy.asarray(np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32))
    out = cupy.full_like(x, cupy.nan)
    assert gaaf_cupy.forward(x, "relu", out=out) is out
    np.testing.assert_allclose(cupy.asnumpy(out), ref.forward(cupy.asnumpy(x), "relu"),
                               rtol=1e-5, atol=1e-6)
    sliced = x[:, ::2]
    np.testing.assert_allclose(cupy.asnumpy(gaaf_cupy.forward(sliced, "relu")),
                               ref.forward(cupy.asnumpy(sliced), "relu"), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="shape, dtype and device"):
        gaaf_cupy.forward(x, out=cupy.empty((32, 65), cupy.float32))


def test_cupy_mlp_example_on_gpu():
    example = runpy.run_path(str(Path(__file__).resolve().parent.parent / "examples" /
                                 "cupy_mlp.py"))
    losses = example["train"](steps=30, xp=cupy)
    assert losses[-1] < 0.5 * losses[0]
