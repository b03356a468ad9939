"""The CNN study's tables and figures, from the run directories only: ``record.json``
(test accuracy at the converged epoch, epochs, divergence, per-epoch validation
accuracy), ``study_cnn_grad.json`` and ``study_cnn_dead.json`` (:mod:`.cnn`)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from .. import records
from ..models import LEAKY_SLOPE, gaaf_settings
from ..tasks import get_task
from . import report
from .cnn import DEAD, GRAD
from .grid import Study, trained_floor
from .report import _ms, _plt, _save, _stats, to_json

__all__ = ["collect", "summarize", "format_markdown", "to_json", "plot", "FIGURES",
           "describe_cnn_variant", "MODELS"]

FIGURES = ("accuracy.png", "dead_units.png", "val_accuracy_vs_epoch.png")
MODELS = {"cnn-study": "the harness's CNN (4 conv + 2 dense, BatchNorm where named)",
          "deep-cnn": "deep plain CNN (10 conv of 16 channels, 1 dense of 256, no BatchNorm)"}


def describe_cnn_variant(variant: str) -> str:
    """A CNN study variant in words."""
    parts = variant.split("-")
    text = "BatchNorm, " if "bn" in parts else ""
    settings = gaaf_settings(variant)
    if settings is not None:
        shape = settings.get("shape")
        text += ("GAAF relu, shape " + (f"{shape} (surrogate gradient)" if shape else
                                        "sigmoid(x + 4) (relu's default)"))
        text += ", band" if settings.get("band") else ""
    elif "leaky" in parts:
        text += f"leaky relu, slope {LEAKY_SLOPE}"
    else:
        text += "plain relu"
    return text + (", no gradient clipping" if "noclip" in parts else "")


def _model(task: str) -> str:
    return "deep-cnn" if "deep-cnn" in task else "cnn-study"


_OPTIMIZER_FIELDS = ("optimizer", "lr", "momentum", "weight_decay")


def _protocol_difference(task: str, shown: dict) -> str:
    """How ``task``'s protocol differs from the one in the header ("" if it does not);
    the study's own epochs and patience apply to every task alike."""
    mine = json.loads(json.dumps(get_task(task).protocol.to_dict()))
    keys = [k for k in {*mine, *shown} - {"max_epochs", "patience"}
            if mine.get(k) != shown.get(k)]
    parts = []
    if any(k in _OPTIMIZER_FIELDS for k in keys):
        parts.append(f"{_optimizer(mine)}, weight decay {mine['weight_decay']}")
    parts += [f"{k} {mine.get(k, 'unset')}" for k in sorted(keys) if k not in _OPTIMIZER_FIELDS]
    return "; ".join(parts)


def _optimizer(p: dict) -> str:
    if p.get("optimizer", "sgd") == "adam":
        return f"Adam lr {p['lr']} (PyTorch's betas and eps)"
    return f"SGD lr {p['lr']}, momentum {p['momentum']}"


def _dataset(task: str) -> str:
    return task.split("-", 1)[0]


def _dead_share(layers: list[dict] | None) -> float | None:
    if not layers:
        return None
    units = sum(L["units"] for L in layers)
    return sum(L["dead"] for L in layers) / units if units else None


def run_summary(runs_dir: Path, run) -> dict[str, Any] | None:
    """One finished run's numbers (None if it is not finished)."""
    found = report.finished_run(runs_dir, run)
    if found is None:
        return None
    rdir, rec, out = found
    fin = rec["final"]
    out.update(dataset=_dataset(run.task), model=_model(run.task),
               val_acc=[h["val_acc"] for h in rec.get("epochs", [])])
    grad = records.read_record(rdir / GRAD)
    out["grad_norm_epoch1"] = (grad or {}).get("mean")
    out["grad_nonfinite_steps"] = (grad or {}).get("nonfinite_steps")
    dead = records.read_record(rdir / DEAD)
    if dead is not None and dead.get("final") == fin:
        out["dead_start"] = _dead_share(dead["start"])
        out["dead_end"] = _dead_share(dead["end"])
        out["dead_end_layers"] = [L["dead"] / L["units"] for L in dead["end"]]
        out["dead_start_layers"] = [L["dead"] / L["units"] for L in dead["start"]]
    return out


def collect(study: Study, runs_dir: Path) -> tuple[list[dict], list[str]]:
    """(summaries of the finished runs, labels of the missing ones), in the study's order."""
    return report.collect(study, runs_dir, run_summary)


def _mean_lists(lists: list[list[float]]) -> list[float] | None:
    if not lists or any(len(x) != len(lists[0]) for x in lists):
        return None
    return [statistics.fmean(col) for col in zip(*lists)]


