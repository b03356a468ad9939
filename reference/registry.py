"""Registry of activations and shape functions (names, parameters, reference formulas).

This is the one store of registered functions: a ``FunctionSpec`` per function, which
also carries the function's Triton twins. This layer never imports Triton and never
reads the twins; ``gaaf_kernels.registry`` is the one writer of the store (the
catalogue's built-ins, from ``catalogue.py``, with their twins when it is imported,
which ``import gaaf_kernels`` does first; users' functions when they register them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

from .catalogue import ACTIVATIONS, DEFAULT_ACTIVATION, SHAPES, Builtin  # noqa: F401

MAX_PARAMS = 3  # the kernels carry three runtime scalar slots per function
DEFAULT_K = 10000.0  # the frequency constant of the paper's experiments


@dataclass(frozen=True)
class FunctionSpec:
    """One activation or shape function as the reference sees it.

    ``value`` and ``derivative`` take ``(xp, x, *params)`` when ``array_generic`` is
    true (they work on NumPy arrays and torch tensors alike), else ``(x, *params)``
    on NumPy arrays only.
    """

    name: str
    kind: str  # "activation" or "shape"
    value: Callable
    derivative: Callable
    params: tuple[tuple[str, float], ...] = ()
    default_shape: str | None = None
    default_shape_params: tuple[tuple[str, float], ...] = ()
    array_generic: bool = True
    # Called with {name: value}; raises ValueError for values outside the domain.
    validate: Callable[[dict[str, float]], None] | None = field(default=None, compare=False)
    # phi'' or s'' with the signature of ``derivative`` (double backward needs it), and
    # for the saturation band (activations only) m = sup |phi'| as a function of the
    # parameter values in order.
    second_derivative: Callable | None = None
    derivative_bound: Callable[..., float] | None = field(default=None, compare=False)
    # The Triton twins (``gaaf_kernels.kernels.twins.Twins``), kept for the kernels; part
    # of equality and hash, so caches keyed on a spec see a re-registered name.
    twins: Hashable | None = None

    def __reduce__(self):
        # By name: a spec holds functions (validators, user lambdas) that need not
        # pickle, and the registry of the loading process is the one that counts.
        return (registered, (self.kind, self.name))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params)

    def resolve_params(self, given: Mapping[str, float] | None) -> tuple[float, ...]:
        """Defaults overridden by ``given``; unknown names are a ValueError."""
        values = dict(self.params)
        for name, value in (given or {}).items():
            if name not in values:
                valid = ", ".join(self.param_names) or "none"
                raise ValueError(
                    f"unknown parameter {name!r} for {self.kind} {self.name!r}; "
                    f"valid parameters: {valid}"
                )
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"parameter {name!r} of {self.kind} {self.name!r} must be a real number, "
                    f"got {value!r}"
                ) from None
            if not math.isfinite(value):
                raise ValueError(f"parameter {name!r} of {self.kind} {self.name!r} must be finite")
            check_float32(f"{self.kind} {self.name!r}", name, value)
            values[name] = value
        if self.validate is not None:
            self.validate(values)
        return tuple(values[name] for name in self.param_names)


# The one store: (kind, name) -> spec, in registration order (the built-ins first).
_RECORDS: dict[tuple[str, str], FunctionSpec] = {}


def _check_params(params: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    items = tuple((str(k), float(v)) for k, v in (params or {}).items())
    if len(items) > MAX_PARAMS:
        raise ValueError(f"at most {MAX_PARAMS} parameters are supported, got {len(items)}")
    for name, _ in items:
        if not name.isidentifier():
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
    return items


def add(spec: FunctionSpec) -> FunctionSpec:
    """Store ``spec`` under its kind and name (``gaaf_kernels.registry`` calls this)."""
    if spec.kind == "activation":
        if spec.default_shape is None:
            raise ValueError(f"activation {spec.name!r} needs a default shape")
        if ("shape", spec.default_shape) not in _RECORDS:
            raise ValueError(
                f"default shape {spec.default_shape!r} of activation {spec.name!r} is not "
                f"registered; registered shapes: {', '.join(shape_names())}"
            )
        _RECORDS["shape", spec.default_shape].resolve_params(dict(spec.default_shape_params))
    _RECORDS[spec.kind, spec.name] = spec
    return spec


def registered(kind: str, name: str) -> FunctionSpec:
    """The registered activation or shape ``name`` (how specs unpickle)."""
    try:
        return _RECORDS[kind, name]
    except KeyError:
        raise ValueError(
            f"{kind} {name!r} is not registered in this process; register it (import the "
            f"module that registers it) before loading a model or config that uses it"
        ) from None


def default_shape_of(act: FunctionSpec) -> str:
    """The name of an activation's default shape (every activation has one)."""
    if act.default_shape is None:
        raise ValueError(f"activation {act.name!r} has no default shape")
    return act.default_shape


def records_of(activation: str, shape: str | None) -> tuple[FunctionSpec, FunctionSpec]:
    """The specs that ``resolve(activation, shape)`` reads (``shape=None``: the
    activation's default), a cache key that changes when either name is registered anew;
    ValueError for unknown names."""
    act = get_activation(activation)
    return act, get_shape(default_shape_of(act) if shape is None else shape)


def _names(kind: str) -> list[str]:
    return [name for (k, name) in _RECORDS if k == kind]


def activation_names() -> list[str]:
    return _names("activation")


