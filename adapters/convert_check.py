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
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .functional import FUNCTIONS, called_by_gaaf
from .torch import GAAF

if TYPE_CHECKING:
    from .convert import ConversionReport


class _ActivationCalls(TorchFunctionMode):
    """Counts the catalogue's activation calls that reach it, by (call, activation).

    Calls that a ``GAAFFunctionMode`` inside the model replaces never get here (it
    answers them with GAAF); those it leaves alone do. GAAF's own internal calls are not
    counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = FUNCTIONS.get(func)
        if entry is not None and not called_by_gaaf():
            label, bind = entry
            try:
                x, activation, *_ = bind(*args, **kwargs)
            except TypeError:
                activation = None
            if activation is not None and isinstance(x, Tensor) and x.is_floating_point():
                self.calls[(label, activation)] += 1
        return func(*args, **kwargs)


def check_run(model: nn.Module, report: ConversionReport, args: tuple, kwargs: dict) -> None:
    """Run ``model(*args, **kwargs)`` once and record in ``report`` the converted modules
    that never ran and the activation calls that stayed plain.

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
    counter = _ActivationCalls()
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
    report.never_ran = [c.path for c in report.converted if c.path not in ran]
    report.plain_calls = counter.calls
