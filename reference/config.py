"""``GAAFConfig``: one GAAF configuration as a value.

The activation, its shape function, K, both functions' parameters and the saturation
band, validated once when the value is made (names, parameter domains, and that K and the
parameters stay finite and non-zero in float32, the compute dtype of 16- and 32-bit
inputs), with the catalogue's defaults filled in. It is frozen, hashable and picklable
(by names and values: the loading process validates again against its own registry), and
its ``repr`` is a call that makes an equal value. Every path takes one and passes it
inward; the public functions accept either one (``config=``) or the settings themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from .registry import (
    DEFAULT_ACTIVATION,
    DEFAULT_K,
    FunctionSpec,
    band_inverse_bound,
    check_K,
    default_shape_of,
    get_activation,
    get_shape,
    records_of,
    registered,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


class GAAFSettings(TypedDict, total=False):
    """The settings besides the activation and shape names, as keyword arguments."""

    K: float
    activation_params: Mapping[str, float] | None
    shape_params: Mapping[str, float] | None
    band: bool


SETTINGS = tuple(GAAFSettings.__annotations__)


@dataclass(frozen=True, init=False, repr=False)
class GAAFConfig:
    """A validated GAAF configuration, with the catalogue's defaults filled in.

    ``GAAFConfig("relu", K=1e4, band=True)`` takes what ``gaaf()`` takes; ``shape=None``
    picks the activation's default shape (and its default parameters). Attributes:
    ``activation`` and ``shape`` (the registered ``FunctionSpec`` records), ``activation_params``
    and ``shape_params`` (every parameter's value, in the function's order), ``K``,
    ``band``, and ``inv_bound`` (1/m for the band, else None).
    """

    activation: FunctionSpec
    shape: FunctionSpec
    activation_params: tuple[float, ...]
    shape_params: tuple[float, ...]
    K: float
    band: bool
    inv_bound: float | None

    def __init__(self, activation: str = DEFAULT_ACTIVATION, shape: str | None = None, *,
                 K: float = DEFAULT_K, activation_params: Mapping[str, float] | None = None,
                 shape_params: Mapping[str, float] | None = None, band: bool = False) -> None:
        act = get_activation(activation)
        if shape is None:
            shp = get_shape(default_shape_of(act))
            shape_params = {**dict(act.default_shape_params), **(shape_params or {})}
        else:
            shp = get_shape(shape)
        if not isinstance(band, bool):
            raise TypeError(f"band must be True or False, got {band!r}")
        act_params = act.resolve_params(activation_params)
        # frozen: the dataclass's own way of setting fields once
        object.__setattr__(self, "activation", act)
        object.__setattr__(self, "shape", shp)
        object.__setattr__(self, "activation_params", act_params)
        object.__setattr__(self, "shape_params", shp.resolve_params(shape_params))
        object.__setattr__(self, "K", check_K(K))
        object.__setattr__(self, "band", band)
        object.__setattr__(self, "inv_bound",
                           band_inverse_bound(act, act_params) if band else None)

    def settings(self) -> dict[str, Any]:
        """The keyword arguments that make this value again (every one spelled out)."""
        return {"activation": self.activation.name, "shape": self.shape.name, "K": self.K,
                "activation_params": dict(zip(self.activation.param_names,
                                              self.activation_params)),
                "shape_params": dict(zip(self.shape.param_names, self.shape_params)),
                "band": self.band}

    def __reduce__(self):
        # By names and values: the loading process validates against its own registry.
        return (_from_settings, (self.settings(),))

    def __repr__(self) -> str:
        # The arguments that differ from the defaults, so that the repr reads like the
        # call and evaluates to an equal value.
        plain = GAAFConfig(self.activation.name)
        parts = [repr(self.activation.name)]
        if self.shape.name != plain.shape.name:
            parts.append(f"shape={self.shape.name!r}")
            plain = GAAFConfig(self.activation.name, self.shape.name)
        if self.K != plain.K:
            parts.append(f"K={self.K!r}")
        mine, base = self.settings(), plain.settings()
        for field in ("activation_params", "shape_params"):
            changed = {k: v for k, v in mine[field].items() if base[field][k] != v}
            if changed:
                parts.append(f"{field}={changed!r}")
        if self.band:
            parts.append("band=True")
        return f"GAAFConfig({', '.join(parts)})"

    # What a custom operator's schema can carry (names, floats, lists of floats): the one
    # place where a config is flattened, and rebuilt with validation.
    def op_args(self) -> tuple[str, str, float, list[float], list[float], bool]:
        return (self.activation.name, self.shape.name, self.K, list(self.activation_params),
                list(self.shape_params), self.band)

    @staticmethod
    def from_op_args(activation: str, shape: str, K: float, activation_params: list[float],
                     shape_params: list[float], band: bool) -> GAAFConfig:
        act, shp = get_activation(activation), get_shape(shape)
        return configure(activation, shape, K=K, band=band,
                         activation_params=dict(zip(act.param_names, activation_params)),
                         shape_params=dict(zip(shp.param_names, shape_params)))


def _from_settings(settings: dict[str, Any]) -> GAAFConfig:
    # How a config unpickles: a function missing from this process's registry is named
    # as such (the message says to register it first).
    registered("activation", settings["activation"])
    registered("shape", settings["shape"])
    return GAAFConfig(**settings)


def resolve(activation: str = DEFAULT_ACTIVATION, shape: str | None = None,
            **settings: Unpack[GAAFSettings]) -> GAAFConfig:
    """``GAAFConfig(activation, shape, **settings)`` (the older name of the constructor)."""
    return GAAFConfig(activation, shape, **settings)


_cache: dict[tuple, GAAFConfig] = {}


def configure(activation: str | None = None, shape: str | None = None,
              config: GAAFConfig | None = None, *, memo: bool = True,
              **settings: Any) -> GAAFConfig:
    """What a public entry point was given, as one ``GAAFConfig``: ``config`` itself, or
    one made from the settings (memoized unless ``memo`` is false, as while a compiler
    traces the call: eager calls make the same one again and again). TypeError for both
    at once, a ``config`` of another type, or an unknown setting."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(map(repr, unknown))}; GAAF takes "
                        f"activation, shape, {', '.join(SETTINGS)}, or config=")
    if config is not None:
        if not isinstance(config, GAAFConfig):
            raise TypeError(f"config must be a GAAFConfig, got {type(config).__name__}")
        given = ([name for name, v in (("activation", activation), ("shape", shape))
                  if v is not None] + sorted(settings))
        if given:
            raise TypeError(f"pass either config= or the settings, not both (got config= "
                            f"and {', '.join(given)})")
        return config
    activation = DEFAULT_ACTIVATION if activation is None else activation
    if not memo:
        return GAAFConfig(activation, shape, **settings)
    try:
        key = (activation, shape, records_of(activation, shape),
               *((name, tuple(sorted(value.items())) if isinstance(value, Mapping) else value)
                 for name, value in sorted(settings.items())))
        made = _cache.get(key)
    except (TypeError, ValueError):  # unhashable, unsortable or unknown: made afresh
        key, made = None, None
    if made is None:
        made = GAAFConfig(activation, shape, **settings)
        if key is not None:
            if len(_cache) > 1024:
                _cache.clear()
            _cache[key] = made
    return made
