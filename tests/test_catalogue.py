"""The catalogue is the one table of built-ins; every other list is derived from it."""

import inspect

import pytest

import gaaf_kernels as gk
from gaaf_kernels.adapters import convert_tables
from gaaf_kernels.kernels import fast, functions
from gaaf_kernels.reference import catalogue, get_activation, get_shape
from gaaf_kernels.registry import builtin_twins

SUFFIXES = ("_value", "_derivative", "_value_16", "_derivative_16")


def _twin_names(module) -> set[str]:
    """Names of the ``<entry>_<which>`` jit functions a kernels module defines."""
    names = set()
    for attr, obj in vars(module).items():
        if attr.startswith("_") or not hasattr(obj, "fn"):
            continue
        for suffix in SUFFIXES:
            if attr.endswith(suffix):
                names.add(attr[: -len(suffix)])
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
    twins = builtin_twins(entry.name)
    assert twins["value"] is getattr(functions, f"{entry.name}_value")
    assert twins["derivative"] is getattr(functions, f"{entry.name}_derivative")


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
