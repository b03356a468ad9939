"""convert(functional=True): activation calls in a model's forward become GAAF, in eager
mode and under torch.compile(fullgraph=True), and calls outside the model do not.

Expected values come from two independent routes: with ``shape="none"`` the converted
model must compute what the plain model computes (the call's parameters were kept), and
with a visible shape it must compute what explicit ``gaaf()`` calls compute.
"""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gaaf_kernels.adapters.convert import GAAFFunctionMode
from gaaf_kernels.adapters.torch import GAAF, convert, convert_report, gaaf

K = 8.0  # a coarse sawtooth, so that GAAF's forward visibly differs from the plain one
SETTINGS = {"shape": "gaussian", "K": K}


class Calls(nn.Module):
    """A forward made of activation calls, in their functional and method forms."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4).double()

    def forward(self, x):
        h = self.lin(x)
        parts = [torch.tanh(h), h.sigmoid(), F.relu(h), F.gelu(h), F.gelu(h, approximate="tanh"),
                 F.silu(h), F.mish(h), F.elu(h, 0.5), F.leaky_relu(h, 0.2),
                 F.softplus(h, beta=2.0, threshold=3.0), F.hardtanh(h, -0.5, 0.25),
                 F.relu6(h * 4), F.selu(h), F.softsign(h), torch.special.expit(h)]
        return torch.stack(parts)


def explicit(h, **kw):
    """What Calls computes with GAAF, written as gaaf() calls."""
    def g(t, name, **p):
        return gaaf(t, name, activation_params=p or None, **kw)
    return torch.stack([
        g(h, "tanh"), g(h, "sigmoid"), g(h, "relu"), g(h, "gelu"), g(h, "gelu_tanh"),
        g(h, "silu"), g(h, "mish"), g(h, "elu", alpha=0.5), g(h, "leaky_relu", negative_slope=0.2),
        g(h, "softplus", beta=2.0, threshold=3.0), g(h, "hardtanh", min_val=-0.5, max_val=0.25),
        g(h * 4, "hardtanh", min_val=0.0, max_val=6.0), g(h, "selu"), g(h, "softsign"),
        g(h, "sigmoid")])


def _x(seed=0):
    return torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _grads(model, x):
    model.zero_grad()
    out = model(x)
    out.pow(2).sum().backward()
    return out.detach(), model.lin.weight.grad.clone()


def test_plain_shape_keeps_every_call_and_its_parameters():
    torch.manual_seed(0)
    plain = Calls()
    report = convert_report(copy.deepcopy(plain), functional=True, shape="none")
    converted = report.model
    want = _grads(plain, _x())
    got = _grads(converted, _x())
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert sum(report.functional.converted.values()) == 15
    assert report.functional.left_alone == {}


def test_calls_become_gaaf_and_outside_calls_do_not():
    torch.manual_seed(0)
    model = convert(Calls(), functional=True, **SETTINGS)
    x = _x()
    with torch.no_grad():
        want = explicit(model.lin(x), **SETTINGS)
        plain = explicit(model.lin(x), shape="none")
        got = model(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert (got - plain).abs().max() > 1e-3  # GAAF did something: |g| <= 0.5/K
    y = torch.linspace(-3, 3, 7, dtype=torch.float64)
    torch.testing.assert_close(torch.tanh(y), torch.tensor([math.tanh(v) for v in y.tolist()],
                                                           dtype=torch.float64))
    before = dict(model._gaaf_functional.converted)
    F.gelu(y), torch.tanh(y)
    assert dict(model._gaaf_functional.converted) == before


def test_gradient_gains_the_shape():
    model = convert(Calls(), functional=True, **SETTINGS)
    x = _x()
    h = model.lin(x).detach().requires_grad_()
    torch.tanh(h).sum().backward()
    plain_grad = h.grad.clone()
    h.grad = None

    class One(nn.Module):
        def forward(self, t):
            return torch.tanh(t)

    convert(One(), functional=True, **SETTINGS)(h).sum().backward()
    s = torch.exp(-h.detach() ** 2 / 3.0)  # the gaussian shape, c = 3
    # dx = phi' + s + g s' with |g| <= 0.5/K and |s'| <= sqrt(2/(3e)) < 0.5
    assert (h.grad - plain_grad - s).abs().max() <= 0.5 / K * 0.5 + 1e-12


def test_in_place_calls_convert_in_place_with_correct_gradients():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4).double()

        def forward(self, x):
            a, b, c, d = self.lin(x), self.lin(x) * 2, self.lin(x) - 1, self.lin(x) + 1
            ra = F.relu(a, inplace=True)
            assert ra is a  # the call's own tensor, written in place
            b.tanh_()
            F.leaky_relu_(c, 0.3)
            torch.sigmoid_(d)
            return torch.stack([a, b, c, d])

    class OutOfPlace(InPlace):
        def forward(self, x):
            h = self.lin(x)
            return torch.stack([gaaf(h, "relu", **SETTINGS), gaaf(h * 2, "tanh", **SETTINGS),
                                gaaf(h - 1, "leaky_relu", activation_params={"negative_slope": 0.3},
                                     **SETTINGS),
                                gaaf(h + 1, "sigmoid", **SETTINGS)])

    torch.manual_seed(0)
    inplace = InPlace()
    reference = OutOfPlace()
    reference.load_state_dict(inplace.state_dict())
    convert(inplace, functional=True, **SETTINGS)
    x = _x(1)
    torch.testing.assert_close(_grads(inplace, x), _grads(reference, x), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(inplace(x), reference(x), rtol=1e-12, atol=1e-12)


def test_gaaf_modules_inside_are_not_converted_twice():
    """The composite's own torch.tanh must stay torch.tanh inside a functional model."""
    class WithModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = GAAF("tanh", shape="none")

        def forward(self, x):
            return self.act(x) + gaaf(x, "sigmoid", shape="none")

    model = convert(WithModule(), functional=True, **SETTINGS)
    x = _x()
    want = torch.tanh(x) + torch.sigmoid(x)
    torch.testing.assert_close(model(x), want, rtol=1e-14, atol=0)
    assert not model._gaaf_functional.converted
    # Under torch.compile GAAF may be traced as its formulas: they must stay as they are.
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), want, rtol=1e-14, atol=0)


