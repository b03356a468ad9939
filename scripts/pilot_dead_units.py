"""The dead-unit pilot of ``gaaf study cnn``: train a study model under a few optimizer
settings and print, after every epoch, the test accuracy and the dead units per
activation layer (``experiments.study.cnn.dead_units`` on the first 3000 test images).

It chose the deep CNN's Adam protocol (results/logs/2026-12-04-cnn-study-pilot.md)::

    GAAF_DATA_DIR=/tmp/gaaf-data python scripts/pilot_dead_units.py fashion-deep-cnn \\
        --configs '[{"opt": "adam", "lr": 0.001, "clip": 5}, {"opt": "sgd", "lr": 0.05}]'

A config: ``opt`` ("sgd", momentum 0.9 and weight decay 5e-4, or "adam", no weight
decay), ``lr``, optional ``clip`` (global gradient norm), ``variant`` (default "base")
and ``seed`` (default 0). Not the harness: no checkpoints, no records.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from gaaf_kernels.experiments.datasets import load_splits
from gaaf_kernels.experiments.models import build_model
from gaaf_kernels.experiments.study.cnn import dead_units
from gaaf_kernels.experiments.tasks import get_task
from gaaf_kernels.experiments.train import evaluate, make_optimizer


def _dead(model: nn.Module, x: torch.Tensor) -> tuple[float, list[int]]:
    layers = dead_units(model, x)
    share = 100 * sum(r["dead"] for r in layers) / sum(r["units"] for r in layers)
    return share, [r["dead"] for r in layers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", help="a study task, e.g. fashion-deep-cnn")
    ap.add_argument("--configs", required=True, help="a JSON list of configs (see above)")
    ap.add_argument("--train", type=int, default=10000, help="training images (first N)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    data = load_splits(task, train_limit=args.train)
    probe = data.test_x[:3000]
    for c in json.loads(args.configs):
        torch.manual_seed(c.get("seed", 0))
        model = build_model(task, c.get("variant", "base"))
        opt = make_optimizer(model, replace(task.protocol, optimizer=c["opt"], lr=c["lr"],
                                            momentum=0.9,
                                            weight_decay=0.0 if c["opt"] == "adam" else 5e-4))
        order = torch.Generator().manual_seed(0)
        print(c, f"\n  init: dead {_dead(model, probe)[0]:.1f}%", flush=True)
        t0 = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            model.train()
            perm = torch.randperm(len(data.train_y), generator=order)
            for i in range(0, len(perm), 128):
                idx = perm[i:i + 128]
                loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
                opt.zero_grad()
                loss.backward()
                if c.get("clip"):
                    nn.utils.clip_grad_norm_(model.parameters(), c["clip"])
                opt.step()
            share, per_layer = _dead(model, probe)
            print(f"  epoch {epoch}: test accuracy "
                  f"{evaluate(model, data.test_x, data.test_y)[1]:.2f}, dead {share:.1f}% "
                  f"(per layer {per_layer})", flush=True)
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
