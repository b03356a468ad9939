"""The ``gaaf`` command line, run as users run it."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gaaf_kernels import shapes as builtin_shapes

ROOT = Path(__file__).resolve().parent.parent
# Not the repository root: there, the uninstalled gaaf_kernels/ folder would shadow an
# installed (non-editable) package, whose mapped subpackages it lacks.
CWD = ROOT / "tests"


def gaaf(*args: str, interpret: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, GAAF_COMPILE="0")
    if not interpret:
        env.pop("TRITON_INTERPRET", None)
    return subprocess.run([sys.executable, "-m", "gaaf_kernels.cli", *args],
                          capture_output=True, text=True, env=env, cwd=CWD, timeout=600)


def test_verify_prints_a_table_and_exits_0():
    done = gaaf("verify", "--activation", "tanh", "--dtypes", "float32,bfloat16",
                "--no-compiled")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["backend", "activation", "shape", "band", "dtype"]
    rows = [line for line in lines if line.startswith(("triton ", "torch ", "jax-"))]
    backends = 3 if importlib.util.find_spec("jax") else 2  # the JAX path when installed
    n_shapes = len(builtin_shapes())
    assert n_shapes >= 7  # gaussian ... nelu, constant, none
    assert len(rows) == backends * n_shapes * 2 * 2  # backends x shapes x dtypes x band
    assert sorted({row.split()[3] for row in rows}) == ["no", "yes"]
    assert all(row.rstrip().endswith("ok") for row in rows)
    assert f"{backends * n_shapes * 4} passed, 0 failed" in done.stdout
    if backends == 3:
        assert "JAX " in done.stdout and "checked the jax-xla path on cpu" in done.stdout
    else:
        assert "JAX: not installed, its path was not checked" in done.stdout


def test_verify_band_on_names_the_activations_without_a_band():
    done = gaaf("verify", "--activation", "relu_squared", "--shape", "none",
                "--dtypes", "float64", "--band", "on")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no saturation band (band=True is refused) for: relu_squared" in done.stdout
    assert "0 passed, 0 failed" in done.stdout


def test_verify_checks_the_compiled_cpu_path_and_prints_the_deciding_error():
    done = gaaf("verify", "--activation", "elu", "--dtypes", "float32", "--band", "off")
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = [r for r in done.stdout.splitlines() if r.startswith("torch-compiled ")]
    assert len(compiled) == 1 and "shifted_sigmoid" in compiled[0]
    assert compiled[0].rstrip().endswith("ok")
    rows = [r for r in done.stdout.splitlines() if r.startswith(("triton ", "torch"))]
    # every error is printed as the tolerance judged it: "1.2e-07 abs" or "3.0e-07 rel"
    assert all(len(r.split()) >= 9 and r.split()[6] in ("abs", "rel") for r in rows), rows
    assert "torch-compiled; Triton on CPU" in done.stdout.split("backends:")[1]


def test_verify_shape_default_means_each_activations_own_shape():
    from gaaf_kernels import reference, register_shape, verify

    rows = verify.run(["tanh", "relu", "gelu"], [verify.DEFAULT_SHAPE, "none"], ["float64"],
                      ["torch"])
    want = [(a, s) for a in ("tanh", "relu", "gelu")
            for s in dict.fromkeys([reference.resolve(a).shape.name, "none"])]
    assert [(r.activation, r.shape) for r in rows] == want
    assert all(r.ok for r in rows)
    with pytest.raises(ValueError, match="'default' is reserved"):
        register_shape("default", triton_value=verify, triton_derivative=verify,
                       numpy_value=abs, numpy_derivative=abs)


def test_verify_import_names_a_wrong_numpy_derivative():
    done = gaaf("verify", "--activation", "wrong_numpy_cube", "--dtypes", "float64",
                "--shape", "none", "--no-compiled", "--band", "off",
                "--import", str(CWD / "data" / "wrong_numpy_derivative.py"))
    assert done.returncode == 1
    assert ("FAIL activation 'wrong_numpy_cube': numpy_derivative disagrees with a finite "
            "difference of numpy_value") in done.stdout
    # the Triton twin is right: its row fails as the reference's fault, not as Triton's
    triton = [r for r in done.stdout.splitlines() if r.startswith("triton ")]
    assert len(triton) == 1 and triton[0].endswith(
        "FAIL reference at fault: activation 'wrong_numpy_cube' numpy_derivative")


def test_verify_switches_to_the_interpreter_without_a_gpu():
    done = gaaf("verify", "--activation", "relu", "--shape", "none", "--dtypes", "float64",
                interpret=False)
    assert done.returncode == 0, done.stderr
    assert "triton" in done.stdout.split("backends:")[1]


def test_verify_fails_on_a_broken_registration():
    done = gaaf("verify", "--activation", "broken_square", "--dtypes", "float32",
                "--shape", "none", "--import", str(CWD / "data" / "broken_activation.py"))
    assert done.returncode == 1
    triton_row = next(r for r in done.stdout.splitlines() if r.startswith("triton"))
    torch_row = next(r for r in done.stdout.splitlines() if r.startswith("torch"))
    assert "FAIL" in triton_row
    assert torch_row.rstrip().endswith("ok")  # NumPy-only functions go through the reference
    jax_rows = [r for r in done.stdout.splitlines() if r.startswith("jax-")]
    assert all(r.rstrip().endswith("ok") for r in jax_rows)  # so do they in JAX


def test_verify_compile_for_one_activation():
    done = gaaf("verify", "--compile", "sm_90", "--activation", "relu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registers" in done.stdout and "spill bytes" in done.stdout
    assert "passed, 0 failed" in done.stdout


@pytest.mark.parametrize("args,message", [
    (("verify", "--activation", "swish"), "unknown activation 'swish'"),
    (("verify", "--dtypes", "float8"), "unknown dtype(s) float8"),
    (("verify", "--import", "no/such/file.py"), "no such file"),
])
def test_bad_arguments_exit_2(args, message):
    done = gaaf(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_bad_compile_target():
    done = gaaf("verify", "--compile", "hopper")
    assert done.returncode == 2 and "sm_80,sm_90" in done.stderr
