"""The study's tables and figures, from the run directories only: ``record.json`` (test
accuracy and epoch at the converged epoch, divergence), ``analysis.json`` (mean
``|dL/dz|``), ``study_grads.json`` (mean ``|dL/dW|``) and ``study_nets.json`` (net
values on the test set)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .. import records
from ..analysis.recording import ANALYSIS
from .grid import Study, StudyRun, describe_variant, divergence, fmt_K
from .runner import F32_BITS, GRADS, NETS

__all__ = ["collect", "summarize", "format_markdown", "plot", "FIGURES", "finished_run"]

FIGURES = {"depth": ("accuracy_vs_depth.png", "gradients_per_layer.png",
                     "saturation_vs_depth.png"),
           "sensitivity": ("accuracy_vs_K.png",)}


def _cumulative(path: Path, epoch: int | None) -> list[float] | None:
    """``grad_mean`` of a cumulative per-epoch file at ``epoch`` (None: the last entry),
    if the recording covers the run from its first step."""
    data = records.read_record(path)
    if not data or not data.get("epochs") or data.get("first_step", 1) != 1:
        return None
    entries = data["epochs"]
    if epoch is None:
        return entries[-1]["grad_mean"]
    found = [e for e in entries if e["epoch"] == epoch]
    return found[0]["grad_mean"] if found else None


def _fraction(num: list[int], den: list[int]) -> float | None:
    total = sum(den)
    return sum(num) / total if total else None


def finished_run(runs_dir: Path, run: StudyRun) -> tuple[Path, dict, dict[str, Any]] | None:
    """(run directory, record, the numbers every study's table takes from the record) of
    one finished run; None if it is not finished."""
    rdir = records.run_dir(runs_dir, run.task, run.variant, run.seed)
    rec = records.read_finished(rdir)
    if rec is None:
        return None
    fin = rec["final"]
    return rdir, rec, {
        "task": run.task, "variant": run.variant, "seed": run.seed, "dir": str(rdir),
        "test_acc": fin["test_acc"], "converged_epoch": fin["converged_epoch"],
        "epochs_run": fin["epochs_run"], "diverged": divergence(rec),
        "wall_time_s": rec.get("wall_time_s")}


def run_summary(runs_dir: Path, run: StudyRun) -> dict[str, Any] | None:
    """What the tables need from one finished run, read from its directory (None if the
    run is not finished)."""
    found = finished_run(runs_dir, run)
    if found is None:
        return None
    rdir, rec, out = found
    fin = rec["final"]
    out.update({
        "depth": run.depth, "K": run.K, "c": run.c, "band": run.band,
        "stopped_early": fin["stopped_early"],
        "weight_grad_epoch1": _cumulative(rdir / GRADS, 1),
        "weight_grad_run": _cumulative(rdir / GRADS, None),
        "net_grad_epoch1": _cumulative(rdir / ANALYSIS, 1),
        "net_grad_run": _cumulative(rdir / ANALYSIS, None),
    })
    nets = records.read_record(rdir / NETS)
    if nets is not None and nets.get("final") == fin:
        out["frac_abs_gt2"] = _fraction(nets["abs_gt"], nets["total"])
        out["frac_abs_gt2_layers"] = [a / t if t else None
                                      for a, t in zip(nets["abs_gt"], nets["total"])]
        out["float32"] = {K: {key: _fraction(v, nets["total"]) for key, v in by_bits.items()}
                          for K, by_bits in nets["float32"].items()}
    return out


def collect(study: Study, runs_dir: Path, summary_of=None) -> tuple[list[dict], list[str]]:
    """(summaries of the finished runs, labels of the missing ones), in the study's order;
    ``summary_of(runs_dir, run)`` (default :func:`run_summary`) reads one run."""
    found, missing = [], []
    for run in study.runs:
        summary = (summary_of or run_summary)(runs_dir, run)
        if summary is None:
            missing.append(run.label)
        else:
            found.append(summary)
    return found, missing


def _stats(values: list[float | None]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(vals) if len(vals) > 1 else None
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals)}


def _layerwise(rows: list[dict], key: str) -> list[float] | None:
    lists = [r[key] for r in rows if r.get(key) is not None]
    if not lists or len(lists) != len(rows):
        return None
    return [statistics.fmean(col) for col in zip(*lists)]


def _group(runs: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """One row per distinct ``keys``, in first-seen order, with the statistics over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    rows = []
    for key, rs in groups.items():
        row = dict(zip(keys, key))
        row.update(
            seeds=[r["seed"] for r in rs], runs=len(rs),
            test_acc=_stats([r["test_acc"] for r in rs]),
            converged_epoch=_stats([r["converged_epoch"] for r in rs]),
            epochs_run=_stats([r["epochs_run"] for r in rs]),
            diverged=sum(bool(r["diverged"]) for r in rs),
            frac_abs_gt2=_stats([r.get("frac_abs_gt2") for r in rs]),
            weight_grad_epoch1=_layerwise(rs, "weight_grad_epoch1"),
            weight_grad_run=_layerwise(rs, "weight_grad_run"),
            net_grad_epoch1=_layerwise(rs, "net_grad_epoch1"),
            net_grad_run=_layerwise(rs, "net_grad_run"))
        if all("float32" in r for r in rs):
            row["float32"] = {K: {b: _stats([r["float32"][K][b] for r in rs])
                                  for b in rs[0]["float32"][K]} for K in rs[0]["float32"]}
        rows.append(row)
    return rows


def summarize(study: Study, runs: list[dict]) -> list[dict]:
    """The table rows: depth study per (depth, variant); sensitivity per variant."""
    if study.name == "depth":
        return sorted(_group(runs, ("depth", "variant")), key=lambda r: r["depth"])
    return _group(runs, ("variant", "K", "c", "band"))


# --- markdown ---------------------------------------------------------------------------


def _ms(stat: dict, digits: int = 2, scale: float = 1.0, fmt: str = "f") -> str:
    if stat["mean"] is None:
        return "n/a"
    std = "-" if stat["std"] is None else f"{stat['std'] * scale:.{digits}{fmt}}"
    return f"{stat['mean'] * scale:.{digits}{fmt}} ± {std}"


def _e(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"


def run_lines(study: Study, meta: dict, runs: list[dict], missing: list[str]) -> list[str]:
    """The title, then date, machine, command and runs of a study's table."""
    return [f"# {study.title}{' (quick)' if study.quick else ''}", "",
            f"- Date: {meta['date']}",
            f"- Machine: {meta['machine']['cpu_model']} ({meta['machine']['cpu_count']} "
            f"CPUs), torch {meta['versions']['torch']}, device {meta['device']}, "
            + (f"{meta['jobs']} worker processes" if meta["jobs"] > 1 else "one process")
            + " of one torch thread",
            f"- Command: `{meta['command']}`",
            f"- Runs: `{meta['runs_dir']}` ({len(runs)} finished"
            + (f", {len(missing)} missing" if missing else "") + ")", ""]


def _header(study: Study, meta: dict, runs: list[dict], missing: list[str]) -> list[str]:
    p = meta["protocol"]
    limit = (f", training set limited to its first {study.train_limit} images"
             if study.train_limit else "")
    lines = [*run_lines(study, meta, runs, missing),
             f"Protocol: SGD lr {p['lr']}, momentum {p['momentum']}, batch {p['batch_size']}, "
             f"init {p['init']}, gradient clipping {p.get('grad_clip', 'none')}, at most "
             f"{_epochs(study.epochs)}, patience {study.patience}{limit}; validation: the last "
             f"{p['val_fraction']:.3g} of the training set; {p['convergence']}. Seeds "
             f"{', '.join(map(str, study.seeds))}; mean ± sample std over seeds.", "",
             f"At most {_epochs(study.epochs)}: far fewer than the 82-169 epochs the paper's "
             "MNIST MLP took to converge (its Table 4), so the accuracies compare the "
             "variants early in training, and epochs to converge are capped at "
             f"{study.epochs}.", "",
             "Diverged: a seed whose training or validation loss was NaN/inf in some epoch, "
             "or whose test accuracy is below twice the chance level (20% on 10 classes); "
             "its accuracy is in the mean.", "", "Variants:", ""]
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    lines += [f"- `{v}`: {describe_variant(v)}" for v in variants]
    return [*lines, ""]


def _grad_table(rows: list[dict], key1: str, key2: str) -> list[str]:
    width = max((len(r[key2] or []) for r in rows), default=0)
    if not width:
        return ["(not recorded)", ""]
    names = [f"L{i + 1}" for i in range(width - 1)] + ["last"]
    out = ["| Variant | period | " + " | ".join(names) + " |",
           "|---|---|" + "---|" * width]
    for r in rows:
        for period, key in (("epoch 1", key1), ("whole run", key2)):
            vals = r[key] or []
            out.append(f"| {r['variant']} | {period} | "
                       + " | ".join(_e(v) for v in vals) + " |")
    return [*out, ""]


def _depth_markdown(rows: list[dict]) -> list[str]:
    out = ["## Test accuracy, convergence, divergence, saturation", "",
           "| Depth | Variant | Test accuracy (%) | Epochs to converge | Epochs run | "
           "Diverged (seeds) | Net values with abs(x) > 2 (%) | Runs |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['depth']} | {r['variant']} | {_ms(r['test_acc'])} | "
                   f"{_ms(r['converged_epoch'], 1)} | {_ms(r['epochs_run'], 1)} | "
                   f"{r['diverged']}/{r['runs']} | {_ms(r['frac_abs_gt2'], 2, 100)} | "
                   f"{r['runs']} |")
    out += ["", "Net values: the inputs of the activations (outputs of the hidden Linear "
            "layers) on the test set, converged weights, all hidden layers together.", ""]
    for title, k1, k2 in (
            ("Mean abs(dL/dW) per Linear layer's weight", "weight_grad_epoch1",
             "weight_grad_run"),
            ("Mean abs(dL/dz) per Linear layer's output (the paper's Table 2)",
             "net_grad_epoch1", "net_grad_run")):
        out += [f"## {title}: epoch 1 and the whole run", "",
                "Mean over the elements (and the batch), then over the optimizer steps; "
                "L1 is the bottom layer, last the output layer; means over seeds.", ""]
        for depth in dict.fromkeys(r["depth"] for r in rows):
            out += [f"### {depth} hidden layers", "",
                    *_grad_table([r for r in rows if r["depth"] == depth], k1, k2)]
    return out


def _cell(row: dict | None) -> str:
    if row is None:
        return "n/a | n/a"
    return f"{_ms(row['test_acc'])} | {row['diverged']}/{row['runs']}"


def _sensitivity_markdown(study: Study, rows: list[dict]) -> list[str]:
    def find(K, c, band):
        return next((r for r in rows if r["K"] == K and r["c"] == c and r["band"] == band),
                    None)

    base = next((r for r in rows if r["variant"] == "base"), None)
    out = ["## Test accuracy (%) against K (gaussian c = 3)", "",
           "| K | default shape | diverged | band | diverged |", "|---|---|---|---|---|"]
    out += [f"| {fmt_K(K)} | {_cell(find(K, 3.0, False))} | {_cell(find(K, 3.0, True))} |"
            for K in study.Ks]
    out += ["", "## Test accuracy (%) against c (K = 1e4)", "",
            "| c | default shape | diverged | band | diverged |", "|---|---|---|---|---|"]
    out += [f"| {c:g} | {_cell(find(1e4, c, False))} | {_cell(find(1e4, c, True))} |"
            for c in study.cs]
    out += ["", f"Reference, the base model (tanh): {_cell(base).replace(' | ', ' %, diverged ')}"
            " seeds.", "",
            "## float32 and the sawtooth", "",
            "x*K (float32) keeps no fractional bit once abs(x*K) >= 2^23, so the sawtooth "
            "is then a constant -0.5/K (the forward loses GAAF's perturbation g(x) s(x); "
            "the added derivative s(x) does not depend on g, only the small g(x) s'(x) "
            "does), and fewer than 8 fractional bits once "
            "abs(x*K) >= 2^15. Fractions (%) of the net values on the test set (converged "
            "weights, all hidden layers) beyond those bounds, for the models trained with "
            "that K (c = 3) and for the base model's net values:", "",
            "| K | abs(x) from (2^23/K) | >= 2^23: default | band | base | "
            "abs(x) from (2^15/K) | >= 2^15: default | band | base |",
            "|---|---|---|---|---|---|---|---|---|"]
    for K in study.Ks:
        key = f"{fmt_K(K)}"
        cells = []
        for bits in F32_BITS:
            cells.append(f"{2.0 ** bits / K:.4g}")
            for r in (find(K, 3.0, False), find(K, 3.0, True), base):
                stat = (r or {}).get("float32", {}).get(key, {}).get(f"ge_2^{bits}")
                cells.append("n/a" if stat is None else _ms(stat, 3, 100, "g"))
        out.append(f"| {fmt_K(K)} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def format_markdown(study: Study, meta: dict, runs: list[dict], rows: list[dict],
                    missing: list[str]) -> str:
    out = _header(study, meta, runs, missing)
    out += _depth_markdown(rows) if study.name == "depth" else _sensitivity_markdown(study, rows)
    if missing:
        out += ["## Missing runs (not finished)", "", *[f"- {m}" for m in missing], ""]
    return "\n".join(out)


def to_json(study: Study, meta: dict, runs: list[dict], rows: list[dict],
            missing: list[str]) -> bytes:
    data = {"study": study.name, "title": study.title, "quick": study.quick, **meta,
            "epochs": study.epochs, "patience": study.patience,
            "train_limit": study.train_limit, "seeds": list(study.seeds),
            "rows": rows, "runs": runs, "missing": missing}
    return (json.dumps(data, indent=1, allow_nan=True) + "\n").encode()


# --- figures ----------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _errorbar(ax, xs, stats, label, scale=1.0, **kw) -> None:
    pts = [(x, s["mean"] * scale, (s["std"] or 0.0) * scale) for x, s in zip(xs, stats)
           if s["mean"] is not None]
    if pts:
        x, y, e = zip(*pts)
        ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=label, **kw)


def _save(fig, path: Path, write) -> None:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    write(path, buf.getvalue())


def _plot_depth(study: Study, rows: list[dict], out: Path, write) -> None:
    plt = _plt()
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    depths = list(dict.fromkeys(r["depth"] for r in rows))
    by = {(r["depth"], r["variant"]): r for r in rows}
    for name, key, ylabel, scale in (
            ("accuracy_vs_depth.png", "test_acc", "test accuracy (%)", 1.0),
            ("saturation_vs_depth.png", "frac_abs_gt2", "net values with |x| > 2 (%)", 100.0)):
        fig, ax = plt.subplots(figsize=(6, 4))
        for v in variants:
            ds = [d for d in sorted(depths) if (d, v) in by]
            _errorbar(ax, ds, [by[d, v][key] for d in ds], v, scale)
        ax.set(xlabel="hidden layers", ylabel=ylabel, xticks=sorted(depths),
               title=f"{ylabel} (error bars: std over seeds)")
        ax.legend(fontsize=8)
        _save(fig, out / name, write)
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, len(depths), figsize=(4 * len(depths), 6.5), squeeze=False)
    for col, d in enumerate(sorted(depths)):
        for row, (key, period) in enumerate((("weight_grad_epoch1", "epoch 1"),
                                             ("weight_grad_run", "whole run"))):
            ax = axes[row, col]
            for v in variants:
                vals = (by.get((d, v)) or {}).get(key)
                if vals:
                    ax.plot(range(1, len(vals) + 1), vals, marker=".", label=v)
            ax.set(yscale="log", xlabel="Linear layer (1 = bottom)")
            ax.set_title(f"{d} hidden layers: mean |dL/dW|, {period}", fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=7)
    _save(fig, out / "gradients_per_layer.png", write)


