"""The surrogate-gradient shapes as users run them: GAAF on relu with ``bsilu``/``nelu``
is SUGAR (relu forward, the surrogate's derivative backward) within O(1/K), per element
on every backend, through ``convert()`` of a small model, and in ``gaaf verify``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gaaf_kernels import GAAF, convert
from gaaf_kernels.verify import run as verify_run

K = 1e4
ALPHA = {"bsilu": 1.67, "nelu": 0.05}
# max |s| and max |s'| over the line (docs/semantics.md): the O(1/K) bounds below.
MAX_S = {"bsilu": 0.5 + 1.67 / 4, "nelu": 0.65 * 0.05}
MAX_DS = {"bsilu": 0.541, "nelu": 2 * 0.05}


def surrogate(name: str, x: torch.Tensor) -> torch.Tensor:
    """SUGAR's surrogate f, written from its definition (not the library's formulas)."""
    a = ALPHA[name]
    if name == "bsilu":
        return (x + a) * torch.sigmoid(x) - a / 2
    return torch.where(x > 0, x, -a / (1 + x * x))


def surrogate_derivative(name: str, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():  # also inside a backward, where grad mode is off
        x = x.detach().double().requires_grad_(True)
        (d,) = torch.autograd.grad(surrogate(name, x).sum(), x)
    return d


class Sugar(torch.autograd.Function):
    """relu forward, f' backward: the published method."""

    @staticmethod
    def forward(ctx, x, name):
        ctx.save_for_backward(x)
        ctx.name = name
        return torch.relu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(ctx.name, x).to(grad.dtype), None


class SugarReLU(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x):
        return Sugar.apply(x, self.name)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("name", ["bsilu", "nelu"])
def test_gaaf_relu_with_the_shape_is_sugar_within_its_bound(name, backend):
    x = torch.linspace(-8, 8, 4001, dtype=torch.float32).requires_grad_(True)
    y = GAAF("relu", shape=name, backend=backend)(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    eps = torch.finfo(torch.float32).eps
    y = y.detach()
    fwd_err = (y.double() - torch.relu(x.detach()).double()).abs()
    assert float(fwd_err.max()) <= 0.5 / K * MAX_S[name] + 8 * eps * 8
    want = surrogate_derivative(name, x)
    bwd_err = (grad.double() - want).abs()
    assert float(bwd_err.max()) <= 0.5 / K * MAX_DS[name] + 4 * eps * 2
    # and the difference is really there (GAAF is not SUGAR exactly): O(1/K), not 0
    assert float(bwd_err.max()) > 0.05 / K * MAX_DS[name]


@pytest.mark.parametrize("name", ["bsilu", "nelu"])
def test_convert_with_the_shape_trains_like_sugar(name):
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 3))
    sugar = nn.Sequential(*[SugarReLU(name) if isinstance(m, nn.ReLU) else m for m in plain])
    gaaf = convert(nn.Sequential(*[type(m)() if isinstance(m, nn.ReLU) else m for m in plain]),
                   shape=name)
    assert sum(isinstance(m, GAAF) for m in gaaf) == 2
    assert {m.config.shape.name for m in gaaf if isinstance(m, GAAF)} == {name}
    x, target = torch.randn(64, 6), torch.randint(0, 3, (64,))
    grads = []
    for model in (sugar, gaaf):
        model.zero_grad()
        nn.functional.cross_entropy(model(x), target).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        scale = float(a.abs().max())
        assert torch.allclose(a, b, atol=1e-3 * scale, rtol=0), float((a - b).abs().max())
    # Without the shape the zero gradients of relu differ from SUGAR's by O(1).
    plain.zero_grad()
    nn.functional.cross_entropy(plain(x), target).backward()
    first = plain[0].weight.grad
    assert not torch.allclose(first, grads[0][0], atol=1e-2 * float(first.abs().max()))


def test_the_surrogate_shapes_pass_verify():
    rows = verify_run(["relu"], ["bsilu", "nelu"], ["float32", "float64", "bfloat16"],
                      ["triton", "torch"])
    assert len(rows) == 2 * 2 * 3
    bad = [r for r in rows if not r.ok]
    assert not bad, bad
    assert all(math.isfinite(r.bwd_abs) for r in rows)
