"""Measured against predicted share of the copy roofline, per default pair (CUDA only).

    python scripts/roofline.py --out OUTDIR [--elements 268435456] [--dtypes float32,bfloat16]

For every built-in activation with its default shape, forward and backward, this times
the fused kernel on ``--elements`` elements (CUDA events, median of 20 runs after a
warm-up), divides the bytes it moves (2 or 3 tensor passes) by the time, and prints that
as a share of the device-to-device copy bandwidth measured in the same run, beside the
static model's prediction for the cubin that ran (``gaaf_kernels/kernels/throughput.py``).
Writes OUTDIR/roofline.md and OUTDIR/roofline.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import triton

from gaaf_kernels.kernels import launch
from gaaf_kernels.kernels import throughput as tp
from gaaf_kernels.reference import get_activation, resolve
from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS
from gaaf_kernels.table import format_table


def time_ms(fn, reps: int = 20) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--elements", type=int, default=2**28)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name()
    arch = torch.cuda.get_device_capability()
    cards = [c for c in tp.cards_for(arch[0] * 10 + arch[1]) if c.name in name] or \
        tp.cards_for(arch[0] * 10 + arch[1])
    rows, records = [], []
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        n = args.elements
        x = torch.randn(n, device="cuda", dtype=dtype)
        dy, out = torch.randn_like(x), torch.empty_like(x)
        copy_ms = time_ms(lambda: out.copy_(x))  # noqa: B023
        copy_bytes_s = 2 * n * x.element_size() / (copy_ms * 1e-3)
        for activation in BUILTIN_ACTIVATIONS:
            for kernel in ("forward", "backward"):
                run = launcher(kernel, activation, x, dy, out)
                compiled = run()
                ms = time_ms(run)
                moved = tp.TENSOR_PASSES[kernel] * n * x.element_size()
                measured = moved / (ms * 1e-3) / copy_bytes_s
                count = tp.count_sass(tp.run_cuobjdump("-sass", compiled.asm["cubin"]))
                block, warps = launch.gpu_launch_config(dtype_name)
                elements_per_thread = block / (warps * 32)
                instr = count.instructions / elements_per_thread
                mufu = count.mufu / elements_per_thread
                predicted = {c.name: tp.predicted_fraction(c, kernel, dtype_name, instr, mufu)
                             for c in cards}
                shape = get_activation(activation).default_shape
                records.append(dict(activation=activation, shape=shape, dtype=dtype_name,
                                    kernel=kernel, ms=ms, measured=measured,
                                    copy_tb_s=copy_bytes_s / 1e12, instructions=instr,
                                    mufu=mufu, predicted=predicted))
                rows.append((activation, shape, dtype_name, kernel, f"{ms:.3f}",
                             f"{100 * measured:.0f}%", f"{instr:.1f}",
                             " ".join(f"{k} {100 * v:.0f}%" for k, v in predicted.items())))
    table = format_table(("activation", "shape", "dtype", "pass", "ms", "measured % of copy",
                          "SASS/elem", "predicted %"), rows)
    text = (f"{name}, {args.elements} elements, copy {records[0]['copy_tb_s']:.2f} TB/s "
            f"(float32)\n\n{table}\n")
    (args.out / "roofline.md").write_text(text)
    (args.out / "roofline.json").write_text(json.dumps(records, indent=1))
    print(text)


if __name__ == "__main__":
    main()
