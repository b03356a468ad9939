"""convert() on real timm: its activation classes and a whole model, where timm imports.

timm needs torchvision, which does not load beside the CPU build of torch that the pinned
stack uses, so these run on the stack tests (``make test-stack``, torch 2.14.1 with
torchvision 0.29.1 and timm 1.0.31) and are skipped with that reason elsewhere. They also
hold tests/test_convert.py's stand-ins for timm's classes (module path and formula) to the
real ones.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from gaaf_kernels.adapters.torch import GAAF, convert_report

timm = pytest.importorskip("timm", reason="timm is not importable (it needs torchvision)")
test_convert = pytest.importorskip("test_convert")

# timm.layers.activations(_me) class name -> the GAAF activation convert() must give
# (test_convert.py's table for its stand-ins)
EXPECTED = {name: activation for name, activation in [
    ("Swish", "silu"), ("SwishMe", "silu"), ("Mish", "mish"), ("MishMe", "mish"),
    ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("HardSwish", "hardswish"),
    ("HardSwishMe", "hardswish"), ("HardSigmoid", "hardsigmoid"),
    ("HardSigmoidMe", "hardsigmoid"), ("GELU", "gelu"), ("GELUTanh", "gelu_tanh"),
    ("QuickGELU", "quick_gelu")]}


def _real(name: str) -> type:
    stand_in = test_convert.TIMM[name]
    return getattr(importlib.import_module(stand_in.__module__), name)


def _sweep() -> torch.Tensor:
    return torch.linspace(-8, 8, 2001, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(test_convert.TIMM))
def test_stand_in_is_timms_class(name):
    """Same module path and the same values as the real class (float64)."""
    real, stand_in = _real(name), test_convert.TIMM[name]
    assert real.__module__ == stand_in.__module__
    x = _sweep()
    torch.testing.assert_close(stand_in()(x), real()(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_timm_class_converts_to_its_formula(name):
    """convert() maps the real class to its catalogue activation; with shape="none" the
    GAAF module computes the class's own forward and gradient."""
    # the example forward is what lets the report call itself complete
    report = convert_report(nn.Sequential(_real(name)()), shape="none",
                            example_inputs=(_sweep(),))
    model = report.model
    assert isinstance(model[0], GAAF) and report.complete
    assert model[0].config.activation.name == EXPECTED[name]
    x = _sweep().requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    y, want = model(x), _real(name)()(xr)
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-10)
    (dx,) = torch.autograd.grad(y.sum(), x)
    (dxr,) = torch.autograd.grad(want.sum(), xr)
    # the kinks of the hard functions: timm's memory-efficient (*Me) backwards pick their
    # own one-sided derivative there
    smooth = (x.detach().abs() - 3).abs() > 1e-9
    torch.testing.assert_close(dx[smooth], dxr[smooth], rtol=1e-8, atol=1e-8)


def test_mobilenetv3_converts_and_trains_a_step():
    torch.manual_seed(0)
    model = timm.create_model("mobilenetv3_small_100", pretrained=False, num_classes=5)
    n_activations = sum(type(m).__module__.startswith(("timm.layers.act", "torch.nn.modules.act"))
                        for m in model.modules())
    report = convert_report(model, example_inputs=(torch.randn(2, 3, 64, 64),))
    model = report.model
    assert report.complete and report.left_alone == []
    assert len(report.converted) == n_activations == 42
    assert sum(isinstance(m, GAAF) for m in model.modules()) == 42
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, target = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(x), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
