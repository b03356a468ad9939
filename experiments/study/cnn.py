"""``gaaf study cnn``: ReLU CNNs with GAAF, the surrogate-gradient shapes and leaky relu.

What runs (:func:`make_cnn_study`), on Fashion-MNIST and MNIST:

* the harness's CNN (4 conv + 2 dense, the SVHN model of Table 5) without and with
  BatchNorm;
* a deep plain CNN (10 conv layers of 16 channels, no BatchNorm), trained with the CNN
  protocol's SGD and, as ``*-deep-cnn-adam``, with Adam, under which its ReLU units die.

Variants: base relu, leaky relu (0.01), GAAF with relu's default shape, with the band,
with the surrogate-gradient shapes ``bsilu`` and ``nelu``; gradient clipping (global
norm 5) is part of the protocol, and ``*-noclip`` variants run without it.

Per run, besides the harness's files: ``study_cnn_grad.json`` (the first layer's weight
gradient norm in epoch 1, before clipping, :class:`FirstLayerGradRecorder`) and
``study_cnn_dead.json`` (:func:`dead_units`: per activation layer, the share of units
with no positive pre-activation over the test set, at initialization and for the
converged weights). A unit is a channel of a conv layer or a feature of a dense layer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import records
from .grid import Study, StudyRun

__all__ = ["CNN_EPOCHS", "CNN_PATIENCE", "CNN_TRAIN_LIMIT", "CNN_RUNS", "GRAD", "DEAD",
           "DEAD_VERSION", "make_cnn_study", "dead_units", "FirstLayerGradRecorder",
           "execute_cnn", "run_state"]

GRAD, DEAD = "study_cnn_grad.json", "study_cnn_dead.json"
DEAD_VERSION = 1

# The budget (about an hour of the 2-core machine for the whole grid, two worker processes
# of one thread; epoch times in docs/studies.md) forbids the full training sets: each run
# trains on the first 10000 training images for at most 3 epochs (a stated cap, not
# convergence), validated on 5000 held-out images and tested on the whole test set.
CNN_EPOCHS = 3
CNN_PATIENCE = 3
CNN_TRAIN_LIMIT = 10000
#: (task, variants) in the order they run within a seed: the long runs first.
CNN_RUNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fashion-cnn-study", ("base", "leaky", "gaaf", "gaaf-band", "gaaf-bsilu", "gaaf-nelu",
                           "gaaf-noclip", "bn", "bn-gaaf", "bn-gaaf-bsilu")),
    ("fashion-deep-cnn", ("base", "leaky", "gaaf", "gaaf-band", "gaaf-bsilu", "gaaf-nelu",
                          "base-noclip", "gaaf-noclip")),
    ("mnist-deep-cnn", ("base", "leaky", "gaaf", "gaaf-bsilu", "gaaf-nelu", "gaaf-noclip")),
    ("fashion-deep-cnn-adam", ("base", "leaky", "gaaf", "gaaf-band", "gaaf-bsilu",
                               "gaaf-nelu", "gaaf-noclip")),
    ("mnist-deep-cnn-adam", ("base", "leaky", "gaaf", "gaaf-band", "gaaf-bsilu", "gaaf-nelu")),
    ("mnist-cnn-study", ("base", "leaky", "gaaf", "gaaf-band", "gaaf-bsilu", "gaaf-nelu",
                         "gaaf-noclip", "bn", "bn-gaaf")),
)
SEEDS = 3
# --quick: one seed, one epoch on 2000 images, four runs; under two minutes.
QUICK_RUNS = (("fashion-cnn-study", ("base",)),
              ("fashion-deep-cnn", ("base", "gaaf", "gaaf-bsilu")))
QUICK_TRAIN_LIMIT = 2000


def make_cnn_study(*, quick: bool = False, seeds: int | None = None,
                   tiny: bool = False) -> Study:
    """The CNN study's runs, seed by seed (an interrupted study has whole seeds done);
    ``grid.make_study`` checks ``seeds`` before it calls this."""
    from ..models import SVHN_CONV
    from ..tasks import get_task
    from .grid import variant_settings

    seed_list = tuple(range(seeds if seeds is not None else (1 if quick else SEEDS)))
    grid = QUICK_RUNS if quick else CNN_RUNS
    runs: list[StudyRun] = []
    seen: set[tuple[str, str, int]] = set()
    for seed in seed_list:
        for task, variants in grid:
            # --tiny: the tests' synthetic twin (both datasets map to the same task)
            name = "tiny-" + task.split("-", 1)[1] if tiny else task
            conv = get_task(name).conv or SVHN_CONV
            for v in variants:
                if (name, v, seed) in seen:
                    continue
                seen.add((name, v, seed))
                K, c, band = variant_settings(v)
                runs.append(StudyRun(name, v, seed, sum(isinstance(i, int) for i in conv),
                                     K, c, band))
    epochs, patience = CNN_EPOCHS, CNN_PATIENCE
    train_limit: int | None = CNN_TRAIN_LIMIT
    if quick:
        epochs, patience, train_limit = 1, 1, QUICK_TRAIN_LIMIT
    if tiny:
        epochs, patience, train_limit = 2, 2, None
    title = ("CNN study: ReLU CNNs (with and without BatchNorm, and a deep plain CNN) with "
             "GAAF, the surrogate-gradient shapes and leaky relu")
    return Study("cnn", title, tuple(runs), seed_list, epochs, patience, train_limit, quick,
                 tiny, (), ())


def _activation_modules(model) -> list:
    from torch import nn

    from gaaf_kernels.adapters.torch import GAAF

    return [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, GAAF))]


def dead_units(model, x, batch_size: int = 1000) -> list[dict[str, Any]]:
    """Per activation layer of ``model`` (in order): its units (channels of a 4-d input,
    features of a 2-d one) and how many never see a positive pre-activation over ``x``."""
    import torch

    acts = _activation_modules(model)
    peaks: list[Any] = [None] * len(acts)

    def hook(i: int):
        def record(module, inputs) -> None:
            z = inputs[0].detach()
            peak = z.amax(dim=(0, 2, 3)) if z.dim() == 4 else z.amax(dim=0)
            peaks[i] = peak if peaks[i] is None else torch.maximum(peaks[i], peak)
        return record

    handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(acts)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    # A NaN peak (a diverged model) counts as dead: it never gave a positive input.
    return [{"units": int(p.numel()), "dead": int((~(p > 0)).sum())} for p in peaks]


class FirstLayerGradRecorder:
    """Training callback: the L2 norm of the first layer's weight gradient at every step
    of epoch 1, taken when backward writes it (before clipping); ``study_cnn_grad.json``
    is written at the end of epoch 1."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / GRAD
        self.norms: list[float] = []
        self.epoch = 0
        self._handle = None

    def on_train_start(self, model, epoch: int) -> None:
        from torch import nn

        self.epoch = epoch + 1
        if self.epoch != 1:
            return  # resumed after epoch 1: its file was written then
        first = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
        self._handle = first.weight.register_hook(self._record)

    def _record(self, grad) -> None:
        if self.epoch == 1:
            self.norms.append(float(grad.detach().norm()))

    def on_epoch_end(self, model, epoch: int, metrics: dict) -> None:
        if epoch == 1 and self.epoch == 1:
            finite = [g for g in self.norms if math.isfinite(g)]
            records.write_json_atomic(self.path, {
                "what": "L2 norm of the first layer's weight gradient per step of epoch 1, "
                        "before clipping", "steps": len(self.norms),
                "mean": sum(finite) / len(finite) if finite else None,
                "max": max(finite) if finite else None,
                "nonfinite_steps": len(self.norms) - len(finite)})
        self.epoch = epoch + 1
        if self._handle is not None and self.epoch > 1:
            self._handle.remove()
            self._handle = None


