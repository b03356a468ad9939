"""PyTorch adapter: custom ops, autograd, torch.compile, nn.Module, errors."""

import warnings

import numpy as np
import pytest
import torch
from torch.library import opcheck

import gaaf_kernels as gk
from gaaf_kernels import reference as ref
from gaaf_kernels.adapters.torch import GAAF, gaaf, gaaf_backward
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS
from support import compile_composite, requires_triton

FORWARD = torch.ops.gaaf_kernels.forward.default
BACKWARD = torch.ops.gaaf_kernels.backward.default


def away_from_jumps(n: int, K: float, dtype=torch.float64, seed=0) -> torch.Tensor:
    """Random points in the middle of sawtooth teeth: x +- 0.4/K crosses no jump."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 3
    return ((torch.floor(x * K) + 0.5) / K).to(dtype)


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_opcheck(activation, backend):
    x = torch.randn(3, 5, requires_grad=True)
    cfg = ref.resolve(activation)
    args = (cfg.activation.name, cfg.shape.name, cfg.K, list(cfg.activation_params),
            list(cfg.shape_params), backend)
    opcheck(FORWARD, (x, *args))
    opcheck(BACKWARD, (x.detach(), torch.randn(3, 5), *args))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", BUILTIN_ACTIVATIONS)
def test_gradcheck_float64(activation, backend):
    K = 1e4
    x = away_from_jumps(24, K).requires_grad_()
    if activation in ("relu", "leaky_relu", "elu", "selu", "hardtanh"):
        x = x.detach()
        x = torch.where((x.abs() < 1e-3) | ((x.abs() - 1).abs() < 1e-3), x + 0.01, x)
        x = ((torch.floor(x * K) + 0.5) / K).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: gaaf(t, activation, K=K, backend=backend), (x,), eps=1e-8, atol=1e-6)


def test_backward_saves_only_x():
    saved = []

    def pack(t):
        saved.append(t)
        return t

    x = torch.randn(8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = gaaf(x * 2, "tanh")
    assert len(saved) == 1 and saved[0].shape == x.shape
    y.sum().backward()
    assert x.grad is not None


def assert_autograd_matches_reference(x, dy, activation, **kwargs):
    """gaaf() forward and its autograd gradient against the float32 reference."""
    y = gaaf(x, activation, **kwargs)
    y.backward(dy)
    xs = x.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), ref.forward(xs, activation),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), ref.backward(xs, dy.numpy(), activation),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_autograd_matches_reference(backend):
    x = away_from_jumps(64, 1e4, torch.float32).requires_grad_()
    dy = torch.randn(64)
    assert_autograd_matches_reference(x, dy, "gelu", backend=backend)


PLAIN = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "hardtanh": torch.nn.functional.hardtanh, "elu": torch.nn.functional.elu,
    "leaky_relu": torch.nn.functional.leaky_relu, "silu": torch.nn.functional.silu,
    "softplus": torch.nn.functional.softplus, "mish": torch.nn.functional.mish,
    "gelu": torch.nn.functional.gelu, "softsign": torch.nn.functional.softsign,
    "selu": torch.nn.functional.selu,
    "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
    "hardsigmoid": torch.nn.functional.hardsigmoid,
    "hardswish": torch.nn.functional.hardswish,
    # PyTorch has no op for these two: the formulas as transformers writes them
    "quick_gelu": lambda t: t * torch.sigmoid(1.702 * t),
    "relu_squared": lambda t: torch.relu(t) ** 2,
}


@pytest.mark.parametrize("activation", BUILTIN_ACTIVATIONS)
def test_shape_none_equals_plain_activation_kinks_included(activation):
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64,
                     requires_grad=True)
    y = gaaf(x, activation, "none", backend="torch")
    y.sum().backward()
    x2 = x.detach().clone().requires_grad_()
    PLAIN[activation](x2).sum().backward()
    # PyTorch's float64 hardsigmoid multiplies by 1/6 rounded to float32 (ATen's
    # one_sixth is a float constant): 3e-8 relative; the reference divides by 6.
    rtol = 1e-7 if activation == "hardsigmoid" else 1e-14
    torch.testing.assert_close(y.detach(), PLAIN[activation](x2.detach()), rtol=rtol,
                               atol=1e-15)
    torch.testing.assert_close(x.grad, x2.grad, rtol=rtol, atol=1e-15)


def test_torch_compile_fullgraph_on_cpu():
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), GAAF("relu"), torch.nn.Linear(16, 3),
                                GAAF("tanh"))
    x = torch.randn(5, 6)
    eager = model(x)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, eager)
    out.sum().backward()
    assert model[0].weight.grad is not None

    def f(t):
        return gaaf(t, "leaky_relu", activation_params={"negative_slope": 0.2}) * 2

    torch.testing.assert_close(torch.compile(f, fullgraph=True)(x), f(x))


def test_fused_cpu_path_compiles_and_matches_reference(monkeypatch):
    compile_composite(monkeypatch)
    x = away_from_jumps(1000, 1e4, torch.float32, seed=5).requires_grad_()
    assert_autograd_matches_reference(x, torch.randn(1000), "silu")
    from gaaf_kernels.adapters import torch_composite

    key = ("forward", ref.get_activation("silu"), ref.get_shape("shifted_sigmoid"),
           torch.float32, torch.device("cpu"), False)  # 1000 elements: the serial kernel
    assert key in torch_composite._compiled and key not in torch_composite._failed


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_composite_matches_reference_at_every_length(monkeypatch, dtype):
    """One compiled graph per dtype serves every length, special values included."""
    from gaaf_kernels.adapters import torch_composite
    from gaaf_kernels.verify import compare, reference_on, sample_inputs

    compile_composite(monkeypatch)
    cfg = ref.resolve("tanh", None)
    data = sample_inputs(dtype, n=2048)
    grads = torch.randn(data.numel(), generator=torch.Generator().manual_seed(1)).to(dtype)
    for n in (1, 2, 3, 17, 64, data.numel()):
        x, dy = data[-n:], grads[-n:]  # the tail holds the special values
        y = torch_composite.forward(x, cfg)
        dx = torch_composite.backward(x, dy, cfg)
        for got, want in [(y, reference_on(ref.forward, x, cfg_kwargs={"activation": "tanh"})),
                          (dx, reference_on(ref.backward, x, dy,
                                            cfg_kwargs={"activation": "tanh"}))]:
            assert got.dtype == dtype and got.shape == x.shape
            max_abs, max_rel, ok = compare(got, want)
            assert ok, f"length {n}: max abs {max_abs}, max rel {max_rel}"
    for pass_ in ("forward", "backward"):
        key = (pass_, cfg.activation, cfg.shape, dtype, torch.device("cpu"), False)
        assert key in torch_composite._compiled and key not in torch_composite._failed


def test_channels_last_in_and_out():
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last).requires_grad_()
    y = gaaf(x, "relu")
    assert y.stride() == x.stride()
    y.backward(torch.randn(2, 3, 4, 5))
    assert x.grad.shape == x.shape


def test_module_repr_state_and_use():
    m = GAAF("leaky_relu", activation_params={"negative_slope": 0.2}, K=5000)
    assert repr(m) == ("GAAF('leaky_relu', negative_slope=0.2, "
                       "shape=shifted_sigmoid(shift=4, slope=1), K=5000)")
    assert repr(GAAF("tanh", backend="torch")) == (
        "GAAF('tanh', shape=gaussian(c=3), K=10000, backend='torch')")
    assert list(m.state_dict()) == []
    x = torch.randn(4, 4)
    torch.testing.assert_close(m(x), gaaf(x, "leaky_relu", K=5000,
                                          activation_params={"negative_slope": 0.2}))


def test_half_precision_gradient_gains_shape():
    x = torch.full((4,), 0.5, dtype=torch.bfloat16, requires_grad=True)
    y = gaaf(x, "tanh")
    assert torch.equal(y, torch.tanh(x.detach()))  # forward rounds to tanh
    y.sum().backward()
    plain = 1 - torch.tanh(torch.tensor(0.5)) ** 2
    assert float(x.grad[0]) == pytest.approx(float(plain) + np.exp(-0.25 / 3), abs=1e-2)


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_dtype_errors(dtype):
    with pytest.raises(TypeError, match="float16, bfloat16, float32, float64"):
        gaaf(torch.zeros(3, dtype=dtype))
    with pytest.raises(TypeError, match="float16, bfloat16, float32, float64"):
        GAAF()(torch.zeros(3, dtype=dtype))


def test_value_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="registered activations"):
        gaaf(x, "swish")
    with pytest.raises(ValueError, match="registered shapes"):
        GAAF("tanh", "cosine")
    with pytest.raises(ValueError, match="valid parameters: beta, threshold"):
        gaaf(x, "softplus", activation_params={"alpha": 1})
    with pytest.raises(ValueError, match="K must be finite and > 0"):
        GAAF(K=0)
    with pytest.raises(ValueError, match="valid backends: auto, triton, torch"):
        gaaf(x, backend="cuda")
    with pytest.raises(TypeError, match="torch.Tensor"):
        gaaf(np.zeros(3))


def test_backward_mismatch_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        gaaf_backward(x, torch.zeros(4))
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        gaaf_backward(x, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        gaaf_backward(x, torch.zeros(3, device="meta"))


def test_auto_backend_on_cpu_is_torch():
    from gaaf_kernels.adapters.torch import select_backend

    assert select_backend("auto", torch.zeros(1)) == "torch"


# --- convert -------------------------------------------------------------------------


def test_convert_nested_model_in_place():
    from gaaf_kernels.adapters.torch import convert

    inner = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LeakyReLU(0.2),
                                torch.nn.Sequential(torch.nn.ELU(alpha=0.5), torch.nn.Tanh()))
    model = torch.nn.ModuleDict({"a": inner, "b": torch.nn.ReLU6(),
                                 "c": torch.nn.GELU(approximate="tanh"),
                                 "d": torch.nn.Linear(4, 4)})
    assert convert(model, K=5000.0) is model
    kinds = {name: (m.config.activation.name, m.config.activation_params, m.config.K)
             for name, m in model.named_modules() if isinstance(m, GAAF)}
    assert kinds == {
        "a.1": ("leaky_relu", (0.2,), 5000.0), "a.2.0": ("elu", (0.5,), 5000.0),
        "a.2.1": ("tanh", (), 5000.0), "b": ("hardtanh", (0.0, 6.0), 5000.0),
        "c": ("gelu_tanh", (), 5000.0),
    }
    assert isinstance(model["d"], torch.nn.Linear)
    x = torch.randn(3, 4)
    y = model["a"](x)
    expected = torch.tanh(torch.nn.functional.elu(
        torch.nn.functional.leaky_relu(model["a"][0](x), 0.2), 0.5))
    torch.testing.assert_close(y, expected, atol=1e-3, rtol=0)  # |g*s| <= 0.5/K


def test_convert_activation_map_and_shape_override():
    from gaaf_kernels.adapters.torch import convert

    class MyAct(torch.nn.Module):
        def forward(self, x):
            return x

    model = convert(torch.nn.Sequential(MyAct(), torch.nn.Sigmoid()), {MyAct: "softsign"},
                    shape="laplace")
    assert model[0].config.activation.name == "softsign"
    assert model[1].config.shape.name == "laplace" and model[1].config.activation.name == (
        "sigmoid")
    with pytest.raises(TypeError, match="activation_map"):
        convert(model, activation="relu")


def _fresh_compile_state(monkeypatch):
    from gaaf_kernels.adapters import torch_composite

    compile_composite(monkeypatch)
    monkeypatch.setattr(torch_composite, "_compiled", {})
    monkeypatch.setattr(torch_composite, "_failed", set())
    monkeypatch.setattr(torch_composite, "_warned", False)
    return torch_composite


def _broken(*args, **kwargs):
    raise RuntimeError("no C++ compiler")


def test_fused_cpu_path_bypasses_dynamo(monkeypatch):
    """The composite is compiled by Inductor directly: torch.compile is never called."""
    torch_composite = _fresh_compile_state(monkeypatch)
    monkeypatch.setattr(torch_composite.torch, "compile", _broken)
    x = away_from_jumps(300, 1e4, torch.float64, seed=2).requires_grad_()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_autograd_matches_reference(x, torch.randn(300, dtype=torch.float64), "gelu")
    assert not [w for w in caught if "gaaf_kernels" in str(w.message)]  # no fallback
    assert len(torch_composite._compiled) == 2 and not torch_composite._failed


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    """The one compile strategy (Inductor without Dynamo) failing: eager, one warning."""
    _fresh_compile_state(monkeypatch)
    monkeypatch.setattr(torch._inductor, "standalone_compile", _broken)
    x = torch.linspace(-3, 3, 50, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="using eager PyTorch") as record:
        y = gaaf(x, "mish")
        y.sum().backward()
        gaaf(x, "tanh")
    assert len([w for w in record if "eager" in str(w.message)]) == 1
    np.testing.assert_allclose(y.detach().numpy(), ref.forward(x.detach().numpy(), "mish"),
                               rtol=1e-5, atol=1e-6)


def test_reregistering_a_name_is_seen_by_the_next_call():
    import triton

    @triton.jit
    def _identity(x):
        return x

    @triton.jit
    def _one(x):
        return x * 0 + 1

    def register(scale):
        gk.register_activation(
            "rescaled_identity", triton_value=_identity, triton_derivative=_one,
            numpy_value=lambda x: x * scale, numpy_derivative=lambda x: x * 0 + scale,
            default_shape="none")

    x = torch.tensor([2.0])
    register(1.0)
    assert gaaf(x, "rescaled_identity", backend="torch").item() == 2.0
    register(3.0)
    assert gaaf(x, "rescaled_identity", backend="torch").item() == 6.0


@pytest.mark.parametrize("path", ["eager", "custom_op"])
def test_double_backward_is_gaafs_second_derivative(path):
    """d2/dw2 of gaaf(w*x)*w: 2 x phi_gaaf'(w x) + w x^2 phi_gaaf''(w x), the second
    factor from reference.second_derivative (before: a RuntimeError, or zeros)."""
    w = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    x = away_from_jumps(5, 1e4) / 0.7  # w * x mid-tooth
    if path == "eager":
        y = gaaf(w * x, "tanh")
    else:
        y = FORWARD(w * x, "tanh", "gaussian", 1e4, [], [3.0], "torch")
    (g,) = torch.autograd.grad((y * w).sum(), w, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), w)
    u = (w * x).detach().numpy()
    first = ref.backward(u, np.ones_like(u), "tanh")
    second = ref.second_derivative(u, np.ones_like(u), "tanh")
    want = (2 * x.numpy() * first + 0.7 * x.numpy() ** 2 * second).sum()
    np.testing.assert_allclose(h.item(), want, rtol=1e-6)


def test_gaaf_backward_is_differentiable():
    x = away_from_jumps(4, 1e4).requires_grad_()
    dy = torch.randn(4, dtype=torch.float64, requires_grad=True)
    dx = gaaf_backward(x, dy, "relu")
    np.testing.assert_allclose(dx.detach().numpy(), ref.backward(
        x.detach().numpy(), dy.detach().numpy(), "relu"), rtol=1e-12)
    gx, gdy = torch.autograd.grad(dx.sum(), (x, dy))
    np.testing.assert_allclose(gx.numpy(), ref.second_derivative(
        x.detach().numpy(), dy.detach().numpy(), "relu"), rtol=1e-12)
    np.testing.assert_allclose(gdy.numpy(), ref.backward(
        x.detach().numpy(), np.ones(4), "relu"), rtol=1e-12)