def test_unhandled_calls_and_unselected_kinds_are_reported():
    class Mixed(nn.Module):
        def forward(self, x):
            return F.celu(x) + torch.tanh(x) + F.gelu(x) + F.relu(x.int()).double()

    report = convert_report(Mixed(), functional=True, activations={"gelu"})

    model = report.model
    x = _x()
    torch.testing.assert_close(
        model(x), F.celu(x) + torch.tanh(x) + gaaf(x, "gelu") + F.relu(x.int()).double())
    assert report.functional.converted == {("F.gelu", "gelu"): 1}
    assert report.functional.left_alone == {
        ("F.celu", "elu only for alpha=1, and calls of celu are not replaced "
                   "(nn.CELU(alpha=1) modules are)"): 1,
        ("torch.tanh", "tanh not selected"): 1, ("F.relu", "input of type torch.int32"): 1}
    assert "1 x F.celu left alone" in report.summary()


class Few(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4).double()

    def forward(self, x):
        h = self.lin(x)
        return torch.tanh(h) + F.gelu(h) + F.leaky_relu(h, 0.2) + F.relu(h * 2, inplace=True)


def test_compile_fullgraph_matches_eager_and_leaves_outside_calls():
    torch.manual_seed(0)
    model = convert(Few(), functional=True, **SETTINGS)
    x = _x()
    eager = _grads(model, x)
    h = model.lin(x).detach()
    with torch.no_grad():
        plain = torch.tanh(h) + F.gelu(h) + F.leaky_relu(h, 0.2) + F.relu(h * 2)
    assert (eager[0] - plain).abs().max() > 1e-3
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    model.zero_grad()
    out = compiled(x)
    out.pow(2).sum().backward()
    torch.testing.assert_close((out.detach(), model.lin.weight.grad), eager, rtol=1e-12,
                               atol=1e-12)

    def outside(t):
        return torch.tanh(t)

    torch.testing.assert_close(torch.compile(outside, fullgraph=True, backend="aot_eager")(h),
                               torch.tanh(h), rtol=0, atol=0)


def test_model_keeps_its_signature_name_and_survives_deepcopy():
    model = Calls()
    signature = inspect.signature(model.forward)
    convert(model, functional=True, **SETTINGS)
    assert inspect.signature(model.forward) == signature
    assert type(model).__name__ == "Calls" and isinstance(model, Calls)
    twin = copy.deepcopy(model)
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=0, atol=0)
    assert sum(twin._gaaf_functional.converted.values()) == 15
    with pytest.raises(ValueError, match="already converted"):
        convert(model, functional=True)


def test_mode_as_a_context_manager():
    x = _x()
    with GAAFFunctionMode(activations={"tanh"}, **SETTINGS) as mode:
        got = torch.tanh(x) + F.relu(x)
    torch.testing.assert_close(got, gaaf(x, "tanh", **SETTINGS) + F.relu(x))
    assert mode.scope.converted == {("torch.tanh", "tanh"): 1}


def test_out_and_positional_arguments():
    """``out=`` of torch.tanh, and F.hardtanh's limits and in-place flag by position."""
    x = _x()
    out, y = torch.empty_like(x), x.clone()
    with GAAFFunctionMode(**SETTINGS) as mode:
        returned = torch.tanh(x, out=out)
        F.hardtanh(y, -0.5, 0.25, True)
    assert returned is out
    torch.testing.assert_close(out, gaaf(x, "tanh", **SETTINGS), rtol=0, atol=0)
    torch.testing.assert_close(y, gaaf(x, "hardtanh", activation_params={
        "min_val": -0.5, "max_val": 0.25}, **SETTINGS), rtol=0, atol=0)
    assert mode.scope.converted == {("torch.tanh", "tanh"): 1, ("F.hardtanh", "hardtanh"): 1}