def run_state(rdir: Path, Ks: tuple[float, ...] = ()) -> str:
    """``done``, ``nets`` (finished, dead-unit statistics missing or stale) or ``train``."""
    rec = records.read_finished(rdir)
    if rec is None:
        return "train"
    dead = records.read_record(rdir / DEAD)
    current = (dead is not None and dead.get("version") == DEAD_VERSION
               and dead.get("final") == rec.get("final"))
    return "done" if current else "nets"


def _dead_statistics(rdir: Path, rec: dict, data_dir, train_limit) -> dict:
    import torch

    from ..datasets import load_splits
    from ..models import build_model
    from ..tasks import get_task

    task = get_task(rec["task"])
    test_x = load_splits(task, data_dir, train_limit).test_x
    torch.manual_seed(rec["seed"])  # the harness's initialization of this run
    start = dead_units(build_model(task, rec["variant"]), test_x)
    model = build_model(task, rec["variant"], init=False)
    model.load_state_dict(torch.load(rdir / records.MODEL, weights_only=True))
    end = dead_units(model, test_x)
    return {"version": DEAD_VERSION, "final": rec["final"], "data": "test set",
            "definition": "units (conv channels, dense features) whose pre-activation is "
                          "never > 0 over the test set; end = converged weights (model.pt)",
            "start": start, "end": end}


def execute_cnn(job, report: Callable[[tuple], None]) -> dict:
    """Train (or resume) one run of the CNN study, then its dead-unit statistics."""
    from ..train import train
    from .runner import _Progress, finished_record, job_config, run_result, start_run

    rdir, cfg = job_config(job)
    t0 = time.perf_counter()
    if job.train:
        start_run(job, cfg, report)
        rec = train(cfg, callbacks=[FirstLayerGradRecorder(rdir),
                                    _Progress(job.run.label, report)])
    else:
        rec = finished_record(rdir)
    records.write_json_atomic(rdir / DEAD,
                              _dead_statistics(rdir, rec, job.data_dir, job.train_limit))
    return run_result(job, rec, t0)
