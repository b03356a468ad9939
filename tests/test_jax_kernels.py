"""The Triton kernels behind the JAX adapter on CUDA (``adapters/jax_kernels.py``).

On CPU: the wrapper kernels run under the Triton interpreter on torch tensors and
compile for sm_90 (no GPU needed). On a CUDA machine with jax-triton (carried as a wheel;
``scripts/gpu_check.sh`` runs the ``gpu`` tests): the JAX path itself, against the
reference. Tolerances are ``gaaf verify``'s (``verify.TOLERANCES``).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from gaaf_kernels import reference as ref
from gaaf_kernels.verify import compare, reference_on, sample_inputs
from support import requires_triton

jax = pytest.importorskip("jax", reason="the JAX adapter needs jax (pip install jax)")

from gaaf_kernels.adapters import jax as gj  # noqa: E402
from gaaf_kernels.adapters import jax_kernels  # noqa: E402


@requires_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("activation,band", [("tanh", False), ("gelu", True), ("elu", True)])
def test_wrappers_match_the_reference(activation, band, dtype):
    """Scalars read from the array, outputs last: the same results as the kernels."""
    x = sample_inputs(dtype, n=3000)  # not a multiple of the block
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    cfg = ref.resolve(activation, K=5000.0, band=band)
    kwargs = {"activation": activation, "K": 5000.0, "band": band}
    with np.errstate(all="ignore"):
        want_y = reference_on(ref.forward, x, cfg_kwargs=kwargs)
        want_dx = reference_on(ref.backward, x, dy, cfg_kwargs=kwargs)
    got_y = jax_kernels.launch_on_torch("forward", cfg, x)
    got_dx = jax_kernels.launch_on_torch("backward", cfg, x, dy)
    assert compare(got_y, want_y)[2], compare(got_y, want_y)
    assert compare(got_dx, want_dx)[2], compare(got_dx, want_dx)


def test_scalars_are_rounded_once_in_the_compute_dtype():
    cfg = ref.resolve("elu", K=3000.0, activation_params={"alpha": 0.3}, band=True)
    s32, s64 = jax_kernels.scalars(cfg, "bfloat16"), jax_kernels.scalars(cfg, "float64")
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    assert s32[1] == np.float32(1.0) / np.float32(3000.0) and s64[1] == 1.0 / 3000.0
    assert s32[2] == np.float32(0.3) and s64[8] == cfg.inv_bound


COMPILE = """
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gaaf_kernels import reference as ref
from gaaf_kernels.adapters import jax_kernels

cfg = ref.resolve("tanh", band=True)
for kernel, pointers, out in (("forward", ["x_ptr", "scalars_ptr"], "y_ptr"),
                              ("backward", ["x_ptr", "dy_ptr", "scalars_ptr"], "dx_ptr")):
    wrapper, functions, options, _ = jax_kernels.launch_plan(cfg, kernel, "float32", 1 << 20)
    num_warps, fp_fusion = options.pop("num_warps"), options.pop("enable_fp_fusion")
    constexprs = {**functions, **options}
    signature = {name: "*fp32" for name in pointers}
    signature.update({"n_elements": "i32", out: "*fp32"})
    signature.update({name: "constexpr" for name in constexprs})
    compiled = triton.compile(ASTSource(fn=wrapper, signature=signature, constexprs=constexprs),
                              target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": num_warps, "enable_fp_fusion": fp_fusion})
    ptx = compiled.asm["ptx"]
    assert "ld.global" in ptx and ".entry" in ptx, kernel
    print(kernel, "ok", num_warps, options["BLOCK_SIZE"])
"""


def test_wrappers_compile_for_sm_90():
    """The interpreter accepts code the GPU compiler rejects: compile both wrappers for
    Hopper (PTX, no GPU needed) in a process without TRITON_INTERPRET."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", COMPILE], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["forward", "ok", "4", "1024", "backward", "ok", "4", "1024"]


# --- jax-triton's import side effect ----------------------------------------------------

FAKE_JAX_TRITON = {
    # what jax-triton 0.3.x does on import, and its keyword for the output's shape
    "0.3": 'import os\nos.environ["TRITON_CACHE_DIR"] = ""\n'
           "def triton_call(*args, kernel, out_shape, grid, enable_fp_fusion=True, **kw):"
           " pass\n",
    # 0.4.x deletes the variable and renamed the keyword
    "0.4": 'import os\nos.environ.pop("TRITON_CACHE_DIR", None)\n'
           "def triton_call(*args, kernel, grid, out_type=None, backend_options=None, **kw):"
           " pass\n",
}


