"""scripts/bench_report.py and scripts/bench_models.py on synthetic pytest-benchmark JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"gaaf_test_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _step(model, contender, mode, threads, median):
    return {"group": f"model cpu {model} threads={threads}", "fullname": f"{model}-{contender}-"
            f"{mode}-{threads}", "stats": {"median": median},
            "extra_info": {"suite": "models", "model": model, "contender": contender,
                           "mode": mode, "device": "cpu", "threads": threads}}


def _entries():
    return [_step("mlp", "plain", "eager", 2, 0.010), _step("mlp", "gaaf", "eager", 2, 0.011),
            _step("mlp", "naive", "eager", 2, 0.013), _step("mlp", "plain", "compiled", 2, 0.008),
            _step("mlp", "gaaf", "compiled", 2, 0.0088),
            _step("mlp", "naive", "compiled", 2, 0.0080),
            _step("mlp", "plain", "eager", 1, 0.020)]


def test_model_table_has_one_row_per_thread_count_and_the_target_ratios():
    table = _load("bench_models").markdown(_entries())
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, threads=2, threads=1
    assert "GAAF / plain, eager" in lines[0] and "GAAF / naive, compiled" in lines[0]
    two = next(line for line in lines if "| 2 |" in line)
    assert "1.10x" in two  # 11 / 10 eager, and 8.8 / 8.0 compiled against plain
    assert "1.10x | 1.10x" in two  # GAAF / plain compiled, GAAF / naive compiled
    one = next(line for line in lines if "| 1 |" in line)
    assert "20.00 ms" in one and one.rstrip().endswith("| - | - | - |")


def test_report_renders_the_models_suite(tmp_path):
    data = {"benchmarks": _entries(), "machine_info": {}, "datetime": "2026-01-01T00:00:00",
            "gaaf_environment": {"torch": "x", "torch_threads": 2, "cpu_model": "AMD EPYC",
                                 "cpu_family_model": "26/2", "isa": "AVX512"}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    assert _load("bench_report").main([str(path), "--out-dir", str(tmp_path), "--no-plot"]) == 0
    md = (tmp_path / "bench_cpu.md").read_text()
    assert "Training steps of whole models" in md and "AVX512" in md
    assert "MNIST MLP, batch 128" in md
