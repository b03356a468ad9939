"""The paper's models (Tables 4 and 5) and their variants.

``build_model(task, variant)`` rebuilds any run's model from its ``record.json``
(``record["task"]``, ``record["variant"]``); weights come from ``model.pt``. GAAF variants
are the base model passed through :func:`gaaf_kernels.adapters.torch.convert`, which swaps
every ``nn.Tanh`` / ``nn.ReLU`` for ``GAAF`` with the activation's default shape; a
variant name's other parts set its GAAF options (:func:`gaaf_settings`): ``bsilu`` or
``nelu`` (the surrogate-gradient shapes of relu), ``band`` (the
saturation band), ``k<K>`` (``gaaf-k1e6``: K = 1e6) and ``c<c>`` (``gaaf-c10``: the
gaussian shape's c = 10), as the ``gaaf study`` tasks use them.
"""

from __future__ import annotations

import math

from torch import nn

from .tasks import Task, get_task

__all__ = ["VGG_CONV", "SVHN_CONV", "LEAKY_SLOPE", "build_model", "gaaf_settings",
           "init_weights"]

#: VGG16's conv stack ("M" = 2x2 max-pool) without its last three conv layers (and their
#: pool): 10 conv layers, 32x32 -> 2x2 at the end.
VGG_CONV = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M")
#: 4 conv layers with max-pooling after every second.
SVHN_CONV = (32, 32, "M", 64, 64, "M")
DROPOUT_P = 0.5
LEAKY_SLOPE = 0.01  # PyTorch's default negative slope


def _mlp(task: Task, dropout: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(task.in_shape)
    for hidden in task.widths:
        layers += [nn.Linear(width, hidden), nn.Tanh()]
        if dropout:
            layers.append(nn.Dropout(DROPOUT_P))
        width = hidden
    layers.append(nn.Linear(width, task.num_classes))
    return nn.Sequential(*layers)


def _cnn(task: Task, conv: tuple, bn: bool, leaky: bool = False) -> nn.Sequential:
    channels, height, width = task.in_shape
    layers: list[nn.Module] = []
    for item in conv:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
            continue
        layers.append(nn.Conv2d(channels, item, 3, padding=1))
        if bn:
            layers.append(nn.BatchNorm2d(item))
        layers.append(_relu(leaky))
        channels = item
    layers.append(nn.Flatten())
    features = channels * height * width
    for hidden in task.widths:
        layers.append(nn.Linear(features, hidden))
        if bn:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(_relu(leaky))
        features = hidden
    layers.append(nn.Linear(features, task.num_classes))
    return nn.Sequential(*layers)


def _relu(leaky: bool) -> nn.Module:
    return nn.LeakyReLU(LEAKY_SLOPE) if leaky else nn.ReLU()


def init_weights(model: nn.Module, scheme: str) -> None:
    """``glorot-uniform`` (Keras' default; the paper's MLP) or ``kaiming-normal``
    (fan-in, ReLU gain) for every Linear/Conv2d weight; biases zero; BN as PyTorch's."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if scheme == "glorot-uniform":
                nn.init.xavier_uniform_(module.weight)
            elif scheme == "kaiming-normal":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def gaaf_settings(variant: str) -> dict | None:
    """The ``convert()`` keyword arguments of a variant name, or None if it has no GAAF:
    ``{}`` for ``gaaf`` (defaults), ``band=True`` for a ``band`` part, ``K`` for
    ``k<number>``, ``shape_params={"c": ...}`` for ``c<number>``."""
    from gaaf_kernels import shapes

    parts = variant.split("-")
    if "gaaf" not in parts:
        return None
    settings: dict = {}
    for part in parts:
        if part == "band":
            settings["band"] = True
        elif part in shapes():  # a registered shape's name picks it (bsilu, nelu)
            settings["shape"] = part
        elif part[:1] in ("k", "c") and part[1:]:
            try:
                value = float(part[1:])
            except ValueError:
                continue
            if part[0] == "k":
                settings["K"] = value
            else:
                settings["shape_params"] = {"c": value}
    return settings


def build_model(task: str | Task, variant: str, *, init: bool = True) -> nn.Module:
    """The model of ``task`` (a name or :class:`Task`) in ``variant``, initialized per the
    task's protocol (the caller seeds ``torch``'s RNG first for reproducible weights)."""
    spec = get_task(task) if isinstance(task, str) else task
    if variant not in spec.all_variants:
        raise KeyError(f"unknown variant {variant!r} for {spec.name}; "
                       f"choose from {', '.join(spec.all_variants)}")
    parts = set(variant.split("-"))
    if spec.arch == "mlp":
        model = _mlp(spec, dropout="dropout" in parts)
    elif spec.arch == "vgg":
        model = _cnn(spec, VGG_CONV, bn="bn" in parts)
    elif spec.arch == "svhn-cnn":
        model = _cnn(spec, SVHN_CONV, bn="bn" in parts, leaky="leaky" in parts)
    elif spec.arch == "cnn":
        model = _cnn(spec, spec.conv, bn="bn" in parts, leaky="leaky" in parts)
    else:
        raise ValueError(f"unknown architecture {spec.arch!r}")
    if init:
        init_weights(model, spec.protocol.init)
    settings = gaaf_settings(variant)
    if settings is not None:
        from gaaf_kernels.adapters.torch import convert

        convert(model, **settings)
    return model
