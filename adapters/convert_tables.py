"""Which activation modules ``convert()`` knows, and what each becomes.

Classes are looked up by module path and qualified name, so neither transformers nor
timm is imported: a model that uses them has imported them already. A rule either
returns the GAAF activation with its parameters, or raises ``NotConvertible`` with the
reason the module is left alone (the activation is not in the catalogue, or it has
learned parameters, ...). The rules of the classes that become built-ins are made from
the catalogue entries' ``modules``; the table here adds the known classes that have no
catalogue equivalent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gaaf_kernels.reference.catalogue import ACTIVATIONS, HF, TIMM, TORCH, Fixed, Runs, When

from . import functional


class NotConvertible(Exception):
    """A known activation class that has no exact GAAF equivalent."""


Mapping_ = Callable[[nn.Module], tuple[str, dict[str, float]]]


@dataclass(frozen=True)
class Rule:
    library: str       # "torch.nn", "transformers" or "timm"
    name: str          # class name as the docs show it
    becomes: str       # what it becomes, as the docs show it
    map: Mapping_


def _refuse(reason: str) -> Mapping_:
    def refuse(module: nn.Module):
        raise NotConvertible(reason)
    return refuse


# --- the rules of the catalogue's classes, from each entry's ``modules`` ----------------

Items = tuple[str | Fixed | When | Runs, ...]


def _params(module: nn.Module, activation: str, items: Items) -> dict[str, float]:
    """The entry's parameters from the module (attributes, fixed values), once the
    module's function is checked (``Runs``)."""
    params: dict[str, float] = {}
    for item in items:
        if isinstance(item, str):
            params[item] = float(getattr(module, item))
        elif isinstance(item, Fixed):
            params[item.param] = item.value
        elif isinstance(item, Runs):
            fn = getattr(module, item.attr, None)
            if getattr(fn, "__name__", None) != item.python:
                found = functional.computes(fn)
                if found is None or found[0] != activation:
                    raise NotConvertible(f"self.{item.attr} is {fn!r}, not the function "
                                         "this class defines")
                params.update(found[1])
    return params


def _matches(module: nn.Module, items: Items) -> bool:
    return all(getattr(module, w.name, w.default) == w.value
               for w in items if isinstance(w, When))


def _rule(cls: str, rows: list[tuple[str, Items]]) -> Mapping_:
    """A class's rule from its rows (entry name, items): the first row whose ``When``
    conditions the module meets; the reason names the values each row needs
    (``alpha=0.5: CELU is elu only for alpha=1.0; ...``)."""
    names = sorted({w.name for _, items in rows for w in items if isinstance(w, When)})
    only = " or ".join(f"{activation} only for {_where(items)}" for activation, items in rows)

    def rule(module: nn.Module) -> tuple[str, dict[str, float]]:
        for activation, items in rows:
            if _matches(module, items):
                return activation, _params(module, activation, items)
        values = ", ".join(f"{n}={getattr(module, n, None)!r}" for n in names)
        raise NotConvertible(f"{values}: {cls} is {only}; {_NO_CATALOGUE} for {values}")
    return rule


def _text(activation: str, items: Items) -> str:
    shown = [item if isinstance(item, str) else f"{item.param}={item.value:g}"
             for item in items if isinstance(item, (str, Fixed))]
    return f"{activation}({', '.join(shown)})" if shown else activation


def _where(items: Items) -> str:
    return ", ".join(f"{w.name}={w.value!r}" for w in items if isinstance(w, When))


def _what_it_becomes(rows: list[tuple[str, Items]]) -> str:
    """``gelu``, ``hardtanh(min_val, max_val)``, ``gelu, or gelu_tanh for approximate='tanh'``,
    ``elu for alpha=1.0; other values: not converted``."""
    text = _text(*rows[0])
    if len(rows) == 1 and _where(rows[0][1]):
        return f"{text} for {_where(rows[0][1])}; other values: not converted"
    for activation, items in rows[1:]:
        text += f", or {_text(activation, items)} for {_where(items)}"
    return text


def _catalogue_rows() -> list[tuple[tuple[str, ...], str, str, Mapping_]]:
    """The convertible classes, from the catalogue entries' ``modules``, in catalogue
    order; a class listed by several entries (by ``When``) is one row."""
    by_class: dict[str, list[tuple[str, Items]]] = {}
    for entry in ACTIVATIONS:
        for key, items in entry.modules:
            by_class.setdefault(key, []).append((entry.name, items))
    rows: list[tuple[tuple[str, ...], str, str, Mapping_]] = []
    for key, choices in by_class.items():
        path, _, cls = key.rpartition(".")
        rows.append(((path,), cls, _what_it_becomes(choices), _rule(cls, choices)))
    return rows


def _clipped_gelu(module: nn.Module):
    raise NotConvertible(f"gelu clipped to [{module.min:g}, {module.max:g}]: "
                         "no catalogue activation")


_NO_CATALOGUE = "no catalogue activation with this formula"
_LEARNED = "learned parameters (GAAF activations have fixed parameters)"

