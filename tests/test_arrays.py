"""Array-agnostic entry points and the DLPack path, with NumPy standing in for CuPy."""

import runpy
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch

import gaaf_kernels as gk
from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import arrays, dlpack
from gaaf_kernels.adapters import cupy as gaaf_cupy
from gaaf_kernels.kernels.launch import interpreting

ROOT = Path(__file__).resolve().parent.parent
TOL = {np.float16: dict(rtol=2e-3, atol=1e-5), np.float32: dict(rtol=1e-5, atol=1e-6),
       np.float64: dict(rtol=1e-12, atol=1e-13)}


def sample(dtype=np.float32, shape=(6, 8), seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("entry", ["gk", "cupy_adapter"])
def test_numpy_in_numpy_out_matches_reference(dtype, entry):
    x, dy = sample(dtype), sample(dtype, seed=1)
    fwd = gk.forward if entry == "gk" else gaaf_cupy.forward
    bwd = gk.backward if entry == "gk" else gaaf_cupy.backward
    y = fwd(x, "gelu", K=5000.0)
    dx = bwd(x, dy, "gelu", K=5000.0)
    for got, want in [(y, ref.forward(x, "gelu", K=5000.0)),
                      (dx, ref.backward(x, dy, "gelu", K=5000.0))]:
        assert isinstance(got, np.ndarray) and got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   **TOL[dtype])


def test_torch_in_torch_out_and_differentiable():
    x = torch.randn(5, requires_grad=True)
    y = gk.forward(x, "silu")
    assert isinstance(y, torch.Tensor)
    y.sum().backward()
    want = ref.backward(x.detach().numpy(), np.ones(5, np.float32), "silu")
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5, atol=1e-6)
    dx = gk.backward(x.detach(), torch.ones(5), "silu")
    assert isinstance(dx, torch.Tensor)


def test_numpy_bfloat16_takes_the_reference():
    x = sample(np.float32).astype(ml_dtypes.bfloat16)
    y = gk.forward(x, "relu")
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y.astype(np.float32),
                                  ref.forward(x, "relu").astype(np.float32))


def test_read_only_input_is_never_written():
    x = sample()
    before = x.copy()
    x.flags.writeable = False
    gk.forward(x, "tanh")
    gaaf_cupy.backward(x, x, "tanh")
    np.testing.assert_array_equal(x, before)
    assert not x.flags.writeable


def test_input_is_shared_not_copied():
    x = sample()
    assert dlpack.import_array(x, "x", "NumPy").data_ptr() == x.ctypes.data
    sliced = sample(shape=(8, 8))[:, ::2]
    assert dlpack.import_array(sliced, "x", "NumPy").data_ptr() == sliced.ctypes.data


@pytest.mark.parametrize("make", [
    lambda a: a[:, ::2], lambda a: a.T, lambda a: a[::-1], lambda a: a[::-2, ::-1],
    lambda a: np.asfortranarray(a)], ids=["sliced", "transposed", "reversed",
                                          "reversed-strided", "fortran"])
def test_non_contiguous_inputs(make):
    x = make(sample(shape=(8, 6)))
    want = ref.forward(np.ascontiguousarray(x), "softplus")
    np.testing.assert_allclose(gaaf_cupy.forward(x, "softplus"), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gk.forward(x, "softplus"), want, rtol=1e-5, atol=1e-6)


def test_out_is_filled_and_returned():
    x = sample()
    out = np.full_like(x, np.nan)
    got = gaaf_cupy.forward(x, "relu", out=out)
    assert got is out
    np.testing.assert_allclose(out, ref.forward(x, "relu"), rtol=1e-5, atol=1e-6)
    dout = np.full_like(x, 7.0)
    assert gaaf_cupy.backward(x, x, "relu", out=dout) is dout
    np.testing.assert_allclose(dout, ref.backward(x, x, "relu"), rtol=1e-5, atol=1e-6)


def test_out_is_validated_before_any_work():
    x = sample()
    with pytest.raises(ValueError, match="shape, dtype and device"):
        gaaf_cupy.forward(x, out=np.empty((6, 9), np.float32))
    with pytest.raises(ValueError, match="shape, dtype and device"):
        gaaf_cupy.forward(x, out=np.empty((6, 8), np.float64))
    with pytest.raises(ValueError, match="strides"):
        gaaf_cupy.forward(x, out=np.asfortranarray(np.empty((6, 8), np.float32)))
    read_only = np.empty_like(x)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        gaaf_cupy.forward(x, out=read_only)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.complex64])
