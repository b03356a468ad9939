"""The public registry: reference specs plus their Triton twins.

``register_activation`` / ``register_shape`` add a user function to every path at once:
the NumPy reference, the PyTorch composite and the Triton kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gaaf_kernels.reference import registry as _ref
from gaaf_kernels.reference.catalogue import DEFAULT_SHAPE

from .kernels import fast, functions


def builtin_twins(name: str) -> dict[str, Callable | None]:
    """The Triton twins of the catalogue entry ``name``, found by the entry's name.

    ``functions.<name>_value`` / ``_derivative`` follow the reference (float64 runs them),
    as does ``_second_derivative`` (phi'' of the saturation band, every dtype runs it);
    ``fast.<name>_value`` / ``_derivative`` (float32 compute) and ``..._16`` (16-bit
    storage) are optional cheaper twins. This is the one place that joins them.
    """
    twins = {"value": getattr(functions, f"{name}_value"),
             "derivative": getattr(functions, f"{name}_derivative"),
             "second_derivative": getattr(functions, f"{name}_second_derivative", None)}
    for suffix in ("", "_16"):
        for which in ("value", "derivative"):
            twins[f"fast_{which}{suffix}"] = getattr(fast, f"{name}_{which}{suffix}", None)
    twins["fast_second_derivative"] = getattr(fast, f"{name}_second_derivative", None)
    return twins


_TRITON: dict[tuple[str, str], tuple[Callable, Callable]] = {}
_FAST: dict[tuple[str, str], dict[str, Callable | None]] = {}
_SECOND: dict[str, Callable] = {}  # activation name -> phi'' twin (precise)
for _entry in _ref.BUILTINS:
    _twins = builtin_twins(_entry.name)
    _TRITON[(_entry.kind, _entry.name)] = (_twins["value"], _twins["derivative"])
    _FAST[(_entry.kind, _entry.name)] = _twins
    if _entry.kind == "activation" and _entry.second_derivative is not None:
        if _twins["second_derivative"] is None:
            raise ImportError(f"catalogue entry {_entry.name!r} has phi'' but "
                              f"kernels/functions.py has no {_entry.name}_second_derivative")
        _SECOND[_entry.name] = _twins["second_derivative"]


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
    twins = _FAST.get((spec.kind, spec.name))  # built-ins only: users cannot replace them
    if dtype == "float64" or twins is None:
        return value, derivative
    value = twins["fast_value"] or value
    derivative = twins["fast_derivative"] or derivative
    if dtype in ("float16", "bfloat16"):
        value = twins["fast_value_16"] or value
        derivative = twins["fast_derivative_16"] or derivative
    return value, derivative


def triton_second_derivative(spec: _ref.FunctionSpec, dtype: str = "float64") -> Callable:
    """The Triton twin of phi'' of a registered activation (for ``band=True``): the fast
    one for 32- and 16-bit storage where it exists, else the precise one."""
    try:
        precise = _SECOND[spec.name]
    except KeyError:
        raise ValueError(f"activation {spec.name!r} has no Triton second derivative; "
                         f"band=True needs one") from None
    twins = _FAST.get((spec.kind, spec.name))
    if dtype == "float64" or twins is None:
        return precise
    return twins["fast_second_derivative"] or precise


def _check_new(kind: str, name: str, triton_value, triton_derivative, numpy_value,
               numpy_derivative) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{kind} name must be an identifier-like string, got {name!r}")
    builtin = _ref.BUILTIN_ACTIVATIONS if kind == "activation" else _ref.BUILTIN_SHAPES
    if name in builtin:
        raise ValueError(f"{name!r} is a built-in {kind} and cannot be replaced")
    if kind == "shape" and name == "default":  # `gaaf verify --shape default` means each own
        raise ValueError("'default' is reserved (it names each activation's default shape)")
    _check_functions(triton={"triton_value": triton_value,
                             "triton_derivative": triton_derivative},
                     plain={"numpy_value": numpy_value, "numpy_derivative": numpy_derivative})


def _check_functions(triton: Mapping[str, Callable], plain: Mapping[str, Callable]) -> None:
    """TypeError naming the argument that is not a @triton.jit function / not callable."""
    for label, fn in triton.items():
        if not hasattr(fn, "cache_key") and not hasattr(fn, "fn"):
            raise TypeError(f"{label} must be a @triton.jit function, got {fn!r}")
    for label, fn in plain.items():
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
    default_shape: str = DEFAULT_SHAPE,
    default_shape_params: Mapping[str, float] | None = None,
    array_generic: bool = False,
    validate: Callable[[dict[str, float]], None] | None = None,
    triton_second_derivative: Callable | None = None,
    numpy_second_derivative: Callable | None = None,
    derivative_bound: Callable[..., float] | None = None,
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
        numpy_second_derivative: phi'' (as ``numpy_derivative``); with it GAAF of this
            activation can be differentiated twice (double backward, Hessians).
        triton_second_derivative, derivative_bound: phi'' as a Triton twin and
            ``m(*params)``, the bound of |phi'|; both with ``numpy_second_derivative``,
            or neither. With all three the activation supports ``band=True``.
    """
    _check_new("activation", name, triton_value, triton_derivative, numpy_value,
               numpy_derivative)
    band_parts = (triton_second_derivative, derivative_bound)
    if any(part is not None for part in band_parts):
        if any(part is None for part in (*band_parts, numpy_second_derivative)):
            raise TypeError("band support needs triton_second_derivative, "
                            "numpy_second_derivative and derivative_bound together")
        _check_functions(triton={"triton_second_derivative": triton_second_derivative},
                         plain={"derivative_bound": derivative_bound})
    if numpy_second_derivative is not None:
        _check_functions(triton={}, plain={"numpy_second_derivative": numpy_second_derivative})
    spec = _ref.FunctionSpec(
        name=name, kind="activation", value=numpy_value, derivative=numpy_derivative,
        params=_ref._check_params(params), default_shape=default_shape,
        default_shape_params=_ref._check_params(default_shape_params),
        array_generic=array_generic, validate=validate,
        second_derivative=numpy_second_derivative, derivative_bound=derivative_bound,
    )
    _ref.add_activation(spec)
    _TRITON[("activation", name)] = (triton_value, triton_derivative)
    if triton_second_derivative is not None:
        _SECOND[name] = triton_second_derivative
    else:
        _SECOND.pop(name, None)


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
    numpy_second_derivative: Callable | None = None,
) -> None:
    """Register a new shape function s(x) for every path (arguments as for activations;
    ``numpy_second_derivative``, s'', lets GAAF with this shape be differentiated twice).
    """
    _check_new("shape", name, triton_value, triton_derivative, numpy_value, numpy_derivative)
    if numpy_second_derivative is not None:
        _check_functions(triton={}, plain={"numpy_second_derivative": numpy_second_derivative})
    spec = _ref.FunctionSpec(
        name=name, kind="shape", value=numpy_value, derivative=numpy_derivative,
        params=_ref._check_params(params), array_generic=array_generic, validate=validate,
        second_derivative=numpy_second_derivative,
    )
    _ref.add_shape(spec)
    _TRITON[("shape", name)] = (triton_value, triton_derivative)
