"""The experiments' module layout: the packages keep their public names, and the command
lines that ``gaaf`` replaced are gone."""

from __future__ import annotations

import importlib
import subprocess
import sys


def test_packages_keep_their_public_names():
    from gaaf_kernels.experiments import analysis, data

    for name in data.__all__:
        assert hasattr(data, name), name
    for name in analysis.__all__:
        assert hasattr(analysis, name), name


def test_data_has_no_command_line_of_its_own():
    """``gaaf data fetch-mnist`` is the command; the package is not runnable."""
    proc = subprocess.run([sys.executable, "-m", "gaaf_kernels.experiments.data",
                           "fetch-mnist"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "cannot be directly executed" in proc.stderr
    assert not hasattr(importlib.import_module("gaaf_kernels.experiments.analysis.analyze"),
                       "main")
