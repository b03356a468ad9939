"""PyTorch's OpInfo reference inputs through GAAF with ``shape="none"`` (plain activation).

For every PyTorch op that ``convert()`` maps, each ``reference_inputs`` sample (with its
kwargs: ``alpha``, ``min_val == max_val``, ``approximate="tanh"``, ...) goes through
``gaaf()`` on the torch backend and through the NumPy reference. The forward and the
gradient must equal the PyTorch op evaluated in float64 and rounded to the input dtype,
within ``|got - want| <= 8 eps (|want| + scale)`` where ``scale`` is ``min(1, |x|)``
for the forward and ``|dy|`` for the gradient (the largest error seen is 4 eps, in the
float64 silu gradient, where its terms cancel).

Deliberate differences (docs/semantics.md): a NaN input gives a NaN gradient, where
PyTorch gives 0 or dy for some ops; at x = +-inf GAAF gives the limits, where PyTorch's
formula gives NaN (silu and mish at -inf, softsign at +-inf, their gradients). There the
test asks for the limit: the op at +-1e300 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaaf_kernels import reference
from gaaf_kernels.adapters.functional import FUNCTIONS
from gaaf_kernels.adapters.torch import convert, gaaf
from support import requires_triton

common = pytest.importorskip("torch.testing._internal.common_methods_invocations",
                             reason="torch.testing._internal needs expecttest")


def _params(*names):
    defaults = {"alpha": 1.0, "negative_slope": 0.01, "beta": 1.0, "threshold": 20.0,
                "min_val": -1.0, "max_val": 1.0}
    return lambda kw: {n: float(kw.get(n, defaults[n])) for n in names}


# OpInfo name -> (GAAF activation from the sample kwargs, its parameters)
MAPPED = {
    "tanh": (lambda kw: "tanh", _params()),
    "sigmoid": (lambda kw: "sigmoid", _params()),
    "nn.functional.relu": (lambda kw: "relu", _params()),
    "nn.functional.selu": (lambda kw: "selu", _params()),
    "nn.functional.silu": (lambda kw: "silu", _params()),
    "nn.functional.mish": (lambda kw: "mish", _params()),
    "nn.functional.softsign": (lambda kw: "softsign", _params()),
    "nn.functional.gelu": (lambda kw: "gelu_tanh" if kw.get("approximate") == "tanh"
                           else "gelu", _params()),
    "nn.functional.elu": (lambda kw: "elu", _params("alpha")),
    "nn.functional.leaky_relu": (lambda kw: "leaky_relu", _params("negative_slope")),
    "nn.functional.softplus": (lambda kw: "softplus", _params("beta", "threshold")),
    "nn.functional.hardtanh": (lambda kw: "hardtanh", _params("min_val", "max_val")),
    "nn.functional.relu6": (lambda kw: "hardtanh", lambda kw: {"min_val": 0.0, "max_val": 6.0}),
    "nn.functional.hardswish": (lambda kw: "hardswish", _params()),
    "nn.functional.hardsigmoid": (lambda kw: "hardsigmoid", _params()),
}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32, in float64 too:
# its float64 gradient is off by 3e-8 relative; GAAF uses 1/6 in the compute dtype.
LOOSER = {("nn.functional.hardsigmoid", torch.float64, "gradient"): 2.0 ** -23}
K_EPS = 8.0
MAX_ELEMENTS = 4096


def _ops():
    ops = {op.name: op for op in common.op_db if op.name in MAPPED and not op.variant_test_name}
    assert set(ops) == set(MAPPED), f"OpInfo lacks {set(MAPPED) - set(ops)}"
    return ops


OPS = _ops()


def _torch_op(op, kwargs, x64: torch.Tensor, dy64: torch.Tensor):
    x64 = x64.clone().requires_grad_()
    y = op.op(x64, **kwargs)
    (dx,) = torch.autograd.grad(y, x64, dy64, allow_unused=True)
    return y.detach(), (torch.zeros_like(x64) if dx is None else dx)


def _subsample(x: torch.Tensor) -> torch.Tensor:
    """At most ~MAX_ELEMENTS of x, at an even stride: three samples have ~1e6 elements of
    random values (minutes on 2 cores); the special values come in small samples."""
    flat = x.reshape(-1)
    return flat[::-(-flat.numel() // MAX_ELEMENTS)] if flat.numel() > MAX_ELEMENTS else flat


def _check(what, got, want, x, scale, tol, where):
    got, want = got.double(), want.double()
    nan_x = x.isnan()
    close = (got - want).abs() <= tol * (want.abs() + scale)
    same = (got == want) | (got.isnan() & want.isnan())
    ok = torch.where(want.isfinite(), close, same)
    if what == "gradient":  # NaN in, NaN out: GAAF's backward never hides a NaN input
        ok = torch.where(nan_x, got.isnan(), ok)
    bad = ~ok
    assert not bad.any(), (f"{where} {what}: x={x[bad][:4].tolist()} got="
                           f"{got[bad][:4].tolist()} want={want[bad][:4].tolist()}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize("name", sorted(MAPPED))
def test_reference_inputs_match_pytorch_in_float64(name, dtype):
    op = OPS[name]
    to_activation, to_params = MAPPED[name]
    registered = reference.activation_names()
    gen = torch.Generator().manual_seed(0)
    tol = K_EPS * torch.finfo(dtype).eps
    samples = list(op.reference_inputs("cpu", dtype, requires_grad=False))
    assert samples
    # Elementwise ops: the samples of one kwargs set are checked as one flat tensor
    # (one call instead of ~40; layouts, 0-d and empty tensors are tested elsewhere).
    groups: dict[str, tuple[dict, list[torch.Tensor]]] = {}
    for sample in samples:
        assert not sample.args, f"{name}: positional arguments {sample.args} not mapped"
        kwargs = dict(sample.kwargs)
        groups.setdefault(repr(sorted(kwargs.items())), (kwargs, []))[1].append(
            _subsample(sample.input).reshape(-1))
    for kwargs, parts in groups.values():
        activation, params = to_activation(kwargs), to_params(kwargs)
        if activation not in registered:
            pytest.skip(f"activation {activation} not registered yet")
        x = torch.cat(parts)
        dy = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(dtype)
        x64 = x.double()
        y64, dx64 = _torch_op(op, kwargs, x64, dy.double())
        # At +-inf, the limit where PyTorch's formula gives NaN: the op at +-1e300.
        far = torch.full_like(x64, 1e300).copysign(x64)
        y_far, dx_far = _torch_op(op, kwargs, far, dy.double())
        at_inf = x64.isinf()
        y64 = torch.where(at_inf & y64.isnan(), y_far, y64)
        dx64 = torch.where(at_inf & dx64.isnan(), dx_far, dx64)
        want_y, want_dx = y64.to(dtype), dx64.to(dtype)

        xg = x.clone().requires_grad_()
        y = gaaf(xg, activation, "none", activation_params=params, backend="torch")
        (dx,) = torch.autograd.grad(y, xg, dy)
        where = f"{name} {dtype} kwargs={kwargs}"
        scale_y = x64.abs().clamp(max=1.0)
        _check("value", y.detach(), want_y, x64, scale_y, tol, where + " torch")
        tol_dx = LOOSER.get((name, dtype, "gradient"), tol)
        _check("gradient", dx, want_dx, x64, dy.double().abs(), tol_dx, where + " torch")

        if dtype != torch.bfloat16:  # the NumPy reference, the spec (no bfloat16 .numpy())
            xn, dyn = x.numpy(), dy.numpy()
            ry = reference.forward(xn, activation, "none", activation_params=params)
            rdx = reference.backward(xn, dyn, activation, "none", activation_params=params)
            _check("value", torch.from_numpy(np.asarray(ry)), want_y, x64, scale_y, tol,
                   where + " reference")
            _check("gradient", torch.from_numpy(np.asarray(rdx)), want_dx, x64,
                   dy.double().abs(), tol_dx, where + " reference")


# --- hardtanh with min_val == max_val: a constant, as PyTorch has it --------------------

LIMIT = {"min_val": 0.5, "max_val": 0.5}
X = torch.tensor([-2.0, 0.0, 0.25, 0.5, 0.75, 3.0], dtype=torch.float64)


def _pytorch_constant():
    x = X.clone().requires_grad_()
    y = torch.nn.functional.hardtanh(x, 0.5, 0.5)
    y.sum().backward()
    return y.detach(), x.grad


def test_pytorch_hardtanh_equal_limits_is_a_constant_with_zero_derivative():
    y, dx = _pytorch_constant()
    assert torch.equal(y, torch.full_like(X, 0.5))
    assert torch.equal(dx, torch.zeros_like(X))


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=requires_triton)])
def test_hardtanh_equal_limits_in_every_path(backend):
    want_y, want_dx = _pytorch_constant()
    x = X.clone().requires_grad_()
    y = gaaf(x, "hardtanh", "none", activation_params=LIMIT, backend=backend)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), want_y, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, want_dx, rtol=0, atol=0)
    ry = reference.forward(X.numpy(), "hardtanh", "none", activation_params=LIMIT)
    rdx = reference.backward(X.numpy(), np.ones(6), "hardtanh", "none", activation_params=LIMIT)
    np.testing.assert_array_equal(ry, want_y.numpy())
    np.testing.assert_array_equal(rdx, want_dx.numpy())


def test_functional_hardtanh_with_equal_limits():
    """nn.Hardtanh refuses equal limits; F.hardtanh accepts them, and so does the mode."""
    class Model(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.hardtanh(x, 0.5, 0.5)

    model = convert(Model(), functional=True, shape="none")
    x = X.clone().requires_grad_()
    y = model(x)
    y.sum().backward()
    want_y, want_dx = _pytorch_constant()
    torch.testing.assert_close(y.detach(), want_y, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, want_dx, rtol=0, atol=0)
    assert model._gaaf_functional.converted == {("F.hardtanh", "hardtanh"): 1}


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_functional_mode_binds_each_sample_as_mapped_here(name):
    """convert(functional=True) reads each sample's call as MAPPED does: the activation
    and parameters that the catalogue's ``functions`` give for the op and its kwargs."""
    op = OPS[name]
    label, bind = FUNCTIONS[op.op]
    to_activation, to_params = MAPPED[name]
    for sample in op.reference_inputs("cpu", torch.float64, requires_grad=False):
        x, activation, params, inplace, out = bind(sample.input, *sample.args,
                                                   **sample.kwargs)
        where = f"{label} kwargs={sample.kwargs}"
        assert x is sample.input and not inplace and out is None, where
        assert activation == to_activation(sample.kwargs), where
        assert params == to_params(sample.kwargs), where
