"""Measured against predicted share of the copy roofline, per default pair, row by row.

    python scripts/roofline.py --out OUTDIR [--elements 268435456] [--dtypes float32,bfloat16]
    TRITON_INTERPRET=1 python scripts/roofline.py --out OUTDIR --rehearse

For every built-in activation with its default shape, forward and backward, this times
the fused kernel on ``--elements`` elements and divides the bytes it moves (2 or 3 tensor
passes) by the time, beside the device-to-device copy bandwidth measured the same way in
the same run, and the static model's prediction for the cubin that ran
(``gaaf_kernels/kernels/throughput.py``). Timing: many back-to-back launches between one
pair of CUDA events (the launch latency of the host is hidden behind the kernels), the
median of three such batches.

OUTDIR/roofline.md gets its header (card, SMs, date, driver, CUDA, torch, triton, Python)
first and then every row as soon as it is measured, so a run cut off keeps what it
measured; one kernel's error is one FAIL row. OUTDIR/roofline.json is rewritten after
every row.

``--rehearse`` runs the same code on a CPU: the kernels under the Triton interpreter on
tiny CPU tensors (``TRITON_INTERPRET=1`` set before Python starts), timed by the wall
clock, the SASS counts and predictions from cubins compiled for sm_90 without a GPU. Its
numbers measure nothing but the script: they are labelled as a rehearsal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
import triton

from gaaf_kernels.kernels import launch
from gaaf_kernels.kernels import throughput as tp
from gaaf_kernels.reference import get_activation, resolve
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS

COLUMNS = ("activation", "shape", "dtype", "pass", "ms", "GB/s", "% of copy", "SASS/elem",
           "predicted %", "result")


class Device:
    """The CUDA calls the script makes; ``Rehearsal`` stands in for them on a CPU."""

    name = "cuda"

    def describe(self) -> dict:
        props = torch.cuda.get_device_properties(0)
        return {"card": props.name, "sms": props.multi_processor_count,
                "arch": props.major * 10 + props.minor, "driver": _driver(),
                "cuda": torch.version.cuda}

    def time_ms(self, fn: Callable[[], object]) -> float:
        """Milliseconds per launch: launches back to back between one pair of events,
        enough for ~50 ms per batch, the median of three batches."""
        fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        launches = max(3, min(1000, int(50.0 / max(start.elapsed_time(end), 1e-3))))
        batches = []
        for _ in range(3):
            start.record()
            for _ in range(launches):
                fn()
            end.record()
            end.synchronize()
            batches.append(start.elapsed_time(end) / launches)
        return statistics.median(batches)

    def sass(self, kernel: str, activation: str, dtype: str, compiled) -> tuple[float, float]:
        """(instructions, MUFU) per element of the cubin that ran."""
        count = tp.count_sass(_cuobjdump_sass(compiled.asm["cubin"]))
        block, warps = launch.gpu_launch_config(dtype)
        per_thread = block / (warps * 32)
        return count.instructions / per_thread, count.mufu / per_thread


class Rehearsal(Device):
    """A CPU in the GPU's place: interpreter kernels, wall-clock timing, sm_90 cubins.

    The cubins are compiled in a child process without the interpreter (under it the
    kernels are not compilable), all at once, the first time one is needed."""

    name = "cpu"

    def __init__(self, activations: list[str], dtypes: list[str]) -> None:
        self.pairs = [(k, a, d) for a in activations for k in ("forward", "backward")
                      for d in dtypes]
        self.counts: dict[str, list] | None = None

    def _compile_all(self) -> dict[str, list]:
        import os
        import sys

        script = (
            "import json, sys\n"
            "from triton.backends.compiler import GPUTarget\n"
            "from gaaf_kernels.kernels.compile_check import compile_one\n"
            "from gaaf_kernels.reference import get_activation\n"
            "out = {}\n"
            "for k, a, d in json.loads(sys.argv[1]):\n"
            "    r = compile_one(GPUTarget('cuda', 90, 32), k, a,\n"
            "                    get_activation(a).default_shape, d)\n"
            "    out[f'{k} {a} {d}'] = [r.error, r.instructions_per_element,\n"
            "                           r.mufu_per_element]\n"
            "print(json.dumps(out))\n")
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        done = subprocess.run([sys.executable, "-c", script, json.dumps(self.pairs)], env=env,
                              capture_output=True, text=True, check=True, timeout=900)
        return json.loads(done.stdout.splitlines()[-1])

    def describe(self) -> dict:
        return {"card": "REHEARSAL on a CPU (no GPU: no figure below is a measurement)",
                "sms": 0, "arch": 90, "driver": "none", "cuda": "none"}

    def time_ms(self, fn: Callable[[], object]) -> float:
        fn()
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def sass(self, kernel: str, activation: str, dtype: str, compiled) -> tuple[float, float]:
        if self.counts is None:
            self.counts = self._compile_all()
        error, instructions, mufu = self.counts[f"{kernel} {activation} {dtype}"]
        if error:
            raise RuntimeError(error)
        return instructions, mufu


def _driver() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def _cuobjdump_sass(cubin: bytes) -> str:
    """``cuobjdump -sass``: the triton wheel's, else one on PATH or in the CUDA toolkit."""
    if tp.cuobjdump().is_file():
        return tp.run_cuobjdump("-sass", cubin)
    for candidate in (shutil.which("cuobjdump"), "/usr/local/cuda/bin/cuobjdump"):
        if candidate and Path(candidate).is_file():
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "kernel.cubin"
                path.write_bytes(cubin)
                return subprocess.run([candidate, "-sass", str(path)], capture_output=True,
                                      text=True, check=True).stdout
    raise FileNotFoundError("no cuobjdump (triton wheel, PATH, /usr/local/cuda/bin)")


