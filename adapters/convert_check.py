"""The example forward of ``convert(model, example_inputs=...)``.

A class table cannot see what a model's ``forward`` does: a module may hold an
activation it never calls (Hugging Face's ``MambaMixer`` computes its activation
inline), and activations may be plain function calls (``F.relu(x, inplace=True)`` in
torchvision's GoogLeNet, ``F.gelu`` in Whisper's stem). One forward with hooks on the
GAAF modules and a ``TorchFunctionMode`` that counts the catalogue's activation calls
shows both, so the report never says "complete" when it is not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .functional import FUNCTIONS, UNHANDLED, called_by_gaaf
from .torch import GAAF

if TYPE_CHECKING:
    from .convert import ConversionReport


class _ActivationCalls(TorchFunctionMode):
    """Counts the catalogue's activation calls that reach it, by (call, activation), and
    the activation calls that have no GAAF equivalent, by (call, reason).

    Calls that a ``GAAFFunctionMode`` inside the model replaces never get here (it
    answers them with GAAF); those it leaves alone do. GAAF's own internal calls are not
    counted.
    """

    def __init__(self, selected: frozenset[str] | None = None) -> None:
        super().__init__()
        self.selected = selected
        self.calls: Counter[tuple[str, str]] = Counter()
        self.unreplaceable: Counter[tuple[str, str]] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = FUNCTIONS.get(func)
        unhandled = UNHANDLED.get(func) if entry is None else None
        if unhandled is not None and args and isinstance(args[0], Tensor) and \
                args[0].is_floating_point() and not called_by_gaaf():
            self.unreplaceable[unhandled] += 1
        if entry is not None and not called_by_gaaf():
            label, bind = entry
            try:
                x, activation, *_ = bind(*args, **kwargs)
            except TypeError:
                activation = None
            if activation is not None and isinstance(x, Tensor) and x.is_floating_point() \
                    and (self.selected is None or activation in self.selected):
                self.calls[(label, activation)] += 1
        return func(*args, **kwargs)


def check_run(model: nn.Module, report: ConversionReport, args: tuple, kwargs: dict,
              selected: frozenset[str] | None = None) -> None:
    """Run ``model(*args, **kwargs)`` once and record in ``report`` the GAAF modules
    (converted now or before) that never ran and the activation calls that stayed plain
    (of the ``selected`` activations; None: all).

    In eval mode (no dropout, no BatchNorm statistics updated), under ``no_grad``, with
    the RNG state restored: the model is left as it was.
    """
    ran: set[str] = set()
    hooks = []
    for path in [c.path for c in report.converted] + report.already:
        module = model.get_submodule(path)
        if isinstance(module, GAAF):
            hooks.append(module.register_forward_hook(
                lambda _m, _i, _o, path=path: ran.add(path)))
    modes = {m: m.training for m in model.modules()}
    counter = _ActivationCalls(selected)
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]), counter:
            model(*args, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.training = training
    report.checked = True
    report.never_ran = [path for path in [c.path for c in report.converted] + report.already
                        if path not in ran]
    report.plain_calls = counter.calls
    report.unreplaceable_calls = counter.unreplaceable


_PROBE = (-2.7, -1.3, -0.55, 0.35, 0.8, 1.9, 3.1)  # away from the catalogue's kinks


def fixed_scale(module: nn.Module, fn: Callable) -> float | None:
    """``c`` where ``module(x) == c * fn(x)`` on a few points (timm's ``GammaAct``:
    ``act_fn(x).mul_(gamma)``), else None. Only a leaf module without parameters or
    buffers is probed, under ``no_grad`` with the RNG state restored; any error is None.
    """
    if next(module.children(), None) is not None or \
            next(module.parameters(), None) is not None or \
            next(module.buffers(), None) is not None:
        return None
    x = torch.tensor(_PROBE, dtype=torch.float64)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            y, phi = module(x.clone()), fn(x.clone())
    except Exception:  # a forward that wants other inputs: no scale known
        return None
    if not (isinstance(y, Tensor) and isinstance(phi, Tensor) and y.shape == x.shape
            and phi.shape == x.shape and bool(torch.isfinite(y).all())):
        return None
    phi = phi.to(torch.float64)
    big = phi.abs() > 1e-3
    if int(big.sum()) < 3:
        return None
    ratios = y[big] / phi[big]
    c = float(ratios[0])
    if not torch.allclose(y, c * phi, rtol=1e-9, atol=1e-12):
        return None
    return 1.0 if abs(c - 1.0) <= 1e-9 else c


def identify(module: nn.Module) -> tuple[str, float] | None:
    """(activation, c) where a parameter-free leaf ``module`` computes ``c * phi(x)`` for a
    registered activation ``phi`` with its default parameters, on a few points; else
    None (``fixed_scale`` says which modules are probed)."""
    from gaaf_kernels import reference
    from gaaf_kernels.reference.catalogue import PLAIN_SHAPE

    for name in reference.activation_names():
        def phi(x: Tensor, name: str = name) -> Tensor:
            return torch.from_numpy(reference.forward(x.numpy(), name, PLAIN_SHAPE))
        try:
            scale = fixed_scale(module, phi)
        except Exception:  # a user activation whose reference cannot run here
            continue
        if scale is not None:
            return name, scale
    return None


def unknown_reason(module: nn.Module) -> str:
    """Why an unknown class that reads like an activation is left alone: with what it
    computes where a probe of its forward finds a (scaled) registered activation."""
    found = identify(module)
    cls = type(module).__name__
    if found is None:
        return "unrecognized activation class; map it with activation_map"
    name, scale = found
    if scale == 1.0:
        return (f"unrecognized class that computes {name} on probe points; map it with "
                f"activation_map={{{cls}: {name!r}}}")
    return (f"unrecognized class that computes {scale:.8g} * {name} on probe points: no GAAF "
            f"activation has a scale; convert(..., functional=True) replaces the {name} "
            f"call inside it, if it makes one")


def held_reason(module: nn.Module, attr: str, call: str, activation: str,
                params: dict[str, float]) -> str:
    """Why a module that holds a catalogue activation's function (``self.attr``) is left
    alone, with the fixed scale it applies where it has one (timm's ``GammaAct``)."""
    text = f"calls {call} ({activation}) held in self.{attr}"
    scale = fixed_scale(module, getattr(module, attr))
    if scale is not None and scale != 1.0:
        return (f"{text} and multiplies it by a fixed {scale:.8g}: no GAAF activation "
                f"has a scale; convert(..., functional=True) replaces the {activation} call "
                f"and keeps the scale")
    if scale == 1.0:
        target = f"({activation!r}, {params})" if params else repr(activation)
        return (f"{text} and computes exactly {activation}: map the class with "
                f"activation_map={{{type(module).__name__}: {target}}}, or "
                f"convert(..., functional=True) replaces the call")
    return (f"{text}, which convert() cannot replace; convert(..., functional=True) "
            f"replaces the call")
