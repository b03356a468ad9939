"""The catalogue is the one table of built-ins; every other list is derived from it."""

import ast
import importlib
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import gaaf_kernels as gk
from gaaf_kernels import reference
from gaaf_kernels.adapters import convert_tables
from gaaf_kernels.adapters.functional import FUNCTIONS
from gaaf_kernels.kernels import fast, functions
from gaaf_kernels.reference import catalogue, get_activation, get_shape

# Longest first: tanh_second_derivative is a twin of tanh, not of "tanh_second".
SUFFIXES = ("_second_derivative", "_value_16", "_derivative_16", "_value", "_derivative")


def _twin_names(module) -> set[str]:
    """Names of the ``<entry>_<which>`` jit functions a kernels module defines."""
    names = set()
    for attr, obj in vars(module).items():
        if attr.startswith("_") or not hasattr(obj, "fn"):
            continue
        for suffix in SUFFIXES:
            if attr.endswith(suffix):
                names.add(attr[: -len(suffix)])
                break
    return names


def test_registry_holds_exactly_the_catalogue():
    assert gk.activations()[: len(catalogue.ACTIVATIONS)] == [
        e.name for e in catalogue.ACTIVATIONS]
    assert gk.shapes()[: len(catalogue.SHAPES)] == [e.name for e in catalogue.SHAPES]
    for entry in catalogue.BUILTINS:
        spec = (get_shape if entry.kind == "shape" else get_activation)(entry.name)
        assert (spec.value, spec.derivative, spec.params) == (
            entry.value, entry.derivative, entry.params)
        assert spec.default_shape == entry.default_shape


@pytest.mark.parametrize("entry", catalogue.BUILTINS, ids=lambda e: e.name)
def test_every_entry_has_its_triton_twins(entry):
    twins = (get_shape if entry.kind == "shape" else get_activation)(entry.name).twins
    assert twins.value is getattr(functions, f"{entry.name}_value")
    assert twins.derivative is getattr(functions, f"{entry.name}_derivative")


def test_no_twin_without_an_entry():
    names = {e.name for e in catalogue.BUILTINS}
    assert _twin_names(functions) <= names, _twin_names(functions) - names
    assert _twin_names(fast) <= names, _twin_names(fast) - names


def test_catalogue_modules_are_the_convertible_classes():
    from_catalogue = {key for e in catalogue.ACTIVATIONS for key, _ in e.modules}
    convertible = {key for key, rule in convert_tables.RULES.items()
                   if not rule.becomes.startswith("not converted")}
    assert from_catalogue == convertible


def test_parameter_domains_come_from_the_catalogue():
    for entry in catalogue.BUILTINS:
        spec = (get_shape if entry.kind == "shape" else get_activation)(entry.name)
        for name in entry.positive:
            with pytest.raises(ValueError, match="> 0"):
                spec.resolve_params({name: 0.0})
    with pytest.raises(ValueError, match="min_val <= max_val"):
        get_activation("hardtanh").resolve_params({"min_val": 1.0, "max_val": 0.0})


def test_reference_catalogue_imports_only_numpy():
    source = inspect.getsource(catalogue) + inspect.getsource(catalogue.f)
    imports = [line.split()[1] for line in source.splitlines()
               if line.startswith(("import ", "from "))]
    assert set(imports) <= {"__future__", "collections.abc", "dataclasses", "math", "."}


# --- the catalogue's torch functions ------------------------------------------------------

FUNCTION_ROWS = [(entry, fn) for entry in catalogue.ACTIVATIONS for fn in entry.functions]


def _torch_object(path: str):
    """The object a dotted path names, found independently of adapters/functional.py."""
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError:  # torch.Tensor.tanh: a class attribute
        owner, _, cls = module.rpartition(".")
        return getattr(getattr(importlib.import_module(owner), cls), attr)


def test_functional_mode_holds_exactly_the_catalogue_functions():
    objects = {_torch_object(fn.path) for _, fn in FUNCTION_ROWS}
    assert set(FUNCTIONS) == objects
    for entry, fn in FUNCTION_ROWS:
        assert set(fn.args) | {p.param for p in fn.fixed} <= set(dict(entry.params)), fn.path
        assert fn.inplace in ("no", "yes", "flag")


@pytest.mark.parametrize("entry,fn", FUNCTION_ROWS,
                         ids=[f"{e.name}-{f.path}" for e, f in FUNCTION_ROWS])
