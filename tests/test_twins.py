"""The twins table (gaaf_kernels/kernels/twins.py): each built-in's record names its
Triton twins, every twin is in a record, a missing one fails at import, and a catalogue
entry plus its formulas and its record are all that a new built-in needs."""

import dataclasses
import re

import pytest
import torch
import triton
import triton.language as tl  # noqa: F401  (the interpreter looks tl up in these globals)

from gaaf_kernels import reference as ref
from gaaf_kernels import registry
from gaaf_kernels.kernels import fast, functions, launch, twins
from gaaf_kernels.kernels.twins import BUILTIN_TWINS, Twins
from gaaf_kernels.reference import catalogue
from gaaf_kernels.reference import registry as reference_registry
from gaaf_kernels.verify import compare, reference_on, sample_inputs
from support import cube_derivative_twin, cube_twin, kernel_device, requires_triton

# Each field of a record and where the convention puts its twin: module, name suffix.
CONVENTION = {
    "value": (functions, "_value"),
    "derivative": (functions, "_derivative"),
    "second_derivative": (functions, "_second_derivative"),
    "fast_value": (fast, "_value"),
    "fast_derivative": (fast, "_derivative"),
    "fast_second_derivative": (fast, "_second_derivative"),
    "fast_value_16": (fast, "_value_16"),
    "fast_derivative_16": (fast, "_derivative_16"),
}


def _spec(entry: catalogue.Builtin) -> ref.FunctionSpec:
    return reference_registry.registered(entry.kind, entry.name)


def _referenced(record: Twins) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
            if getattr(record, f.name) is not None}


def test_the_convention_covers_every_field():
    assert {f.name for f in dataclasses.fields(Twins)} == set(CONVENTION)


@pytest.mark.parametrize("entry", catalogue.BUILTINS, ids=lambda e: e.name)
def test_each_record_names_the_twins_of_its_entry(entry):
    """The registered spec holds the table's record, and each twin in it is the one named
    after the entry (a record that points at another entry's twin fails here)."""
    record = _spec(entry).twins
    assert record is BUILTIN_TWINS[entry.name]
    for field, twin in _referenced(record).items():
        module, suffix = CONVENTION[field]
        assert twin is getattr(module, f"{entry.name}{suffix}", None), (entry.name, field)


def _twin_like(module) -> list[str]:
    """The public @triton.jit functions that ``module`` defines and whose names look like
    a twin's: they mention value or derivative, or start with an entry's name."""
    entries = tuple(f"{entry.name}_" for entry in catalogue.BUILTINS)
    return [name for name, obj in vars(module).items()
            if hasattr(obj, "fn") and obj.fn.__module__ == module.__name__
            and not name.startswith("_")
            and (re.search("value|derivative", name) or name.startswith(entries))]


@pytest.mark.parametrize("module", [functions, fast], ids=lambda m: m.__name__)
def test_every_twin_is_in_a_record(module):
    """A twin that no record names would never run (a forgotten or misspelled one)."""
    used = {id(twin) for entry in catalogue.BUILTINS
            for twin in _referenced(_spec(entry).twins).values()}
    found = _twin_like(module)
    assert len(found) > 20  # the scan sees the twins
    unused = [name for name in found if id(getattr(module, name)) not in used]
    assert not unused, f"twins in {module.__name__} that no record names: {unused}"


def test_storage_dtype_picks_the_twin():
    tanh = BUILTIN_TWINS["tanh"]
    assert tanh.for_storage("float64") == (functions.tanh_value, functions.tanh_derivative)
    assert tanh.for_storage("float32") == (fast.tanh_value, fast.tanh_derivative)
    assert tanh.for_storage("bfloat16") == (fast.tanh_value_16, fast.tanh_derivative_16)
    assert tanh.second_for_storage("float16") is fast.tanh_second_derivative
    # no 16-bit derivative: the float32 one; no fast twin at all: the precise one
    assert BUILTIN_TWINS["elu"].for_storage("float16") == (fast.elu_value_16,
                                                           fast.elu_derivative)
    hardtanh = BUILTIN_TWINS["hardtanh"]
    assert hardtanh.for_storage("float16") == (functions.hardtanh_value,
                                               functions.hardtanh_derivative)
    assert hardtanh.second_for_storage("float32") is functions.hardtanh_second_derivative


