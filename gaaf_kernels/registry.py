"""The public registry: the one writer of the store of registered functions.

Each registered function is one ``FunctionSpec`` (``reference/registry.py``) that holds
its Triton twins (``kernels/twins.py``). ``_add`` is the only place that stores one: at
import for every catalogue entry with its record of ``BUILTIN_TWINS``, later for what
``register_activation`` / ``register_shape`` add (the NumPy reference, the PyTorch
composite and the Triton kernels then all see the function).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from gaaf_kernels.reference import catalogue
from gaaf_kernels.reference import registry as _ref
from gaaf_kernels.reference.catalogue import DEFAULT_SHAPE

from .kernels import twins as _twins
from .kernels.twins import Twins


def _twins_of(spec: _ref.FunctionSpec) -> Twins:
    if not isinstance(spec.twins, Twins):
        raise ValueError(f"{spec.kind} {spec.name!r} has no Triton twins; register it with "
                         f"gaaf_kernels.register_{spec.kind}")
    return spec.twins


def _add(spec: _ref.FunctionSpec, *, needs_second: bool) -> None:
    """Store ``spec``; ValueError naming it and each required twin it lacks
    (``needs_second``: the Triton phi'' is one)."""
    missing = _twins_of(spec).missing(second=needs_second)
    if missing:
        raise ValueError(f"the Triton twins of {spec.kind} {spec.name!r} lack "
                         f"{', '.join(missing)}")
    _ref.add(spec)


def _add_builtins() -> None:
    """Every catalogue entry with its twins record (shapes first: activations name their
    default shape). A built-in activation with phi'' needs its Triton phi'' too."""
    table = _twins.BUILTIN_TWINS
    strays = sorted(table.keys() - {entry.name for entry in catalogue.BUILTINS})
    if strays:
        raise ValueError(f"twins records without a catalogue entry: {', '.join(strays)}")
    for entry in catalogue.BUILTINS:
        if entry.name not in table:
            raise ValueError(f"built-in {entry.kind} {entry.name!r} has no twins record in "
                             f"gaaf_kernels/kernels/twins.py")
        _add(_ref.builtin_spec(entry, table[entry.name]),
             needs_second=entry.kind == "activation" and entry.second_derivative is not None)


_add_builtins()


def activations() -> list[str]:
    """Names of the registered activations, built-in first."""
    return _ref.activation_names()


def shapes() -> list[str]:
    """Names of the registered shape functions, built-in first."""
    return _ref.shape_names()


def triton_functions(spec: _ref.FunctionSpec,
                     dtype: str = "float64") -> tuple[Callable, Callable]:
    """The ``(value, derivative)`` Triton functions of a registered spec.

    ``dtype`` is the storage dtype's name: float32 and 16-bit storage take the fast
    twins (``kernels/fast.py``) where the spec's record has them, float64 the precise ones.
    """
    return _twins_of(spec).for_storage(dtype)


def triton_second_derivative(spec: _ref.FunctionSpec, dtype: str = "float64") -> Callable:
    """The Triton twin of phi'' of a registered activation (for ``band=True``): the fast
    one for 32- and 16-bit storage where it exists, else the precise one."""
    second = _twins_of(spec).second_for_storage(dtype)
    if second is None:
        raise ValueError(f"activation {spec.name!r} has no Triton second derivative; "
                         f"band=True needs one")
    return second


def _check_new(kind: str, name: str, record: Twins, *, by_keyword: bool, numpy_value,
               numpy_derivative) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{kind} name must be an identifier-like string, got {name!r}")
    builtin = _ref.BUILTIN_ACTIVATIONS if kind == "activation" else _ref.BUILTIN_SHAPES
    if name in builtin:
        raise ValueError(f"{name!r} is a built-in {kind} and cannot be replaced")
    if kind == "shape" and name == "default":  # `gaaf verify --shape default` means each own
        raise ValueError("'default' is reserved (it names each activation's default shape)")
    _check_functions(triton=_labelled(record, by_keyword=by_keyword),
                     plain={"numpy_value": numpy_value, "numpy_derivative": numpy_derivative})


_KEYWORDS = {"value": "triton_value", "derivative": "triton_derivative",
             "second_derivative": "triton_second_derivative"}


def _labelled(record: Twins, *, by_keyword: bool) -> dict[str, Callable]:
    """The record's twins by the argument that gave each: a ``triton_*`` keyword or a
    field of ``twins=``."""
    fields = (field.name for field in dataclasses.fields(record))
    return {_KEYWORDS[name] if by_keyword else f"twins.{name}": getattr(record, name)
            for name in fields if getattr(record, name) is not None}


def _user_record(kind: str, twins: Twins | None, **keywords: Callable | None) -> Twins:
    """A registration's twins: the record ``twins=`` or the ``triton_*`` keywords."""
    given = [_KEYWORDS[field] for field, twin in keywords.items() if twin is not None]
    if twins is not None:
        if given:
            raise TypeError(f"give the Triton twins either as twins=Twins(...) or as "
                            f"{', '.join(given)}, not both")
        if not isinstance(twins, Twins):
            raise TypeError(f"twins must be a gaaf_kernels.Twins record, got {twins!r}")
        if kind == "shape" and (twins.second_derivative or twins.fast_second_derivative):
            raise TypeError("a shape's Triton twins have no second derivative (s'' runs in "
                            "the reference and the PyTorch path only)")
        return twins
    if keywords["value"] is None or keywords["derivative"] is None:
        raise TypeError(f"register_{kind} needs triton_value and triton_derivative, or a "
                        f"record twins=gaaf_kernels.Twins(value=..., derivative=..., ...)")
    return Twins(**keywords)