@pytest.mark.parametrize("version", sorted(FAKE_JAX_TRITON))
@pytest.mark.parametrize("before", [None, "/tmp/gaaf-triton-cache"])
def test_importing_jax_triton_leaves_the_triton_cache_alone(tmp_path, monkeypatch, version,
                                                             before):
    """An empty TRITON_CACHE_DIR broke every Triton compile of the process on a GPU run
    (the PyTorch kernels and Inductor alike), after jax-triton was merely imported."""
    (tmp_path / "jax_triton.py").write_text(FAKE_JAX_TRITON[version])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "jax_triton", raising=False)
    if before is None:
        monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("TRITON_CACHE_DIR", before)
    jax_kernels._call_keywords.cache_clear()
    try:
        assert gj.triton_available()
        assert os.environ.get("TRITON_CACHE_DIR") == before
        assert jax_kernels._call_keywords() == {
            "0.3": ("out_shape", {"enable_fp_fusion": False}),
            "0.4": ("out_type", {"backend_options": {"enable_fp_fusion": False}})}[version]
    finally:
        jax_kernels._call_keywords.cache_clear()
        sys.modules.pop("jax_triton", None)


def test_a_jax_triton_without_a_way_to_turn_contraction_off_is_refused(tmp_path,
                                                                        monkeypatch):
    (tmp_path / "jax_triton.py").write_text(
        "def triton_call(*args, kernel, out_type, grid, **kw): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "jax_triton", raising=False)
    jax_kernels._call_keywords.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="cannot keep x\\*K uncontracted"):
            jax_kernels._call_keywords()
    finally:
        jax_kernels._call_keywords.cache_clear()
        sys.modules.pop("jax_triton", None)


# --- on a CUDA device, through jax-triton -----------------------------------------------


def _cuda_jax() -> bool:
    return gj.triton_available() and gj._cuda_present()


requires_jax_triton = pytest.mark.skipif(
    not _cuda_jax(), reason="needs a CUDA device visible to JAX and jax-triton installed "
                            "(scripts/gpu_check.sh with the jax-triton wheel in GAAF_WHEELS)")


@pytest.mark.gpu
@requires_jax_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("activation,band", [("tanh", False), ("relu", False),
                                             ("gelu", True)])
def test_jax_triton_path_matches_the_reference(activation, band, dtype):
    from gaaf_kernels import verify_jax

    assert gj.path(jax.numpy.zeros(2)) == "triton"
    row = verify_jax.check_case(activation, None, dtype, band)
    assert row.backend == "jax-triton" and row.ok, row


@pytest.mark.gpu
@requires_jax_triton
def test_jax_triton_path_differentiates_and_jits():
    import jax.numpy as jnp

    x = np.linspace(-4, 4, 4099).astype(np.float32)
    xj = jnp.asarray(x)
    y = jax.jit(lambda v: gj.gaaf(v, "silu", band=True))(xj)
    dx = jax.jit(jax.grad(lambda v: gj.gaaf(v, "silu", band=True).sum()))(xj)
    np.testing.assert_allclose(np.asarray(y), ref.forward(x, "silu", band=True), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(dx), ref.backward(x, np.ones_like(x), "silu",
                                                            band=True), rtol=1e-5, atol=1e-5)
    hess = jax.vmap(jax.hessian(lambda v: gj.gaaf(v, "tanh")))(xj[:64])
    xla = jax.vmap(jax.hessian(lambda v: gj.gaaf(v, "tanh", backend="xla")))(xj[:64])
    np.testing.assert_allclose(np.asarray(hess), np.asarray(xla), rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not gj._cuda_present(), reason="needs a CUDA device visible to JAX")
def test_xla_path_on_cuda_matches_the_reference():
    """backend="xla" on a GPU (what runs there without jax-triton)."""
    from gaaf_kernels import verify_jax

    for activation in ("tanh", "gelu"):
        x = sample_inputs(torch.float32, n=1 << 12)
        dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
        y, dx = verify_jax.run_jax(x, dy, {"activation": activation, "backend": "xla"})
        flushed = verify_jax.flush_subnormals(x)
        kwargs = {"activation": activation}
        for what, got, want in (
                ("forward", y, reference_on(ref.forward, flushed, cfg_kwargs=kwargs)),
                ("backward", dx, reference_on(ref.backward, flushed, dy, cfg_kwargs=kwargs))):
            err = compare(got, want)
            g, w = got.double().numpy().reshape(-1), want.double().numpy().reshape(-1)
            diff = np.where(np.isnan(g) & np.isnan(w), 0.0, np.abs(g - w))
            worst = int(np.argmax(np.where(np.isnan(diff), np.inf, diff)))  # NaN first
            assert err[2], (f"{activation} {what}: (abs, rel, ok) = {err}; worst at "
                            f"x = {x.reshape(-1)[worst].item()!r}: got "
                            f"{got.reshape(-1)[worst].item()!r}, want "
                            f"{want.reshape(-1)[worst].item()!r}")
