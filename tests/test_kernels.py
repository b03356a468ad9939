"""The fused Triton kernels against the NumPy reference (interpreter on CPU)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.kernels import launch
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES
from gaaf_kernels.verify import TOLERANCES, compare, reference_on, sample_inputs
from support import ALL_DTYPES, kernel_device, requires_triton

pytestmark = requires_triton
DEV = kernel_device()


def config(activation="tanh", shape=None, **kwargs):
    return ref.resolve(activation, shape, **kwargs)


def check_against_reference(x: torch.Tensor, activation="tanh", shape=None, **kw):
    cfg = config(activation, shape, **kw)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(x.dtype)
    kwargs = {"activation": activation, "shape": shape, **kw}
    y = launch.forward(x.to(DEV), cfg)
    dx = launch.backward(x.to(DEV), dy.to(DEV), cfg)
    for got, want in [(y, reference_on(ref.forward, x, cfg_kwargs=kwargs)),
                      (dx, reference_on(ref.backward, x, dy, cfg_kwargs=kwargs))]:
        assert got.dtype == x.dtype and got.shape == x.shape
        max_abs, max_rel, ok = compare(got.cpu(), want)
        assert ok, (activation, shape, x.dtype, max_abs, max_rel)
    return y, dx


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("shape", BUILTIN_SHAPES)
@pytest.mark.parametrize("activation", BUILTIN_ACTIVATIONS)
def test_catalogue_matches_reference(activation, shape, dtype):
    check_against_reference(sample_inputs(dtype, n=512), activation, shape)


def test_compare_detects_a_wrong_value():
    want = torch.linspace(-1, 1, 11)
    assert compare(want.clone(), want)[2]
    bad = want.clone()
    bad[3] += 1e-3
    assert not compare(bad, want)[2]
    nan = want.clone()
    nan[0] = float("nan")
    assert not compare(nan, want)[2]


def test_runtime_parameters_and_K():
    x = sample_inputs(torch.float64, n=256)
    check_against_reference(x, "softplus", "shifted_sigmoid", K=37.5,
                            activation_params={"beta": 2.5, "threshold": 7.0},
                            shape_params={"shift": 1.5, "slope": -0.75})
    check_against_reference(x, "elu", "laplace", activation_params={"alpha": 0.3},
                            shape_params={"c": 0.4})


@pytest.mark.parametrize("n", [1, 15, 16, 17, 31, 32, 33, 100])
def test_sizes_around_the_block_and_poisoned_output(n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 3
    cfg = config("tanh")
    out = torch.full_like(x, float("nan")).to(DEV)
    y = launch.forward(x.to(DEV), cfg, out=out, block_size=16)
    assert y is out
    np.testing.assert_allclose(y.cpu().numpy(), ref.forward(x.numpy(), "tanh"), rtol=1e-5,
                               atol=1e-6)
    dy = torch.ones_like(x)
    dout = torch.full_like(x, 12345.0).to(DEV)
    dx = launch.backward(x.to(DEV), dy.to(DEV), cfg, out=dout, block_size=16)
    np.testing.assert_allclose(dx.cpu().numpy(), ref.backward(x.numpy(), dy.numpy(), "tanh"),
                               rtol=1e-5, atol=1e-6)


def test_forced_int64_offsets_agree():
    x = sample_inputs(torch.float32, n=300)
    cfg = config("gelu")
    y32 = launch.forward(x.to(DEV), cfg, block_size=64)
    y64 = launch.forward(x.to(DEV), cfg, block_size=64, force_int64=True)
    dx64 = launch.backward(x.to(DEV), x.to(DEV), cfg, block_size=64, force_int64=True)
    dx32 = launch.backward(x.to(DEV), x.to(DEV), cfg, block_size=64)
    torch.testing.assert_close(y64, y32, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(dx64, dx32, rtol=0, atol=0, equal_nan=True)


def test_zero_dim_and_empty():
    cfg = config("relu")
    x0 = torch.tensor(0.75, device=DEV)
    y0 = launch.forward(x0, cfg)
    assert y0.shape == ()
    assert y0.item() == pytest.approx(float(ref.forward(np.float32(0.75), "relu")))
    empty = torch.empty(0, 5, device=DEV)
    assert launch.forward(empty, cfg).shape == (0, 5)
    assert launch.backward(empty, empty, cfg).shape == (0, 5)


def _layouts():
    base = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 3
    return {
        "channels_last": (base.to(memory_format=torch.channels_last), True),
        "transposed": (base.transpose(1, 3), True),
        "permuted": (base.permute(3, 1, 0, 2), True),
        "sliced": (base[:, :, 1:3, ::2], False),
        "expanded": (torch.randn(4, 1).expand(4, 6), False),
        "offset": (base.reshape(-1)[7:67].reshape(6, 10), True),
    }


@pytest.mark.parametrize("name", list(_layouts()))
def test_layouts(name):
    x, dense = _layouts()[name]
    x = x.to(DEV)
    cfg = config("relu")
    y = launch.forward(x, cfg)
    dy = torch.randn(x.shape).to(DEV)
    dx = launch.backward(x, dy, cfg)
    if dense:  # processed in place in memory order: the layout is kept
        assert y.stride() == x.stride() and dx.stride() == x.stride()
    else:
        assert y.is_contiguous()
    xs = x.cpu().contiguous().numpy()
    np.testing.assert_allclose(y.cpu().numpy(), ref.forward(xs, "relu"), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx.cpu().numpy(),
                               ref.backward(xs, dy.cpu().contiguous().numpy(), "relu"),
                               rtol=1e-6, atol=1e-7)


def test_grad_output_in_another_layout():
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last).to(DEV)
    dy = torch.randn(2, 3, 4, 5).to(DEV)  # contiguous, unlike x
    dx = launch.backward(x, dy, config("tanh"))
    assert dx.stride() == x.stride()
    want = ref.backward(x.cpu().contiguous().numpy(), dy.cpu().numpy(), "tanh")
    np.testing.assert_allclose(dx.cpu().numpy(), want, rtol=1e-5, atol=1e-6)


def test_out_is_validated():
    x = torch.randn(4, 4).to(DEV)
    cfg = config("tanh")
    with pytest.raises(ValueError, match="shape, dtype and device"):
        launch.forward(x, cfg, out=torch.empty(4, 5).to(DEV))
    with pytest.raises(ValueError, match="shape, dtype and device"):
        launch.forward(x, cfg, out=torch.empty(4, 4, dtype=torch.float64).to(DEV))
    with pytest.raises(ValueError, match="strides"):
        launch.forward(x, cfg, out=torch.empty(4, 4).t().to(DEV))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64])
def test_unsupported_dtypes(dtype):
    with pytest.raises(TypeError, match="float16, bfloat16, float32, float64"):
        launch.forward(torch.zeros(3, dtype=dtype), config())


def test_tolerance_table_covers_every_dtype():
    assert set(TOLERANCES) == set(ALL_DTYPES)


def test_without_interpreter_import_works_and_triton_backend_explains():
    code = textwrap.dedent("""
        import os
        os.environ.pop("TRITON_INTERPRET", None)
        import torch
        import gaaf_kernels as gk
        from gaaf_kernels.adapters.torch import gaaf
        assert "tanh" in gk.activations()
        print(float(gaaf(torch.tensor([0.5]), backend="torch")[0]))
        try:
            gaaf(torch.tensor([0.5]), backend="triton")
        except RuntimeError as exc:
            print("RuntimeError:", exc)
    """)
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    env["GAAF_COMPILE"] = "0"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present, so the CPU-without-interpreter path is moot")
    assert "RuntimeError: the Triton backend needs a CUDA tensor" in done.stdout
    assert "TRITON_INTERPRET=1" in done.stdout


def test_backward_rejects_mismatched_grad_output():
    x = torch.randn(4).to(DEV)
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        launch.backward(x, torch.randn(4, dtype=torch.float64).to(DEV), config())
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        launch.backward(x, torch.randn(5).to(DEV), config())
