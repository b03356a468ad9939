"""``GAAFConfig``: one validated value, accepted as ``config=`` by every entry point; and
the process options (``set_options``)."""

import copy
import importlib.util
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import gaaf_kernels as gk
from gaaf_kernels import GAAFConfig
from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import array_api, dlpack
from gaaf_kernels.adapters import cupy as cupy_adapter
from support import requires_triton

CONFIGS = [
    GAAFConfig(),
    GAAFConfig("relu", K=100.0, band=True),
    GAAFConfig("tanh", shape="laplace", shape_params={"c": 2.0}),
    GAAFConfig("leaky_relu", activation_params={"negative_slope": 0.2},
               shape_params={"shift": 0.5}),
    GAAFConfig("elu", "gaussian", K=3e3, activation_params={"alpha": 0.5}),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=repr)
def test_round_trips_through_repr_pickle_and_copy(cfg):
    assert eval(repr(cfg), {"GAAFConfig": GAAFConfig}) == cfg
    for back in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert back == cfg and hash(back) == hash(cfg)
        assert back.activation is cfg.activation  # the registry's own records
    assert repr(cfg).startswith(f"GAAFConfig({cfg.activation.name!r}")


def test_defaults_are_filled_in_and_equal_spellings_are_equal():
    cfg = GAAFConfig("relu")
    assert cfg.shape.name == "shifted_sigmoid" and len(cfg.shape_params) == 2
    assert cfg == GAAFConfig("relu", "shifted_sigmoid", K=1e4)
    assert cfg == GAAFConfig("relu", shape_params=dict(zip(cfg.shape.param_names,
                                                           cfg.shape_params)))
    assert cfg != GAAFConfig("relu", K=10.0) and repr(cfg) == "GAAFConfig('relu')"
    assert {cfg: 1}[GAAFConfig("relu")] == 1


def test_is_frozen_and_validated_when_made():
    cfg = GAAFConfig()
    with pytest.raises(AttributeError):
        cfg.K = 3.0
    with pytest.raises(ValueError, match="registered activations: tanh"):
        GAAFConfig("tanx")
    with pytest.raises(ValueError, match="K must be finite"):
        GAAFConfig(K=-1.0)
    with pytest.raises(ValueError, match="rounds to 0 in float32"):
        GAAFConfig("tanh", "gaussian", shape_params={"c": 1e-300})
    with pytest.raises(TypeError, match="band must be True or False"):
        GAAFConfig(band=1)


def test_config_and_settings_together_or_unknown_settings_are_type_errors():
    x = np.linspace(-2, 2, 5).astype(np.float32)
    with pytest.raises(TypeError, match="not both .*K"):
        ref.forward(x, config=GAAFConfig(), K=3.0)
    with pytest.raises(TypeError, match="not both .*activation"):
        gk.gaaf(torch.from_numpy(x), "relu", config=GAAFConfig())
    with pytest.raises(TypeError, match="unknown setting.*'k'.*K, activation_params"):
        gk.forward(x, k=3.0)
    with pytest.raises(TypeError, match="config must be a GAAFConfig, got dict"):
        gk.GAAF(config={"activation": "relu"})


CFG = GAAFConfig("silu", K=300.0, band=True)
X = np.linspace(-5, 5, 41).astype(np.float32)
DY = np.cos(X).astype(np.float32)


def _settings(cfg):
    kwargs = cfg.settings()
    return kwargs.pop("activation"), kwargs.pop("shape"), kwargs


def _both_ways(call):
    """``call(config=CFG)`` and the same call with CFG's settings spelled out."""
    activation, shape, kwargs = _settings(CFG)
    return call(config=CFG), call(activation=activation, shape=shape, **kwargs)


def _same(a, b):
    a, b = (np.asarray(v.detach() if isinstance(v, torch.Tensor) else v) for v in (a, b))
    np.testing.assert_array_equal(a, b)


def test_every_entry_point_takes_config():
    want_y = ref.forward(X, config=CFG)
    want_dx = ref.backward(X, DY, config=CFG)
    _same(*_both_ways(lambda **k: ref.forward(X, **k)))
    _same(*_both_ways(lambda **k: ref.backward(X, DY, **k)))
    plain = GAAFConfig("silu", K=300.0)  # the second derivative refuses band=True
    _same(ref.second_derivative(X, DY, config=plain), ref.second_derivative(X, DY, "silu",
                                                                           K=300.0))
    xt, dyt = torch.from_numpy(X), torch.from_numpy(DY)
    for y in _both_ways(lambda **k: gk.gaaf(xt, **k)) + _both_ways(
            lambda **k: gk.GAAF(**k)(xt)) + _both_ways(lambda **k: gk.forward(X, **k)):
        np.testing.assert_allclose(np.asarray(y.detach() if isinstance(y, torch.Tensor)
                                              else y), want_y, rtol=1e-6, atol=1e-7)
    for dx in _both_ways(lambda **k: gk.gaaf_backward(xt, dyt, **k)) + _both_ways(
            lambda **k: gk.backward(X, DY, **k)):
        np.testing.assert_allclose(np.asarray(dx), want_dx, rtol=1e-6, atol=1e-7)
    assert gk.GAAF(config=CFG).config is CFG
    np.testing.assert_allclose(
        dlpack.run("forward", X, None, library="NumPy", from_dlpack=np.from_dlpack,
                   make_contiguous=None, cfg=CFG), want_y, rtol=1e-6, atol=1e-7)


