"""The worked example of docs/custom-activations.md: examples/custom_activation.py.

Runs the example module (which registers ``isru``), then checks the Triton kernels
(under the interpreter on CPU), the PyTorch composite and ``GAAF`` against the NumPy
reference. A NumPy-only twin (``array_generic=False``) checks the path where the
PyTorch backend evaluates user functions through the reference.

Tolerances: float64 1e-13, float32 1e-5 (``|got - want| <= atol + rtol * |want|``).
Both sides round ``x*K`` alike and use the same formulas, so only sqrt/exp rounding
differs (seen: 0 for the kernels, 5e-7 for the compiled torch path in float32).
"""

from __future__ import annotations

import math
import os
import runpy
import sys
from pathlib import Path

# The interpreter must be chosen before any @triton.jit runs; `make test` sets it for
# the whole run. Set it here only if nobody has imported the kernels without it.
if "TRITON_INTERPRET" not in os.environ and "gaaf_kernels.kernels.gaaf" not in sys.modules:
    os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import gaaf_kernels as gk  # noqa: E402
from gaaf_kernels import reference  # noqa: E402
from gaaf_kernels.adapters.torch import GAAF, gaaf, gaaf_backward  # noqa: E402
from gaaf_kernels.kernels import launch  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_activation.py"
TOLERANCES = {torch.float64: (1e-13, 1e-13), torch.float32: (1e-5, 1e-5)}
DTYPES = [torch.float32, torch.float64]
PARAMS = [None, {"alpha": 0.25}]

# The interpreter evaluates inf - inf, 1/0 etc. with NumPy, which warns; the results
# are checked below.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.runtime.interpreter")

_example = runpy.run_path(str(EXAMPLE))


def _numpy_value(x, alpha):
    t = 1.0 / x
    far = np.sign(x) / np.sqrt(alpha + t * t)
    near = x / np.sqrt(1.0 + alpha * (x * x))
    return np.where(np.abs(x) > 1.0, far, near)


def _numpy_derivative(x, alpha):
    r = 1.0 / np.sqrt(1.0 + alpha * (x * x))
    return r * r * r


gk.register_activation(
    "isru_numpy_only",
    triton_value=_example["isru_value"],
    triton_derivative=_example["isru_derivative"],
    numpy_value=_numpy_value,
    numpy_derivative=_numpy_derivative,
    params={"alpha": 1.0},
    default_shape="gaussian",
    default_shape_params={"c": 3.0},
)


def _triton_runs_here() -> bool:
    return torch.cuda.is_available() or launch.interpreting()


def _kernel_device() -> torch.device:
    cuda = torch.cuda.is_available() and not launch.interpreting()
    return torch.device("cuda" if cuda else "cpu")


def _inputs(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    x = 3 * torch.randn(40, 33, dtype=torch.float64, generator=gen)
    specials = [math.inf, -math.inf, math.nan, 0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e-30]
    x.view(-1)[: len(specials)] = torch.tensor(specials, dtype=torch.float64)
    return x.to(dtype)


def _assert_close(got: torch.Tensor, want: np.ndarray, x: torch.Tensor) -> None:
    atol, rtol = TOLERANCES[x.dtype]
    g = got.detach().cpu().numpy()
    assert g.dtype == want.dtype and g.shape == want.shape
    np.testing.assert_array_equal(np.isnan(want), np.isnan(x.detach().numpy()))  # no new NaN
    np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(g[~finite], want[~finite])
    np.testing.assert_allclose(g[finite], want[finite], atol=atol, rtol=rtol)


def _reference(x: torch.Tensor, dy: torch.Tensor, name: str, params):
    y = reference.forward(x.numpy(), name, activation_params=params)
    dx = reference.backward(x.numpy(), dy.numpy(), name, activation_params=params)
    return y, dx


def test_registered():
    assert "isru" in gk.activations()
    cfg = reference.resolve("isru")
    assert cfg.shape.name == "gaussian" and cfg.shape_params == (3.0,)
    assert cfg.activation_params == (1.0,)
    with pytest.raises(ValueError, match="alpha"):
        reference.resolve("isru", activation_params={"beta": 1.0})


def test_reference_limits():
    x = np.array([-np.inf, np.inf, np.nan, 0.0, 1e300, -1e300])
    y = reference.forward(x, "isru", activation_params={"alpha": 4.0})
    assert y[0] == -0.5 and y[1] == 0.5 and np.isnan(y[2]) and y[4] == 0.5 and y[5] == -0.5
    dx = reference.backward(x, np.ones_like(x), "isru", shape="none")
    np.testing.assert_array_equal(dx, [0.0, 0.0, np.nan, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_kernels_match_reference(dtype, params):
    if not _triton_runs_here():
        pytest.skip("Triton needs CUDA or TRITON_INTERPRET=1 set before gaaf_kernels is "
                    "imported (make test sets it)")
    x = _inputs(dtype)
    dy = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(8))
    y_ref, dx_ref = _reference(x, dy, "isru", params)
    cfg = reference.resolve("isru", activation_params=params)
    device = _kernel_device()
    _assert_close(launch.forward(x.to(device), cfg), y_ref, x)
    _assert_close(launch.backward(x.to(device), dy.to(device), cfg), dx_ref, x)


@pytest.mark.parametrize("name", ["isru", "isru_numpy_only"])
@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_path_matches_reference(dtype, params, name):
    x = _inputs(dtype)
    dy = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(8))
    y_ref, dx_ref = _reference(x, dy, name, params)
    _assert_close(gaaf(x, name, activation_params=params, backend="torch"), y_ref, x)
    _assert_close(gaaf_backward(x, dy, name, activation_params=params, backend="torch"),
                  dx_ref, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_module_autograd(dtype):
    x = _inputs(dtype).requires_grad_()
    module = GAAF("isru", activation_params={"alpha": 0.25}, backend="torch")
    assert "isru" in repr(module) and "alpha=0.25" in repr(module)
    dy = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(8))
    module(x).backward(dy)
    y_ref, dx_ref = _reference(x.detach(), dy, "isru", {"alpha": 0.25})
    _assert_close(x.grad, dx_ref, x)