def test_dtype_errors(dtype):
    with pytest.raises(TypeError, match="float16, float32, float64"):
        gaaf_cupy.forward(np.zeros(3, dtype))
    with pytest.raises(TypeError, match="float16, float32, float64"):
        gk.forward(np.zeros(3, dtype))


def test_bfloat16_is_rejected_through_dlpack():
    x = np.zeros(3, ml_dtypes.bfloat16)
    with pytest.raises(TypeError, match="bfloat16 cannot cross DLPack"):
        gaaf_cupy.forward(x)


def test_unsupported_kinds_and_mixtures():
    with pytest.raises(TypeError, match="GAAF accepts torch.Tensor, numpy.ndarray"):
        gk.forward([1.0, 2.0])
    with pytest.raises(TypeError, match="same kind of array"):
        gk.backward(np.zeros(3, np.float32), torch.zeros(3))
    with pytest.raises(TypeError, match="expected a cupy.ndarray"):
        gaaf_cupy.forward(torch.zeros(3))
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        gaaf_cupy.backward(np.zeros(3, np.float32), np.zeros(4, np.float32))


def test_cuda_dlpack_objects_are_recognised():
    class FakeCudaArray:
        def __dlpack__(self, stream=None):
            raise AssertionError("not called")

        def __dlpack_device__(self):
            return (arrays.DLPACK_CUDA, 0)

    class FakeCpuArray(FakeCudaArray):
        def __dlpack_device__(self):
            return (arrays.DLPACK_CPU, 0)

    assert arrays._kind(FakeCudaArray()) == "dlpack-cuda"
    with pytest.raises(TypeError, match="unsupported array type"):
        arrays._kind(FakeCpuArray())
    with pytest.raises(TypeError, match="has no from_dlpack"):
        arrays._library_from_dlpack(FakeCudaArray())  # defined in a module without one


def test_cupy_mlp_example_learns_on_numpy():
    example = runpy.run_path(str(ROOT / "examples" / "cupy_mlp.py"))
    losses = example["train"](steps=30, xp=np)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.skipif(not interpreting(), reason="NumPy arrays reach the Triton kernels "
                    "only under TRITON_INTERPRET=1 (set by the Makefile)")
def test_out_is_written_by_the_kernel_itself(monkeypatch):
    """On the Triton path (CUDA; here the interpreter) ``out`` is the kernel's output."""
    from gaaf_kernels.adapters import torch as torch_adapter

    monkeypatch.setattr(torch_adapter, "select_backend", lambda backend, x: "triton")

    def no_copy(*args, **kwargs):
        raise AssertionError("out was filled by a copy, not by the kernel")

    monkeypatch.setattr(torch.Tensor, "copy_", no_copy)
    x, dy = sample(), sample(seed=1)
    out = np.full_like(x, np.nan)
    assert gaaf_cupy.forward(x, "elu", out=out) is out
    np.testing.assert_allclose(out, ref.forward(x, "elu"), rtol=1e-5, atol=1e-6)
    dout = np.full_like(x, np.nan)
    assert gaaf_cupy.backward(x, dy, "elu", out=dout) is dout
    np.testing.assert_allclose(dout, ref.backward(x, dy, "elu"), rtol=1e-5, atol=1e-6)


def test_numpy_without_torch_takes_the_reference(tmp_path):
    """Where PyTorch is not installed, NumPy arrays still work (through the reference)."""
    x, dy = sample(np.float32), sample(np.float32, seed=1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "dy.npy", dy)
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, gaaf_kernels as gk\n"
        f"d = {str(tmp_path)!r}\n"
        "x, dy = np.load(d + '/x.npy'), np.load(d + '/dy.npy')\n"
        "np.save(d + '/y.npy', gk.forward(x, 'gelu'))\n"
        "np.save(d + '/dx.npy', gk.backward(x, dy, 'gelu'))\n"
        "assert sys.modules['torch'] is None\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    # Compared with the fused PyTorch path of this process: two different implementations.
    y, dx = np.load(tmp_path / "y.npy"), np.load(tmp_path / "dx.npy")
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, gk.forward(x, "gelu"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, gk.backward(x, dy, "gelu"), rtol=1e-5, atol=1e-6)