def test_convert_takes_the_shared_settings_from_a_config():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.SiLU(), torch.nn.Tanh())
    report = gk.convert_report(model, config=CFG)
    assert report.model is model and len(report.converted) == 2
    silu, tanh = model[1].config, model[2].config
    assert silu == CFG  # silu's own activation, CFG's shape, K and band
    assert tanh.activation.name == "tanh" and (tanh.shape, tanh.K, tanh.band) == (
        CFG.shape, CFG.K, CFG.band)
    with pytest.raises(TypeError, match="not both"):
        gk.convert(torch.nn.Sequential(torch.nn.Tanh()), config=CFG, K=3.0)
    with pytest.raises(TypeError, match="convert_report"):
        gk.convert(torch.nn.Sequential(torch.nn.Tanh()), report=True)


@pytest.mark.skipif(importlib.util.find_spec("array_api_strict") is None,
                    reason="needs array-api-strict")
def test_array_api_takes_config():
    import array_api_strict as xp

    x = xp.asarray(X)
    y = array_api.forward(x, config=CFG)
    np.testing.assert_allclose(np.asarray(y), ref.forward(X, config=CFG), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_jax_takes_config():
    import jax.numpy as jnp

    from gaaf_kernels.jax import GAAF, gaaf

    y = gaaf(jnp.asarray(X), config=CFG, backend="xla")
    np.testing.assert_allclose(np.asarray(y), ref.forward(X, config=CFG), rtol=1e-5,
                               atol=1e-6)
    assert GAAF(config=CFG) == GAAF("silu", K=300.0, band=True)
    assert GAAF(config=CFG).config == CFG


def test_cupy_adapter_takes_config_and_checks_it_first():
    # CuPy is absent here: the configuration is checked before CuPy is needed
    with pytest.raises(TypeError, match="not both"):
        cupy_adapter.forward(X, config=CFG, K=3.0)


@requires_triton
def test_custom_ops_carry_the_config_across_the_compile_boundary():
    """An explicit backend stays an opaque custom op under torch.compile: the config is
    flattened into its arguments and rebuilt (validated) on the other side."""
    xt = torch.from_numpy(X).requires_grad_(True)
    torch._dynamo.reset()
    y = torch.compile(lambda t: gk.gaaf(t, config=CFG, backend="triton"), fullgraph=True)(xt)
    (dx,) = torch.autograd.grad(y, xt, torch.from_numpy(DY))
    np.testing.assert_allclose(y.detach().numpy(), ref.forward(X, config=CFG), rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(dx.numpy(), ref.backward(X, DY, config=CFG), rtol=1e-6,
                               atol=1e-7)
    assert GAAFConfig.from_op_args(*CFG.op_args()) == CFG


def test_options_switch_compilation_and_restore_it(monkeypatch):
    from gaaf_kernels.adapters import torch_composite

    start = gk.get_options()["compile"]
    with gk.options(compile=not start):
        assert torch_composite.compile_enabled() is (not start)
        with pytest.raises(TypeError, match="compile must be True or False"):
            gk.set_options(compile="yes")
    assert gk.get_options()["compile"] is start
    with pytest.raises(RuntimeError), gk.options(compile=not start):
        raise RuntimeError
    assert gk.get_options()["compile"] is start


def test_gaaf_compile_is_read_once_at_import():
    script = ("import os, gaaf_kernels as gk\n"
              "assert gk.get_options() == {'compile': False}\n"
              "os.environ['GAAF_COMPILE'] = '1'\n"
              "assert gk.get_options() == {'compile': False}\n")
    env = {"GAAF_COMPILE": "off", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)


def test_flat_imports_and_jax_module():
    from gaaf_kernels import (  # noqa: F401
        GAAF,
        GAAFConfig,
        activations,
        backward,
        convert,
        convert_report,
        forward,
        gaaf,
        gaaf_backward,
        register_activation,
        register_shape,
        shapes,
    )

    script = ("import sys, gaaf_kernels, gaaf_kernels.jax\n"
              "assert 'torch' not in sys.modules, 'torch'\n")
    if importlib.util.find_spec("jax") is not None:
        subprocess.run([sys.executable, "-c", script], check=True)


def test_one_dtype_policy_behind_every_path():
    import ml_dtypes

    from gaaf_kernels.adapters import torch_composite
    from gaaf_kernels.kernels import compile_check, launch
    from gaaf_kernels.reference.dtypes import POLICIES, policy
    from gaaf_kernels.verify import TOLERANCES

    assert list(POLICIES) == ["float16", "bfloat16", "float32", "float64"]
    for name, p in POLICIES.items():
        assert policy(getattr(torch, name)) is p and policy(name) is p
        assert np.dtype(ref.compute_dtype(name)).name == p.compute
        assert torch_composite.compute_dtype(getattr(torch, name)) == getattr(torch, p.compute)
        assert TOLERANCES[getattr(torch, name)] == (p.atol, p.rtol)
        assert compile_check.POINTER_TYPES[name] == f"*{p.triton_storage}"
    assert policy(np.dtype(ml_dtypes.bfloat16)).name == "bfloat16"
    for bad in (torch.int32, np.dtype("complex64"), "float8"):
        with pytest.raises(TypeError, match="GAAF supports floating dtypes float16, "
                                            "bfloat16, float32, float64"):
            launch.check_dtype(bad) if isinstance(bad, torch.dtype) else policy(bad)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_the_jax_path_follows_the_dtype_policy():
    import jax.numpy as jnp

    from gaaf_kernels.adapters import jax_xla
    from gaaf_kernels.reference.dtypes import POLICIES

    for name, p in POLICIES.items():
        assert jax_xla.compute_dtype(getattr(jnp, name)).name == p.compute
    with pytest.raises(TypeError, match="GAAF supports floating dtypes"):
        jax_xla.compute_dtype(jnp.int32)
