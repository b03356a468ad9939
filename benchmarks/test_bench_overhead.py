"""Host overhead per call at 128x512 float32: ``gaaf`` against ``torch.tanh``.

At 65536 elements the work is small, so the time per call is mostly what the Python
side costs: argument checks, the custom op's dispatch, the compiled function's guards.
``gaaf`` uses ``backend="auto"`` (the fused PyTorch path on CPU, Triton on CUDA).
On CUDA nothing is synchronized: the time is the host's, the GPU keeps up at this size.
The floor of each group is ``torch.tanh``; ``ratio_to_floor`` is the overhead ratio.
"""

from __future__ import annotations

import pytest

from benchlib import contender_fn, describe, record_bandwidth, run_pass

CASES = [
    pytest.param(device, pass_, contender, marks=[pytest.mark.gpu] if device == "cuda" else [],
                 id=f"{device}-{pass_}-{contender}")
    for device in ("cpu", "cuda")
    for pass_ in ("fwd", "fwdbwd")
    for contender in ("plain", "gaaf_auto")
]


@pytest.mark.parametrize("size", ["128x512"])
@pytest.mark.parametrize(("device", "pass_", "contender"), CASES)
def test_overhead(benchmark, tensors, device, pass_, contender, size):
    x, dy = tensors.get(device, "float32", size)
    describe(benchmark, contender="torch.tanh" if contender == "plain" else "gaaf",
             role="floor" if contender == "plain" else "contender", activation="tanh",
             device=device, dtype="float32", size=size, pass_=pass_,
             group=f"overhead {device} {pass_} float32 {size}", suite="overhead")
    out = run_pass(benchmark, contender_fn(contender, "tanh"), x, dy, pass_, device,
                   sync=False)
    record_bandwidth(benchmark)
    assert out.shape == x.shape
