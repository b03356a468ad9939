"""Measured against predicted share of the copy roofline, per default pair.

    python scripts/roofline.py --out OUTDIR [--json PATH] [--elements 268435456]
                               [--dtypes float32,bfloat16] [--activations tanh,relu,...]
                               [--launches 20] [--reps 5] [--stand-in]

For every built-in activation with its default shape, forward and backward, this times
the fused kernel on ``--elements`` elements, divides the bytes it moves (2 or 3 tensor
passes) by the time, and prints that as a share of the device-to-device copy bandwidth
measured in the same run (the copy is timed first, the same way), beside the static
model's prediction for the cubin that ran (``gaaf_kernels/kernels/throughput.py``).

Timing: ``--launches`` back-to-back launches between one pair of CUDA events, so that the
host's launch latency (10-20 us against kernels of 0.25-0.75 ms at 2^28 elements) is
spread over many kernels; the median of ``--reps`` such pairs, after one warm-up launch.

Results are written as they are measured: OUTDIR/roofline.md gets its header (card, SMs,
date, driver, CUDA, torch, triton and Python versions, the copy GB/s per dtype) and then
one Markdown table row per kernel; the JSON file is rewritten after every row. A kernel
that raises gives one FAIL row and the run goes on; a missing ``cuobjdump`` leaves the
prediction empty, not the measurement. Exit status 1 when any row failed.

``--stand-in`` runs the same code on a machine without a GPU: CPU tensors under the
Triton interpreter (TRITON_INTERPRET=1 is set before the kernels are imported), a
``time.perf_counter`` stand-in for ``torch.cuda`` (events, synchronize, device
properties of an H200), and cubins compiled for sm_90 for the prediction. Its times are
the interpreter's, not a GPU's: the header says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

STAND_IN_NAME = "CPU stand-in for an NVIDIA H200 (Triton interpreter; times are not GPU times)"


class StandInCuda:
    """The few ``torch.cuda`` calls this script makes, answered on the CPU."""

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            self.t = None

        def record(self, stream=None) -> None:
            self.t = time.perf_counter()

        def synchronize(self) -> None:
            return None

        def elapsed_time(self, end: StandInCuda.Event) -> float:
            return (end.t - self.t) * 1e3

    @staticmethod
    def synchronize() -> None:
        return None

    @staticmethod
    def get_device_name(device=None) -> str:
        return STAND_IN_NAME

    @staticmethod
    def get_device_capability(device=None) -> tuple[int, int]:
        return (9, 0)

    @staticmethod
    def get_device_properties(device=None):
        return SimpleNamespace(name=STAND_IN_NAME, major=9, minor=0,
                               multi_processor_count=132, total_memory=0)


COMPILER_CHILD = """
import base64, json, sys
from triton.backends.compiler import GPUTarget
from gaaf_kernels.kernels import compile_check
for line in sys.stdin:
    arch, kernel, activation, shape, dtype = json.loads(line)
    try:
        cubin = compile_check.compile_kernel(GPUTarget("cuda", arch, 32), kernel, activation,
                                             shape, dtype).asm["cubin"]
        print(json.dumps({"cubin": base64.b64encode(cubin).decode()}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
"""


class CubinCompiler:
    """Cubins for a GPU target from a child process without TRITON_INTERPRET.

    Under the interpreter ``@triton.jit`` gives interpreted functions, which cannot be
    compiled; the child imports the kernels afresh and compiles what it is asked.
    """

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        self.child = subprocess.Popen([sys.executable, "-c", COMPILER_CHILD], env=env,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def cubin(self, arch: int, kernel: str, activation: str, shape: str, dtype: str) -> bytes:
        import base64

        self.child.stdin.write(json.dumps([arch, kernel, activation, shape, dtype]) + "\n")
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError("the compiling child process ended")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return base64.b64decode(answer["cubin"])


def time_ms(cuda, fn, launches: int, reps: int) -> float:
    """Median over ``reps`` of (``launches`` back-to-back calls between two events) / launches."""
    fn()
    cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        start.record()
        for _ in range(launches):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / launches)
    return statistics.median(times)


def driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15, check=True).stdout
        return out.strip().splitlines()[0]
    except Exception as exc:  # the table matters more than this field
        return f"unknown ({type(exc).__name__})"


def rate(gb_s: float) -> str:
    return f"{gb_s:.0f}" if gb_s >= 100 else f"{gb_s:.3g}"


def cell(text: object) -> str:
    return str(text).replace("|", "/").replace("\n", " ").strip()


def md_row(values) -> str:
    return "| " + " | ".join(cell(v) for v in values) + " |\n"


COLUMNS = ("activation", "shape", "dtype", "pass", "ms", "GB/s", "% of copy", "SASS/elem",
           "MUFU/elem", "predicted %", "note")


class Output:
    """roofline.md appended row by row (flushed), the JSON rewritten after each row."""

    def __init__(self, md: Path, js: Path) -> None:
        self.md, self.js = md, js
        self.data: dict = {"environment": {}, "copy_gb_s": {}, "rows": []}
        md.write_text("")

    def write(self, text: str) -> None:
        with self.md.open("a") as f:
            f.write(text)
            f.flush()

    def row(self, values, record: dict) -> None:
        self.write(md_row(values))
        self.data["rows"].append(record)
        self.save()

    def save(self) -> None:
        tmp = self.js.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.js)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of roofline.md")
    parser.add_argument("--json", type=Path, default=None,
                        help="where the JSON goes (default OUT/roofline.json)")
    parser.add_argument("--elements", type=int, default=2**28)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--activations", default=None,
                        help="comma-separated built-ins (default: all, each with its default "
                             "shape)")
    parser.add_argument("--launches", type=int, default=20,
                        help="back-to-back launches between one pair of events")
    parser.add_argument("--reps", type=int, default=5, help="event pairs; the median is kept")
    parser.add_argument("--stand-in", action="store_true",
                        help="no GPU: the interpreter on CPU and a stand-in for torch.cuda")
    args = parser.parse_args()
    if args.stand_in:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are imported

    import torch
    import triton

    from gaaf_kernels.kernels import launch
    from gaaf_kernels.kernels import throughput as tp
    from gaaf_kernels.reference import get_activation, resolve
    from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS

    cuda, device = (StandInCuda(), "cpu") if args.stand_in else (torch.cuda, "cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    out = Output(args.out / "roofline.md", args.json or args.out / "roofline.json")
    name = cuda.get_device_name()
    major, minor = cuda.get_device_capability()
    arch = major * 10 + minor
    props = cuda.get_device_properties(0)
    cards = [c for c in tp.cards_for(arch) if c.name in name] or tp.cards_for(arch)
    activations = (args.activations.split(",") if args.activations
                   else list(BUILTIN_ACTIVATIONS))
    dtypes = args.dtypes.split(",")
    n = args.elements
    env = dict(card=name, arch=f"sm_{arch}", sms=props.multi_processor_count,
               date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               driver="none (stand-in)" if args.stand_in else driver_version(),
               cuda=torch.version.cuda, torch=torch.__version__, triton=triton.__version__,
               python=platform.python_version(), elements=n, launches=args.launches,
               reps=args.reps, stand_in=args.stand_in,
               cards=[dict(name=c.name, copy_tb_s=c.copy_tb_s) for c in cards])
    out.data["environment"] = env

    # The copy ceiling first, per dtype, timed as the kernels are.
    copy_gb_s = {}
    for dtype_name in dtypes:
        try:
            x = torch.randn(n, device=device, dtype=getattr(torch, dtype_name))
            dst = torch.empty_like(x)
            ms = time_ms(cuda, lambda src=x, d=dst: d.copy_(src), args.launches, args.reps)
            copy_gb_s[dtype_name] = (ms, 2 * n * x.element_size() / (ms * 1e-3) / 1e9)
            x = dst = None
        except Exception as exc:
            copy_gb_s[dtype_name] = (None, None)
            print(f"copy {dtype_name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    out.data["copy_gb_s"] = {k: v[1] for k, v in copy_gb_s.items()}

    card_text = ", ".join(f"{c.name} (copy {c.copy_tb_s} TB/s)" for c in cards) or "none"
    copy_text = ", ".join(f"{d} {rate(v[1])} GB/s" if v[1] else f"{d} FAILED"
                          for d, v in copy_gb_s.items())
    header = [
        "# GAAF fused kernels against the copy roofline",
        "",
        *([f"**STAND-IN RUN: {name}. Nothing here is a GPU figure.**", ""]
          if args.stand_in else []),
        f"- card: {name}, sm_{arch}, {props.multi_processor_count} SMs",
        f"- date: {env['date']}",
        f"- driver {env['driver']}, CUDA {env['cuda']}, torch {env['torch']}, "
        f"triton {env['triton']}, Python {env['python']}",
        f"- measured device-to-device copy (torch `copy_`, 2 tensor passes): {copy_text}",
        f"- {n} elements per tensor; each time is the median of {args.reps} x "
        f"({args.launches} back-to-back launches between one pair of CUDA events) / "
        f"{args.launches}",
        "- GB/s: bytes that must move (2 tensor passes forward, 3 backward) over the time; "
        "% of copy: that over the copy's GB/s in the same dtype",
        f"- predicted %: the static model (gaaf_kernels/kernels/throughput.py) for the "
        f"cubin that ran, on the card table's {card_text}: a prediction, not a measurement",
        "",
        md_row(COLUMNS).rstrip("\n"),
        "|" + "---|" * len(COLUMNS),
        "",
    ]
    out.write("\n".join(header))
    print("\n".join(header), flush=True)

    failed = 0
    compiler = None
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        copy_ms, copy_rate = copy_gb_s[dtype_name]
        if copy_rate:
            out.row(("copy", "-", dtype_name, "copy", f"{copy_ms:.4f}", rate(copy_rate),
                     "100%", "", "", "", "the ceiling"),
                    dict(activation="copy", dtype=dtype_name, kernel="copy", ms=copy_ms,
                         gb_s=copy_rate))
        try:
            x = torch.randn(n, device=device, dtype=dtype)
            dy, dst = torch.randn_like(x), torch.empty_like(x)
        except Exception as exc:
            failed += 1
            out.row(("all", "-", dtype_name, "-", "", "", "", "", "", "",
                     f"FAIL allocating inputs: {type(exc).__name__}: {exc}"),
                    dict(dtype=dtype_name, error=f"{type(exc).__name__}: {exc}"))
            continue
        for activation in activations:
            try:
                shape = get_activation(activation).default_shape
            except Exception as exc:  # an unknown name: its rows fail, the others run
                shape = f"({type(exc).__name__})"
            for kernel_name in ("forward", "backward"):
                record = dict(activation=activation, shape=shape, dtype=dtype_name,
                              kernel=kernel_name)
                t0 = time.perf_counter()
                try:
                    cfg = resolve(activation)
                    kernel, functions = launch.kernel_for(kernel_name, cfg.activation,
                                                          cfg.shape, dtype_name)
                    options = launch._launch_options(n, dtype, None, False)
                    grid = (triton.cdiv(n, options["BLOCK_SIZE"]),)
                    tensors = [launch._bits(t) for t in
                               ((x, dst) if kernel_name == "forward" else (x, dy, dst))]
                    scalars = launch.scalar_arguments(cfg, dtype)

                    def run(kernel=kernel, grid=grid, tensors=tensors, scalars=scalars,
                            functions=functions, options=options):
                        return kernel[grid](*tensors, n, *scalars, **functions, **options)

                    compiled = run()
                    ms = time_ms(cuda, run, args.launches, args.reps)
                    moved = tp.TENSOR_PASSES[kernel_name] * n * x.element_size()
                    gb_s = moved / (ms * 1e-3) / 1e9
                    share = gb_s / copy_rate if copy_rate else None
                    record.update(ms=ms, gb_s=gb_s, measured=share)
                except Exception as exc:
                    failed += 1
                    record["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    out.row((activation, shape, dtype_name, kernel_name, "", "", "", "", "", "",
                             "FAIL " + record["error"]), record)
                    print(f"{activation} {dtype_name} {kernel_name}: FAIL {record['error']}",
                          flush=True)
                    continue
                note = ""
                try:  # the prediction for the cubin that ran (sm_90 compiled here: stand-in)
                    cubin = getattr(compiled, "asm", {}).get("cubin")
                    if cubin is None:  # the interpreter ran it: compile it for the target
                        if compiler is None:
                            compiler = CubinCompiler()
                        cubin = compiler.cubin(arch, kernel_name, activation, shape,
                                               dtype_name)
                    count = tp.count_sass(tp.run_cuobjdump("-sass", cubin))
                    block, warps = launch.gpu_launch_config(dtype_name)
                    per_thread = block / (warps * 32)
                    instr, mufu = count.instructions / per_thread, count.mufu / per_thread
                    predicted = {c.name: tp.predicted_fraction(c, kernel_name, dtype_name,
                                                               instr, mufu) for c in cards}
                    record.update(instructions=instr, mufu=mufu, predicted=predicted)
                    cols = (f"{instr:.1f}", f"{mufu:.2f}",
                            " ".join(f"{k} {100 * v:.0f}%" for k, v in predicted.items()))
                except Exception as exc:
                    note = f"no prediction: {type(exc).__name__}: {str(exc)[:150]}"
                    record["prediction_error"] = note
                    cols = ("", "", "")
                record["seconds"] = time.perf_counter() - t0
                share_text = f"{100 * share:.1f}%" if share is not None else ""
                out.row((activation, shape, dtype_name, kernel_name, f"{ms:.4f}",
                         rate(gb_s), share_text, *cols, note), record)
                print(f"{activation:16s} {dtype_name:9s} {kernel_name:8s} {ms:9.4f} ms "
                      f"{rate(gb_s):>7s} GB/s {share_text:>7s}  {cols[2]} {note}", flush=True)
        x = dy = dst = None
    rows = [r for r in out.data["rows"] if r.get("kernel") in ("forward", "backward")]
    done = sum("ms" in r for r in rows)
    out.write(f"\n{done} kernels measured, {failed} failed.\n")
    print(f"{done} kernels measured, {failed} failed; wrote {out.md} and {out.js}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
