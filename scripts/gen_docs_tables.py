#!/usr/bin/env python3
"""The docs' tables of catalogue data, generated from the catalogue.

    python scripts/gen_docs_tables.py           # rewrite the generated regions
    python scripts/gen_docs_tables.py --check   # exit 1 (and show a diff) where one is stale

Each table lives in one page, between two marker lines:

    <!-- BEGIN generated: NAME -->
    ...
    <!-- END generated: NAME -->

Everything between them is rewritten; edit the catalogue (``reference/catalogue.py``),
``convert()``'s tables (``adapters/convert_tables.py``), never the region itself. The regions:

* ``catalogue-names`` (README.md): the built-in activation and shape names;
* ``activations``, ``shapes`` (docs/semantics.md): each entry's formula, parameters with
  their defaults and, for activations, the default shape with its parameters;
* ``band-bounds`` (docs/semantics.md): m = sup |phi'| of each activation at its default
  parameters, or that it has no band;
* ``convert-classes`` (docs/integrations.md): the classes ``convert()`` knows and what
  each becomes (``conversion_table()``);
* ``convert-calls`` (docs/integrations.md): the torch functions that
  ``convert(functional=True)`` replaces (the catalogue entries' ``functions``).

The formulas in words come from each entry's ``formula`` (and ``band_text``); an entry
without them is an error.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (page, region) of every generated region, in the order they are written.
REGIONS = (
    ("README.md", "catalogue-names"),
    ("docs/semantics.md", "activations"),
    ("docs/semantics.md", "shapes"),
    ("docs/semantics.md", "band-bounds"),
    ("docs/integrations.md", "convert-classes"),
    ("docs/integrations.md", "convert-calls"),
)


class StaleError(Exception):
    """A page lacks a region's markers, or a catalogue entry lacks its docs texts."""


def _number(value: float) -> str:
    return f"{value:g}"


def _params(params) -> str:
    return ", ".join(f"{name}={_number(value)}" for name, value in params)


def _with_params(name: str, params) -> str:
    return f"{name}({_params(params)})" if params else name


def _check_texts(entries, field: str) -> None:
    missing = [e.name for e in entries if not getattr(e, field)]
    if missing:
        raise StaleError(f"catalogue entries without {field}= (reference/catalogue.py): "
                         f"{', '.join(missing)}")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    def line(cells) -> str:
        return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"
    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def catalogue_names() -> list[str]:
    from gaaf_kernels.reference import catalogue

    return [*textwrap.wrap(f"Activations: {', '.join(e.name for e in catalogue.ACTIVATIONS)}.",
                           width=88, break_on_hyphens=False),
            *textwrap.wrap(f"Shape functions: {', '.join(e.name for e in catalogue.SHAPES)}.",
                           width=88, break_on_hyphens=False)]


def activations() -> list[str]:
    from gaaf_kernels.reference import catalogue

    _check_texts(catalogue.ACTIVATIONS, "formula")
    rows = [(f"`{e.name}`", e.formula, _params(e.params),
             _with_params(e.default_shape, e.default_shape_params))
            for e in catalogue.ACTIVATIONS]
    return _table(("activation", "phi(x)", "parameters (defaults)", "default shape"), rows)


def shapes() -> list[str]:
    from gaaf_kernels.reference import catalogue

    _check_texts(catalogue.SHAPES, "formula")
    rows = [(f"`{e.name}`", e.formula, _params(e.params))
            for e in catalogue.SHAPES]
    return _table(("shape", "s(x)", "parameters (defaults)"), rows)


def band_bounds() -> list[str]:
    from gaaf_kernels.reference import catalogue

    banded = [e for e in catalogue.ACTIVATIONS if e.derivative_bound is not None]
    _check_texts(banded, "band_text")
    rows = []
    for e in catalogue.ACTIVATIONS:
        if e.derivative_bound is None:
            rows.append((f"`{e.name}`", "unbounded: no band", "", ""))
            continue
        m = float(e.derivative_bound(*(value for _, value in e.params)))
        rows.append((f"`{e.name}`", f"{m:.6f}".rstrip("0").rstrip("."), *e.band_text))
    return _table(("activation", "m = sup \\|phi'\\| (default parameters)", "closed form",
                   "where"), rows)


def _code_becomes(becomes: str) -> str:
    """``gelu, or gelu_tanh for approximate='tanh'`` -> the same with each activation and
    condition in backticks; reasons for leaving a class alone stay plain."""
    if becomes.startswith("not converted"):
        return becomes
    parts = re.split(r"(, or | for |; )", becomes)
    return "".join(part if part in (", or ", " for ", "; ") or part.startswith("other ")
                   else f"`{part}`" for part in parts)


def convert_classes() -> list[str]:
    from gaaf_kernels.adapters.convert import conversion_table

    libraries = ("torch.nn", "transformers", "timm")
    table = sorted(conversion_table(), key=lambda row: (  # stable: catalogue order within
        libraries.index(row[0]) if row[0] in libraries else len(libraries),
        row[2].startswith("not converted")))
    rows = [(library, f"`{name}`", _code_becomes(becomes)) for library, name, becomes in table]
    return _table(("library", "class", "becomes"), rows)


