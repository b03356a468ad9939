"""``convert()``: swap the activation modules of an existing model for ``GAAF``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from .torch import GAAF


def _module_params(module: nn.Module) -> tuple[str, dict[str, float]]:
    """The GAAF activation (and its parameters) matching a torch activation module."""
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", {"negative_slope": module.negative_slope}
    if isinstance(module, nn.ELU):
        return "elu", {"alpha": module.alpha}
    if isinstance(module, nn.Softplus):
        return "softplus", {"beta": module.beta, "threshold": module.threshold}
    if isinstance(module, nn.Hardtanh):  # nn.ReLU6 included
        return "hardtanh", {"min_val": module.min_val, "max_val": module.max_val}
    if isinstance(module, nn.GELU):
        return ("gelu_tanh" if module.approximate == "tanh" else "gelu"), {}
    for cls, name in _PLAIN_MODULES.items():
        if type(module) is cls:
            return name, {}
    raise TypeError(f"no GAAF activation for {type(module).__name__}")


_PLAIN_MODULES = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu", nn.SELU: "selu",
                  nn.SiLU: "silu", nn.Mish: "mish", nn.Softsign: "softsign"}
CONVERTIBLE = (*_PLAIN_MODULES, nn.LeakyReLU, nn.ELU, nn.Softplus, nn.Hardtanh, nn.GELU)


def convert(model: nn.Module, activation_map: Mapping[type, str] | None = None,
            **gaaf_kwargs) -> nn.Module:
    """Swap every supported activation module in ``model`` for ``GAAF``, in place.

    Each activation keeps its parameters (``nn.LeakyReLU(0.2)`` becomes
    ``GAAF("leaky_relu", negative_slope=0.2)``) and gets its default shape unless
    ``gaaf_kwargs`` say otherwise (``shape=``, ``K=``, ``shape_params=``, ``backend=``).
    ``activation_map`` maps further module classes to GAAF activation names, or
    overrides the built-in mapping. Returns ``model``.
    """
    if "activation" in gaaf_kwargs or "activation_params" in gaaf_kwargs:
        raise TypeError("convert() takes the activation from each module; use activation_map")
    extra = dict(activation_map or {})

    def swap(module: nn.Module) -> nn.Module | None:
        if type(module) in extra:
            return GAAF(extra[type(module)], **gaaf_kwargs)
        if isinstance(module, CONVERTIBLE):
            name, params = _module_params(module)
            return GAAF(name, activation_params=params, **gaaf_kwargs)
        return None

    if swap(model) is not None:
        raise TypeError("convert() replaces submodules; wrap a bare activation in a container")
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            replacement = swap(child)
            if replacement is not None:
                setattr(parent, child_name, replacement)
    return model
