"""What the benchmarks time: GAAF through the package and the alternatives a user has.

* ``naive_gaaf(x, activation)``: the GAAF formula as a user writes it from plain torch
  ops, ``phi(x) + g(x) * s(x)`` with ``g(x) = (x*K - floor(x*K) - 0.5) / K``, and lets
  autograd differentiate it. ``floor`` has a zero gradient, so autograd gives
  ``dg/dx = 1`` and the exact a.e. derivative ``phi' + s + g * s'`` with no trick
  (``tests/test_naive_composite.py`` checks this against the NumPy reference). Half
  precision inputs are computed in float32, as the package does. Run eagerly it is the
  "eager composite" (one kernel per op, many saved intermediates); under
  ``torch.compile`` it is "torch.compile of the same formula".
* ``plain(activation)``: ``torch.tanh`` / ``torch.relu``, the floor GAAF is held to.

No pytest in here: ``tests/test_naive_composite.py`` imports this file by path.
"""

from __future__ import annotations

import torch

K = 10000.0
TANH_GAUSSIAN_C = 3.0  # default shape of tanh: gaussian(c=3)
RELU_SHIFT = 4.0  # default shape of relu: shifted_sigmoid(shift=4, slope=1)
ACTIVATIONS = ("tanh", "relu")


def _compute(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def sawtooth(x: torch.Tensor, k: float = K) -> torch.Tensor:
    xk = x * k
    return (xk - torch.floor(xk) - 0.5) / k


def naive_gaaf_tanh(x: torch.Tensor) -> torch.Tensor:
    xc = _compute(x)
    y = torch.tanh(xc) + sawtooth(xc) * torch.exp(-(xc * xc) / TANH_GAUSSIAN_C)
    return y.to(x.dtype)


def naive_gaaf_relu(x: torch.Tensor) -> torch.Tensor:
    xc = _compute(x)
    y = torch.relu(xc) + sawtooth(xc) * torch.sigmoid(xc + RELU_SHIFT)
    return y.to(x.dtype)


NAIVE = {"tanh": naive_gaaf_tanh, "relu": naive_gaaf_relu}
PLAIN = {"tanh": torch.tanh, "relu": torch.relu}


def naive_gaaf(x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """The eager composite: the formula from plain torch ops, differentiated by autograd."""
    return NAIVE[activation](x)


_compiled: dict[str, object] = {}


def compiled_naive(activation: str):
    """``torch.compile`` of the naive formula (autograd through AOTAutograd), built once."""
    if activation not in _compiled:
        _compiled[activation] = torch.compile(NAIVE[activation], dynamic=True)
    return _compiled[activation]
