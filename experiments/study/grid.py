"""What each study runs: its tasks, variants, seeds and protocol (``gaaf study``).

The protocol values are chosen for wall time on the machine this was written on (2-core
CPU, two worker processes of one torch thread each); the measurements behind them are in
the comments. Every value ends up in each run's ``record.json`` (``config.protocol``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..models import gaaf_settings
from ..tasks import (
    DEPTH_VARIANTS,
    SENSITIVITY_CS,
    SENSITIVITY_KS,
    STUDY_DEPTHS,
    get_task,
    sensitivity_variant,
)

__all__ = ["STUDIES", "Study", "StudyRun", "make_study", "variant_settings", "divergence",
           "trained_floor", "describe_variant", "fmt_K",
           "DEPTH_EPOCHS", "DEPTH_PATIENCE", "SENSITIVITY_EPOCHS", "SENSITIVITY_PATIENCE",
           "SEEDS", "QUICK_EPOCHS", "QUICK_TRAIN_LIMIT"]

STUDIES = ("depth", "sensitivity", "cnn", "lm")  # lm: study/lm.py, its own protocol
SEEDS = 3

# Depth study: 30 epochs, sized from measured epoch times (docs/reproduction.md) so that
# the whole grid fits about an hour with --jobs 2 on a 2-core CPU if every run goes the
# distance, less as runs stop early: a patience of 8 (about a quarter of the epochs)
# stops a run that no longer improves, a diverged one within its first ~9 epochs. Runs
# start deepest first, so the last to finish is a short one.
DEPTH_EPOCHS = 30
DEPTH_PATIENCE = 8

# Sensitivity study: 45 runs (15 variants x 3 seeds) of 784-512-256-256-10. 12 epochs on
# the full training set, sized the same way to a fraction of the depth study's hour (it
# runs after it; docs/reproduction.md). That is far from the paper's 80-170 epochs to
# converge (the table says so): a comparison of K and c early in training. The full
# training set rather than a subset, because the float32 effect depends on how large the
# net values have grown. Patience 4 (a third) stops runs that no longer improve or
# diverge.
SENSITIVITY_EPOCHS = 12
SENSITIVITY_PATIENCE = 4

# --quick: a reduced grid, one seed, one epoch on the first 2000 training images (the
# validation and test sets stay whole); under two minutes on the 2-core CPU.
QUICK_EPOCHS = 1
QUICK_TRAIN_LIMIT = 2000
QUICK_DEPTHS = (3, 6)
QUICK_KS = (1e2, 1e4, 1e6)
QUICK_CS = (3.0, 10.0)


@dataclass(frozen=True)
class StudyRun:
    """One (task, variant, seed) of a study, with the coordinates it is reported at."""

    task: str
    variant: str
    seed: int
    depth: int  # hidden layers (the CNN study: conv layers)
    K: float | None  # None for variants without GAAF
    c: float | None
    band: bool

    @property
    def label(self) -> str:
        return f"{self.task}/{self.variant}/seed{self.seed}"


@dataclass(frozen=True)
class Study:
    """A study's runs and protocol."""

    name: str  # "depth", "sensitivity" or "cnn"
    title: str
    runs: tuple[StudyRun, ...]
    seeds: tuple[int, ...]
    epochs: int
    patience: int
    train_limit: int | None
    quick: bool
    tiny: bool
    Ks: tuple[float, ...]  # the K values of the sensitivity grid (float32 statistics)
    cs: tuple[float, ...]


def variant_settings(variant: str) -> tuple[float | None, float | None, bool]:
    """(K, gaussian c, band) of a variant (K and c None without GAAF); the defaults of the
    tanh GAAF are K = 1e4 and c = 3."""
    settings = gaaf_settings(variant)
    if settings is None:
        return None, None, False
    c = settings.get("shape_params", {}).get("c", 3.0)
    return settings.get("K", 1e4), c, bool(settings.get("band", False))


def _run(task: str, variant: str, seed: int) -> StudyRun:
    K, c, band = variant_settings(variant)
    return StudyRun(task, variant, seed, len(get_task(task).widths), K, c, band)


def _seeds(seeds: int | None, quick: bool) -> tuple[int, ...]:
    return tuple(range(seeds if seeds is not None else (1 if quick else SEEDS)))


