"""``gaaf verify`` names what is at fault: a registered function whose NumPy derivative
(or phi'') disagrees with a finite difference of its value fails the rows that compare
against it, as the reference's fault; a wrong Triton twin fails its own rows only. Each
row prints the error that decided its verdict, absolute where the absolute tolerance
applied."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gaaf_kernels import reference
from gaaf_kernels.verify import (
    Fault,
    Row,
    blame_reference,
    check_registered_derivatives,
    decisive_error,
)

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("got,want,dtype,shown", [
    # |want| tiny: the absolute tolerance decides; the relative error (1e+286) is no measure
    ([1e-300, 2e-14], [1e-300, 1e-300], torch.float64, "2.0e-14 abs"),
    # |want| large: the relative tolerance decides
    ([1.0 + 3e-14, 1e6 * (1 + 2e-13)], [1.0, 1e6], torch.float64, "2.0e-13 rel"),
    ([0.5, 3e-6], [0.5, 0.0], torch.float32, "3.0e-06 abs"),
    ([float("inf"), 1.0], [1.0, 1.0], torch.float64, "inf/nan"),
])
def test_the_printed_error_is_the_one_the_tolerance_judged(got, want, dtype, shown):
    assert decisive_error(torch.tensor(got, dtype=dtype), torch.tensor(want, dtype=dtype)) \
        == shown


def _row(activation: str, shape: str, band: bool) -> Row:
    return Row("triton", activation, shape, "float64", 0.0, 0.0, 0.0, 0.0, "", True, band=band)


def test_blame_reference_fails_exactly_the_rows_that_use_the_wrong_function():
    rows = [_row("act", "gaussian", False), _row("act", "gaussian", True),
            _row("other", "myshape", False), _row("other", "none", False)]
    blame_reference(rows, [Fault("activation", "act", "numpy_second_derivative", "m1"),
                           Fault("shape", "myshape", "numpy_derivative", "m2"),
                           Fault("shape", "none", "numpy_second_derivative", "m3")])
    assert [r.ok for r in rows] == [True, False, False, True]  # s'' is used by no row
    assert rows[1].error == ("reference at fault: activation 'act' numpy_second_derivative")
    assert rows[2].error == "reference at fault: shape 'myshape' numpy_derivative"


def gaaf_verify(data: str, activation: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GAAF_COMPILE="0", TRITON_INTERPRET="1")
    return subprocess.run(
        [sys.executable, "-m", "gaaf_kernels.cli", "verify", "--import",
         str(TESTS / "data" / data), "--activation", activation, "--dtypes", "float64",
         "--no-compiled", *args],
        capture_output=True, text=True, env=env, cwd=TESTS, timeout=600)


def _results(stdout: str, activation: str) -> dict[tuple[str, str], str]:
    """(backend, band) -> the result column of each row of the Triton and torch paths
    (the errors are two words each, "2.0e-14 abs"); the JAX rows, where JAX is installed,
    are left to tests/test_jax.py."""
    rows = [line.split(None, 10) for line in stdout.splitlines()
            if line.split()[1:2] == [activation] and line.split()[0] in ("triton", "torch")]
    return {(r[0], r[3]): r[10].strip() for r in rows}


def test_a_wrong_triton_derivative_fails_the_triton_rows_and_not_the_reference():
    done = gaaf_verify("wrong_triton_derivative.py", "wrong_triton_sine", "--shape", "none",
                       "--band", "off")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NumPy derivatives agree with finite differences: wrong_triton_sine" in done.stdout
    assert _results(done.stdout, "wrong_triton_sine") == {("triton", "no"): "FAIL",
                                                          ("torch", "no"): "ok"}
    assert "at fault" not in done.stdout


def test_a_wrong_numpy_second_derivative_is_named_and_fails_only_the_band_rows():
    done = gaaf_verify("wrong_second_derivative.py", "wrong_second_sine", "--shape",
                       "gaussian", "--band", "both")
    assert done.returncode == 1, done.stdout + done.stderr
    fault = "FAIL reference at fault: activation 'wrong_second_sine' numpy_second_derivative"
    assert _results(done.stdout, "wrong_second_sine") == {
        ("triton", "no"): "ok", ("torch", "no"): "ok",
        ("triton", "yes"): fault, ("torch", "yes"): fault}
    assert ("FAIL activation 'wrong_second_sine': numpy_second_derivative disagrees with a "
            "finite difference of numpy_derivative at x=-3.7") in done.stdout
    band_rows = [r for r in done.stdout.splitlines() if r.split()[1:2] == ["wrong_second_sine"]
                 and r.split()[3] == "yes"]
    assert band_rows and all(r.endswith(fault) for r in band_rows)  # JAX's too


def _spec(value, derivative, second=None) -> SimpleNamespace:
    """What check_registered_derivatives reads of a registration (no registry touched)."""
    return SimpleNamespace(params=(("a", 2.0),), array_generic=False, value=value,
                           derivative=derivative, second_derivative=second)


def test_the_finite_difference_check_names_the_wrong_function_at_the_given_parameters(
        monkeypatch):
    specs = {
        "right": _spec(lambda x, a: a * np.sin(x), lambda x, a: a * np.cos(x),
                       lambda x, a: -a * np.sin(x)),
        "wrong_first": _spec(lambda x, a: a * np.sin(x), lambda x, a: np.cos(x)),
        "wrong_second": _spec(lambda x, a: a * np.sin(x), lambda x, a: a * np.cos(x),
                              lambda x, a: a * np.sin(x)),
        # defined for x > 0 only: NaN below, where no difference can judge it
        "half_line": _spec(lambda x, a: np.sqrt(x), lambda x, a: 0.5 / np.sqrt(x)),
    }
    monkeypatch.setattr(reference, "get_activation", specs.__getitem__)
    faults = check_registered_derivatives([("activation", n) for n in specs])
    assert [(f.name, f.function) for f in faults] == [
        ("wrong_first", "numpy_derivative"), ("wrong_second", "numpy_second_derivative")]
    assert str(faults[0]).startswith("activation 'wrong_first': numpy_derivative disagrees "
                                     "with a finite difference of numpy_value at x=-3.7")
