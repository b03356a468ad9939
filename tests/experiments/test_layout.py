"""The experiments' module layout: old import paths that moved still work for one
release, and the command lines that ``gaaf`` replaced are gone."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_recording_alias_warns_and_is_the_moved_module():
    from gaaf_kernels.experiments.analysis import recording

    sys.modules.pop("gaaf_kernels.experiments.recording", None)
    with pytest.warns(DeprecationWarning, match="analysis.recording"):
        alias = importlib.import_module("gaaf_kernels.experiments.recording")
    assert alias.make_recording_callbacks is recording.make_recording_callbacks
    assert set(alias.__all__) == set(recording.__all__)


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
