"""The CPU targets at 10^7 float32 elements, forward+backward, at torch's thread count.

One group, "cpu fwdbwd float32 1e7 (target)", floor ``torch.tanh``: the package's
eager path (``gaaf(x, "tanh", backend="torch")``, the compiled composite on every
thread), ``torch.compile`` of ``gaaf`` (GAAF traced as pointwise math), the naive
formula under ``torch.compile`` and eager, and ``torch.relu``. Targets: the package
within 1.15x of ``torch.tanh`` and no slower than the naive formula under
``torch.compile``, and within 1.5x of ``torch.relu``. They are
reported (``ratio_to_floor`` in the JSON, docs/performance.md), never asserted:
timings on a shared CI machine are not a test.
"""

from __future__ import annotations

import pytest

from benchlib import contender_fn, describe, record_bandwidth, run_pass

GROUP = "cpu fwdbwd float32 1e7 (target)"
CASES = [
    # (contender, activation, role); the floor first
    ("plain", "tanh", "floor"),
    ("plain", "relu", "contender"),
    ("gaaf_torch", "tanh", "contender"),
    ("gaaf_compiled", "tanh", "contender"),
    ("compile", "tanh", "contender"),
    ("eager", "tanh", "contender"),
]


@pytest.mark.parametrize("size", ["1e7"])
@pytest.mark.parametrize(("contender", "activation", "role"), CASES,
                         ids=[f"{c}-{a}" for c, a, _ in CASES])
def test_cpu_target_fwdbwd(benchmark, tensors, contender, activation, role, size):
    x, dy = tensors.get("cpu", "float32", size)
    name = f"torch.{activation}" if contender == "plain" else contender
    describe(benchmark, contender=name, role=role, activation=activation, device="cpu",
             dtype="float32", size=size, pass_="fwdbwd", group=GROUP, suite="target")
    dx = run_pass(benchmark, contender_fn(contender, activation), x, dy, "fwdbwd", "cpu")
    record_bandwidth(benchmark)
    assert dx.shape == x.shape
