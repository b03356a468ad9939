"""GAAF inside ``torch.compile``: pointwise math that Inductor fuses, with the same semantics.

Under Dynamo, ``gaaf()`` and ``GAAF`` are traced as the composite's formulas
(adapters/torch_fused.py) where Inductor's generated code keeps ``x*K`` rounded before
the floor: on CPU its C++ is compiled with ``-ffp-contract=off``
(``config.cpp.enable_floating_point_contract_flag``), on CUDA only with
``config.emulate_precision_casts`` (Triton's ``enable_fp_fusion`` off), for
``backend="auto"``. Elsewhere, under ``torch.export`` and for an explicit backend, the
custom ops stay in the graph.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch._inductor.utils import run_and_get_code

from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import torch_fused
from gaaf_kernels.adapters.torch import GAAF, gaaf
from gaaf_kernels.adapters.torch_private import traced_route_supported
from gaaf_kernels.verify import compare, reference_on, sample_inputs
from support import requires_cuda, requires_triton

FORWARD = torch.ops.gaaf_kernels.forward.default
K = 1e4


def _cpp_kernels(code: str) -> int:
    return code.count("async_compile.cpp_pybinding(")


def _jump_points(dtype: torch.dtype) -> torch.Tensor:
    """x where x*K rounds to an integer (the sawtooth's jumps) and the values next to it."""
    n = torch.tensor([1.0, 7.0, 12345.0, -3.0, -9999.0, 29999.0, -40000.0])
    x = (n / K).to(dtype)
    up, down = torch.nextafter(x, x + 1), torch.nextafter(x, x - 1)
    return torch.cat([x, up, down])


def _dynamo_graph_targets(fn, *args) -> set:
    """The call targets of the graph Dynamo hands to its backend (no Inductor)."""
    targets: set = set()

    def record(gm, example_inputs):
        targets.update(node.target for node in gm.graph.nodes)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(fn, backend=record, fullgraph=True)(*args)
    return targets


TRACED = pytest.mark.skipif(
    not traced_route_supported(),
    reason="torch < 2.13 keeps the opaque custom op under torch.compile (its compiled "
           "backward of the traced math was wrong); test_old_torch_keeps_the_opaque_op")


@TRACED
def test_inductor_fuses_gaaf_with_its_neighbours_forward_and_backward():
    def f(t):
        return gaaf(t * 2 + 1, "tanh") * 3

    x = torch.randn(4096, requires_grad=True)
    compiled = torch.compile(f)

    def step():
        (dx,) = torch.autograd.grad(compiled(x), x, torch.ones_like(x))
        return dx

    dx, codes = run_and_get_code(step)
    assert len(codes) == 2  # the forward and the backward graph
    assert [_cpp_kernels(code) for code in codes] == [1, 1]  # one loop each, neighbours in
    for code in codes:
        assert "gaaf_kernels" not in code  # no opaque call left
        assert "fma" not in code  # Inductor emitted no FMA of its own
    xs = (x.detach() * 2 + 1).numpy()
    want = 6 * ref.backward(xs, np.ones_like(xs), "tanh")
    np.testing.assert_allclose(dx.numpy(), want, rtol=1e-5, atol=1e-6)


def _returned(code: str) -> list[str]:
    """The names the generated ``call`` returns: for a forward graph, y and then what it
    saves for the backward."""
    body = code[code.index("def call(self, args)"):]
    line = next(line for line in body.splitlines() if line.strip().startswith("return ("))
    return [name.strip() for name in line.strip()[len("return ("):-1].split(",") if name.strip()]


@pytest.mark.parametrize("activation,params", [
    ("tanh", {}), ("relu", {}), ("softplus", {}), ("hardtanh", {"min_val": -0.5}),
    ("leaky_relu", {"negative_slope": 0.2})])
def test_the_backward_keeps_only_x(activation, params):
    """Inductor's own pipeline (joint-graph passes, min-cut partitioner): the forward
    graph returns y and x, and allocates no bool mask to hand to the backward."""
    x = torch.randn(1 << 16, requires_grad=True)
    compiled = torch.compile(lambda t: gaaf(t, activation, activation_params=params))

    def step():
        return torch.autograd.grad(compiled(x), x, torch.ones_like(x))

    _, (forward_code, _backward_code) = run_and_get_code(step)
    returned = _returned(forward_code)
    assert len(returned) == 2 and returned[1] == "primals_1", returned  # y, then x
    assert "torch.bool" not in forward_code


def test_combination_and_nan_rule_are_the_references():
    """The composite calls formulas.gaaf_value / gaaf_gradient with its own namespace
    (one-operand NaN test); the reference's NumPy namespace gives the same bits."""
    from gaaf_kernels.adapters import torch_composite as composite
    from gaaf_kernels.reference import formulas

    for dtype in (torch.float32, torch.float64):
        x = sample_inputs(dtype, n=256)
        cfg = ref.resolve("softplus")
        k = torch.tensor(cfg.K, dtype=dtype)
        ap = [torch.tensor(v, dtype=dtype) for v in cfg.activation_params]
        sp = [torch.tensor(v, dtype=dtype) for v in cfg.shape_params]
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
        # the same formulas with torch's own NaN test in place of the one-operand one
        t = SimpleNamespace(**vars(composite.TORCH))
        t.isnan = torch.isnan
        phi, dphi = cfg.activation.value(t, x, *ap), cfg.activation.derivative(t, x, *ap)
        s, ds = cfg.shape.value(t, x, *sp), cfg.shape.derivative(t, x, *sp)
        g = formulas.sawtooth(t, x, k)
        assert torch.isnan(x).any()  # the NaN rule is exercised
        torch.testing.assert_close(
            composite.forward_values(x, cfg.activation.value, cfg.shape.value, k, ap, sp),
            formulas.gaaf_value(t, x, phi, g, s), rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(
            composite.backward_values(x, dy, cfg.activation.derivative, cfg.shape.value,
                                      cfg.shape.derivative, k, ap, sp),
            formulas.gaaf_gradient(t, x, dy, dphi, s, g, ds), rtol=0, atol=0, equal_nan=True)


CASES = [("tanh", {}), ("relu", {}), ("gelu", {}), ("softplus", {}),
         ("leaky_relu", {"negative_slope": 0.2}), ("hardtanh", {"min_val": -0.5})]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_compiled_path_matches_reference_special_values_and_jumps(dtype):
    """nan, +-inf, the largest normals, subnormals, the sawtooth's jumps: y and dx."""
    x = torch.cat([sample_inputs(dtype, n=256), _jump_points(dtype)])
    gen = torch.Generator().manual_seed(4)
    dy = torch.randn(x.shape, generator=gen).to(dtype)

    def f(*xs):
        return tuple(gaaf(t, a, activation_params=p) for t, (a, p) in zip(xs, CASES))

    torch._dynamo.reset()
    xs = [x.clone().requires_grad_() for _ in CASES]
    ys = torch.compile(f, fullgraph=True)(*xs)
    dxs = torch.autograd.grad(ys, xs, [dy] * len(CASES))
    for (activation, params), y, dx in zip(CASES, ys, dxs):
        kwargs = {"activation": activation, "activation_params": params}
        for got, want in [(y, reference_on(ref.forward, x, cfg_kwargs=kwargs)),
                          (dx, reference_on(ref.backward, x, dy, cfg_kwargs=kwargs))]:
            max_abs, max_rel, ok = compare(got, want)
            assert ok, f"{activation}: max abs {max_abs}, max rel {max_rel}"


def test_compiled_sawtooth_rounds_x_times_k_before_the_floor():
    """relu + constant shape: y = relu(x) + g(x), exact IEEE ops only, so the compiled
    model equals the reference bit for bit unless x*K was contracted into an FMA (then
    frac(x*K) would use the unrounded product)."""
    gen = torch.Generator().manual_seed(9)
    specials = sample_inputs(torch.float32, n=16)
    # no subnormals in this large (OpenMP) case: FTZ/DAZ is per-thread state, which
    # torch.set_flush_denormal sets on the calling thread only; the small case above,
    # serial by Inductor's own rule, has them
    specials = specials[(specials == 0) | ~(specials.abs() < torch.finfo(torch.float32).tiny)]
    x = torch.cat([torch.rand(4096, generator=gen) * 6 - 3, _jump_points(torch.float32),
                   specials])
    model = torch.nn.Sequential(torch.nn.Identity(), GAAF("relu", "constant", K=K))
    torch._dynamo.reset()
    y = torch.compile(model)(x)
    want = ref.forward(x.numpy(), "relu", "constant", K=K)
    np.testing.assert_array_equal(y.numpy(), want)


@pytest.mark.skipif(traced_route_supported(), reason="torch >= 2.13 traces GAAF as math")
def test_old_torch_keeps_the_opaque_op():
    x = torch.randn(8)
    assert FORWARD in _dynamo_graph_targets(lambda t: gaaf(t, "tanh"), x)


@TRACED
def test_contracting_cpp_flags_keep_the_opaque_custom_op():
    from torch._inductor import config

    x = torch.randn(8)
    assert FORWARD not in _dynamo_graph_targets(lambda t: gaaf(t, "tanh"), x)
    with config.patch({"cpp.enable_floating_point_contract_flag": "fast"}):
        assert FORWARD in _dynamo_graph_targets(lambda t: gaaf(t, "tanh"), x)


def test_cuda_fuses_only_where_inductor_turns_triton_fp_fusion_off():
    from torch._inductor import config

    with config.patch(emulate_precision_casts=False):
        assert not torch_fused._rounds_x_times_k("cuda")
    with config.patch(emulate_precision_casts=True):
        assert torch_fused._rounds_x_times_k("cuda")
    assert not torch_fused._rounds_x_times_k("mps")


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=requires_triton)])
def test_an_explicit_backend_stays_opaque_under_compile(backend):
    x = torch.randn(8)
    assert FORWARD in _dynamo_graph_targets(lambda t: gaaf(t, "tanh", backend=backend), x)
    model = torch.nn.Sequential(GAAF("relu", backend=backend))
    assert FORWARD in _dynamo_graph_targets(model, x)


