"""The rows of docs/api.md's "works with" table not tested elsewhere: FSDP2, activation
checkpointing, AMP autocast and the meta device, each through ``convert()`` of a small
model, against the same model without the wrapper."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters.convert import convert
from gaaf_kernels.adapters.torch import GAAF


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return convert(nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16), nn.Tanh(),
                                 nn.Linear(16, 2)))


def grads(model: nn.Module, x: torch.Tensor, forward=None) -> list[torch.Tensor]:
    model.zero_grad()
    (forward or model)(x).square().sum().backward()
    return [p.grad.clone() for p in model.parameters()]


def test_activation_checkpointing_gives_the_same_gradients():
    model, x = small_model(), torch.randn(8, 6)
    plain = grads(model, x)
    inner = model[:4]
    checkpointed = grads(model, x, lambda t: model[4](checkpoint(inner, t, use_reentrant=False)))
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_autocast_bfloat16_on_cpu():
    model, x = small_model(), torch.randn(8, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model[0](x)
        y = model[1](hidden)
    assert hidden.dtype == torch.bfloat16 and y.dtype == torch.bfloat16
    want = ref.forward(hidden.float().detach().numpy(), "gelu")  # bf16 values, computed in fp32
    np.testing.assert_allclose(y.float().detach().numpy(), want, rtol=2**-8, atol=1e-6)
    y.float().sum().backward()
    assert all(p.grad is not None for p in model[0].parameters())


def test_meta_device_gives_shapes():
    x = torch.empty(3, 5, device="meta")
    y = GAAF("silu")(x)
    assert y.device.type == "meta" and y.shape == (3, 5)
    with torch.device("meta"):
        model = small_model()
    assert model(torch.empty(4, 6, device="meta")).shape == (4, 2)


@pytest.fixture
def gloo_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_fsdp2_fully_shard(gloo_group):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    x = torch.randn(8, 6)
    want = grads(small_model(), x)
    model = small_model()
    mesh = init_device_mesh("cpu", (1,))
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    got = [g.full_tensor() for g in grads(model, x)]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