# --- a missing or stray record fails when the built-ins are stored -------------------


@pytest.fixture
def empty_store(monkeypatch):
    """Store the built-ins again into an empty store (the process's one is put back)."""
    monkeypatch.setattr(reference_registry, "_RECORDS", {})


def _table_with(monkeypatch, **changes) -> None:
    monkeypatch.setattr(twins, "BUILTIN_TWINS", {**BUILTIN_TWINS, **changes})


def test_a_missing_required_twin_names_the_entry_and_the_field(monkeypatch, empty_store):
    _table_with(monkeypatch, laplace=dataclasses.replace(BUILTIN_TWINS["laplace"],
                                                         derivative=None))
    with pytest.raises(ValueError, match="twins of shape 'laplace' lack derivative"):
        registry._add_builtins()


def test_a_missing_second_derivative_twin_names_the_activation(monkeypatch, empty_store):
    # relu_squared has phi'' but no band: its Triton phi'' is still required
    _table_with(monkeypatch, relu_squared=dataclasses.replace(
        BUILTIN_TWINS["relu_squared"], second_derivative=None))
    with pytest.raises(ValueError,
                       match="twins of activation 'relu_squared' lack second_derivative"):
        registry._add_builtins()


def test_an_entry_without_a_record_is_named(monkeypatch, empty_store):
    table = dict(BUILTIN_TWINS)
    del table["mish"]
    monkeypatch.setattr(twins, "BUILTIN_TWINS", table)
    with pytest.raises(ValueError, match="built-in activation 'mish' has no twins record"):
        registry._add_builtins()


def test_a_record_without_an_entry_is_named(monkeypatch, empty_store):
    _table_with(monkeypatch, tanhh=BUILTIN_TWINS["tanh"])
    with pytest.raises(ValueError, match="twins records without a catalogue entry: tanhh"):
        registry._add_builtins()


# --- a new built-in: formulas, a catalogue entry and a record, nothing else ------------


def cubic(xp, x, a):
    return a * x + x * x * x


def cubic_derivative(xp, x, a):
    return a + 3.0 * x * x


@triton.jit
def cubic_value(x, a):
    return a * x + x * x * x


@triton.jit
def cubic_derivative_twin(x, a):
    return a + 3.0 * x * x


@requires_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_a_new_builtin_needs_its_formulas_entry_and_record_only(monkeypatch, empty_store,
                                                                dtype):
    entry = catalogue.Builtin("throwaway_cubic", "activation", cubic, cubic_derivative,
                              (("a", 0.5),), positive=("a",), default_shape="gaussian",
                              default_shape_params=(("c", 2.0),))
    monkeypatch.setattr(catalogue, "ACTIVATIONS", (*catalogue.ACTIVATIONS, entry))
    monkeypatch.setattr(catalogue, "BUILTINS", (*catalogue.BUILTINS, entry))
    _table_with(monkeypatch, throwaway_cubic=Twins(value=cubic_value,
                                                   derivative=cubic_derivative_twin))
    registry._add_builtins()  # what importing gaaf_kernels.registry runs

    assert registry.activations()[-1] == "throwaway_cubic"
    kwargs = {"activation": "throwaway_cubic", "activation_params": {"a": 0.75}}
    cfg = ref.resolve(**kwargs)
    assert cfg.shape.name == "gaussian" and cfg.shape_params == (2.0,)
    with pytest.raises(ValueError, match="> 0"):
        ref.resolve("throwaway_cubic", activation_params={"a": 0.0})

    x = sample_inputs(dtype, n=256)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    device = kernel_device()
    y = launch.forward(x.to(device), cfg)
    dx = launch.backward(x.to(device), dy.to(device), cfg)
    for got, want in [(y, reference_on(ref.forward, x, cfg_kwargs=kwargs)),
                      (dx, reference_on(ref.backward, x, dy, cfg_kwargs=kwargs))]:
        max_abs, max_rel, ok = compare(got.cpu(), want)
        assert ok, (dtype, max_abs, max_rel)