def _check_functions(triton: Mapping[str, object], plain: Mapping[str, object]) -> None:
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
    triton_value: Callable | None = None,
    triton_derivative: Callable | None = None,
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
    twins: Twins | None = None,
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
        twins: instead of the ``triton_*`` keywords, the whole record of Triton twins
            (``gaaf_kernels.Twins``): also the cheaper ones that float32 and 16-bit
            storage run, as a built-in's record names them.
    """
    record = _user_record("activation", twins, value=triton_value,
                          derivative=triton_derivative,
                          second_derivative=triton_second_derivative)
    _check_new("activation", name, record, by_keyword=twins is None,
               numpy_value=numpy_value, numpy_derivative=numpy_derivative)
    band_parts = (record.second_derivative, derivative_bound)
    if any(part is not None for part in band_parts):
        if any(part is None for part in (*band_parts, numpy_second_derivative)):
            raise TypeError("band support needs a Triton phi'' (triton_second_derivative or "
                            "twins.second_derivative), numpy_second_derivative and "
                            "derivative_bound together")
        _check_functions(triton={}, plain={"derivative_bound": derivative_bound})
    if numpy_second_derivative is not None:
        _check_functions(triton={}, plain={"numpy_second_derivative": numpy_second_derivative})
    spec = _ref.FunctionSpec(
        name=name, kind="activation", value=numpy_value, derivative=numpy_derivative,
        params=_ref._check_params(params), default_shape=default_shape,
        default_shape_params=_ref._check_params(default_shape_params),
        array_generic=array_generic, validate=validate,
        second_derivative=numpy_second_derivative, derivative_bound=derivative_bound,
        twins=record,
    )
    _add(spec, needs_second=derivative_bound is not None)


def register_shape(
    name: str,
    *,
    triton_value: Callable | None = None,
    triton_derivative: Callable | None = None,
    numpy_value: Callable,
    numpy_derivative: Callable,
    params: Mapping[str, float] | None = None,
    array_generic: bool = False,
    validate: Callable[[dict[str, float]], None] | None = None,
    numpy_second_derivative: Callable | None = None,
    twins: Twins | None = None,
) -> None:
    """Register a new shape function s(x) for every path (arguments as for activations;
    ``numpy_second_derivative``, s'', lets GAAF with this shape be differentiated twice;
    ``twins`` has no second derivatives: the kernels need none of s).
    """
    record = _user_record("shape", twins, value=triton_value, derivative=triton_derivative)
    _check_new("shape", name, record, by_keyword=twins is None, numpy_value=numpy_value,
               numpy_derivative=numpy_derivative)
    if numpy_second_derivative is not None:
        _check_functions(triton={}, plain={"numpy_second_derivative": numpy_second_derivative})
    spec = _ref.FunctionSpec(
        name=name, kind="shape", value=numpy_value, derivative=numpy_derivative,
        params=_ref._check_params(params), array_generic=array_generic, validate=validate,
        second_derivative=numpy_second_derivative, twins=record,
    )
    _add(spec, needs_second=False)