def launcher(kernel_name: str, activation: str, x: torch.Tensor, dy: torch.Tensor,
             out: torch.Tensor):
    """A call of the fused kernel as the launcher makes it; it returns the compiled kernel."""
    cfg = resolve(activation)
    kernel, functions = launch.kernel_for(kernel_name, cfg.activation, cfg.shape,
                                          launch.dtype_name(x.dtype))
    options = launch._launch_options(x.numel(), x.dtype, None, False)
    grid = (triton.cdiv(x.numel(), options["BLOCK_SIZE"]),)
    tensors = (x, out) if kernel_name == "forward" else (x, dy, out)
    scalars = launch.scalar_arguments(cfg, x.dtype)
    return lambda: kernel[grid](*tensors, x.numel(), *scalars, **functions, **options)


def header(info: dict, elements: int) -> str:
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"# Roofline: measured against predicted\n\n"
            f"- card: {info['card']}, {info['sms']} SMs, sm_{info['arch']}\n"
            f"- date: {today}\n"
            f"- driver {info['driver']}, CUDA {info['cuda']}, torch {torch.__version__}, "
            f"triton {triton.__version__}, Python {platform.python_version()}\n"
            f"- {elements} elements per tensor; ms per launch: back-to-back launches between "
            f"one CUDA event pair, median of 3 batches\n"
            f"- % of copy: GB/s over the device-to-device copy's GB/s of the same dtype "
            f"(below); predicted %: the static model for the cubin that ran "
            f"(gaaf_kernels/kernels/throughput.py)\n\n")


def row_line(cells: tuple) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--elements", type=int, default=None,
                        help="elements per tensor (default 2^28; 2^12 with --rehearse)")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--activations", default=",".join(BUILTIN_ACTIVATIONS))
    parser.add_argument("--rehearse", action="store_true",
                        help="run on a CPU under the Triton interpreter (no GPU)")
    args = parser.parse_args()
    if args.rehearse and not launch.interpreting():
        parser.error("--rehearse needs TRITON_INTERPRET=1 set before Python starts")
    activations, dtypes = args.activations.split(","), args.dtypes.split(",")
    device = Rehearsal(activations, dtypes) if args.rehearse else Device()
    n = args.elements or (2**12 if args.rehearse else 2**28)
    args.out.mkdir(parents=True, exist_ok=True)
    md, js = args.out / "roofline.md", args.out / "roofline.json"
    info = device.describe()
    cards = [c for c in tp.cards_for(info["arch"]) if c.name in info["card"]] or \
        tp.cards_for(info["arch"])
    records: list[dict] = []
    with md.open("w") as fh:
        fh.write(header(info, n))
        fh.flush()
        for dtype_name in dtypes:
            dtype = getattr(torch, dtype_name)
            try:
                x = torch.randn(n, device=device.name, dtype=dtype)
                dy, out = torch.randn_like(x), torch.empty_like(x)
                copy_ms = device.time_ms(lambda: out.copy_(x))  # noqa: B023
                copy_gbs = 2 * n * x.element_size() / (copy_ms * 1e-3) / 1e9
            except Exception as exc:  # the dtype's rows cannot run; say why, go on
                fh.write(f"\n{dtype_name}: FAIL before the kernels: {type(exc).__name__}: "
                         f"{str(exc)[:200]}\n")
                fh.flush()
                continue
            fh.write(f"\n## {dtype_name}: copy {copy_gbs:.0f} GB/s ({copy_ms:.3f} ms)\n\n")
            fh.write(row_line(COLUMNS) + row_line(("---",) * len(COLUMNS)))
            fh.flush()
            for activation in activations:
                shape = get_activation(activation).default_shape
                for kernel in ("forward", "backward"):
                    record = dict(activation=activation, shape=shape, dtype=dtype_name,
                                  kernel=kernel, copy_gb_s=copy_gbs, rehearsal=args.rehearse)
                    try:
                        run = launcher(kernel, activation, x, dy, out)
                        compiled = run()
                        ms = device.time_ms(run)
                        gbs = tp.TENSOR_PASSES[kernel] * n * x.element_size() / (ms * 1e-3) / 1e9
                        try:
                            instr, mufu = device.sass(kernel, activation, dtype_name, compiled)
                            predicted = {c.name: tp.predicted_fraction(c, kernel, dtype_name,
                                                                       instr, mufu)
                                         for c in cards}
                            sass, pred = f"{instr:.1f}", " ".join(
                                f"{k} {100 * v:.0f}%" for k, v in predicted.items())
                        except Exception as exc:  # no SASS: the measurement still counts
                            instr, mufu, predicted = None, None, {}
                            sass, pred = "n/a", f"n/a ({type(exc).__name__})"
                        record.update(ms=ms, gb_s=gbs, measured=gbs / copy_gbs,
                                      instructions=instr, mufu=mufu, predicted=predicted)
                        cells = (activation, shape, dtype_name, kernel, f"{ms:.3f}",
                                 f"{gbs:.0f}", f"{100 * gbs / copy_gbs:.0f}%", sass, pred, "ok")
                    except Exception as exc:  # one kernel's error is one FAIL row
                        record.update(error=f"{type(exc).__name__}: {str(exc)[:200]}")
                        cells = (activation, shape, dtype_name, kernel, "", "", "", "", "",
                                 f"FAIL {record['error'][:80]}")
                    records.append(record)
                    fh.write(row_line(cells))
                    fh.flush()
                    js.write_text(json.dumps(records, indent=1))
    print(md.read_text())


if __name__ == "__main__":
    main()
