"""The accuracy contract of tests/test_accuracy.py, held by the other float32 paths as
they run: the default CPU path (the composite compiled by Inductor, its serial and its
OpenMP kernels) and the float32 NumPy reference, for every built-in activation's value
(``shape="none"``: y = phi) and derivative (dy = 1: dx = phi').

Inductor lowers some functions its own way (``expm1`` as ``exp(x) - 1`` in vectorized
code), and float32 formulas can cancel where float64 does not (1 + erf, 1 + tanh in the
left tails of gelu and gelu_tanh); these sweeps are what catch either.
"""

import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import torch_composite
from gaaf_kernels.adapters.torch import gaaf, gaaf_backward
from gaaf_kernels.reference import get_activation
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS
from support import compile_composite
from test_accuracy import assert_within_contract, sweep


@pytest.fixture(autouse=True)
def compiled_and_gradual_underflow(monkeypatch):
    compile_composite(monkeypatch)
    torch.set_flush_denormal(False)  # see tests/test_accuracy.py


def finite_sweep() -> np.ndarray:
    """The twins' sweep without NaN: GAAF turns NaN into NaN by its own rule (tested
    elsewhere), where a bare phi such as relu's may not."""
    x = sweep()
    return x[~np.isnan(x)]


def default_cpu_path(name: str, which: str, x: np.ndarray, chunk: int) -> np.ndarray:
    """phi or phi' of ``x`` through gaaf()/gaaf_backward() on CPU tensors, ``chunk``
    elements per call (below PARALLEL_MIN_NUMEL: the serial kernel; above: OpenMP)."""
    parts = []
    for start in range(0, x.size, chunk):
        xt = torch.from_numpy(x[start:start + chunk])
        if which == "value":
            parts.append(gaaf(xt, name, "none"))
        else:
            parts.append(gaaf_backward(xt, torch.ones_like(xt), name, "none"))
    return torch.cat(parts).numpy().astype(np.float64)


KERNELS = {"serial": torch_composite.PARALLEL_MIN_NUMEL // 2, "openmp": 2**30}


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("which", ["value", "derivative"])
@pytest.mark.parametrize("name", BUILTIN_ACTIVATIONS)
def test_default_cpu_path_within_contract(name, which, kernel):
    if kernel == "openmp" and torch.get_num_threads() < 2:
        pytest.skip("one thread: the default CPU path runs only its serial kernel")
    x = finite_sweep()
    got = default_cpu_path(name, which, x, KERNELS[kernel])
    assert_within_contract(get_activation(name), which, "float32", x, got,
                           f"default CPU path, {kernel} kernel")


@pytest.mark.parametrize("which", ["value", "derivative"])
@pytest.mark.parametrize("name", BUILTIN_ACTIVATIONS)
def test_float32_reference_within_contract(name, which):
    x = finite_sweep()
    with np.errstate(all="ignore"):
        if which == "value":
            got = ref.forward(x, name, "none")
        else:
            got = ref.backward(x, np.ones_like(x), name, "none")
    assert_within_contract(get_activation(name), which, "float32", x,
                           got.astype(np.float64), "float32 reference")


def test_the_small_negatives_of_elu_and_selu_survive():
    """elu(-1e-8) was 0 on the default CPU path (8e6 ulp): Inductor's exp(x) - 1."""
    x = torch.tensor([-1e-8, -3e-20, -2.0**-30] * 6000)  # 18000: the OpenMP kernel too
    for chunk in (3, x.numel()):
        got = gaaf(x[:chunk], "elu", "none").double()
        want = torch.nn.functional.elu(x[:chunk].double())
        torch.testing.assert_close(got, want, rtol=2**-22, atol=0)
        got = gaaf(x[:chunk], "selu", "none").double()
        torch.testing.assert_close(got, torch.selu(x[:chunk].double()), rtol=2**-21, atol=0)
