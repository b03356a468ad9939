"""convert(): each class in the table becomes the GAAF activation with its formula; the
report; what is left alone and why; the docs tables agree with the code.

Every mapping is checked against the class itself: with ``shape="none"`` the GAAF module
must compute the module's forward and gradient (float64, |error| <= 1e-10 (1 + |y|)).
timm is not installed here (it needs torchvision), so its classes are stood in for by
classes with timm's module path and the formulas of timm/layers/activations*.py.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gaaf_kernels import reference
from gaaf_kernels.adapters.convert import conversion_table
from gaaf_kernels.adapters.functional import FUNCTIONS
from gaaf_kernels.adapters.torch import GAAF, convert, convert_report

os.environ.setdefault("HF_HUB_OFFLINE", "1")
hf = pytest.importorskip("transformers.activations", reason="transformers is not installed")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _timm(name: str, forward, module: str = "timm.layers.activations") -> type:
    cls = type(name, (nn.Module,), {"forward": lambda self, x: forward(x)})
    cls.__module__, cls.__qualname__ = module, name
    return cls


ME = "timm.layers.activations_me"
TIMM = {  # the formulas of timm 1.0.31
    "Swish": _timm("Swish", lambda x: x.mul(x.sigmoid())),
    "SwishMe": _timm("SwishMe", lambda x: x.mul(torch.sigmoid(x)), ME),
    "Mish": _timm("Mish", lambda x: x.mul(F.softplus(x).tanh())),
    "MishMe": _timm("MishMe", lambda x: x.mul(torch.tanh(F.softplus(x))), ME),
    "Sigmoid": _timm("Sigmoid", lambda x: x.sigmoid()),
    "Tanh": _timm("Tanh", lambda x: x.tanh()),
    "HardSwish": _timm("HardSwish", lambda x: x.mul(F.relu6(x + 3.0).div(6.0))),
    "HardSwishMe": _timm("HardSwishMe", lambda x: x * (x + 3).clamp(min=0, max=6).div(6.0), ME),
    "HardSigmoid": _timm("HardSigmoid", lambda x: F.relu6(x + 3.0) / 6.0),
    "HardSigmoidMe": _timm("HardSigmoidMe", lambda x: (x + 3).clamp(min=0, max=6).div(6.0), ME),
    "GELU": _timm("GELU", lambda x: F.gelu(x)),
    "GELUTanh": _timm("GELUTanh", lambda x: F.gelu(x, approximate="tanh")),
    "QuickGELU": _timm("QuickGELU", lambda x: x * torch.sigmoid(1.702 * x)),
    "HardMish": _timm("HardMish", lambda x: 0.5 * x * (x + 2).clamp(min=0, max=2)),
}


def _bloom_gelu():
    from transformers.models.bloom.modeling_bloom import BloomGelu

    return BloomGelu()


CONVERTED = [  # (module factory, the GAAF activation and parameters it must become)
    (nn.Tanh, "tanh", {}), (nn.Sigmoid, "sigmoid", {}), (nn.ReLU, "relu", {}),
    (nn.SELU, "selu", {}), (nn.SiLU, "silu", {}), (nn.Mish, "mish", {}),
    (nn.Softsign, "softsign", {}),
    (lambda: nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
    (lambda: nn.ELU(0.7), "elu", {"alpha": 0.7}),
    (lambda: nn.Softplus(beta=2.0, threshold=5.0), "softplus", {"beta": 2.0, "threshold": 5.0}),
    (lambda: nn.Hardtanh(-0.5, 2.0), "hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    (lambda: nn.ReLU6(inplace=True), "hardtanh", {"min_val": 0.0, "max_val": 6.0}),
    (nn.GELU, "gelu", {}), (lambda: nn.GELU("tanh"), "gelu_tanh", {}),
    (nn.Hardswish, "hardswish", {}), (nn.Hardsigmoid, "hardsigmoid", {}),
    (hf.GELUActivation, "gelu", {}),
    (lambda: hf.GELUActivation(use_gelu_python=True), "gelu", {}),
    (hf.GELUTanh, "gelu_tanh", {}),
    (lambda: hf.GELUTanh(use_gelu_tanh_python=True), "gelu_tanh", {}),
    (hf.NewGELUActivation, "gelu_tanh", {}), (hf.FastGELUActivation, "gelu_tanh", {}),
    (hf.AccurateGELUActivation, "gelu_tanh", {}), (hf.QuickGELUActivation, "quick_gelu", {}),
    (hf.SiLUActivation, "silu", {}), (hf.MishActivation, "mish", {}),
    (hf.ReLUSquaredActivation, "relu_squared", {}), (_bloom_gelu, "gelu_tanh", {}),
    *[(TIMM[n], a, {}) for n, a in [
        ("Swish", "silu"), ("SwishMe", "silu"), ("Mish", "mish"), ("MishMe", "mish"),
        ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("HardSwish", "hardswish"),
        ("HardSwishMe", "hardswish"), ("HardSigmoid", "hardsigmoid"),
        ("HardSigmoidMe", "hardsigmoid"), ("GELU", "gelu"), ("GELUTanh", "gelu_tanh"),
        ("QuickGELU", "quick_gelu")]],
]


# Looser than 1e-10, with the reason: PyTorch's hardsigmoid backward multiplies by 1/6
# rounded to float32, in float64 too; BloomGelu writes sqrt(2/pi) as 0.79788456.
RTOL = {"torch.Hardsigmoid": 2.0 ** -23, "transformers.BloomGelu": 1e-8}


def _name(factory) -> str:
    return type(factory()).__module__.split(".")[0] + "." + type(factory()).__qualname__


def _inputs() -> torch.Tensor:
    x = torch.linspace(-8.0, 8.0, 2001, dtype=torch.float64)
    return torch.cat([x, torch.tensor([-30.0, -3.0, 3.0, 25.0], dtype=torch.float64)])


def _value_and_grad(module, x):
    x = x.clone().requires_grad_()
    y = module(x * 1.0)  # not the leaf itself: in-place modules (ReLU6(inplace=True))
    (dx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return y.detach(), dx


@pytest.mark.parametrize("factory,activation,params", CONVERTED,
                         ids=[_name(f) + ("-" + str(p) if p else "") for f, _, p in CONVERTED])
def test_each_class_becomes_the_activation_with_its_formula(factory, activation, params):
    if activation not in reference.activation_names():
        pytest.skip(f"activation {activation} not registered yet")
    original = factory()
    x = _inputs()
    # Points where the formula has a kink: PyTorch's one-sided choice there is the test
    # of tests/test_opinfo.py; here the formula between them.
    kinks = torch.tensor([-3.0, 0.0, 3.0, -0.5, 2.0, 6.0], dtype=torch.float64)
    x = x[~torch.isin(x, kinks)]
    want_y, want_dx = _value_and_grad(original, x)
    report = convert_report(nn.Sequential(original), shape="none")
    model = report.model
    assert isinstance(model[0], GAAF)
    cfg = model[0].config
    assert cfg.activation.name == activation
    got_params = dict(zip(cfg.activation.param_names, cfg.activation_params))
    assert {k: got_params[k] for k in params} == pytest.approx(params)
    y, dx = _value_and_grad(model[0], x)
    tol = RTOL.get(_name(factory), 1e-10)
    torch.testing.assert_close(y, want_y, rtol=tol, atol=tol)
    torch.testing.assert_close(dx, want_dx, rtol=tol, atol=tol)
    assert [c.activation for c in report.converted] == [activation]
    assert report.left_alone == []


LEFT_ALONE = [
    (nn.PReLU, "learned parameters"), (nn.RReLU, "random slope"), (nn.GLU, "halves the input"),
    (lambda: nn.CELU(alpha=0.5), "alpha=0.5: CELU is elu only for alpha=1.0; no catalogue"),
    (nn.LogSigmoid, "no catalogue activation"),
    (lambda: hf.ClippedGELUActivation(-10, 10), r"gelu clipped to \[-10, 10\]"),
    (hf.LinearActivation, "identity"), (hf.LaplaceActivation, "no catalogue activation"),
    (hf.SqrtSoftplusActivation, "no catalogue activation"),
    (TIMM["HardMish"], "no catalogue activation"),
]


@pytest.mark.parametrize("factory,reason", LEFT_ALONE, ids=[_name(f) for f, _ in LEFT_ALONE])
def test_known_classes_without_an_exact_gaaf_are_reported(factory, reason):
    original = factory()
    report = convert_report(nn.Sequential(original))
    model = report.model
    assert model[0] is original
    assert report.converted == []
    [item] = report.left_alone
    assert item.path == "0" and re.search(reason, item.reason)
    with pytest.warns(UserWarning, match="left 1 activation modules alone"):
        convert(nn.Sequential(factory()))


def test_xielu_with_learned_parameters_is_reported():
    act = hf.XIELUActivation()
    report = convert_report(nn.Sequential(act))
    assert "learned parameters" in report.left_alone[0].reason


def test_gelu_activation_with_a_replaced_function_is_not_trusted():
    act = hf.GELUActivation()
    act.act = torch.tanh  # no longer the gelu its class defines
    report = convert_report(nn.Sequential(act))
    assert "self.act" in report.left_alone[0].reason


def test_gelu_classes_trust_only_their_own_gelu():
    """GELUActivation runs F.gelu, GELUTanh F.gelu(approximate="tanh"): each swapped for
    the other's is left alone, and a partial with the class's own keywords converts."""
    swapped, tanh_swapped, tanh_own = hf.GELUActivation(), hf.GELUTanh(), hf.GELUTanh()
    swapped.act = functools.partial(F.gelu, approximate="tanh")
    tanh_swapped.act = F.gelu
    tanh_own.act = functools.partial(F.gelu, approximate="tanh")
    report = convert_report(nn.Sequential(swapped, tanh_swapped, tanh_own))
    assert [(x.path, "self.act" in x.reason) for x in report.left_alone] == [
        ("0", True), ("1", True)]
    assert [(c.path, c.activation) for c in report.converted] == [("2", "gelu_tanh")]


def test_subclasses_follow_the_forward_they_run():
    class Inherits(nn.ReLU):  # runs nn.ReLU.forward: converted as relu
        pass

    class MyReLU(nn.ReLU):  # its own forward: unknown, reported
        def forward(self, x):
            return super().forward(x) * 2

    class Plain(nn.Module):  # not activation-like: neither converted nor reported
        def forward(self, x):
            return x

    report = convert_report(nn.Sequential(Inherits(), MyReLU(), Plain()))

    model = report.model
    assert isinstance(model[0], GAAF) and model[0].config.activation.name == "relu"
    assert type(model[1]) is MyReLU and type(model[2]) is Plain
    [item] = report.left_alone
    assert item.path == "1" and "unrecognized" in item.reason


def test_activations_selects_kinds_and_report_counts_them():
    block = nn.Sequential(nn.Linear(3, 3), nn.GELU(), nn.Tanh())
    model = nn.Sequential(block, nn.ModuleList([nn.GELU(), hf.GELUActivation()]))
    report = convert_report(model, activations={"gelu"})
    model = report.model
    assert isinstance(model[0][1], GAAF) and isinstance(model[1][0], GAAF)
    assert isinstance(model[1][1], GAAF) and isinstance(model[0][2], nn.Tanh)
    assert report.counts() == {("nn.GELU", "gelu"): 2,
                               ("transformers.activations.GELUActivation", "gelu"): 1}
    assert [(x.path, x.reason.split(":")[0]) for x in report.left_alone] == [
        ("0.2", "not selected")]
    text = report.summary()
    assert "3 activation modules converted, 1 left alone" in text
    assert "2 x nn.GELU -> gelu" in text and "nn.Tanh: not selected" in text


def test_no_warning_for_what_activations_excluded(recwarn):
    convert(nn.Sequential(nn.GELU(), nn.Tanh()), activations={"tanh"})
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_activation_map_names_and_parameters_and_unregistered_names():
    class Act(nn.Module):
        def forward(self, x):
            return F.leaky_relu(x, 0.3)

    class Other(nn.Module):
        def forward(self, x):
            return x

    report = convert_report(
        nn.Sequential(Act(), Other(), nn.ReLU()),
        {Act: ("leaky_relu", {"negative_slope": 0.3}), Other: "no_such_activation",
         nn.ReLU: "softsign"})
    model = report.model
    assert model[0].config.activation_params == (0.3,)
    assert type(model[1]) is Other
    assert report.left_alone[0].reason == "activation no_such_activation not registered"
    assert model[2].config.activation.name == "softsign"


def test_parameters_outside_the_domain_are_reported():
    report = convert_report(nn.Sequential(nn.Softplus(beta=-1.0)))
    model = report.model
    assert isinstance(model[0], nn.Softplus)
    assert "'beta' must be > 0" in report.left_alone[0].reason


def test_argument_errors():
    with pytest.raises(TypeError, match="bare activation"):
        convert(hf.GELUActivation())
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        convert(nn.Sequential(nn.ReLU()), shap="none")
    with pytest.raises(ValueError, match="unknown activations"):
        convert(nn.Sequential(nn.ReLU()), activations={"gleu"})


def test_log_writes_the_summary(caplog):
    with caplog.at_level(logging.INFO, logger="gaaf_kernels.convert"):
        model = convert(nn.Sequential(nn.SiLU(), nn.PReLU()), log=True)
    assert isinstance(model[0], GAAF)
    assert "1 x nn.SiLU -> silu" in caplog.text and "nn.PReLU: learned" in caplog.text


# --- the docs tables and the code agree -------------------------------------------------

def _table(path: Path, header: str) -> list[list[str]]:
    """The rows of the markdown table under ``header``, split into cells."""
    lines = path.read_text().splitlines()
    start = lines.index(header) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.parametrize("doc", ["integrations.md"])  # the one page of both tables
def test_docs_class_table_is_the_code_table(doc):
    rows = _table(DOCS / doc, "| library | class | becomes |")
    assert {tuple(c.replace("`", "") for c in row) for row in rows} == set(conversion_table())
    assert len(rows) == len(conversion_table())


@pytest.mark.parametrize("doc", ["integrations.md"])  # the one page of both tables
def test_docs_function_table_is_the_code_table(doc):
    documented = {}
    for calls, becomes in _table(DOCS / doc, "| call | becomes |"):
        activation = re.findall(r"`([^`(]+)", becomes)[0]
        documented.update({c: activation for c in re.findall(r"`([^`]+)`", calls)})
    expected = {label: bind(torch.zeros(1))[1] for label, bind in FUNCTIONS.values()}
    assert documented == expected


def test_converting_a_plain_model_imports_neither_transformers_nor_timm():
    import subprocess
    import sys

    code = ("import sys, torch; from gaaf_kernels.adapters.torch import convert; "
            "convert(torch.nn.Sequential(torch.nn.GELU()), functional=True)(torch.ones(2)); "
            "print(sorted(m for m in ('transformers', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "GAAF_COMPILE": "0"}).stdout
    assert out.strip() == "[]"
