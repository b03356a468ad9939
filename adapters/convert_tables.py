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


def _hf_act(activation: str, *python_variants: str) -> Mapping_:
    """transformers classes that keep the function in ``self.act``: F.* or a Python twin."""
    import torch.nn.functional as F

    def check(module: nn.Module):
        act = getattr(module, "act", None)
        builtin = {"gelu": F.gelu, "mish": F.mish}.get(activation)
        if act is builtin or getattr(act, "__name__", None) in python_variants:
            return activation, {}
        if (activation == "gelu_tanh" and getattr(act, "func", None) is F.gelu
                and act.keywords == {"approximate": "tanh"}):
            return activation, {}  # GELUTanh: functools.partial(F.gelu, approximate="tanh")
        raise NotConvertible(f"self.act is {act!r}, not the function this class defines")
    return check


def _clipped_gelu(module: nn.Module):
    raise NotConvertible(f"gelu clipped to [{module.min:g}, {module.max:g}]: "
                         "no catalogue activation")


_NO_CATALOGUE = "no catalogue activation with this formula"
_LEARNED = "learned parameters (GAAF activations have fixed parameters)"

TORCH = "torch.nn.modules.activation"
HF = "transformers.activations"
TIMM = ("timm.layers.activations", "timm.layers.activations_me",
        "timm.models.layers.activations", "timm.models.layers.activations_me")

# (module paths, class name, what it becomes, rule)
_TABLE: list[tuple[tuple[str, ...], str, str, Mapping_]] = [
    ((TORCH,), "Tanh", "tanh", _fixed("tanh")),
    ((TORCH,), "Sigmoid", "sigmoid", _fixed("sigmoid")),
    ((TORCH,), "ReLU", "relu", _fixed("relu")),
    ((TORCH,), "SELU", "selu", _fixed("selu")),
    ((TORCH,), "SiLU", "silu", _fixed("silu")),
    ((TORCH,), "Mish", "mish", _fixed("mish")),
    ((TORCH,), "Softsign", "softsign", _fixed("softsign")),
    ((TORCH,), "LeakyReLU", "leaky_relu(negative_slope)", _attrs("leaky_relu", "negative_slope")),
    ((TORCH,), "ELU", "elu(alpha)", _attrs("elu", "alpha")),
    ((TORCH,), "Softplus", "softplus(beta, threshold)", _attrs("softplus", "beta", "threshold")),
    ((TORCH,), "Hardtanh", "hardtanh(min_val, max_val)", _attrs("hardtanh", "min_val", "max_val")),
    ((TORCH,), "ReLU6", "hardtanh(min_val=0, max_val=6)", _attrs("hardtanh", "min_val", "max_val")),
    ((TORCH,), "GELU", "gelu, or gelu_tanh for approximate='tanh'", _torch_gelu),
    ((TORCH,), "Hardswish", "hardswish", _fixed("hardswish")),
    ((TORCH,), "Hardsigmoid", "hardsigmoid", _fixed("hardsigmoid")),
    ((TORCH,), "PReLU", "not converted: " + _LEARNED, _refuse(_LEARNED)),
    ((TORCH,), "RReLU", "not converted: random slope in training",
     _refuse("random slope in training")),
    ((TORCH,), "GLU", "not converted: gated, halves the input",
     _refuse("gated, halves the input")),
    *[((TORCH,), name, "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE))
      for name in ("CELU", "LogSigmoid", "Hardshrink", "Softshrink", "Tanhshrink", "Threshold")],
    # transformers/activations.py. FastGELU writes sqrt(2/pi) as 0.7978845608 (10 digits),
    # AccurateGELU and NewGELU spell out the tanh formula: all are gelu_tanh.
    ((HF,), "GELUActivation", "gelu", _hf_act("gelu", "_gelu_python")),
    ((HF,), "GELUTanh", "gelu_tanh", _hf_act("gelu_tanh", "_gelu_tanh_python")),
    ((HF,), "NewGELUActivation", "gelu_tanh", _fixed("gelu_tanh")),
    ((HF,), "FastGELUActivation", "gelu_tanh", _fixed("gelu_tanh")),
    ((HF,), "AccurateGELUActivation", "gelu_tanh", _fixed("gelu_tanh")),
    ((HF,), "QuickGELUActivation", "quick_gelu", _fixed("quick_gelu")),
    ((HF,), "SiLUActivation", "silu", _fixed("silu")),
    ((HF,), "MishActivation", "mish", _hf_act("mish", "_mish_python")),
    ((HF,), "ReLUSquaredActivation", "relu_squared", _fixed("relu_squared")),
    ((HF,), "ClippedGELUActivation", "not converted: gelu clipped to [min, max]", _clipped_gelu),
    ((HF,), "LinearActivation", "not converted: identity, nothing to accelerate",
     _refuse("identity, nothing to accelerate")),
    ((HF,), "LaplaceActivation", "not converted: " + _NO_CATALOGUE, _refuse(_NO_CATALOGUE)),
    ((HF,), "SqrtSoftplusActivation", "not converted: " + _NO_CATALOGUE,
     _refuse(_NO_CATALOGUE)),
    ((HF,), "XIELUActivation", "not converted: " + _LEARNED, _refuse(_LEARNED)),
    # 0.79788456 (8 digits) for sqrt(2/pi); its hand-written backward is the exact derivative.
    (("transformers.models.bloom.modeling_bloom",), "BloomGelu", "gelu_tanh",
     _fixed("gelu_tanh")),
    # timm/layers/activations.py and activations_me.py (the *Me twins: custom autograd).
    (TIMM, "Swish", "silu", _fixed("silu")),
    (TIMM, "SwishMe", "silu", _fixed("silu")),
    (TIMM, "Mish", "mish", _fixed("mish")),
    (TIMM, "MishMe", "mish", _fixed("mish")),
    (TIMM, "Sigmoid", "sigmoid", _fixed("sigmoid")),
    (TIMM, "Tanh", "tanh", _fixed("tanh")),
    (TIMM, "HardSwish", "hardswish", _fixed("hardswish")),
    (TIMM, "HardSwishMe", "hardswish", _fixed("hardswish")),
    (TIMM, "HardSigmoid", "hardsigmoid", _fixed("hardsigmoid")),
    (TIMM, "HardSigmoidMe", "hardsigmoid", _fixed("hardsigmoid")),
    (TIMM, "GELU", "gelu", _fixed("gelu")),
    (TIMM, "GELUTanh", "gelu_tanh", _fixed("gelu_tanh")),
    (TIMM, "QuickGELU", "quick_gelu", _fixed("quick_gelu")),
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