def shape_names() -> list[str]:
    return _names("shape")


def _get(kind: str, name: str) -> FunctionSpec:
    try:
        return _RECORDS[kind, name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {kind} {name!r}; registered {kind}s: "
                         f"{', '.join(_names(kind))}") from None


def get_activation(name: str) -> FunctionSpec:
    return _get("activation", name)


def get_shape(name: str) -> FunctionSpec:
    return _get("shape", name)


def check_K(K: float) -> float:
    try:
        K = float(K)
    except (TypeError, ValueError):
        raise TypeError(f"K must be a real number, got {K!r}") from None
    if not math.isfinite(K) or K <= 0:
        raise ValueError(f"K must be finite and > 0, got {K!r}")
    if not FLOAT32_NORMAL_MIN <= K <= FLOAT32_MAX:
        raise ValueError(
            f"K={K!r} leaves float32's range (K or 1/K would round to 0 or inf); float16, "
            f"bfloat16 and float32 inputs compute in float32, so K must lie in "
            f"[{FLOAT32_NORMAL_MIN:.3g}, {FLOAT32_MAX:.3g}]")
    return K


# float32's limits, as plain floats (comparisons that Dynamo traces, where configs are made)
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_NORMAL_MIN = 2.0**-126  # K >= this keeps 1/K finite in float32
FLOAT32_SUBNORMAL_MIN = 2.0**-149  # smaller magnitudes round to 0


def check_float32(owner: str, name: str, value: float) -> None:
    """ValueError where a parameter that is finite and non-zero in float64 becomes inf or
    0 once rounded to float32, the compute dtype of 16- and 32-bit inputs (a Gaussian
    width of 1e-300 gave NaN everywhere)."""
    if abs(value) > FLOAT32_MAX or 0 < abs(value) < FLOAT32_SUBNORMAL_MIN:
        rounded = ("-inf" if value < 0 else "inf") if abs(value) > FLOAT32_MAX else "0"
        raise ValueError(
            f"parameter {name}={value!r} of {owner} rounds to {rounded} in float32, the "
            f"compute dtype of float16, bfloat16 and float32 inputs; use a magnitude in "
            f"[{FLOAT32_SUBNORMAL_MIN:.3g}, {FLOAT32_MAX:.3g}] (or 0)")


def band_activations() -> list[str]:
    """The registered activations that support ``band=True``."""
    return [name for (kind, name), spec in _RECORDS.items() if kind == "activation"
            and spec.second_derivative is not None and spec.derivative_bound is not None]


def band_inverse_bound(act: FunctionSpec, params: tuple[float, ...]) -> float:
    """1/m for the saturation band of ``act`` with ``params``; ValueError where it has none."""
    if act.second_derivative is None or act.derivative_bound is None:
        missing = "its second derivative" if act.second_derivative is None else (
            "a bound of |phi'|" if act.name not in BUILTIN_BOUNDLESS else
            "a bounded derivative (phi' grows without limit)")
        raise ValueError(
            f"band=True needs {missing} for activation {act.name!r}; activations with a "
            f"band: {', '.join(band_activations())}")
    m = float(act.derivative_bound(*params))
    if not (math.isfinite(m) and m > 0):
        raise ValueError(f"the bound of |phi'| of {act.name!r} must be finite and > 0 for "
                         f"band=True, got {m!r}")
    return 1.0 / m


def positive(*names: str) -> Callable[[dict[str, float]], None]:
    """A ``validate`` hook: the named parameters must be > 0."""

    def check(values: dict[str, float]) -> None:
        for name in names:
            if not values[name] > 0:
                raise ValueError(f"parameter {name!r} must be > 0, got {values[name]!r}")

    return check


def ordered(*names: str) -> Callable[[dict[str, float]], None]:
    """A ``validate`` hook: the named parameters must not decrease in the given order.

    (hardtanh's min_val == max_val is a constant, as in PyTorch.)
    """

    def check(values: dict[str, float]) -> None:
        for low, high in zip(names, names[1:]):
            if not values[low] <= values[high]:
                raise ValueError(f"need {low} <= {high}, got {values}")

    return check


def _validator(entry: Builtin) -> Callable[[dict[str, float]], None] | None:
    checks = [check(*names) for check, names in ((positive, entry.positive),
                                                 (ordered, entry.ordered)) if names]
    if not checks:
        return None

    def validate(values: dict[str, float]) -> None:
        for check in checks:
            check(values)

    return validate


def builtin_spec(entry: Builtin, twins: Hashable | None) -> FunctionSpec:
    """The spec of a catalogue entry with its Triton twins (not stored: see ``add``)."""
    return FunctionSpec(
        name=entry.name, kind=entry.kind, value=entry.value, derivative=entry.derivative,
        params=_check_params(dict(entry.params)), default_shape=entry.default_shape,
        default_shape_params=_check_params(dict(entry.default_shape_params)),
        validate=_validator(entry), second_derivative=entry.second_derivative,
        derivative_bound=entry.derivative_bound, twins=twins,
    )


BUILTIN_ACTIVATIONS = tuple(entry.name for entry in ACTIVATIONS)
#: Built-ins with phi'' but an unbounded phi' (no band), for the error message.
BUILTIN_BOUNDLESS = tuple(entry.name for entry in ACTIVATIONS
                          if entry.second_derivative is not None
                          and entry.derivative_bound is None)
BUILTIN_SHAPES = tuple(entry.name for entry in SHAPES)
