"""Clear errors and messages where GAAF cannot do what is asked: TorchScript, settings
that leave float32's range, a third derivative; the first compile announced once."""

import logging

import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import torch_composite
from gaaf_kernels.adapters.torch import GAAF, gaaf
from support import compile_composite, requires_triton


def model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 3), GAAF("tanh"))


def test_torchscript_names_torch_export():
    with pytest.raises(RuntimeError, match="TorchScript.*torch.export"):
        torch.jit.script(model())
    with pytest.raises(RuntimeError, match="TorchScript.*torch.export"):
        torch.jit.trace(model(), torch.randn(2, 3))
    with pytest.raises(RuntimeError, match="TorchScript.*torch.export"):
        torch.jit.trace(lambda t: gaaf(t, "relu"), torch.randn(2, 3))
    exported = torch.export.export(model(), (torch.randn(2, 3),))  # what the message names
    assert exported.module()(torch.randn(2, 3)).shape == (2, 3)


@pytest.mark.parametrize("kwargs,match", [
    ({"K": 1e-50}, "K=1e-50 leaves float32's range"),
    ({"K": 1e300}, "K=1e\\+300 leaves float32's range"),
    ({"shape_params": {"c": 1e-300}}, "c=1e-300 of shape .gaussian. rounds to 0 in float32"),
    ({"shape": "laplace", "shape_params": {"c": 1e40}}, "rounds to inf in float32"),
    ({"activation_params": {}, "shape": "constant", "shape_params": {"value": -1e39}},
     "rounds to -inf"),
])
def test_settings_outside_float32_are_refused(kwargs, match):
    """They passed float64 validation and gave -inf or NaN everywhere in float32."""
    with pytest.raises(ValueError, match=match):
        ref.resolve("tanh", **kwargs)
    with pytest.raises(ValueError, match=match):
        GAAF("tanh", **kwargs)


def test_small_but_representable_settings_still_work():
    x = np.array([0.25, -1.5], dtype=np.float32)
    y = ref.forward(x, "tanh", K=1e-30, shape_params={"c": 1e-30})
    assert np.isfinite(y).all()


def test_first_compile_is_announced_once(monkeypatch, caplog):
    compile_composite(monkeypatch)
    monkeypatch.setattr(torch_composite, "_compiled", {})
    monkeypatch.setattr(torch_composite, "_announced", False)
    with caplog.at_level(logging.INFO, logger="gaaf_kernels"):
        gaaf(torch.randn(5), "tanh")
        gaaf(torch.randn(5), "relu")
    lines = [r.getMessage() for r in caplog.records if r.name == "gaaf_kernels"]
    assert len(lines) == 1 and "GAAF_COMPILE=0" in lines[0], lines


@requires_triton
def test_softsign_twin_derivative_is_zero_beyond_float32s_normal_range():
    """It was 2^-126 from 2^63 on and at +-inf (a gradient of 2^-126 dy, not 0)."""
    from gaaf_kernels.reference import get_activation
    from gaaf_kernels.registry import triton_functions
    from test_accuracy import run_twin

    x = np.array([2.0**63, -(2.0**70), np.inf, -np.inf, 1e38], dtype=np.float32)
    fn = triton_functions(get_activation("softsign"), "float32")[1]
    np.testing.assert_array_equal(run_twin(fn, x, ()), 0.0)
    assert np.isnan(run_twin(fn, np.array([np.nan], dtype=np.float32), ()))[0]


@requires_triton
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_band_at_zero_is_zero_in_every_dtype(dtype):
    """bf16 tanh with band=True gave -6e-12 at x = 0 (tanh'(0) was 1 - 2^-23)."""
    x = torch.zeros(4, dtype=dtype)
    for backend in ("triton", "torch"):
        y = gaaf(x, "tanh", band=True, backend=backend)
        assert torch.equal(y, torch.zeros_like(y)), (backend, y)
