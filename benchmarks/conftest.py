"""pytest plumbing of the benchmarks (pytest-benchmark); the helpers are in benchlib.py.

Every benchmark records in ``benchmark.extra_info`` what ran (``contender``, ``role``,
``activation``, ``device``, ``dtype``, ``size``, ``shape``, ``numel``, ``pass_name``),
the bytes that must move (``tensor_passes`` x numel x itemsize: 2 forward, 3 backward,
5 forward+backward) and ``gbps`` (those bytes over the median time). When the run
writes JSON (``--benchmark-json``), :func:`pytest_benchmark_update_json` adds
``ratio_to_floor`` (median over the median of the group's plain activation) and
``pct_of_copy`` (GB/s over that of the copy of the largest tensor copied on the same
device in the same run) to every result.

CPU cases marked ``slow`` are skipped unless ``--bench-full`` (or ``GAAF_BENCH_FULL=1``)
is given, so that the CI run ``pytest benchmarks --benchmark-disable`` stays short.
``--bench-sizes 2^24,2^28`` keeps only the cases of those sizes, and none without a size
(scripts/gpu_check.sh runs the sizes one pytest run each, so that a timeout loses only
one of them, and the model steps in a run of their own).
Cases marked ``gpu`` are skipped with "needs a CUDA device" where there is none. The
fused PyTorch path is benchmarked compiled (GAAF_COMPILE=1 during each benchmark).
``GAAF_BENCH_THREADS=N`` sets torch's CPU threads for the whole run (recorded in the
JSON, with the CPU model and the ISA torch dispatches to); by default torch's own count.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

import pytest
import torch
from modellib import cpu_info

from benchlib import TensorCache
from gaaf_kernels.runtime import options

HERE = Path(__file__).resolve().parent
FULL_ENV = "GAAF_BENCH_FULL"


def _load_report_module():
    """scripts/bench_report.py defines the derived metrics; the run and the report share it."""
    path = HERE.parent / "scripts" / "bench_report.py"
    spec = importlib.util.spec_from_file_location("gaaf_bench_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_addoption(parser):
    group = parser.getgroup("gaaf benchmarks")
    group.addoption(
        "--bench-full", action="store_true", default=False,
        help=f"also run the CPU benchmarks marked slow (or set {FULL_ENV}=1)")
    group.addoption(
        "--bench-sizes", metavar="LIST", default=None,
        help="run only the benchmarks of these sizes, comma-separated labels such as "
             "128x512,128x64x32x32,2^24,2^28,1e7 (default: all)")


def pytest_configure(config):
    threads = os.environ.get("GAAF_BENCH_THREADS")
    if threads:  # e.g. 1 on a shared machine, where a busy core stalls every parallel op
        torch.set_num_threads(int(threads))


def bench_full(config) -> bool:
    try:
        full = config.getoption("--bench-full")
    except ValueError:  # this conftest was not an initial one: option not registered
        full = False
    return bool(full) or os.environ.get(FULL_ENV, "0").lower() in ("1", "true", "yes", "on")


def _size_filter(config) -> set[str] | None:
    try:
        value = config.getoption("--bench-sizes")
    except ValueError:
        return None
    return {v.strip() for v in value.split(",") if v.strip()} if value else None


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(config, items):
    # `timeout` ends a step with SIGTERM: as an interrupt, pytest ends its run
    # cleanly and pytest-benchmark still writes the benchmarks that finished.
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    # The copy ceiling first: a run cut off keeps the figure every % of copy needs.
    items.sort(key=lambda item: 0 if item.name.startswith("test_copy") else 1)
    sizes = _size_filter(config)
    if sizes is not None:
        keep, drop = [], []
        for item in items:
            size = getattr(item, "callspec", None) and item.callspec.params.get("size")
            mine = HERE in Path(str(item.path)).resolve().parents
            # cases without a size (model steps, the epoch) are not part of a size group
            (drop if mine and size not in sizes else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    full = bench_full(config)
    has_cuda = torch.cuda.is_available()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_slow = pytest.mark.skip(
        reason=f"large CPU benchmark: run with --bench-full or {FULL_ENV}=1")
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue  # only this folder's items
        if item.get_closest_marker("gpu") is not None:
            if not has_cuda:
                item.add_marker(skip_gpu)
        elif item.get_closest_marker("slow") is not None and not full:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _compiled_composite():
    """The fused PyTorch path is the compiled one: tests/conftest.py turns compilation
    off for the whole process (GAAF_COMPILE=0) when both folders run together, so turn
    it back on here, per benchmark. GAAF_BENCH_COMPILE=0 benchmarks the eager path."""
    with options(compile=bench_compiles()):
        yield


def bench_compiles() -> bool:
    return os.environ.get("GAAF_BENCH_COMPILE", "1").strip().lower() not in (
        "0", "false", "off", "no")


@pytest.fixture(scope="module")
def tensors():
    cache = TensorCache()
    yield cache
    cache.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def environment() -> dict:
    """Versions, the CPU (model, ISA) and the device, for the report's machine line."""
    env = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "GAAF_COMPILE": "1" if bench_compiles() else "0", **cpu_info()}
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["cuda_device"] = props.name
        env["cuda_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["cuda_runtime"] = torch.version.cuda
    return env


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Ratios to the floor and % of the copy ceiling, once every benchmark has run."""
    entries = output_json.get("benchmarks", [])
    _load_report_module().add_derived(entries)
    output_json["gaaf_environment"] = environment()
    by_name = {entry.get("fullname"): entry for entry in entries}
    for bench in benchmarks:  # keep the in-memory extra_info in step with the JSON
        entry = by_name.get(bench.fullname)
        if entry is not None and entry.get("extra_info") is not bench.extra_info:
            bench.extra_info.update(entry.get("extra_info") or {})
