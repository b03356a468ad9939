"""How much of GAAF's backward is the gradient of the function the network computes?

GAAF's forward is phi(x) + g(x) s(x), with |g| <= 0.5/K: the network computes (almost)
the plain tanh network's function, but its backward multiplies by phi' + s + g s' per
layer instead of phi'. The added s is the sawtooth's derivative, not a slope of the
loss the optimizer sees. This script measures, at Glorot initialization, on one batch
of MNIST training images, for each depth of the depth study and each GAAF variant:

* the cosine between each Linear weight's GAAF gradient and the plain network's
  gradient for the same weights (1: same direction; 0: unrelated);
* the ratio of their norms.

The plain gradient is the true gradient of the loss up to the O(1/K) forward change, so
a cosine near 0 in the bottom layers means their update no longer descends the loss.

Then it traces the first ``--trace-steps`` SGD steps (the study's protocol: lr 0.01,
momentum 0.9, batch 128) at depth ``--trace-depth`` for base, gaaf and gaaf-band: the
batch loss, the bottom layer's cosine, the fraction of its net values with |x| > 2 and
its mean |dL/dW|, every 30 steps.

    python scripts/gradient_alignment.py [--seeds 3] [--batch 1024] [--trace-depth 20]
        [--trace-steps 300] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gaaf_kernels.experiments.datasets import load_splits
from gaaf_kernels.experiments.models import build_model
from gaaf_kernels.experiments.tasks import STUDY_DEPTHS, get_task

VARIANTS = ("gaaf", "gaaf-band")


def _weight_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.clone() for m in model.modules() if isinstance(m, nn.Linear)]


def measure(depth: int, variant: str, seed: int, x: torch.Tensor, y: torch.Tensor):
    """(cosines, norm ratios) per Linear layer, bottom first."""
    task = f"mnist-deep{depth}"
    torch.manual_seed(seed)
    plain = build_model(task, "base")
    gaaf = build_model(task, variant, init=False)
    gaaf.load_state_dict(plain.state_dict())  # the same weights (GAAF has no parameters)
    want, got = _weight_grads(plain, x, y), _weight_grads(gaaf, x, y)
    cosines = [float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))
               for a, b in zip(got, want, strict=True)]
    ratios = [float(a.norm() / b.norm()) for a, b in zip(got, want, strict=True)]
    return cosines, ratios


def trace(depth: int, variant: str, steps: int, x_all, y_all, x_probe, y_probe) -> list[str]:
    """Rows ``| variant | step | loss | cosine L1 | |x| > 2 in L1 | mean |dL/dW1| |``."""
    task = f"mnist-deep{depth}"
    torch.manual_seed(0)
    model = build_model(task, variant)
    plain = build_model(task, "base", init=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    rows = []
    for step in range(steps + 1):
        idx = order[(step * 128) % (len(y_all) - 128):][:128]
        if step % 30 == 0:
            plain.load_state_dict(model.state_dict())
            want = _weight_grads(plain, x_probe, y_probe)[0]
            got = _weight_grads(model, x_probe, y_probe)[0]
            cosine = float(F.cosine_similarity(got.flatten(), want.flatten(), dim=0))
            with torch.no_grad():
                saturated = float((first(x_probe.flatten(1)).abs() > 2).float().mean())
            opt.zero_grad()
            loss = float(F.cross_entropy(model(x_all[idx]), y_all[idx]))
            rows.append(f"| {variant} | {step} | {loss:.3f} | {cosine:.2f} | "
                        f"{100 * saturated:.0f}% | {got.abs().mean():.1e} |")
        opt.zero_grad()
        F.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
        opt.step()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--trace-depth", type=int, default=20)
    parser.add_argument("--trace-steps", type=int, default=300)
    parser.add_argument("--out", default=None, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    splits = load_splits(get_task("mnist-mlp"))
    x, y = splits.train_x[: args.batch], splits.train_y[: args.batch]
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    lines = [
        "# GAAF's backward against the plain gradient, at initialization",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {cpu}, torch {torch.__version__}, Python {platform.python_version()}",
        f"- Command: `python scripts/gradient_alignment.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- Glorot-uniform init, seeds 0-{args.seeds - 1}, the first {args.batch} MNIST "
        "training images, mean cross-entropy; means over seeds.",
        "",
        "| depth | variant | cosine L1 | cosine middle | cosine last hidden | cosine output "
        "| norm ratio L1 | norm ratio output |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for depth in STUDY_DEPTHS:
        for variant in VARIANTS:
            runs = [measure(depth, variant, s, x, y) for s in range(args.seeds)]
            cos = [sum(r[0][i] for r in runs) / len(runs) for i in range(depth + 1)]
            ratio = [sum(r[1][i] for r in runs) / len(runs) for i in range(depth + 1)]
            lines.append(f"| {depth} | {variant} | {cos[0]:.3f} | {cos[depth // 2]:.3f} | "
                         f"{cos[depth - 1]:.3f} | {cos[depth]:.3f} | {ratio[0]:.3g} | "
                         f"{ratio[depth]:.3g} |")
    lines += [
        "", f"## The first {args.trace_steps} steps at depth {args.trace_depth} (seed 0)", "",
        "Loss of the step's batch; cosine, |x| > 2 and mean |dL/dW1| of the bottom layer "
        f"on the {args.batch} probe images.", "",
        "| variant | step | loss | cosine L1 | net values of L1 with abs(x) > 2 "
        "| mean abs(dL/dW1) |", "|---|---|---|---|---|---|",
    ]
    for variant in ("base", *VARIANTS):
        lines += trace(args.trace_depth, variant, args.trace_steps, splits.train_x,
                       splits.train_y, x, y)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