def test_export_keeps_the_custom_op():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), GAAF("tanh"))
    program = torch.export.export(model, (torch.randn(2, 4),))
    assert FORWARD in {node.target for node in program.graph.nodes}


@pytest.mark.gpu
@requires_cuda
def test_cuda_compiled_model_fuses_only_with_precise_casts():
    from torch._inductor import config

    x = sample_inputs(torch.float32, n=1 << 12).cuda()

    def f(t):
        return gaaf(t * 2, "tanh")  # an exact neighbour: the reference sees the same input

    with config.patch(emulate_precision_casts=False):
        torch._dynamo.reset()
        _, codes = run_and_get_code(torch.compile(f), x)
    assert "gaaf_kernels" in "\n".join(codes)  # the Triton kernel, opaque
    with config.patch(emulate_precision_casts=True):
        torch._dynamo.reset()
        y, codes = run_and_get_code(torch.compile(f), x)
    code = "\n".join(codes)
    if traced_route_supported():  # fused into Inductor's kernel, contraction off
        assert "gaaf_kernels" not in code and "'enable_fp_fusion': True" not in code
    else:  # torch < 2.13: still the opaque op (test_old_torch_keeps_the_opaque_op)
        assert "gaaf_kernels" in code
    assert compare(y.cpu(), reference_on(ref.forward, (x * 2).cpu(),
                                         cfg_kwargs={"activation": "tanh"}))[2]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_builtin_parameters_as_floats_round_like_0d_tensors(dtype):
    """The traced path hands built-in functions their parameters as Python floats of the
    compute dtype (adapters/torch_fused.py); the composite hands them 0-d tensors."""
    from gaaf_kernels.adapters import torch_composite as composite
    from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES

    x = sample_inputs(dtype, n=512)
    specs = ([ref.get_activation(name) for name in BUILTIN_ACTIVATIONS]
             + [ref.get_shape(name) for name in BUILTIN_SHAPES])
    checked = 0
    for spec in (s for s in specs if s.params):
        values = tuple(default * 1.1 for _, default in spec.params)  # rounded in dtype
        as_tensors = [torch.tensor(v, dtype=dtype) for v in values]
        as_floats = torch_fused._rounded(values, dtype == torch.float64)
        for fn in (spec.value, spec.derivative):
            torch.testing.assert_close(fn(composite.TORCH, x, *as_floats),
                                       fn(composite.TORCH, x, *as_tensors), rtol=0, atol=0,
                                       equal_nan=True, msg=f"{spec.name}: {fn.__name__}")
        checked += 1
    assert checked >= 6


def test_double_backward_through_the_compiled_path_raises():
    w = torch.randn(8, requires_grad=True)
    x = torch.randn(8)
    torch._dynamo.reset()
    y = torch.compile(lambda t: gaaf(t, "tanh"))(w * x)
    (g,) = torch.autograd.grad((y * w).sum(), w, create_graph=True)
    assert g.requires_grad  # the other term keeps the graph alive: a silent error is possible
    with pytest.raises(RuntimeError, match="double backward"):
        g.sum().backward()


def test_modules_trace_as_one_graph_under_dynamic_true():
    """dynamic=True turns attribute floats into tensors; GAAF modules still trace whole
    (fullgraph raises on a graph break)."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), GAAF("softplus"), GAAF("hardtanh"))
    x = torch.randn(3, 4)
    torch._dynamo.reset()
    out = torch.compile(model, dynamic=True, fullgraph=True)(x)
    torch.testing.assert_close(out, model(x))
