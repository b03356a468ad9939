"""scripts/gpu_check.sh rehearsed on the CPU, so that the one GPU run cannot fail for a reason
a CPU could have caught; and scripts/roofline.py's stand-in run, row by row.

The short rehearsal (``--rehearse --quick``) runs every step the GPU run has in the same
order: the roofline through the stand-in for ``torch.cuda`` with cubins compiled for sm_90,
the GPU tests (skipped here), a model step, a benchmark group that is forced to time out
and takes the rest of a short budget, so that every later step is skipped for want of time.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env():
    # The script sets TRITON_INTERPRET itself; the rest of the suite's environment stays.
    return {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--rehearse", "--quick", str(out)],
        capture_output=True, text=True, env=dict(_env(), PYTHON=sys.executable), timeout=400)
    return out, done


def _steps(summary: str) -> dict[str, tuple[str, str]]:
    steps = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[2].isdigit():
            steps[cells[0]] = (cells[1], cells[4])
    return steps


def test_rehearsal_passes_and_leaves_the_files_a_gpu_run_leaves(rehearsal):
    out, done = rehearsal
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["console.log", "gpu_check.tar.gz", "roofline.md", "summary.md"]
    assert len(files) <= 8  # what comes back from the GPU machine's output folder


def test_rehearsal_roofline_is_complete_with_its_header(rehearsal):
    out, _ = rehearsal
    text = (out / "roofline.md").read_text()
    for field in ("card:", "SMs", "date:", "driver", "CUDA", "torch", "triton", "Python",
                  "copy (torch `copy_`"):
        assert field in text
    assert re.search(r"float32 [0-9.e+-]+ GB/s, bfloat16 [0-9.e+-]+ GB/s", text)
    assert "STAND-IN RUN" in text  # never mistaken for GPU figures
    rows = [line for line in text.splitlines()
            if re.match(r"\| \w+ \| \w+ \| \w+ \| (forward|backward) \|", line)]
    assert len(rows) == 8  # tanh and relu, float32 and bfloat16, forward and backward
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[4]) > 0 and cells[9].startswith("H200 ")  # ms, prediction
    assert "8 kernels measured, 0 failed." in text


def test_rehearsal_out_of_time_skips_and_keeps_partial_results(rehearsal):
    out, _ = rehearsal
    summary = (out / "summary.md").read_text()
    steps = _steps(summary)
    order = list(steps)
    assert order[:5] == ["env", "install", "roofline", "tests", "models mlp"]
    assert steps["bench 2^28"][0] == "TIMEOUT"
    for name in ("verify float32", "verify bfloat16", "verify band float32", "bench small",
                 "cupy"):
        status, reason = steps[name]
        assert status == "SKIPPED" and reason.startswith("out of time"), (name, status)
    assert steps["jax"][0] == "SKIPPED" and steps["jax"][1]  # with its reason
    assert steps["rehearsal self-check"][0] == "ok"
    assert "8 kernels measured, 0 failed." in summary  # the roofline is in the summary
    with tarfile.open(out / "gpu_check.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
        assert {"env.txt", "roofline.json", "bench_2_28.json", "report.txt"} <= names
        member = next(m for m in tar.getmembers() if m.name.endswith("bench_2_28.json"))
        partial = json.load(tar.extractfile(member))
    names = [b["name"] for b in partial["benchmarks"]]
    assert names[0].startswith("test_copy")  # the ceiling ran first and survived
    assert partial["benchmarks"][0]["extra_info"]["launches_per_round"] == 2


def test_roofline_stand_in_gives_one_fail_row_per_failing_kernel(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "roofline.py"), "--stand-in", "--out",
         str(tmp_path), "--elements", "1024", "--launches", "1", "--reps", "1",
         "--dtypes", "float32", "--activations", "not_an_activation,relu"],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    text = (tmp_path / "roofline.md").read_text()
    fails = [line for line in text.splitlines() if "| FAIL " in line]
    assert len(fails) == 2 and all("not_an_activation" in line for line in fails)
    assert re.search(r"\| relu \| shifted_sigmoid \| float32 \| backward \| [0-9.]+ \|", text)
    assert "2 kernels measured, 2 failed." in text
    rows = json.loads((tmp_path / "roofline.json").read_text())["rows"]
    assert [r.get("error") is not None for r in rows if r["kernel"] != "copy"] == [
        True, True, False, False]
