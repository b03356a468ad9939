"""Which activation modules ``convert()`` knows, and what each becomes.

Classes are looked up by module path and qualified name, so neither transformers nor
timm is imported: a model that uses them has imported them already. A rule either
returns the GAAF activation with its parameters, or raises ``NotConvertible`` with the
reason the module is left alone (the activation is not in the catalogue, or it has
learned parameters, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gaaf_kernels.reference.catalogue import ACTIVATIONS, HF, TIMM, TORCH


class NotConvertible(Exception):
    """A known activation class that has no exact GAAF equivalent."""


Mapping_ = Callable[[nn.Module], tuple[str, dict[str, float]]]


@dataclass(frozen=True)
class Rule:
    library: str       # "torch.nn", "transformers" or "timm"
    name: str          # class name as the docs show it
    becomes: str       # what it becomes, as the docs show it
    map: Mapping_


def _fixed(activation: str, **params: float) -> Mapping_:
    return lambda module: (activation, dict(params))


def _attrs(activation: str, *names: str) -> Mapping_:
    return lambda module: (activation, {n: float(getattr(module, n)) for n in names})


def _refuse(reason: str) -> Mapping_:
    def refuse(module: nn.Module):
        raise NotConvertible(reason)
    return refuse


def _torch_gelu(module: nn.Module) -> tuple[str, dict[str, float]]:
    return ("gelu_tanh" if module.approximate == "tanh" else "gelu"), {}


def _hf_act(activation: str, python_variant: str) -> Mapping_:
    """transformers classes that keep the function in ``self.act``: F.* or a Python twin."""
    import torch.nn.functional as F

    def check(module: nn.Module):
        act = getattr(module, "act", None)
        builtin = getattr(F, activation, None)  # F.gelu, F.mish; F has no gelu_tanh
        if (act is not None and act is builtin) or getattr(act, "__name__", None) == python_variant:
            return activation, {}
        if (builtin is None and getattr(act, "func", None) is F.gelu
                and act.keywords == {"approximate": "tanh"}):
            # gelu_tanh, whose F form is functools.partial(F.gelu, approximate="tanh")
            return activation, {}
        raise NotConvertible(f"self.act is {act!r}, not the function this class defines")
    return check


def _clipped_gelu(module: nn.Module):
    raise NotConvertible(f"gelu clipped to [{module.min:g}, {module.max:g}]: "
                         "no catalogue activation")


_NO_CATALOGUE = "no catalogue activation with this formula"
_LEARNED = "learned parameters (GAAF activations have fixed parameters)"

# Classes that need more than the catalogue's "class -> entry (attributes)" mapping:
# key -> factory(entry name, attributes) -> (what it becomes, rule).
_OVERRIDES: dict[str, Callable[[str, tuple[str, ...]], tuple[str, Mapping_]]] = {
    f"{TORCH}.GELU": lambda name, attrs: ("gelu, or gelu_tanh for approximate='tanh'",
                                          _torch_gelu),
    f"{TORCH}.ReLU6": lambda name, attrs: (f"{name}(min_val=0, max_val=6)",
                                           _attrs(name, *attrs)),
    f"{HF}.GELUActivation": lambda name, attrs: (name, _hf_act(name, "_gelu_python")),
    f"{HF}.GELUTanh": lambda name, attrs: (name, _hf_act(name, "_gelu_tanh_python")),
    f"{HF}.MishActivation": lambda name, attrs: (name, _hf_act(name, "_mish_python")),
}


def _catalogue_rows() -> list[tuple[tuple[str, ...], str, str, Mapping_]]:
    """The convertible classes, from the catalogue entries' ``modules``."""
    rows = []
    for entry in ACTIVATIONS:
        for key, attrs in entry.modules:
            path, _, cls = key.rpartition(".")
            if key in _OVERRIDES:
                becomes, rule = _OVERRIDES[key](entry.name, attrs)
            elif attrs:
                becomes, rule = f"{entry.name}({', '.join(attrs)})", _attrs(entry.name, *attrs)
            else:
                becomes, rule = entry.name, _fixed(entry.name)
            rows.append(((path,), cls, becomes, rule))
    return rows


# Known activation classes that stay as they are, and why: (module paths, class, text, rule)
_TABLE: list[tuple[tuple[str, ...], str, str, Mapping_]] = [
    *_catalogue_rows(),
    ((TORCH,), "PReLU", "not converted: " + _LEARNED, _refuse(_LEARNED)),
    ((TORCH,), "RReLU", "not converted: random slope in training",
     _refuse("random slope in training")),
    ((TORCH,), "GLU", "not converted: gated, halves the input",
     _refuse("gated, halves the input")),
    *[((TORCH,), name, "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE))
      for name in ("CELU", "LogSigmoid", "Hardshrink", "Softshrink", "Tanhshrink", "Threshold")],
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

_ACTIVATION_WORDS = ("activation", "gelu", "relu", "silu", "swish", "mish", "tanh", "sigmoid",
                     "softplus", "elu", "glu", "softsign")


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
    return any(word in name for word in _ACTIVATION_WORDS)


def table() -> list[tuple[str, str, str]]:
    """(library, class, what it becomes) for every class with a rule, in table order."""
    rows, seen = [], set()
    for rule in RULES.values():
        row = (rule.library, rule.name, rule.becomes)
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return rows

