"""Registry of activations and shape functions (names, parameters, reference formulas).

This is the bottom layer: it knows nothing about Triton. ``gaaf_kernels.registry``
adds the Triton twins on top and is what users call to register their own functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import formulas as f

MAX_PARAMS = 3  # the kernels carry three runtime scalar slots per function


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
    doc: str = field(default="", compare=False)
    # Called with {name: value}; raises ValueError for values outside the domain.
    validate: Callable[[dict[str, float]], None] | None = field(default=None, compare=False)

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
            values[name] = value
        if self.validate is not None:
            self.validate(values)
        return tuple(values[name] for name in self.param_names)


_ACTIVATIONS: dict[str, FunctionSpec] = {}
_SHAPES: dict[str, FunctionSpec] = {}
_generation = [0]  # bumped by every registration, so caches of resolved configs can tell


def generation() -> int:
    """A number that changes whenever a function is registered."""
    return _generation[0]


def _check_params(params: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    items = tuple((str(k), float(v)) for k, v in (params or {}).items())
    if len(items) > MAX_PARAMS:
        raise ValueError(f"at most {MAX_PARAMS} parameters are supported, got {len(items)}")
    for name, _ in items:
        if not name.isidentifier():
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
    return items


def add_activation(spec: FunctionSpec) -> FunctionSpec:
    if spec.default_shape is None:
        raise ValueError(f"activation {spec.name!r} needs a default shape")
    if spec.default_shape not in _SHAPES:
        raise ValueError(
            f"default shape {spec.default_shape!r} of activation {spec.name!r} is not "
            f"registered; registered shapes: {', '.join(shape_names())}"
        )
    _SHAPES[spec.default_shape].resolve_params(dict(spec.default_shape_params))
    _ACTIVATIONS[spec.name] = spec
    _generation[0] += 1
    return spec


def add_shape(spec: FunctionSpec) -> FunctionSpec:
    _SHAPES[spec.name] = spec
    _generation[0] += 1
    return spec


def activation_names() -> list[str]:
    return list(_ACTIVATIONS)


def shape_names() -> list[str]:
    return list(_SHAPES)


def get_activation(name: str) -> FunctionSpec:
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; registered activations: {', '.join(_ACTIVATIONS)}"
        ) from None


def get_shape(name: str) -> FunctionSpec:
    try:
        return _SHAPES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown shape {name!r}; registered shapes: {', '.join(_SHAPES)}"
        ) from None


@dataclass(frozen=True)
class Resolved:
    """A fully resolved GAAF configuration: specs plus parameter values in order."""

    activation: FunctionSpec
    shape: FunctionSpec
    activation_params: tuple[float, ...]
    shape_params: tuple[float, ...]
    K: float


def check_K(K: float) -> float:
    try:
        K = float(K)
    except (TypeError, ValueError):
        raise TypeError(f"K must be a real number, got {K!r}") from None
    if not math.isfinite(K) or K <= 0:
        raise ValueError(f"K must be finite and > 0, got {K!r}")
    return K


def resolve(
    activation: str = "tanh",
    shape: str | None = None,
    *,
    K: float = 10000.0,
    activation_params: Mapping[str, float] | None = None,
    shape_params: Mapping[str, float] | None = None,
) -> Resolved:
    """Validate names, parameters and K; ``shape=None`` picks the activation's default."""
    act = get_activation(activation)
    if shape is None:
        shp = get_shape(act.default_shape)
        merged = dict(act.default_shape_params)
        merged.update(shape_params or {})
        shape_params = merged
    else:
        shp = get_shape(shape)
    return Resolved(
        activation=act,
        shape=shp,
        activation_params=act.resolve_params(activation_params),
        shape_params=shp.resolve_params(shape_params),
        K=check_K(K),
    )


def positive(*names: str) -> Callable[[dict[str, float]], None]:
    """A ``validate`` hook: the named parameters must be > 0."""

    def check(values: dict[str, float]) -> None:
        for name in names:
            if not values[name] > 0:
                raise ValueError(f"parameter {name!r} must be > 0, got {values[name]!r}")

    return check