def test_each_function_computes_its_entry(entry, fn):
    """The torch function, called with the catalogue's argument list, computes the entry:
    by keyword and by position (so the names and the order are torch's), with the entry's
    defaults and with other values, fixed parameters and the ``when`` keyword included."""
    torch_fn = _torch_object(fn.path)
    defaults = dict(entry.params)
    other = {name: value + 0.25 for name, value in defaults.items()}  # inside every domain
    x = torch.linspace(-7.0, 7.0, 281, dtype=torch.float64)
    x = x[(x - x.round()).abs() > 1e-9]  # no kinks (integers: 0, +-1, +-3, 6, ...)
    keyword = {fn.when.name: fn.when.value} if fn.when else {}
    for params in (defaults, other):
        values = [params[name] for name in fn.args]
        calls = [((*values,), keyword), ((), {**dict(zip(fn.args, values)), **keyword})]
        if fn.inplace == "flag":
            calls.append(((*values, False), keyword))
        want = reference.forward(x.numpy(), entry.name, "none", activation_params={
            **{n: params[n] for n in fn.args}, **{p.param: p.value for p in fn.fixed}})
        for args, kwargs in calls:
            got = torch_fn(x.clone(), *args, **kwargs)
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    if fn.out:
        out = torch.empty_like(x)
        torch_fn(x, out=out)
        np.testing.assert_allclose(out.numpy(), reference.forward(x.numpy(), entry.name,
                                                                  "none"), rtol=1e-12)
    try:
        signature = inspect.signature(torch_fn)
    except (TypeError, ValueError):  # a builtin: the calls above are the check
        return
    names = [p for p in signature.parameters if p not in ("input", "self")]
    flag = ["inplace"] if fn.inplace == "flag" else []
    assert names == [*fn.args, *flag, *([fn.when.name] if fn.when else [])]
    for name in fn.args:
        assert signature.parameters[name].default == defaults[name], (fn.path, name)


# --- a built-in's name appears in one library file ---------------------------------------

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("reference", "adapters", "gaaf_kernels", "experiments")
CATALOGUE = "reference/catalogue.py"

# Library files that still spell a built-in's name as a string literal, each to be
# changed by whoever is editing that file now; remove a row once it is done.
TO_FIX: set[tuple[str, str]] = set()  # none left
# The same spelling with another meaning: these strings do not name a catalogue entry.
OTHER_MEANING = {
    ("reference/registry.py", "none"),  # an error message: the valid parameters are "none"
    ("experiments/analysis/report.py", "none"),  # a table cell: no seeds recorded
    ("experiments/reproduce.py", "none"),  # no gradient clipping
    ("experiments/study/report.py", "none"),  # the same
    # The paper's tables name the MLPs' activation "tanh" (beside "ReLU" for the CNNs).
    ("experiments/reproduce.py", "tanh"),
    ("experiments/tasks.py", "none"),  # the values of augment= and normalize=
    ("experiments/models.py", "relu"),  # torch.nn.init's nonlinearity= (the kaiming gain)
    ("reference/namespaces.py", "tanh"),  # the array function the formulas call (np.tanh)
}


def _string_constants(path: Path):
    """(value, line) of every string constant of a file, f-string parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno


def _spelled() -> dict[tuple[str, str], list[int]]:
    """(library file, built-in name) -> the lines where the name is a string literal."""
    names = {entry.name for entry in catalogue.BUILTINS}
    found: dict[tuple[str, str], list[int]] = {}
    for folder in LIBRARY:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for value, line in _string_constants(path):
                if value in names:
                    found.setdefault((rel, value), []).append(line)
    return found


def test_builtin_names_are_spelled_only_in_the_catalogue():
    found = _spelled()
    in_catalogue = {name for (rel, name) in found if rel == CATALOGUE}
    assert in_catalogue == {entry.name for entry in catalogue.BUILTINS}  # the scan works
    elsewhere = {key: lines for key, lines in found.items() if key[0] != CATALOGUE}
    unexpected = {key: lines for key, lines in elsewhere.items()
                  if key not in TO_FIX | OTHER_MEANING}
    assert not unexpected, (
        "built-in names spelled outside reference/catalogue.py (file, name): lines; take "
        f"them from the catalogue instead: {unexpected}")
    done = sorted((TO_FIX | OTHER_MEANING) - elsewhere.keys())
    if done:
        warnings.warn(f"allow-list rows no longer needed, remove them: {done}", stacklevel=1)