# --- a user registration names its whole record with twins= ----------------------------


def cube(x):
    return x * x * x


def cube_derivative(x):
    return 3.0 * x * x


# Marked "fast" twins: phi + 1/4 and phi + 1/2, so the output says which twin ran.
@triton.jit
def cube_value_plus_quarter(x):
    return x * x * x + 0.25


@triton.jit
def cube_value_plus_half(x):
    return x * x * x + 0.5


@requires_triton
def test_a_registration_record_picks_the_twin_by_storage_dtype(own_store):
    import gaaf_kernels as gk

    gk.register_activation(
        "marked_cube", numpy_value=cube, numpy_derivative=cube_derivative,
        twins=gk.Twins(value=cube_twin, derivative=cube_derivative_twin,
                       fast_value=cube_value_plus_quarter,
                       fast_value_16=cube_value_plus_half))
    x = torch.linspace(-1.5, 1.5, 64, dtype=torch.float64)
    for dtype, mark in [(torch.float64, 0.0), (torch.float32, 0.25), (torch.bfloat16, 0.5)]:
        y = gk.gaaf(x.to(dtype).to(kernel_device()), "marked_cube", backend="triton")
        xs = x.to(dtype).double().numpy()  # the storage rounds x first
        expected = ref.forward(xs, "marked_cube") + mark
        tol = {torch.float64: 4e-12, torch.float32: 4e-6, torch.bfloat16: 4e-2}[dtype]
        assert abs(y.double().cpu().numpy() - expected).max() <= tol, dtype


def test_a_registration_gives_its_twins_one_way(own_store):
    import gaaf_kernels as gk

    both = dict(numpy_value=cube, numpy_derivative=cube_derivative,
                triton_value=cube_twin,
                twins=gk.Twins(value=cube_twin, derivative=cube_derivative_twin))
    with pytest.raises(TypeError, match="either as twins=Twins.*or as triton_value, not both"):
        gk.register_activation("one_way_cube", **both)
    with pytest.raises(TypeError, match="needs triton_value and triton_derivative, or"):
        gk.register_activation("one_way_cube", numpy_value=cube,
                               numpy_derivative=cube_derivative, triton_value=cube_twin)
    with pytest.raises(TypeError, match="twins must be a gaaf_kernels.Twins record"):
        gk.register_shape("one_way_shape", numpy_value=cube, numpy_derivative=cube_derivative,
                          twins=(cube_twin, cube_derivative_twin))
    with pytest.raises(TypeError, match="twins.fast_derivative_16 must be a @triton.jit"):
        gk.register_activation("one_way_cube", numpy_value=cube,
                               numpy_derivative=cube_derivative,
                               twins=gk.Twins(value=cube_twin, derivative=cube_derivative_twin,
                                              fast_derivative_16=cube_derivative))
    with pytest.raises(TypeError, match="a shape's Triton twins have no second derivative"):
        gk.register_shape("one_way_shape", numpy_value=cube, numpy_derivative=cube_derivative,
                          twins=gk.Twins(value=cube_twin, derivative=cube_derivative_twin,
                                         second_derivative=cube_derivative_twin))
    with pytest.raises(ValueError, match="twins of activation 'one_way_cube' lack derivative"):
        gk.register_activation("one_way_cube", numpy_value=cube,
                               numpy_derivative=cube_derivative,
                               twins=gk.Twins(value=cube_twin))
    assert "one_way_cube" not in gk.activations() and "one_way_shape" not in gk.shapes()
