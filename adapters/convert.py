"""``convert()``: swap the activations of an existing model for ``GAAF``, and report it.

Modules are matched by class (``convert_tables.RULES``: torch.nn, transformers and
timm classes, looked up by module path so that neither library is imported here).
``functional=True`` also replaces activation calls in the model's forward
(``functional.GAAFFunctionMode``). Whatever is activation-like and left alone is named
in the report, with the reason.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gaaf_kernels.reference import (
    DEFAULT_K,
    GAAFConfig,
    activation_names,
    band_activations,
    get_shape,
    resolve,
    shape_names,
)
from gaaf_kernels.reference.registry import check_K

from . import convert_tables as tables
from .convert_check import check_run, held_reason, unknown_reason
from .functional import FunctionalScope, GAAFFunctionMode, install, installed
from .torch import BACKENDS, GAAF

__all__ = ["ConversionReport", "Converted", "GAAFFunctionMode", "LeftAlone",
           "conversion_table", "convert", "convert_report"]

logger = logging.getLogger("gaaf_kernels.convert")

#: More classes for convert(): a class to a GAAF activation name, or to (name, params).
ActivationMap = Mapping[type, "str | tuple[str, Mapping[str, float]]"]

_GAAF_KWARGS = ("shape", "K", "shape_params", "band", "backend")
_NOT_SELECTED = "not selected"


@dataclass(frozen=True)
class Converted:
    path: str                               # dotted name in the model, "encoder.layer.0.act"
    source: str                             # the class it was, "nn.GELU"
    activation: str                         # the GAAF activation it became
    params: tuple[tuple[str, float], ...]   # that activation's parameters, by name

    @property
    def target(self) -> str:
        args = ", ".join(f"{n}={v:g}" for n, v in self.params)
        return f"{self.activation}({args})" if args else self.activation


@dataclass(frozen=True)
class LeftAlone:
    path: str
    source: str
    reason: str


@dataclass
class ConversionReport:
    """What ``convert()`` did: modules converted, modules left alone, functional calls.

    ``functional`` is the live scope of ``functional=True`` (None otherwise): its counts
    grow as the model runs eagerly, and ``summary()`` shows them as they are.
    """

    converted: list[Converted] = field(default_factory=list)
    left_alone: list[LeftAlone] = field(default_factory=list)
    functional: FunctionalScope | None = None
    #: GAAF modules that were in the model before this call (a second convert()).
    already: list[str] = field(default_factory=list)
    #: The converted model (the very object passed to ``convert_report()``).
    model: nn.Module | None = None
    #: Whether an example forward ran (``example_inputs=`` / ``example_kwargs=``).
    checked: bool = False
    #: Converted modules (paths) that the example forward never called.
    never_ran: list[str] = field(default_factory=list)
    #: Activation calls of the example forward that stayed plain: (call, activation) -> n.
    plain_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Activation calls of the example forward with no GAAF equivalent: (call, reason) -> n.
    unreplaceable_calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        """Every activation found was converted and an example forward showed it runs as
        GAAF: False without an example forward, which alone sees calls and idle modules."""
        unexpected = [x for x in self.left_alone if not x.reason.startswith(_NOT_SELECTED)]
        return self.checked and not (unexpected or self.never_ran or self.plain_calls
                                     or self.unreplaceable_calls)

    def counts(self) -> Counter[tuple[str, str]]:
        """(class, GAAF activation with parameters) -> number of modules converted."""
        return Counter((c.source, c.target) for c in self.converted)

    def summary(self) -> str:
        lines = [f"convert(): {len(self.converted)} activation modules converted, "
                 f"{len(self.left_alone)} left alone"]
        if self.already:
            lines.append(f"already GAAF before this call: {len(self.already)} modules "
                         f"[{_some(self.already)}]")
        if self.converted:
            lines.append("converted:")
            lines += [f"  {n} x {src} -> {tgt}" for (src, tgt), n in self.counts().items()]
        if self.left_alone:
            lines.append("left alone:")
            groups: dict[tuple[str, str], list[str]] = {}
            for item in self.left_alone:
                groups.setdefault((item.source, item.reason), []).append(item.path)
            for (src, reason), paths in groups.items():
                lines.append(f"  {len(paths)} x {src}: {reason} [{_some(paths)}]")
        if not self.checked:
            lines.append("example forward: not run, so activation calls in forward() and "
                         "modules that never run were not checked (pass example_inputs=)")
        else:
            if self.never_ran:
                lines.append(f"converted but never called in the example forward: "
                             f"{len(self.never_ran)} modules [{_some(self.never_ran)}] (the "
                             f"model computes that activation another way: GAAF does not act "
                             f"there)")
            if self.plain_calls:
                hint = ("functional=True left them alone: the reasons are under functional "
                        "calls below" if self.functional is not None else
                        "convert(..., functional=True) replaces them")
                lines.append(f"activation calls in the example forward that stayed plain "
                             f"({hint}):")
                lines += [f"  {n} x {call} ({act})"
                          for (call, act), n in self.plain_calls.items()]
            if self.unreplaceable_calls:
                lines.append("activation calls in the example forward with no GAAF "
                             "equivalent (left as they are):")
                lines += [f"  {n} x {call}: {why}"
                          for (call, why), n in self.unreplaceable_calls.items()]
            if not (self.never_ran or self.plain_calls or self.unreplaceable_calls):
                lines.append("example forward: every converted module ran, no plain "
                             "activation call")
        if self.functional is not None:
            lines.append("functional calls (eager calls so far):")
            scope = self.functional
            lines += [f"  {n} x {call} -> {act}" for (call, act), n in scope.converted.items()]
            lines += [f"  {n} x {call} left alone: {why}"
                      for (call, why), n in scope.left_alone.items()]
            if not scope.converted and not scope.left_alone:
                lines.append("  none yet")
        return "\n".join(lines)

    __str__ = summary


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")


def conversion_table() -> list[tuple[str, str, str]]:
    """(library, class, what it becomes) for every class ``convert()`` handles."""
    return tables.table()


def _display(cls: type) -> str:
    if cls.__module__.startswith("torch.nn.modules."):
        return f"nn.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def convert(model: nn.Module, activation_map: ActivationMap | None = None, *,
            config: GAAFConfig | None = None, **options: Any) -> nn.Module:
    """Swap the activation modules in ``model`` for ``GAAF``, in place; returns ``model``.

    ``convert_report()`` takes the same arguments and returns the ``ConversionReport``
    instead (``report.model`` is the model). Activation modules left alone are named in
    a ``UserWarning`` (except those excluded by ``activations``), with the plain calls
    and idle modules an example forward found, unless ``log=True``.
    """
    if "report" in options:
        raise TypeError("convert() returns the model; convert_report(model, ...) takes the "
                        "same arguments and returns the ConversionReport (its .model is the "
                        "model)")
    result = _convert(model, activation_map, config, **options)
    if not options.get("log"):
        _warn(result)
    return model


def convert_report(model: nn.Module, activation_map: ActivationMap | None = None, *,
                   config: GAAFConfig | None = None, **options: Any) -> ConversionReport:
    """``convert()``, returning what it did: a ``ConversionReport`` (``.model``,
    ``.converted``, ``.left_alone``, ``.functional``, ``summary()``), warning about nothing.
    """
    return _convert(model, activation_map, config, **options)


def _convert(
    model: nn.Module,
    activation_map: ActivationMap | None = None,
    config: GAAFConfig | None = None,
    *,
    activations: Collection[str] | None = None,
    functional: bool = False,
    log: bool = False,
    example_inputs: tuple | None = None,
    example_kwargs: Mapping[str, object] | None = None,
    **gaaf_kwargs,
) -> ConversionReport:
    """Swap the activation modules in ``model`` for ``GAAF``, in place.

    Args:
        model: the model; its submodules are replaced (a bare activation is a TypeError).
        activation_map: more classes (matched exactly) to GAAF activation names, or to
            ``(name, params)``; it overrides the built-in table.
        activations: convert only to these GAAF activation names, e.g. ``{"gelu"}``.
        functional: also replace activation calls (``F.gelu``, ``torch.tanh``, ...) in
            the model's forward, by entering ``GAAFFunctionMode`` around it.
        config: a ``GAAFConfig`` whose shape (with its parameters), K and band every GAAF
            takes, in place of those keywords; its activation is not used (each module
            brings its own, with its parameters).
        log: log the report's summary at INFO on the ``gaaf_kernels.convert`` logger.
        example_inputs, example_kwargs: run ``model(*example_inputs, **example_kwargs)``
            once after converting (under ``torch.no_grad()``, the RNG state restored), and
            report the converted modules that never ran and the activation calls that
            stayed plain (``F.relu`` in a forward, ``self.activation = F.relu``).
        **gaaf_kwargs: ``shape``, ``K``, ``shape_params``, ``band``, ``backend`` for every
            GAAF. Invalid ones raise ``ValueError``/``TypeError`` before the model changes.

    Activation modules left alone are named in the report.
    """
    if config is not None:
        gaaf_kwargs = _settings_of(config, gaaf_kwargs)
    if "activation" in gaaf_kwargs or "activation_params" in gaaf_kwargs:
        raise TypeError("convert() takes the activation from each module; use activation_map")
    unknown = sorted(set(gaaf_kwargs) - set(_GAAF_KWARGS))
    if unknown:
        raise TypeError(f"convert() got unexpected keyword arguments {unknown}; "
                        f"GAAF settings are {', '.join(_GAAF_KWARGS)}")
    selected = None if activations is None else frozenset(activations)
    if selected is not None and not selected <= set(activation_names()):
        raise ValueError(f"unknown activations {sorted(selected - set(activation_names()))}; "
                         f"registered activations: {', '.join(activation_names())}")
    extra = dict(activation_map or {})
    if type(model) in extra or tables.find_rule(model) is not None:
        raise TypeError("convert() replaces submodules; wrap a bare activation in a container")
    if example_inputs is not None and not isinstance(example_inputs, (tuple, list)):
        raise TypeError(f"example_inputs must be a tuple of the forward's positional "
                        f"arguments, e.g. example_inputs=(x,); got "
                        f"{type(example_inputs).__name__}")
    if example_kwargs is not None and not isinstance(example_kwargs, Mapping):
        raise TypeError(f"example_kwargs must map the forward's keyword names to values, "
                        f"e.g. example_kwargs={{'input_ids': ids}}; got "
                        f"{type(example_kwargs).__name__}")
    if functional and installed(model):
        raise ValueError("the model was already converted with functional=True (its calls "
                         "are replaced already); convert it again without functional=True")
    _check_settings(gaaf_kwargs)
    result = ConversionReport(model=model)

    def replacement(module: nn.Module, path: str) -> GAAF | None:
        source = _display(type(module))

        def leave(reason: str) -> None:
            result.left_alone.append(LeftAlone(path, source, reason))

        if isinstance(module, GAAF):
            result.already.append(path)
            return None
        if type(module) in extra:
            target = extra[type(module)]
            name, params = (target, {}) if isinstance(target, str) else (target[0],
                                                                         dict(target[1]))
        else:
            rule = tables.find_rule(module)
            if rule is None:
                held = tables.held_activation(module)
                if held is not None:
                    leave(held_reason(module, *held))
                elif tables.looks_like_activation(module):
                    leave(unknown_reason(module))
                return None
            try:
                name, params = rule.map(module)
            except tables.NotConvertible as why:
                leave(str(why))
                return None
        if selected is not None and name not in selected:
            leave(f"{_NOT_SELECTED}: {name} is not in activations=")
            return None
        if name not in activation_names():
            leave(f"activation {name} not registered")
            return None
        _check_shape_settings(name, gaaf_kwargs)  # the shared settings' fault: raises
        if gaaf_kwargs.get("band") and name not in band_activations():
            no_band.append(name)  # left alone below, with GAAF's reason
        try:
            gaaf_module = GAAF(name, activation_params=params, **gaaf_kwargs)
        except ValueError as why:  # this module's parameters outside the domain, no band
            leave(str(why))
            return None
        cfg = gaaf_module.config
        result.converted.append(Converted(path, source, name, tuple(
            zip(cfg.activation.param_names, cfg.activation_params))))
        return gaaf_module

    plan: list[tuple[nn.Module, str, nn.Module, GAAF]] = []
    no_band: list[str] = []

    def walk(parent: nn.Module, prefix: str) -> None:
        for child_name, child in list(parent.named_children()):
            new = replacement(child, prefix + child_name)
            if new is not None:
                plan.append((parent, child_name, child, new))
            else:
                walk(child, f"{prefix}{child_name}.")

    walk(model, "")  # every error is raised here, before the model changes
    if no_band and not plan and not functional:
        raise ValueError(f"band=True, but no activation of the model has a band "
                         f"({', '.join(sorted(set(no_band)))}); activations with a band: "
                         f"{', '.join(band_activations())}")
    original_class = type(model)
    for parent, child_name, _, new in plan:
        setattr(parent, child_name, new)
    if functional:
        result.functional = FunctionalScope(selected, gaaf_kwargs)
        install(model, result.functional)
    if example_inputs is not None or example_kwargs is not None:
        try:
            check_run(model, result, tuple(example_inputs or ()), dict(example_kwargs or {}),
                      selected)
        except Exception as error:  # the model goes back to what it was
            for parent, child_name, old, _ in plan:
                setattr(parent, child_name, old)
            if functional:
                model.__class__ = original_class
                del model._gaaf_functional
            error.add_note("convert(): raised by the example forward "
                           "(example_inputs=/example_kwargs=); the model was left unconverted")
            raise
    if log:
        logger.info("%s", result.summary())
    return result


def _settings_of(config: GAAFConfig, gaaf_kwargs: dict) -> dict:
    """``config``'s shared settings as convert()'s keywords (TypeError beside them)."""
    if not isinstance(config, GAAFConfig):
        raise TypeError(f"config must be a GAAFConfig, got {type(config).__name__}")
    both = sorted(set(gaaf_kwargs) & {"shape", "K", "shape_params", "band"})
    if both:
        raise TypeError(f"pass either config= or {', '.join(both)}, not both")
    settings = config.settings()
    return {**gaaf_kwargs, **{name: settings[name]
                              for name in ("shape", "K", "shape_params", "band")}}


def _warn(result: ConversionReport) -> None:
    problems = []
    unexpected = [x for x in result.left_alone if not x.reason.startswith(_NOT_SELECTED)]
    if unexpected:
        kinds = sorted({f"{x.source} ({x.reason})" for x in unexpected})
        problems.append(f"left {len(unexpected)} activation modules alone: {'; '.join(kinds)}")
    if result.never_ran:
        problems.append(f"converted {len(result.never_ran)} modules that never ran in the "
                        f"example forward")
    if result.plain_calls:
        calls = ", ".join(f"{n} x {call}" for (call, _), n in result.plain_calls.items())
        problems.append(f"found plain activation calls in the example forward: {calls}")
    if result.unreplaceable_calls:
        calls = ", ".join(f"{n} x {call}"
                          for (call, _), n in result.unreplaceable_calls.items())
        problems.append(f"found activation calls with no GAAF equivalent: {calls}")
    if problems:
        warnings.warn(f"convert() {'; '.join(problems)}. Pass report=True for the details.",
                      UserWarning, stacklevel=3)


def _check_settings(gaaf_kwargs: Mapping) -> None:
    """The settings every GAAF shares, checked before anything in the model changes."""
    K, shape = gaaf_kwargs.get("K", DEFAULT_K), gaaf_kwargs.get("shape")
    if isinstance(K, bool) or not isinstance(K, numbers.Real):
        raise TypeError(f"K must be a real number, got {K!r}")
    if shape is not None and not isinstance(shape, str):
        raise TypeError(f"shape must be a shape name or None, got {shape!r}; registered "
                        f"shapes: {', '.join(shape_names())}")
    shape_params = gaaf_kwargs.get("shape_params")
    if shape_params is not None and not isinstance(shape_params, Mapping):
        raise TypeError(f"shape_params must map parameter names to numbers, e.g. "
                        f"{{'c': 3.0}}, got {shape_params!r}")
    backend = gaaf_kwargs.get("backend", "auto")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if "band" in gaaf_kwargs and not isinstance(gaaf_kwargs["band"], bool):
        raise TypeError(f"band must be True or False, got {gaaf_kwargs['band']!r}")
    if "K" in gaaf_kwargs:
        check_K(float(K))
    if shape is not None:
        get_shape(shape).resolve_params(gaaf_kwargs.get("shape_params"))


def _check_shape_settings(activation: str, gaaf_kwargs: Mapping) -> None:
    """The shape settings with this activation (shape=None: its default shape, which
    ``shape_params`` then override): ValueError, raised, where they do not fit."""
    try:
        resolve(activation, gaaf_kwargs.get("shape"), K=gaaf_kwargs.get("K", DEFAULT_K),
                shape_params=gaaf_kwargs.get("shape_params"))
    except ValueError as why:
        raise ValueError(f"convert(): the GAAF settings do not fit activation {activation!r}: "
                         f"{why}") from None
