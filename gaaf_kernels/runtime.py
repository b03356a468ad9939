"""Process-wide runtime options: ``set_options``, ``get_options`` and the ``options`` block.

``compile``: whether the PyTorch composite (the CPU default, and ``backend="torch"``) is
compiled by TorchInductor on first use of each configuration (fused, but a first call
that waits for a C++ compiler) or runs eagerly (many small ops, no wait). The environment
variable ``GAAF_COMPILE`` (0/false/off/no) sets its starting value, read once at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_OFF = ("0", "false", "off", "no")
_options: dict[str, bool] = {
    "compile": os.environ.get("GAAF_COMPILE", "1").strip().lower() not in _OFF,
}


def get_options() -> dict[str, bool]:
    """The current options (a copy)."""
    return dict(_options)


def set_options(*, compile: bool | None = None) -> None:
    """Set options for the whole process; None leaves one as it is."""
    for name, value in (("compile", compile),):
        if value is None:
            continue
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
        _options[name] = value


@contextlib.contextmanager
def options(*, compile: bool | None = None) -> Iterator[None]:
    """``set_options`` for the block, restored after it (also on an exception)."""
    saved = dict(_options)
    set_options(compile=compile)
    try:
        yield
    finally:
        _options.clear()
        _options.update(saved)


def compile_enabled() -> bool:
    """Whether the PyTorch composite is compiled (the hot path's one read)."""
    return _options["compile"]
