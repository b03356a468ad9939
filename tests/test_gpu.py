"""GPU-only checks of the Triton path (run by scripts/gpu_check.sh on a CUDA machine)."""

import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters.torch import GAAF, gaaf
from gaaf_kernels.kernels import launch
from gaaf_kernels.verify import compare, reference_on, sample_inputs
from support import compile_composite, requires_cuda

pytestmark = [pytest.mark.gpu, requires_cuda]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64], ids=str)
@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "softplus"])
def test_cuda_matches_reference(activation, dtype):
    x = sample_inputs(dtype, n=1 << 14)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    cfg = ref.resolve(activation)
    kwargs = {"activation": activation}
    assert compare(launch.forward(x.cuda(), cfg).cpu(),
                   reference_on(ref.forward, x, cfg_kwargs=kwargs))[2]
    assert compare(launch.backward(x.cuda(), dy.cuda(), cfg).cpu(),
                   reference_on(ref.backward, x, dy, cfg_kwargs=kwargs))[2]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
def test_compiled_composite_on_cuda_matches_reference(monkeypatch, dtype):
    """backend="torch" on CUDA: the Inductor-compiled composite (Triton code by Inductor)."""
    from gaaf_kernels.adapters import torch_composite

    compile_composite(monkeypatch)
    x = sample_inputs(dtype, n=1 << 12)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    cfg = ref.resolve("tanh")
    for n in (1, 17, x.numel()):
        xs, dys = x[-n:], dy[-n:]
        assert compare(torch_composite.forward(xs.cuda(), cfg).cpu(),
                       reference_on(ref.forward, xs, cfg_kwargs={"activation": "tanh"}))[2]
        assert compare(torch_composite.backward(xs.cuda(), dys.cuda(), cfg).cpu(),
                       reference_on(ref.backward, xs, dys,
                                    cfg_kwargs={"activation": "tanh"}))[2]
    key = ("forward", cfg.activation, cfg.shape, dtype, torch.device("cuda", 0), False)
    assert key not in torch_composite._failed


def test_runs_on_the_current_stream():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x = torch.zeros(1 << 24, device="cuda")
        for _ in range(20):  # keep the stream busy: a launch elsewhere would race
            x.add_(0.05)
        y = gaaf(x, "tanh")
    stream.synchronize()
    want = ref.forward(np.array([np.float32(0.05) * 20], np.float32), "tanh")[0]
    assert abs(y[-1].item() - float(want)) < 1e-4


def test_channels_last_on_cuda_keeps_strides():
    x = torch.randn(8, 16, 32, 32, device="cuda").to(memory_format=torch.channels_last)
    y = gaaf(x, "relu")
    assert y.stride() == x.stride()
    np.testing.assert_allclose(y.cpu().numpy(), ref.forward(x.cpu().numpy(), "relu"),
                               rtol=1e-5, atol=1e-6)


def test_torch_compile_on_cuda():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), GAAF("gelu")).cuda()
    x = torch.randn(32, 64, device="cuda")
    torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), model(x))


def test_two_to_the_31_elements_use_64_bit_offsets():
    tail = sample_inputs(torch.float16, n=1024)[:4096]
    n = 2**31 + 8192  # 0.5 up to past 2^31, then the sample inputs
    free, _ = torch.cuda.mem_get_info()
    if free < 3 * n * 2 + (1 << 30):
        pytest.skip(f"needs {3 * n * 2 / 2**30:.0f} GiB of free GPU memory")
    x = torch.empty(n, dtype=torch.float16, device="cuda")
    x[:-tail.numel()].fill_(0.5)
    x[-tail.numel():] = tail.cuda()
    cfg = ref.resolve("tanh")
    y = launch.forward(x, cfg)
    torch.cuda.synchronize()
    want_tail = reference_on(ref.forward, tail, cfg_kwargs={"activation": "tanh"})
    assert compare(y[-tail.numel():].cpu(), want_tail)[2]  # the last elements, past 2^31
    half = y[[0, 2**31 - 1, 2**31, n - tail.numel() - 1]].cpu()  # all of them x = 0.5
    assert torch.equal(half, half[:1].expand(4)), half
    del x, y
    torch.cuda.empty_cache()