def _hardtanh_limits(values: dict[str, float]) -> None:
    if not values["min_val"] <= values["max_val"]:  # equal limits: a constant, as in PyTorch
        raise ValueError(f"hardtanh needs min_val <= max_val, got {values}")


_VALIDATORS = {"gaussian": positive("c"), "laplace": positive("c"),
               "softplus": positive("beta"), "hardtanh": _hardtanh_limits}


def _builtin(kind: str, name: str, value, derivative, params=None, default_shape=None,
             default_shape_params=None, doc: str = "") -> None:
    spec = FunctionSpec(
        name=name, kind=kind, value=value, derivative=derivative,
        params=_check_params(params), default_shape=default_shape,
        default_shape_params=_check_params(default_shape_params), doc=doc,
        validate=_VALIDATORS.get(name),
    )
    (add_shape if kind == "shape" else add_activation)(spec)


# Shape functions first: activations name their default shape.
_builtin("shape", "gaussian", f.gaussian, f.gaussian_derivative, {"c": 3.0}, doc="exp(-x^2/c)")
_builtin("shape", "laplace", f.laplace, f.laplace_derivative, {"c": 1.0}, doc="exp(-|x|/c)")
_builtin("shape", "shifted_sigmoid", f.shifted_sigmoid, f.shifted_sigmoid_derivative,
         {"shift": 4.0, "slope": 1.0}, doc="sigmoid(slope*(x+shift))")
_builtin("shape", "constant", f.constant, f.constant_derivative, {"value": 1.0}, doc="value")
_builtin("shape", "none", f.none, f.none_derivative, doc="0 (plain activation)")

_TWO_SIDED = ("gaussian", {"c": 3.0})
_ONE_SIDED = ("shifted_sigmoid", {"shift": 4.0, "slope": 1.0})
for _name, _value, _deriv, _params, _default in [
    ("tanh", f.tanh, f.tanh_derivative, None, _TWO_SIDED),
    # sigmoid(x) = (1 + tanh(x/2)) / 2: the tanh shape stretched by 2 gives c = 12.
    ("sigmoid", f.sigmoid, f.sigmoid_derivative, None, ("gaussian", {"c": 12.0})),
    ("hardtanh", f.hardtanh, f.hardtanh_derivative, {"min_val": -1.0, "max_val": 1.0},
     _TWO_SIDED),
    ("softsign", f.softsign, f.softsign_derivative, None, _TWO_SIDED),
    ("relu", f.relu, f.relu_derivative, None, _ONE_SIDED),
    ("leaky_relu", f.leaky_relu, f.leaky_relu_derivative, {"negative_slope": 0.01}, _ONE_SIDED),
    ("elu", f.elu, f.elu_derivative, {"alpha": 1.0}, _ONE_SIDED),
    ("selu", f.selu, f.selu_derivative, None, _ONE_SIDED),
    ("gelu", f.gelu, f.gelu_derivative, None, _ONE_SIDED),
    ("gelu_tanh", f.gelu_tanh, f.gelu_tanh_derivative, None, _ONE_SIDED),
    ("silu", f.silu, f.silu_derivative, None, _ONE_SIDED),
    ("softplus", f.softplus, f.softplus_derivative, {"beta": 1.0, "threshold": 20.0},
     _ONE_SIDED),
    ("mish", f.mish, f.mish_derivative, None, _ONE_SIDED),
    # hardsigmoid(x) = (1 + hardtanh(x/3)) / 2: hardtanh's shape stretched by 3, c = 27.
    ("hardsigmoid", f.hardsigmoid, f.hardsigmoid_derivative, None, ("gaussian", {"c": 27.0})),
    # hardswish is dead below -3 where relu is dead below 0: relu's shape moved by 3.
    ("hardswish", f.hardswish, f.hardswish_derivative, None,
     ("shifted_sigmoid", {"shift": 7.0, "slope": 1.0})),
    ("quick_gelu", f.quick_gelu, f.quick_gelu_derivative, None, _ONE_SIDED),
    ("relu_squared", f.relu_squared, f.relu_squared_derivative, None, _ONE_SIDED),
]:
    _builtin("activation", _name, _value, _deriv, _params, _default[0], _default[1])

BUILTIN_ACTIVATIONS = tuple(activation_names())
BUILTIN_SHAPES = tuple(shape_names())
