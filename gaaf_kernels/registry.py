"""The public registry: reference specs plus their Triton twins.

``register_activation`` / ``register_shape`` add a user function to every path at once:
the NumPy reference, the PyTorch composite and the Triton kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gaaf_kernels.reference import registry as _ref

from .kernels.fast import FAST
from .kernels.functions import BUILTIN_TRITON

_TRITON: dict[tuple[str, str], tuple[Callable, Callable]] = {}
for _name in _ref.BUILTIN_SHAPES:
    _TRITON[("shape", _name)] = BUILTIN_TRITON[_name]
for _name in _ref.BUILTIN_ACTIVATIONS:
    _TRITON[("activation", _name)] = BUILTIN_TRITON[_name]


def activations() -> list[str]:
    """Names of the registered activations, built-in first."""
    return _ref.activation_names()


def shapes() -> list[str]:
    """Names of the registered shape functions, built-in first."""
    return _ref.shape_names()


def triton_functions(spec: _ref.FunctionSpec,
                     dtype: str = "float64") -> tuple[Callable, Callable]:
    """The ``(value, derivative)`` Triton functions of a registered spec.

    ``dtype`` is the storage dtype's name: float32 and 16-bit storage take the built-ins'
    fast twins (``kernels/fast.py``) where they exist, float64 the precise ones.
    """
    value, derivative = _TRITON[(spec.kind, spec.name)]
    builtin = _ref.BUILTIN_ACTIVATIONS if spec.kind == "activation" else _ref.BUILTIN_SHAPES
    if dtype == "float64" or spec.name not in builtin or spec.name not in FAST:
        return value, derivative
    value32, derivative32, value16, derivative16 = FAST[spec.name]
    value, derivative = value32 or value, derivative32 or derivative
    if dtype in ("float16", "bfloat16"):
        value, derivative = value16 or value, derivative16 or derivative
    return value, derivative


def _check_new(kind: str, name: str, triton_value, triton_derivative, numpy_value,
               numpy_derivative) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{kind} name must be an identifier-like string, got {name!r}")
    builtin = _ref.BUILTIN_ACTIVATIONS if kind == "activation" else _ref.BUILTIN_SHAPES
    if name in builtin:
        raise ValueError(f"{name!r} is a built-in {kind} and cannot be replaced")
    for label, fn in [("triton_value", triton_value), ("triton_derivative", triton_derivative)]:
        if not hasattr(fn, "cache_key") and not hasattr(fn, "fn"):
            raise TypeError(f"{label} must be a @triton.jit function, got {fn!r}")
    for label, fn in [("numpy_value", numpy_value), ("numpy_derivative", numpy_derivative)]:
        if not callable(fn):
            raise TypeError(f"{label} must be callable, got {fn!r}")


def register_activation(
    name: str,
    *,
    triton_value: Callable,
    triton_derivative: Callable,
    numpy_value: Callable,
    numpy_derivative: Callable,
    params: Mapping[str, float] | None = None,
    default_shape: str = "gaussian",
    default_shape_params: Mapping[str, float] | None = None,
    array_generic: bool = False,
    validate: Callable[[dict[str, float]], None] | None = None,
) -> None:
    """Register a new activation for every path.

    Args:
        name: the name users pass as ``activation=``.
        triton_value, triton_derivative: ``@triton.jit`` functions ``f(x, *params)``;
            ``x`` is a block in the compute dtype, params in the declared order.
        numpy_value, numpy_derivative: ``f(x, *params)`` on NumPy arrays of the compute
            dtype. With ``array_generic=True`` they are ``f(xp, x, *params)`` instead and
            work on any namespace with NumPy's names (then the PyTorch path fuses them).
        params: parameter names and defaults, at most three, in call order.
        default_shape: the shape used when a caller passes ``shape=None``.
        default_shape_params: parameter overrides for that default shape.
        array_generic: see ``numpy_value``.
        validate: optional ``f({name: value})`` that raises ValueError for parameter
            values outside the function's domain (``reference.registry.positive("c")``).
    """
    _check_new("activation", name, triton_value, triton_derivative, numpy_value,
               numpy_derivative)
    spec = _ref.FunctionSpec(
        name=name, kind="activation", value=numpy_value, derivative=numpy_derivative,
        params=_ref._check_params(params), default_shape=default_shape,
        default_shape_params=_ref._check_params(default_shape_params),
        array_generic=array_generic, validate=validate,
    )
    _ref.add_activation(spec)
    _TRITON[("activation", name)] = (triton_value, triton_derivative)


def register_shape(
    name: str,
    *,
    triton_value: Callable,
    triton_derivative: Callable,
    numpy_value: Callable,
    numpy_derivative: Callable,
    params: Mapping[str, float] | None = None,
    array_generic: bool = False,
    validate: Callable[[dict[str, float]], None] | None = None,
) -> None:
    """Register a new shape function s(x) for every path (arguments as for activations)."""
    _check_new("shape", name, triton_value, triton_derivative, numpy_value, numpy_derivative)
    spec = _ref.FunctionSpec(
        name=name, kind="shape", value=numpy_value, derivative=numpy_derivative,
        params=_ref._check_params(params), array_generic=array_generic, validate=validate,
    )
    _ref.add_shape(spec)
    _TRITON[("shape", name)] = (triton_value, triton_derivative)
