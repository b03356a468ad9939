"""GAAF for the activation *calls* in a model's forward (``torch.tanh``, ``F.gelu``, ...).

``GAAFFunctionMode`` is a ``TorchFunctionMode``: while it is active, each call of a
function in ``FUNCTIONS`` (made from the catalogue entries' ``functions``) is answered
by ``gaaf()`` with the same activation and parameters. ``install()`` enters it around
one model's ``forward`` only, so calls outside that model are untouched. Under
``torch.compile`` Dynamo traces the mode: the graph holds the GAAF operators and the
mode costs nothing at run time.
"""

from __future__ import annotations

import functools
import importlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from gaaf_kernels.reference import activation_names
from gaaf_kernels.reference.catalogue import ACTIVATIONS, Builtin, Function
from gaaf_kernels.reference.dtypes import SUPPORTED_DTYPES

from .torch import gaaf
from .torch_private import caller_frames, traced_frames

_FLOAT_DTYPES = tuple(getattr(torch, name) for name in SUPPORTED_DTYPES)
_SHORT = (("torch.nn.functional.", "F."), ("torch.Tensor.", "Tensor."))


def _resolve(path: str):
    """The object a dotted path names: ``"torch.nn.functional.elu"`` is ``F.elu``."""
    parts = path.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 2):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i]))
    return obj


def _label(path: str) -> str:
    """How reports name a call: ``F.elu``, ``Tensor.tanh``, ``torch.tanh``."""
    for prefix, short in _SHORT:
        if path.startswith(prefix):
            return short + path[len(prefix):]
    return path


def _binder(label: str, rows: list[tuple[Builtin, Function]]) -> Callable:
    """The binder of one torch function, from its catalogue rows (entry, function).

    It takes the function's arguments and returns (input, activation or None,
    parameters, in place, out=); arguments the function would not take are a TypeError.
    Several rows of one function are told apart by their ``when`` keyword.
    """
    first = rows[0][1]
    when = first.when
    slots = (*first.args, *(("inplace",) if first.inplace == "flag" else ()))  # positional
    keywords = (*slots, *((when.name,) if when else ()))
    # when value (None without one) -> (activation, argument names, defaults, fixed)
    choices = {fn.when.value if fn.when else None: (
        entry.name, fn.args, dict(entry.params), {p.param: p.value for p in fn.fixed})
        for entry, fn in rows}
    always_inplace = first.inplace == "yes"
    takes_out = first.out

    def bind(input, *args, **kwargs):
        if len(args) > len(slots):
            raise TypeError(f"{label}() takes at most {len(slots) + 1} positional arguments")
        given = dict(zip(slots, args))
        out = kwargs.pop("out", None) if takes_out else None
        for key, value in kwargs.items():
            if key not in keywords or key in given:
                raise TypeError(f"{label}() got an unexpected argument {key!r}")
            given[key] = value
        choice = choices.get(given.get(when.name, when.default) if when else None)
        if choice is None:  # a when value with no catalogue entry
            return input, None, {}, False, out
        activation, names, defaults, fixed = choice
        params = {n: float(given.get(n, defaults[n])) for n in names}
        params.update(fixed)
        inplace = always_inplace or bool(given.get("inplace", False))
        return input, activation, params, inplace, out
    return bind


def _functions() -> dict[Callable, tuple[str, Callable]]:
    """torch function -> (label, binder), from the catalogue entries' ``functions``."""
    rows: dict[str, list[tuple[Builtin, Function]]] = {}
    for entry in ACTIVATIONS:
        for fn in entry.functions:
            rows.setdefault(fn.path, []).append((entry, fn))
    return {_resolve(path): (_label(path), _binder(_label(path), group))
            for path, group in rows.items()}


FUNCTIONS: dict[Callable, tuple[str, Callable]] = _functions()


def computes(fn) -> tuple[str, dict[str, float]] | None:
    """The activation and parameters that ``fn(x)`` computes, where ``fn`` is a function
    of ``FUNCTIONS`` or a ``functools.partial`` of one with keywords; else None."""
    kwargs: dict = {}
    if isinstance(fn, functools.partial):
        if fn.args:
            return None
        fn, kwargs = fn.func, fn.keywords
    try:
        entry = FUNCTIONS.get(fn)
    except TypeError:  # unhashable
        return None
    if entry is None:
        return None
    try:
        _, activation, params, _, _ = entry[1](None, **kwargs)
    except TypeError:
        return None
    return None if activation is None else (activation, params)