def make_study(name: str, *, quick: bool = False, seeds: int | None = None,
               tiny: bool = False) -> Study:
    """The study called ``name`` (``ValueError`` otherwise). ``tiny`` swaps MNIST for the
    synthetic data of the tests (tasks ``tiny-deep<D>``, ``tiny-mlp-sens``)."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose from {', '.join(STUDIES)}")
    if name == "lm":
        raise ValueError("the lm study is not a grid of harness runs: study.lm.run_lm_study")
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if name == "cnn":
        from .cnn import make_cnn_study

        return make_cnn_study(quick=quick, seeds=seeds, tiny=tiny)
    seed_list = _seeds(seeds, quick)
    prefix = "tiny" if tiny else "mnist"
    if name == "depth":
        depths = QUICK_DEPTHS if quick else STUDY_DEPTHS
        # Deepest first: the longest runs start first, so the last one to finish is short.
        runs = tuple(_run(f"{prefix}-deep{d}", v, s) for d in sorted(depths, reverse=True)
                     for s in seed_list for v in DEPTH_VARIANTS)
        title = (f"Depth study: tanh MLPs of {', '.join(map(str, depths))} hidden layers of "
                 f"{get_task(f'{prefix}-deep{depths[0]}').widths[0]}")
        epochs, patience = DEPTH_EPOCHS, DEPTH_PATIENCE
        Ks: tuple[float, ...] = (1e4,)
        cs: tuple[float, ...] = (3.0,)
    else:
        Ks = QUICK_KS if quick else SENSITIVITY_KS
        cs = QUICK_CS if quick else SENSITIVITY_CS
        variants = ["base"]
        for band in (False, True):
            variants += [sensitivity_variant(band, K=K) for K in Ks]
            variants += [sensitivity_variant(band, c=c) for c in cs if c != 3.0]
        task = f"{prefix}-mlp-sens"
        runs = tuple(_run(task, v, s) for s in seed_list for v in variants)
        widths = "-".join(map(str, get_task(task).widths))
        title = f"Sensitivity study: K and c of GAAF on the MLP {widths}, tanh"
        epochs, patience = SENSITIVITY_EPOCHS, SENSITIVITY_PATIENCE
    train_limit = None
    if quick:
        epochs, patience, train_limit = QUICK_EPOCHS, QUICK_EPOCHS, QUICK_TRAIN_LIMIT
    if tiny:
        # The tiny tasks' own short protocol (a few batches per epoch).
        epochs = min(epochs, get_task(runs[0].task).protocol.max_epochs)
        patience = min(patience, epochs)
        train_limit = None
    return Study(name, title, runs, seed_list, epochs, patience, train_limit, quick, tiny,
                 tuple(Ks), tuple(cs))


def describe_variant(variant: str) -> str:
    """A variant in words, for the tables."""
    K, c, band = variant_settings(variant)
    if variant == "base":
        return "plain tanh"
    if variant == "dropout":
        return "tanh, dropout p = 0.5 after every hidden layer"
    assert K is not None and c is not None  # every variant but base and dropout has them
    text = f"GAAF tanh, gaussian shape c = {c:g}, K = {fmt_K(K)}"
    if band:
        text += ", band: s(x) (1 - tanh'(x)/m), m = sup |tanh'| = 1"
    return text


def fmt_K(K: float) -> str:
    """``1e+06`` as ``1e6``; other values as ``%g``."""
    text = f"{K:g}"
    return text.replace("e+0", "e").replace("e+", "e") if "e" in text else text


def divergence(rec: dict) -> str:
    """Why a finished run counts as diverged ("" if it does not): a non-finite training or
    validation loss in some epoch, or a test accuracy (converged epoch) below twice the
    chance level (20% on 10 classes)."""
    for h in rec.get("epochs", []):
        for key in ("train_loss", "val_loss"):
            if not math.isfinite(h[key]):
                return f"{key} {h[key]} in epoch {h['epoch']}"
    floor = trained_floor(rec["task"])
    acc = rec["final"]["test_acc"]
    if not acc >= floor:
        return f"test accuracy {acc:.2f}% < {floor:g}% (2x chance)"
    return ""


def trained_floor(task: str) -> float:
    """The test accuracy (%) below which a run counts as untrained: twice chance."""
    return 2 * 100.0 / get_task(task).num_classes
