"""What users do around an activation, over the whole catalogue and on every path:
in-place ops on the output, pickling, ``torch.save``, ``copy.deepcopy``, a spawned
process, and ``torch.func`` (grad, vmap, jacrev, jacfwd, jvp), each against the reference.

Paths: "auto" (the default CPU path, the Inductor-compiled composite) and "triton" (the
kernels under the interpreter). Float32, where the suite's other tests compile the same
CPU kernels.
"""

import copy
import io
import multiprocessing
import pickle

import numpy as np
import pytest
import torch
import torch.func as tf
from torch import nn
from torch.nn import functional as F

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters.convert import convert
from gaaf_kernels.adapters.torch import GAAF, gaaf
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS
from support import requires_triton

K = 1e4
CASES = [(name, band) for name in BUILTIN_ACTIVATIONS for band in (False, True)
         if not band or name in ref.band_activations()]
BACKENDS = ["auto", pytest.param("triton", marks=requires_triton)]


def mid_tooth(shape, seed=0) -> torch.Tensor:
    """float32 points in the middle of a sawtooth tooth, away from the kinks at 0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen) * 2 + 0.05
    return ((torch.floor(x * K) + 0.5) / K).float()


def reference_backward(x: torch.Tensor, dy: torch.Tensor, name: str, band: bool):
    return torch.from_numpy(ref.backward(x.detach().numpy(), dy.detach().numpy(), name,
                                         band=band))


def close(got: torch.Tensor, want: torch.Tensor) -> None:
    # float32 against the float32 reference: both round x*K alike; the rest differs by
    # the rounding of phi and s (a few ulp; 1e-5 relative keeps a margin).
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,band", CASES)
def test_catalogue_in_place_pickle_and_torch_func(name, band, backend):
    module = GAAF(name, band=band, backend=backend)
    x = mid_tooth((4, 8))
    ones = torch.ones_like(x)
    want_dx = reference_backward(x, ones, name, band)

    # In-place ops on the output: y += r; y.mul_(2), then backward.
    xg = x.clone().requires_grad_()
    y = module(xg)
    y += torch.ones_like(y)
    y.mul_(2)
    y.sum().backward()
    close(xg.grad, 2 * want_dx)

    # Pickling and deepcopy: same configuration, same values.
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert repr(clone) == repr(module)
        assert torch.equal(clone(x), module(x))

    # torch.func: grad, vmap, jacrev, jacfwd, jvp.
    close(tf.grad(lambda t: module(t).sum())(x), want_dx)
    assert torch.equal(tf.vmap(module)(x), module(x))
    close(tf.vmap(tf.grad(lambda t: module(t).sum()))(x), want_dx)
    row = x[0]
    close(torch.diagonal(tf.jacrev(module)(row)), want_dx[0])
    close(torch.diagonal(tf.jacfwd(module)(row)), want_dx[0])
    _, tangent = tf.jvp(module, (x,), (ones,))
    close(tangent, want_dx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gaaf_function_under_torch_func_and_forward_ad(backend):
    import torch.autograd.forward_ad as fwAD

    x = mid_tooth(16).double()
    t = torch.randn(16, dtype=torch.float64)
    want = torch.from_numpy(ref.backward(x.numpy(), t.numpy(), "gelu"))
    _, got = tf.jvp(lambda v: gaaf(v, "gelu", backend=backend), (x,), (t,))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, t)
        torch.testing.assert_close(fwAD.unpack_dual(gaaf(dual, "gelu", backend=backend)).tangent,
                                   want, rtol=1e-12, atol=0)
    hess = tf.hessian(lambda v: gaaf(v, "gelu", backend=backend).sum())(x)
    want2 = ref.second_derivative(x.numpy(), np.ones(16), "gelu")
    np.testing.assert_allclose(torch.diagonal(hess).numpy(), want2, rtol=1e-12)


# --- small local copies of the torchvision blocks that failed after convert() ---------


class MobileNetV3Head(nn.Module):
    """torchvision's MobileNetV3 classifier: Hardswish, then Dropout(inplace=True)."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.classifier = nn.Sequential(nn.Linear(12, 16), nn.Hardswish(inplace=inplace),
                                        nn.Dropout(p=0.2, inplace=inplace), nn.Linear(16, 3))

    def forward(self, x):
        return self.classifier(x)


class FusedMBConv(nn.Module):
    """torchvision's EfficientNetV2 block: SiLU, then ``result += input``."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.inplace = inplace
        self.block = nn.Sequential(nn.Linear(12, 12), nn.SiLU(inplace=inplace))

    def forward(self, x):
        result = self.block(x)
        if self.inplace:
            result += x
        else:
            result = result + x
        return result


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block", [MobileNetV3Head, FusedMBConv])
def test_converted_blocks_with_in_place_ops_train_like_out_of_place(block, backend):
    """The same weights, in-place ops against out-of-place ones: equal gradients."""
    torch.manual_seed(0)
    inplace = convert(block(inplace=True), backend=backend)
    plain = convert(block(inplace=False), backend=backend)
    plain.load_state_dict(inplace.state_dict())
    x = mid_tooth((5, 12))
    for model in (inplace, plain):
        torch.manual_seed(1)  # the same dropout mask
        model(x).square().sum().backward()
    assert sum(isinstance(m, GAAF) for m in inplace.modules()) == 1
    for a, b in zip(inplace.parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_in_place_after_gaaf_under_torch_compile():
    model = convert(FusedMBConv(inplace=True))
    x = mid_tooth((5, 12))
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    compiled(x).sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for a, p in zip(got, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)


# --- pickling converted models ----------------------------------------------------------


class GeluCalls(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.act = nn.Tanh()

    def forward(self, x):
        return F.gelu(self.act(self.lin(x)))


def round_trip(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("functional", [False, True])
def test_converted_models_survive_torch_save_and_deepcopy(functional):
    model = convert(GeluCalls(), functional=functional)
    x = mid_tooth((3, 6))
    want = model(x)
    plain = F.gelu(model.act(model.lin(x)))
    # functional=True replaces F.gelu too: the copies must keep doing so
    assert torch.equal(want, plain) != functional
    for clone in (round_trip(model), copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert type(clone).__name__ == "GeluCalls"
        assert torch.equal(clone(x), want)


def _run_in_child(model, x, queue) -> None:
    # Plain arrays across the queue: a tensor would be shared memory that the exiting
    # child takes with it.
    queue.put(model(torch.from_numpy(x)).detach().numpy())


def test_converted_model_runs_in_a_spawned_process():
    model = convert(GeluCalls(), functional=True)
    x = mid_tooth((3, 6))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_run_in_child, args=(model, x.numpy(), queue))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert np.array_equal(got, model(x).detach().numpy())


def test_unpickling_a_user_activation_that_is_not_registered_names_it():
    from gaaf_kernels.reference import registry

    module = GAAF("tanh")
    data = pickle.dumps(module).replace(b"tanh", b"tanx")
    with pytest.raises(ValueError, match="'tanx' is not registered in this process"):
        pickle.loads(data)
    assert registry.registered("activation", "tanh") is module.config.activation