_NO_CATALOGUE = "no catalogue activation with this formula"
_CELU = ("elu only for alpha=1, and calls of celu are not replaced (nn.CELU(alpha=1) "
         "modules are)")
# Activation calls with no GAAF equivalent: left as they are, and counted in the report.
UNHANDLED: dict[Callable, tuple[str, str]] = {
    F.prelu: ("F.prelu", "learned slope"),
    F.rrelu: ("F.rrelu", "random slope in training"),
    F.rrelu_: ("F.rrelu_", "random slope in training"),
    F.glu: ("F.glu", "gated, halves the input"),
    F.celu: ("F.celu", _CELU),
    torch.celu: ("torch.celu", _CELU),
    torch.celu_: ("torch.celu_", _CELU),
    F.logsigmoid: ("F.logsigmoid", _NO_CATALOGUE),
    F.hardshrink: ("F.hardshrink", _NO_CATALOGUE),
    F.softshrink: ("F.softshrink", _NO_CATALOGUE),
    F.tanhshrink: ("F.tanhshrink", _NO_CATALOGUE),
    F.threshold: ("F.threshold", _NO_CATALOGUE),
    F.threshold_: ("F.threshold_", _NO_CATALOGUE),  # type: ignore[attr-defined]
}

# The library's own code: activation calls made here (the composite's formulas, user
# functions it evaluates) belong to GAAF and must never be replaced.
_INTERNALS = ("gaaf_kernels.adapters.torch", "gaaf_kernels.adapters.arrays",
              "gaaf_kernels.adapters.dlpack", "gaaf_kernels.adapters.cupy",
              "gaaf_kernels.reference", "gaaf_kernels.kernels")


class FunctionalScope:
    """What the mode converts, with which GAAF settings, and what it has seen.

    The counters cover eager calls; under ``torch.compile`` calls are replaced while
    Dynamo traces and are not counted.
    """

    def __init__(self, activations: Collection[str] | None = None,
                 gaaf_kwargs: Mapping | None = None) -> None:
        self.activations = None if activations is None else frozenset(activations)
        self.gaaf_kwargs = dict(gaaf_kwargs or {})
        self.converted: Counter[tuple[str, str]] = Counter()   # (call, activation)
        self.left_alone: Counter[tuple[str, str]] = Counter()  # (call, reason)

    def _leave(self, label: str, reason: str, func, args, kwargs):
        if not torch.compiler.is_compiling():
            self.left_alone[(label, reason)] += 1
        return func(*args, **kwargs)

    def call(self, func, label: str, bind: Callable, args: tuple, kwargs: dict):
        try:
            x, activation, params, inplace, out = bind(*args, **kwargs)
        except TypeError:
            return self._leave(label, "arguments not understood", func, args, kwargs)
        if not isinstance(x, Tensor) or x.dtype not in _FLOAT_DTYPES:
            dtype = getattr(x, "dtype", type(x).__name__)
            return self._leave(label, f"input of type {dtype}", func, args, kwargs)
        if activation is None:
            return self._leave(label, f"arguments {kwargs}", func, args, kwargs)
        if self.activations is not None and activation not in self.activations:
            return self._leave(label, f"{activation} not selected", func, args, kwargs)
        if activation not in activation_names():
            return self._leave(label, f"activation {activation} not registered", func, args,
                               kwargs)
        # In place: compute from a copy when autograd saves the input (GAAF's backward
        # needs x as it was), then write the result into the tensor, as the call would.
        src = x.clone() if inplace and torch.is_grad_enabled() and x.requires_grad else x
        try:
            y = gaaf(src, activation, activation_params=params, **self.gaaf_kwargs)
        except ValueError as error:  # parameters outside the catalogue's domain
            return self._leave(label, str(error), func, args, kwargs)
        if not torch.compiler.is_compiling():
            self.converted[(label, activation)] += 1
        if inplace:
            return x.copy_(y)
        if out is not None:
            return out.copy_(y)
        return y