# Known activation classes that stay as they are, and why: (module paths, class, text, rule)
_TABLE: list[tuple[tuple[str, ...], str, str, Mapping_]] = [
    *_catalogue_rows(),
    ((TORCH,), "PReLU", "not converted: " + _LEARNED, _refuse(_LEARNED)),
    ((TORCH,), "RReLU", "not converted: random slope in training",
     _refuse("random slope in training")),
    ((TORCH,), "GLU", "not converted: gated, halves the input",
     _refuse("gated, halves the input")),
    *[((TORCH,), name, "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE))
      for name in ("LogSigmoid", "Hardshrink", "Softshrink", "Tanhshrink", "Threshold")],
    ((HF,), "ClippedGELUActivation", "not converted: gelu clipped to [min, max]", _clipped_gelu),
    ((HF,), "LinearActivation", "not converted: identity, nothing to accelerate",
     _refuse("identity, nothing to accelerate")),
    ((HF,), "LaplaceActivation", "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE)),
    ((HF,), "SqrtSoftplusActivation", "not converted: " + _NO_CATALOGUE,
     _refuse(_NO_CATALOGUE)),
    ((HF,), "XIELUActivation", "not converted: " + _LEARNED, _refuse(_LEARNED)),
    (TIMM, "HardMish", "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE)),
    (TIMM, "HardMishMe", "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE)),
    (TIMM, "PReLU", "not converted: " + _LEARNED, _refuse(_LEARNED)),
]

RULES: dict[str, Rule] = {}
for _paths, _name, _becomes, _map in _TABLE:
    _library = "torch.nn" if _paths[0] == TORCH else _paths[0].split(".")[0]
    for _path in _paths:
        RULES[f"{_path}.{_name}"] = Rule(_library, _name, _becomes, _map)

# Not elementwise activations: never converted and never listed as left alone.
NOT_ACTIVATIONS = frozenset(f"{TORCH}.{n}" for n in (
    "MultiheadAttention", "Softmax", "Softmin", "LogSoftmax", "Softmax2d"))

# Words in a class name that read like an activation: every catalogue name, and more.
_ACTIVATION_WORDS = ("activation", "swish", "glu",
                     *(entry.name.replace("_", "") for entry in ACTIVATIONS))


def class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def find_rule(module: nn.Module) -> Rule | None:
    """The rule of the module's class, or of the class whose ``forward`` it runs.

    A subclass that does not override ``forward`` computes what its base computes
    (``nn.ReLU6`` is a ``Hardtanh``); one that overrides it is a class of its own.
    """
    for cls in type(module).__mro__:
        rule = RULES.get(class_key(cls))
        if rule is not None:
            return rule
        if "forward" in vars(cls):
            return None
    return None


def looks_like_activation(module: nn.Module) -> bool:
    """An unknown leaf module without parameters whose class name reads like an activation."""
    cls = type(module)
    if class_key(cls) in NOT_ACTIVATIONS:
        return False
    if cls.__module__.startswith("torch.nn.modules.activation"):
        return True
    if next(module.children(), None) is not None:
        return False
    if next(module.parameters(), None) is not None or next(module.buffers(), None) is not None:
        return False
    name = cls.__name__.lower()
    # "Act" as a word of a CamelCase name: GammaAct, ActLayer (not Extract, Interact)
    return any(word in name for word in _ACTIVATION_WORDS) or \
        re.search(r"Act(?![a-z])", cls.__name__) is not None


def _timm_functions() -> dict[str, str]:
    """timm's activation functions (``timm.layers.activations.gelu``, ``swish_me``) ->
    the catalogue activation, from the catalogue's timm classes: each function is its
    class's name in snake case, in the same module (``GELUTanh``: ``gelu_tanh``)."""
    found = {}
    for entry in ACTIVATIONS:
        for key, items in entry.modules:
            path, _, cls = key.rpartition(".")
            if path in TIMM and not items:
                found[f"{path}.{cls.lower()}"] = entry.name
    return found


_TIMM_FUNCTIONS = _timm_functions()


def held_function(value: object) -> tuple[str, str, dict[str, float]] | None:
    """(call, activation, parameters) where ``value`` is a function that computes a
    catalogue activation: a torch function of the catalogue (or a partial of one with
    keywords), or one of timm's activation functions (``get_act_fn("gelu")``)."""
    found = functional.computes(value)
    if found is not None:
        fn = value.func if isinstance(value, functools.partial) else value
        return functional.FUNCTIONS[fn][0], found[0], found[1]  # type: ignore[index]
    module, name = getattr(value, "__module__", None), getattr(value, "__name__", None)
    if isinstance(module, str) and isinstance(name, str):
        activation = _TIMM_FUNCTIONS.get(f"{module}.{name.replace('_', '')}")
        if activation is not None:
            return f"{module}.{name}", activation, {}
    return None


def held_activation(module: nn.Module) -> tuple[str, str, str, dict[str, float]] | None:
    """(attribute, call, activation, parameters) where ``module`` holds a catalogue activation's
    function as an attribute (``nn.TransformerEncoderLayer.activation = F.relu``, timm's
    ``GammaAct.act_fn = timm.layers.activations.gelu``): it calls it in its forward,
    which convert() cannot replace without ``functional=True``."""
    for attr, value in vars(module).items():
        if attr.startswith("_") or isinstance(value, nn.Module):
            continue
        found = held_function(value)
        if found is not None:
            return attr, *found
    return None


def table() -> list[tuple[str, str, str]]:
    """(library, class, what it becomes) for every class with a rule, in table order."""
    rows, seen = [], set()
    for rule in RULES.values():
        row = (rule.library, rule.name, rule.becomes)
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return rows