def _plot_sensitivity(study: Study, rows: list[dict], out: Path, write) -> None:
    plt = _plt()
    base = next((r for r in rows if r["variant"] == "base"), None)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, what, values, fixed in ((axes[0], "K", study.Ks, "c = 3"),
                                    (axes[1], "c", study.cs, "K = 1e4")):
        for band, label in ((False, "default shape"), (True, "band")):
            pts = [(x, next((r for r in rows if r["band"] == band and r["variant"] != "base"
                             and r["K"] == (x if what == "K" else 1e4)
                             and r["c"] == (3.0 if what == "K" else x)), None))
                   for x in values]
            found = [(x, r) for x, r in pts if r is not None]
            _errorbar(ax, [x for x, _ in found], [r["test_acc"] for _, r in found], label)
        if base is not None and base["test_acc"]["mean"] is not None:
            m, s = base["test_acc"]["mean"], base["test_acc"]["std"] or 0.0
            ax.axhline(m, color="gray", ls="--", label="base (tanh)")
            ax.axhspan(m - s, m + s, color="gray", alpha=0.15)
        ax.set(xscale="log", xlabel=what, ylabel="test accuracy (%)",
               title=f"accuracy against {what} ({fixed}; error bars: std over seeds)")
        ax.set_xticks(values, [fmt_K(v) for v in values])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    _save(fig, out / "accuracy_vs_K.png", write)


def plot(study: Study, rows: list[dict], out: Path, write) -> list[Path]:
    """Write the study's PNGs with ``write(path, bytes)``; return their paths."""
    if not rows:
        return []
    if study.name == "depth":
        _plot_depth(study, rows, out, write)
    else:
        _plot_sensitivity(study, rows, out, write)
    return [out / name for name in FIGURES[study.name]]