def called_by_gaaf() -> bool:
    """Whether the intercepted call comes from GAAF's own code (eager only)."""
    return _from_gaaf(caller_frames(1))


def _from_gaaf(frames) -> bool:
    for code, globals_ in frames:
        if code is _FORWARD_CODE:
            return False  # reached the converted model's forward: the call is the model's
        if globals_.get("__name__", "").startswith(_INTERNALS):
            return True
    return False


@torch.compiler.assume_constant_result  # runs while Dynamo traces, on its frame stack
def _traced_by_gaaf() -> bool:
    """Whether the call Dynamo is tracing comes from GAAF's own code (under compile)."""
    return _from_gaaf(traced_frames())


class GAAFFunctionMode(TorchFunctionMode):
    """Replace activation calls by ``gaaf()`` while active.

    ``GAAFFunctionMode(activations=None, **gaaf_kwargs)``: ``activations`` limits the
    conversion to those GAAF activation names; ``gaaf_kwargs`` (``shape``, ``K``,
    ``shape_params``, ``backend``) go to each ``gaaf()`` call. ``mode.scope`` counts
    what was converted and what was left alone.
    """

    def __init__(self, scope: FunctionalScope | None = None, *,
                 activations: Collection[str] | None = None, **gaaf_kwargs) -> None:
        super().__init__()
        self.scope = scope if scope is not None else FunctionalScope(activations, gaaf_kwargs)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = FUNCTIONS.get(func)
        if entry is None:
            unhandled = UNHANDLED.get(func)
            if unhandled is not None:
                return self.scope._leave(*unhandled, func, args, kwargs)
            return func(*args, **kwargs)
        if _traced_by_gaaf() if torch.compiler.is_compiling() else called_by_gaaf():
            return func(*args, **kwargs)
        return self.scope.call(func, *entry, args, kwargs)


def _wrap(forward: Callable) -> Callable:
    @functools.wraps(forward)  # keeps the signature that transformers inspects
    def wrapped_forward(self, *args, **kwargs):
        if getattr(self, "is_gradient_checkpointing", False) and self.training:
            raise RuntimeError(
                "convert(functional=True) does not cover activation checkpointing: the "
                "recomputation in backward runs outside forward, with the plain calls; "
                "call model.gradient_checkpointing_disable()")
        with GAAFFunctionMode(self._gaaf_functional):
            return forward(self, *args, **kwargs)
    return wrapped_forward


_FORWARD_CODE = _wrap(lambda self: None).__code__
_SUBCLASSES: dict[type, type] = {}


def _reduce_ex(self, protocol):
    # The subclass has the name of the class it wraps, so pickle would find that class
    # instead: rebuild the subclass from the original class on load.
    return (_new_functional, (type(self).__mro__[1],), self.__dict__.copy())


def _new_functional(cls: type) -> nn.Module:
    """An empty instance of ``cls``'s functional subclass (``__setstate__`` fills it)."""
    return object.__new__(functional_subclass(cls))


def functional_subclass(cls: type) -> type:
    """``cls`` with a ``forward`` that enters the mode, made once per class."""
    sub = _SUBCLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (cls,), {"forward": _wrap(cls.forward),  # type: ignore[attr-defined]
                                          "__reduce_ex__": _reduce_ex,
                                          "__module__": cls.__module__,
                                          "__qualname__": cls.__qualname__})
        _SUBCLASSES[cls] = sub
    return sub


def installed(model: nn.Module) -> bool:
    """Whether ``install()`` already put a ``GAAFFunctionMode`` around this model."""
    return isinstance(getattr(model, "_gaaf_functional", None), FunctionalScope)


def install(model: nn.Module, scope: FunctionalScope) -> None:
    """Enter ``GAAFFunctionMode(scope)`` around every call of ``model.forward``.

    The model's class becomes a subclass of the same name whose ``forward`` enters the
    mode (a class, not an instance attribute, so that ``copy.deepcopy`` keeps it, and
    ``pickle``/``torch.save`` through its ``__reduce_ex__``).
    """
    if installed(model):
        raise ValueError("the model was already converted with functional=True")
    model._gaaf_functional = scope  # type: ignore[assignment]  # nn.Module's setattr
    model.__class__ = functional_subclass(type(model))
