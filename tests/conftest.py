"""Shared test set-up.

The suite runs with TRITON_INTERPRET=1 (the Makefile sets it before Python starts), so
the Triton kernels execute on CPU tensors. The PyTorch composite runs eager unless a
test turns compilation on: compiling hundreds of variants would take an hour on 2 cores.
Markers and helpers live in support.py; the fixtures that several files use, here.
"""

import os

import pytest

os.environ.setdefault("GAAF_COMPILE", "0")


@pytest.fixture
def own_store(monkeypatch):
    """Registrations of the test go into a copy of the registry's store, so later tests
    see the catalogue alone."""
    from gaaf_kernels.reference import registry as reference_registry

    monkeypatch.setattr(reference_registry, "_RECORDS", dict(reference_registry._RECORDS))
