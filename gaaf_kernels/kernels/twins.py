"""The Triton twins of each built-in: one explicit record per catalogue entry.

A twin is the ``@triton.jit`` version of a reference formula that the fused kernels call.
``functions.py`` holds the precise twins (float64 runs them), ``fast.py`` the optional
cheaper ones for float32 compute (float32 and 16-bit storage) and the ``*_16`` ones for
16-bit storage. This table is the only thing that attaches a twin to its catalogue entry:
the ``<entry>_<which>`` names in those files are a convention that tests/test_twins.py
holds the table to, not a lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import fast, functions


@dataclass(frozen=True, eq=False)
class Twins:
    """The Triton twins of one registered activation or shape: ``f(x, *params)``.

    ``value`` and ``derivative`` are required; ``second_derivative`` (phi'', which the
    saturation band's backward runs) where the function has one. Each ``fast_*`` twin is
    used instead of the one above it for 32- and 16-bit storage, each ``*_16`` twin
    instead of the ``fast_*`` one for 16-bit storage; None falls back.

    Compared and hashed by identity: a registration makes a new record, so a cache keyed
    on a spec (which holds its twins) tells a re-registered name from the old one.
    """

    value: Callable | None = None
    derivative: Callable | None = None
    second_derivative: Callable | None = None
    fast_value: Callable | None = None
    fast_derivative: Callable | None = None
    fast_second_derivative: Callable | None = None
    fast_value_16: Callable | None = None
    fast_derivative_16: Callable | None = None

    def missing(self, *, second: bool) -> list[str]:
        """The names of the required twins that are None (``second``: phi'' is required)."""
        required = {"value": self.value, "derivative": self.derivative}
        if second:
            required["second_derivative"] = self.second_derivative
        return [name for name, twin in required.items() if twin is None]

    def for_storage(self, dtype: str) -> tuple[Callable, Callable]:
        """``(value, derivative)`` for the storage dtype's name."""
        if self.value is None or self.derivative is None:  # the registry refuses these
            raise ValueError("a Triton twin record without value or derivative")
        if dtype == "float64":
            return self.value, self.derivative
        value = self.fast_value or self.value
        derivative = self.fast_derivative or self.derivative
        if dtype in ("float16", "bfloat16"):
            value = self.fast_value_16 or value
            derivative = self.fast_derivative_16 or derivative
        return value, derivative

    def second_for_storage(self, dtype: str) -> Callable | None:
        """phi'' for the storage dtype's name (16-bit storage runs the fast one too)."""
        if dtype == "float64":
            return self.second_derivative
        return self.fast_second_derivative or self.second_derivative


# Keyed like the catalogue (reference/catalogue.py), in its order; the registry refuses a
# key that is no catalogue entry and an entry without a record.
BUILTIN_TWINS: dict[str, Twins] = dict(
    # --- shapes ---------------------------------------------------------------------
    gaussian=Twins(
        value=functions.gaussian_value, derivative=functions.gaussian_derivative,
        fast_value=fast.gaussian_value, fast_derivative=fast.gaussian_derivative),
    laplace=Twins(
        value=functions.laplace_value, derivative=functions.laplace_derivative,
        fast_value=fast.laplace_value, fast_derivative=fast.laplace_derivative),
    shifted_sigmoid=Twins(
        value=functions.shifted_sigmoid_value,
        derivative=functions.shifted_sigmoid_derivative,
        fast_value=fast.shifted_sigmoid_value,
        fast_derivative=fast.shifted_sigmoid_derivative,
        fast_value_16=fast.shifted_sigmoid_value_16,
        fast_derivative_16=fast.shifted_sigmoid_derivative_16),
    bsilu=Twins(value=functions.bsilu_value, derivative=functions.bsilu_derivative),
    nelu=Twins(value=functions.nelu_value, derivative=functions.nelu_derivative),
    constant=Twins(value=functions.constant_value, derivative=functions.constant_derivative),
    none=Twins(value=functions.none_value, derivative=functions.none_derivative),
    # --- activations ----------------------------------------------------------------
    tanh=Twins(
        value=functions.tanh_value, derivative=functions.tanh_derivative,
        second_derivative=functions.tanh_second_derivative,
        fast_value=fast.tanh_value, fast_derivative=fast.tanh_derivative,
        fast_second_derivative=fast.tanh_second_derivative,
        fast_value_16=fast.tanh_value_16, fast_derivative_16=fast.tanh_derivative_16),
    sigmoid=Twins(
        value=functions.sigmoid_value, derivative=functions.sigmoid_derivative,
        second_derivative=functions.sigmoid_second_derivative,
        fast_value=fast.sigmoid_value, fast_derivative=fast.sigmoid_derivative,
        fast_second_derivative=fast.sigmoid_second_derivative,
        fast_value_16=fast.sigmoid_value_16, fast_derivative_16=fast.sigmoid_derivative_16),
    hardtanh=Twins(
        value=functions.hardtanh_value, derivative=functions.hardtanh_derivative,
        second_derivative=functions.hardtanh_second_derivative),
    softsign=Twins(
        value=functions.softsign_value, derivative=functions.softsign_derivative,
        second_derivative=functions.softsign_second_derivative,
        fast_value=fast.softsign_value, fast_derivative=fast.softsign_derivative),
    relu=Twins(
        value=functions.relu_value, derivative=functions.relu_derivative,
        second_derivative=functions.relu_second_derivative),
    leaky_relu=Twins(
        value=functions.leaky_relu_value, derivative=functions.leaky_relu_derivative,
        second_derivative=functions.leaky_relu_second_derivative,
        fast_value=fast.leaky_relu_value),
    elu=Twins(
        value=functions.elu_value, derivative=functions.elu_derivative,
        second_derivative=functions.elu_second_derivative,
        fast_value=fast.elu_value, fast_derivative=fast.elu_derivative,
        fast_value_16=fast.elu_value_16),
    selu=Twins(
        value=functions.selu_value, derivative=functions.selu_derivative,
        second_derivative=functions.selu_second_derivative,
        fast_value=fast.selu_value, fast_derivative=fast.selu_derivative,
        fast_value_16=fast.selu_value_16),
    gelu=Twins(
        value=functions.gelu_value, derivative=functions.gelu_derivative,
        second_derivative=functions.gelu_second_derivative,
        fast_value=fast.gelu_value, fast_derivative=fast.gelu_derivative,
        fast_second_derivative=fast.gelu_second_derivative,
        fast_value_16=fast.gelu_value_16),
    gelu_tanh=Twins(
        value=functions.gelu_tanh_value, derivative=functions.gelu_tanh_derivative,
        second_derivative=functions.gelu_tanh_second_derivative,
        fast_value=fast.gelu_tanh_value, fast_derivative=fast.gelu_tanh_derivative,
        fast_second_derivative=fast.gelu_tanh_second_derivative,
        fast_value_16=fast.gelu_tanh_value_16,
        fast_derivative_16=fast.gelu_tanh_derivative_16),
    silu=Twins(
        value=functions.silu_value, derivative=functions.silu_derivative,
        second_derivative=functions.silu_second_derivative,
        fast_value=fast.silu_value, fast_derivative=fast.silu_derivative,
        fast_second_derivative=fast.silu_second_derivative,
        fast_value_16=fast.silu_value_16, fast_derivative_16=fast.silu_derivative_16),
    softplus=Twins(
        value=functions.softplus_value, derivative=functions.softplus_derivative,
        second_derivative=functions.softplus_second_derivative,
        fast_value=fast.softplus_value, fast_derivative=fast.softplus_derivative,
        fast_value_16=fast.softplus_value_16,
        fast_derivative_16=fast.softplus_derivative_16),
    mish=Twins(
        value=functions.mish_value, derivative=functions.mish_derivative,
        second_derivative=functions.mish_second_derivative,
        fast_value=fast.mish_value, fast_derivative=fast.mish_derivative,
        fast_second_derivative=fast.mish_second_derivative,
        fast_value_16=fast.mish_value_16, fast_derivative_16=fast.mish_derivative_16),
    hardsigmoid=Twins(
        value=functions.hardsigmoid_value, derivative=functions.hardsigmoid_derivative,
        second_derivative=functions.hardsigmoid_second_derivative),
    hardswish=Twins(
        value=functions.hardswish_value, derivative=functions.hardswish_derivative,
        second_derivative=functions.hardswish_second_derivative,
        fast_value=fast.hardswish_value),
    quick_gelu=Twins(
        value=functions.quick_gelu_value, derivative=functions.quick_gelu_derivative,
        second_derivative=functions.quick_gelu_second_derivative,
        fast_value=fast.quick_gelu_value, fast_derivative=fast.quick_gelu_derivative,
        fast_second_derivative=fast.quick_gelu_second_derivative,
        fast_value_16=fast.quick_gelu_value_16,
        fast_derivative_16=fast.quick_gelu_derivative_16),
    relu_squared=Twins(
        value=functions.relu_squared_value, derivative=functions.relu_squared_derivative,
        second_derivative=functions.relu_squared_second_derivative),
)