def _aliases(functions: dict) -> dict[str, list[str]]:
    """label -> the other public names of the same function (``F.relu_`` is
    ``torch.relu_``), which the mode answers too."""
    import torch
    import torch.nn.functional as F

    found: dict[str, list[str]] = {}
    for module, prefix in ((F, "F."), (torch, "torch."), (torch.special, "torch.special.")):
        for name in sorted(vars(module)):
            obj = vars(module)[name]
            if name.startswith("_") or not callable(obj):
                continue
            try:
                entry = functions.get(obj)
            except TypeError:  # unhashable
                continue
            if entry is not None and entry[0] != prefix + name:
                found.setdefault(entry[0], []).append(prefix + name)
    return found


def convert_calls() -> list[str]:
    from gaaf_kernels.adapters.functional import FUNCTIONS, _label
    from gaaf_kernels.reference import catalogue

    aliases = _aliases(FUNCTIONS)
    by_path: dict[str, list] = {}
    for entry in catalogue.ACTIVATIONS:
        for fn in entry.functions:
            by_path.setdefault(fn.path, []).append((entry, fn))
    rows, grouped = [], {}
    for path, choices in by_path.items():
        label = _label(path)
        if choices[0][1].when is None:  # one entry: grouped with the entry's other calls
            grouped.setdefault(choices[0][0].name, []).append((label, choices[0][1]))
            continue
        # the entry the call computes when the keyword is left out comes first
        choices = sorted(choices, key=lambda c: c[1].when.value != c[1].when.default)
        text = ", or ".join(
            f"`{e.name}`" if i == 0 else f"`{e.name}` for `{fn.when.name}=\"{fn.when.value}\"`"
            for i, (e, fn) in enumerate(choices))
        grouped.setdefault(choices[0][0].name, []).append((label, None, text))
    for entry in catalogue.ACTIVATIONS:
        calls = [c for c in grouped.get(entry.name, []) if len(c) == 2]
        if calls:
            args = [a for _, fn in calls for a in fn.args]
            args = list(dict.fromkeys(args))
            text = f"`{entry.name}`"
            if args:
                text += " with the call's " + " and ".join(f"`{a}`" for a in args)
            fixed = [f"`{label}`: `{_params((p.param, p.value) for p in fn.fixed)}`"
                     for label, fn in calls if fn.fixed]
            notes = fixed + [f"`{alias}` is `{label}`" for label, _ in calls
                             for alias in aliases.get(label, [])]
            if notes:
                text += f" ({'; '.join(notes)})"
            rows.append((", ".join(f"`{label}`" for label, _ in calls), text))
        for label, _, text in (c for c in grouped.get(entry.name, []) if len(c) == 3):
            rows.append((f"`{label}`", text))
    return _table(("call", "becomes"), rows)


GENERATORS = {
    "catalogue-names": catalogue_names,
    "activations": activations,
    "shapes": shapes,
    "band-bounds": band_bounds,
    "convert-classes": convert_classes,
    "convert-calls": convert_calls,
}


def render(text: str, name: str, lines: list[str], page: str) -> str:
    """``text`` with the region ``name`` replaced by ``lines``."""
    begin, end = f"<!-- BEGIN generated: {name} -->", f"<!-- END generated: {name} -->"
    pattern = re.compile(rf"^{re.escape(begin)}\n.*?^{re.escape(end)}$", re.S | re.M)
    if len(pattern.findall(text)) != 1:
        raise StaleError(f"{page}: expected one region between {begin!r} and {end!r}")
    return pattern.sub(lambda _: "\n".join([begin, *lines, end]), text)


def pages(root: Path = ROOT) -> dict[str, tuple[str, str]]:
    """page -> (current text, generated text)."""
    out: dict[str, tuple[str, str]] = {}
    for page, name in REGIONS:
        if page not in out:
            current = (root / page).read_text(encoding="utf-8")
            out[page] = (current, current)
        current, generated = out[page]
        out[page] = (current, render(generated, name, GENERATORS[name](), page))
    return out


def stale(root: Path = ROOT) -> list[str]:
    """A unified diff per page whose regions differ from what the catalogue gives."""
    diffs = []
    for page, (current, generated) in pages(root).items():
        if current != generated:
            diffs.append("".join(difflib.unified_diff(
                current.splitlines(keepends=True), generated.splitlines(keepends=True),
                f"{page} (now)", f"{page} (generated)")))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and print a diff where a region is stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            diffs = stale()
            if diffs:
                print("".join(diffs), end="")
                print("stale: run python scripts/gen_docs_tables.py", file=sys.stderr)
                return 1
            return 0
        for page, (current, generated) in pages().items():
            if current != generated:
                (ROOT / page).write_text(generated, encoding="utf-8")
                print(f"rewrote {page}")
    except StaleError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