def summarize(study: Study, runs: list[dict]) -> list[dict]:
    """One row per (task, variant): statistics over seeds, and the difference from the
    task's base relu in units of the pooled seed standard deviation."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["variant"]), []).append(r)
    rows = []
    for (task, variant), rs in groups.items():
        rows.append({
            "task": task, "dataset": rs[0]["dataset"], "model": rs[0]["model"],
            "variant": variant, "seeds": [r["seed"] for r in rs], "runs": len(rs),
            "test_acc": _stats([r["test_acc"] for r in rs]),
            "test_accs": [r["test_acc"] for r in rs],
            "converged_epoch": _stats([r["converged_epoch"] for r in rs]),
            "diverged": sum(bool(r["diverged"]) for r in rs),
            "dead_start": _stats([r.get("dead_start") for r in rs]),
            "dead_end": _stats([r.get("dead_end") for r in rs]),
            "dead_end_layers": _mean_lists([r["dead_end_layers"] for r in rs
                                            if r.get("dead_end_layers") is not None]),
            "dead_start_layers": _mean_lists([r["dead_start_layers"] for r in rs
                                              if r.get("dead_start_layers") is not None]),
            "grad_norm_epoch1": _stats([r.get("grad_norm_epoch1") for r in rs]),
            "val_acc": _mean_lists([r["val_acc"] for r in rs])})
    for row in rows:
        row["vs_base_sd"] = _vs_base(row, rows)
    return rows


def _vs_base(row: dict, rows: list[dict]) -> float | None:
    """(mean - base mean) / pooled seed std; None without two seeds on both sides, or when
    no seed left a trained model (every test accuracy below twice chance, as in
    ``divergence``: a chance-level mean over a tiny spread makes the ratio meaningless)."""
    floor = trained_floor(row["task"])
    if all(not acc >= floor for acc in row["test_accs"]):
        return None
    base_name = "bn" if row["variant"].split("-")[0] == "bn" else "base"
    base = next((r for r in rows if r["task"] == row["task"] and r["variant"] == base_name),
                None)
    a, b = row["test_acc"], (base or {}).get("test_acc")
    if b is None or a["std"] is None or b["std"] is None:
        return None
    pooled = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / 2)
    return (a["mean"] - b["mean"]) / pooled if pooled > 0 else None


def _header(study: Study, meta: dict, runs: list[dict], missing: list[str]) -> list[str]:
    p = meta["protocol"]
    limit = (f"the first {study.train_limit} training images" if study.train_limit
             else "the whole training set")
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    return [
        *report.run_lines(study, meta, runs, missing),
        f"Protocol: {_optimizer(p)}, weight decay "
        f"{p['weight_decay']}, batch {p['batch_size']}, init {p['init']}, inputs normalized "
        f"per channel, gradient clipping at global norm {p.get('grad_clip', 'off')} (not in "
        f"the `noclip` variants); {limit}, at most {study.epochs} epochs (a cap, not "
        f"convergence), patience {study.patience}; validation: the last "
        f"{p['val_fraction']:.3g} of the training set; test: the whole test set at the "
        "epoch of the best validation accuracy. Seeds "
        f"{', '.join(map(str, study.seeds))}; mean ± sample std over seeds.", "",
        "Dead units: channels (conv) or features (dense) whose pre-activation is never "
        "positive over the test set, all activation layers together; start = the "
        "initialization, end = the converged weights. Gradient norm: the L2 norm of the "
        "first conv layer's weight gradient, before clipping, mean over the steps of "
        "epoch 1. vs base: (mean - base mean) / pooled seed std (`bn` rows against `bn`; "
        "empty where no seed trained, every test accuracy below twice chance). "
        "Diverged: a non-finite loss in some epoch, or a test accuracy below 20%.", "",
        "Models: " + "; ".join(f"`{k}`: {v}" for k, v in MODELS.items()) + ".", "",
        "Variants:", "", *[f"- `{v}`: {describe_cnn_variant(v)}" for v in variants], ""]


def format_markdown(study: Study, meta: dict, runs: list[dict], rows: list[dict],
                    missing: list[str]) -> str:
    out = _header(study, meta, runs, missing)
    for task in dict.fromkeys(r["task"] for r in rows):
        rs = [r for r in rows if r["task"] == task]
        out += [f"## {task}: {MODELS[rs[0]['model']]}", ""]
        differs = _protocol_difference(task, meta["protocol"])
        if differs:
            out += [f"Protocol: as above, but {differs}.", ""]
        out += [
                "| Variant | Test accuracy (%) | vs base (sd) | Epochs to converge | "
                "Diverged | Dead units start (%) | Dead units end (%) | "
                "Grad norm epoch 1 | Runs |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            vs = "" if r["vs_base_sd"] is None else f"{r['vs_base_sd']:+.1f}"
            out.append(
                f"| {r['variant']} | {_ms(r['test_acc'])} | {vs} | "
                f"{_ms(r['converged_epoch'], 1)} | {r['diverged']}/{r['runs']} | "
                f"{_ms(r['dead_start'], 1, 100)} | {_ms(r['dead_end'], 1, 100)} | "
                f"{_ms(r['grad_norm_epoch1'], 3, 1, 'g')} | {r['runs']} |")
        out.append("")
        layers = [r for r in rs if r["dead_end_layers"]]
        if layers:
            width = len(layers[0]["dead_end_layers"])
            out += ["Dead units per activation layer at the end (%, mean over seeds; "
                    "L1 = the first):", "",
                    "| Variant | " + " | ".join(f"L{i + 1}" for i in range(width)) + " |",
                    "|---|" + "---|" * width]
            out += [f"| {r['variant']} | "
                    + " | ".join(f"{100 * v:.1f}" for v in r["dead_end_layers"]) + " |"
                    for r in layers if len(r["dead_end_layers"]) == width]
            out.append("")
    if missing:
        out += ["## Missing runs (not finished)", "", *[f"- {m}" for m in missing], ""]
    return "\n".join(out)


def _panels(plt, n: int, per_row: int = 3) -> tuple[Any, list]:
    """A figure of ``n`` panels, at most ``per_row`` a row; the spare ones hidden."""
    cols = min(n, per_row)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.2 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot(study: Study, rows: list[dict], out: Path, write) -> list[Path]:
    """accuracy.png (test accuracy per variant, each task a panel), dead_units.png (dead
    units per layer at the end), val_accuracy_vs_epoch.png; returns their paths."""
    if not rows:
        return []
    plt = _plt()
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = _panels(plt, len(tasks))
    for ax, task in zip(axes, tasks):
        rs = [r for r in rows if r["task"] == task]
        ys = [r["test_acc"]["mean"] if r["test_acc"]["mean"] is not None else math.nan
              for r in rs]
        errs = [r["test_acc"]["std"] or 0.0 for r in rs]
        colors = ["tab:blue" if "gaaf" in r["variant"].split("-") else "tab:gray" for r in rs]
        ax.barh(range(len(rs)), ys, xerr=errs, color=colors, capsize=3, alpha=0.8)
        for i, r in enumerate(rs):  # each seed's run
            ax.plot(r["test_accs"], [i] * len(r["test_accs"]), "k.", ms=4)
        ax.set_yticks(range(len(rs)), [r["variant"] for r in rs], fontsize=8)
        finite = [y for y in ys if math.isfinite(y) and y > 20]
        if finite:
            left = max(0.0, min(finite) - 3)
            ax.set_xlim(left, min(100.0, max(finite) + 2))
            for i, y in enumerate(ys):
                if not y >= left:  # off the axis: say what happened
                    ax.text(left + 0.2, i, f"diverged ({y:.0f}%)" if math.isfinite(y)
                            else "no result", va="center", fontsize=8, color="tab:red")
        ax.invert_yaxis()
        ax.set(xlabel="test accuracy (%)",
               title=f"{task}: mean, std and each seed (dots); blue = GAAF")
        ax.title.set_fontsize(9)
    _save(fig, out / FIGURES[0], write)

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cmap = plt.get_cmap("tab20")
    color = {v: cmap(i % 20) for i, v in enumerate(variants)}  # the same in every panel

    def trained(r: dict) -> bool:
        return r["diverged"] < r["runs"]  # rows whose every seed diverged are left out

    fig, axes = _panels(plt, len(tasks))
    for ax, task in zip(axes, tasks):
        rs = [r for r in rows if r["task"] == task]
        start = next((r["dead_start_layers"] for r in rs if r.get("dead_start_layers")), None)
        if start:
            ax.plot(range(1, len(start) + 1), [100 * v for v in start], "k--", marker="x",
                    label="initialization (base)")
        for r in (r for r in rs if r["dead_end_layers"] and trained(r)):
            vals = [100 * v for v in r["dead_end_layers"]]
            ax.plot(range(1, len(vals) + 1), vals, marker=".", color=color[r["variant"]],
                    label=r["variant"])
        ax.set(xlabel="activation layer (1 = first)", ylabel="dead units (%)",
               title=f"{task}: never-positive units on the test set, end of training")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    _save(fig, out / FIGURES[1], write)

    fig, axes = _panels(plt, len(tasks))
    for ax, task in zip(axes, tasks):
        rs = [r for r in rows if r["task"] == task and r["val_acc"]]
        for r in rs:
            ax.plot(range(1, len(r["val_acc"]) + 1), r["val_acc"], marker=".",
                    color=color[r["variant"]], ls="-" if trained(r) else ":",
                    label=r["variant"] + ("" if trained(r) else " (diverged)"))
        ok = [a for r in rs if trained(r) for a in r["val_acc"]]
        if ok:
            ax.set_ylim(min(ok) - 3, max(ok) + 1)
        ax.set(xlabel="epoch", ylabel="validation accuracy (%, mean over seeds)",
               title=f"{task} (diverged rows: below the axis)")
        ax.title.set_fontsize(9)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    _save(fig, out / FIGURES[2], write)
    return [out / name for name in FIGURES]
