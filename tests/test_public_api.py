"""The flat public API: the everyday names at the top level, loaded lazily."""

import subprocess
import sys

import gaaf_kernels as gk
from gaaf_kernels.adapters import convert as convert_module
from gaaf_kernels.adapters import torch as torch_adapter


def test_short_imports_are_the_adapter_objects():
    from gaaf_kernels import GAAF, ConversionReport, convert, gaaf, gaaf_backward

    assert GAAF is torch_adapter.GAAF and gaaf is torch_adapter.gaaf
    assert gaaf_backward is torch_adapter.gaaf_backward
    assert convert is convert_module.convert
    assert ConversionReport is convert_module.ConversionReport
    assert {"GAAF", "gaaf", "convert"} <= set(dir(gk))


def test_old_paths_still_work():
    from gaaf_kernels.adapters.torch import GAAF, convert

    assert GAAF is gk.GAAF and convert is gk.convert


def test_unknown_attribute_is_an_attribute_error():
    try:
        gk.not_a_name  # noqa: B018
    except AttributeError as err:
        assert "not_a_name" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_import_gaaf_kernels_imports_no_framework():
    script = ("import sys, gaaf_kernels\n"
              "loaded = [m for m in ('torch', 'jax', 'cupy') if m in sys.modules]\n"
              "assert not loaded, loaded\n"
              "gaaf_kernels.GAAF\n"
              "assert 'torch' in sys.modules\n")
    subprocess.run([sys.executable, "-c", script], check=True)
