"""Every kernel specialization compiles for sm_80 and sm_90, without a GPU.

Compiling needs the real ``@triton.jit`` functions, so the sweep runs in a child
process without ``TRITON_INTERPRET`` (the suite itself runs under the interpreter).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import gaaf_kernels as gk
from gaaf_kernels.kernels import compile_check as cc
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES


def compile_in_child(code: str, tmp_path) -> list[cc.CompileResult]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = tmp_path / "results.json"
    script = textwrap.dedent("""
        import dataclasses, json, sys
        from gaaf_kernels.kernels import compile_check as cc
        results = {code}
        with open(sys.argv[1], "w") as f:
            json.dump([dataclasses.asdict(r) for r in results], f)
    """).replace("{code}", code)
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True,
                          text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    return [cc.CompileResult(**row) for row in json.loads(out.read_text())]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return compile_in_child(
        "cc.sweep([cc.parse_target(t) for t in ('sm_80', 'sm_90')], cc.default_pairs())",
        tmp_path_factory.mktemp("sweep"))


def test_sweep_covers_every_function_dtype_and_offset_width(results):
    seen = {(r.activation, r.shape) for r in results}
    assert {a for a, _ in seen} == set(BUILTIN_ACTIVATIONS)
    assert {s for _, s in seen} == set(BUILTIN_SHAPES)
    assert {r.dtype for r in results} == {"float16", "bfloat16", "float32", "float64"}
    assert {r.target for r in results} == {"sm_80", "sm_90"}
    assert {r.kernel for r in results} == {"forward", "backward"}
    assert any(r.int64_offsets for r in results)


def test_every_specialization_compiles_without_spills_and_with_wide_loads(results):
    bad = [r for r in results if not r.ok]
    assert not bad, bad[:5]
    assert all(r.registers > 0 for r in results)
    assert all(r.wide_loads for r in results if r.dtype != "float64")


def test_a_compile_error_is_reported_not_raised(tmp_path):
    good, broken = compile_in_child(
        "[cc.compile_one(cc.parse_target(t), 'forward', 'tanh', 'gaussian', 'float32')"
        " for t in ('sm_80', 'sm_1')]", tmp_path)
    assert good.ok
    assert not broken.ok and broken.error


@pytest.mark.parametrize("text,arch", [("sm_80", 80), ("90", 90), ("sm_90a", 90)])
def test_parse_target(text, arch):
    assert cc.parse_target(text).arch == arch


def test_parse_target_rejects_garbage():
    with pytest.raises(ValueError, match="sm_80,sm_90"):
        cc.parse_target("hopper")


def test_pairs_for_one_activation():
    assert cc.default_pairs("relu") == [("relu", s) for s in gk.shapes()]
    with pytest.raises(ValueError, match="registered activations"):
        cc.default_pairs("nope")
