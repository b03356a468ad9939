"""The tables and figures of ``gaaf study lm``, from the runs' ``record.json`` only:
per variant, the mean ± sample sd over seeds of the final validation loss, its distance
from base in seed standard deviations, tokens per second and the share of GELU inputs
below -3; validation loss and that share against the steps."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from .. import records
from .lm import LM_VARIANTS, VAL_EVERY, LMProtocol

__all__ = ["FIGURES", "collect", "summarize", "format_markdown", "to_json", "plot"]

FIGURES = ("val_loss_vs_steps.png", "gelu_below_vs_steps.png")
DESCRIPTIONS = {
    "base": "GPT-2's own `NewGELUActivation` (`gelu_new`: GELU's tanh approximation)",
    "gaaf": "`convert(model)`: every MLP's GELU becomes GAAF gelu_tanh, default shape",
    "gaaf-band": "`convert(model, band=True)`: the same with the saturation band",
}


def collect(jobs: list) -> tuple[list[dict], list[str]]:
    """(the finished runs' records, labels of the missing ones), in the jobs' order."""
    from .lm_train import expected_config

    found, missing = [], []
    for job in jobs:
        rec = records.read_finished(job.rdir)
        if rec is None or rec.get("config") != expected_config(job):
            missing.append(job.label)
            continue
        found.append({"variant": rec["variant"], "seed": rec["seed"], "dir": str(job.rdir),
                      "final": rec["final"], "history": rec["history"],
                      "activations": rec["model"]["activations"],
                      "wall_time_s": rec["wall_time_s"],
                      "torch_threads": rec["machine"].get("torch_threads")})
    return found, missing


def _stats(values: list) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(vals) if len(vals) > 1 else None
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals)}


def _layer_means(lists: list) -> list[float] | None:
    """Per layer, the mean over seeds (None if a record lacks the key)."""
    if not lists or any(x is None for x in lists):
        return None
    return [statistics.fmean(col) for col in zip(*lists)]


def _sds_from(row: dict, base: dict | None) -> float | None:
    """(mean - base mean) / pooled sd of the final validation loss, sqrt((sd^2 + sd_base^2)
    / 2); None without two seeds on both sides."""
    if base is None or row is base:
        return None
    a, b = row["val_loss"], base["val_loss"]
    if a["std"] is None or b["std"] is None:
        return None
    pooled = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / 2)
    return (a["mean"] - b["mean"]) / pooled if pooled > 0 else None


def summarize(runs: list[dict]) -> tuple[list[dict], dict[str, dict]]:
    """(one row per variant, curves per variant: mean and sd over seeds at each step)."""
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict] = {}
    for variant in LM_VARIANTS:
        rs = [r for r in runs if r["variant"] == variant]
        if not rs:
            continue
        fins = [r["final"] for r in rs]
        rows.append({
            "variant": variant, "seeds": [r["seed"] for r in rs], "runs": len(rs),
            **{key: _stats([f[key] for f in fins])
               for key in ("val_loss", "val_bpb", "train_loss", "tokens_per_s", "below_start",
                           "below")},
            **{key: _layer_means([f.get(key) for f in fins])
               for key in ("below_layers", "input_min_layers", "input_std_layers")},
            "diverged": sum(f["diverged_step"] is not None for f in fins)})
        steps = sorted({h["step"] for r in rs for h in r["history"]})
        curve: dict[str, Any] = {"steps": steps}
        for key in ("val_loss", "below", "train_loss"):
            at = [[h[key] for r in rs for h in r["history"] if h["step"] == s] for s in steps]
            curve[key] = [_stats(v) for v in at]
        curves[variant] = curve
    base = next((r for r in rows if r["variant"] == "base"), None)
    for row in rows:
        row["val_loss_sds_from_base"] = _sds_from(row, base)
    return rows, curves


def _ms(stat: dict, digits: int = 3, scale: float = 1.0) -> str:
    if stat["mean"] is None:
        return "n/a"
    std = "-" if stat["std"] is None else f"{stat['std'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f} ± {std}"


def _header(meta: dict, runs: list[dict], missing: list[str]) -> list[str]:
    p, c, m, v = meta["protocol"], meta["corpus"], meta["machine"], meta["versions"]
    layers = f"{p['n_layer']} layer{'s' if p['n_layer'] != 1 else ''}"
    title = (f"# Transformer study: GPT-2 ({layers}, width {p['n_embd']}) on "
             f"the bytes of {'a synthetic corpus' if meta['tiny'] else 'Python stdlib sources'}"
             + (" (quick)" if meta["quick"] else ""))
    how = (f"{meta['jobs']} worker processes of one torch thread" if meta["jobs"] > 1
           else f"one process of {m['torch_threads']} torch threads")
    return [
        title, "",
        f"- Date: {meta['date']}",
        f"- Machine: {m['cpu_model']} ({m['cpu_count']} CPUs), device {meta['device']}, "
        f"{how}; Python {v['python']}, torch {v['torch']}, transformers {v['transformers']}",
        f"- Command: `{meta['command']}`",
        f"- Runs: `{meta['runs_dir']}` ({len(runs)} finished"
        + (f", {len(missing)} missing" if missing else "") + ")", "",
        f"Protocol: {p['steps']} steps of {p['batch_size']} windows of {p['context']} bytes "
        f"(next-byte cross-entropy at every position) drawn at random offsets of the "
        f"training split, the same stream for every variant of a seed; AdamW, betas "
        f"{tuple(p['betas'])}, weight decay {p['weight_decay']} (every parameter), lr "
        f"{p['lr']:g} after {p['warmup']} linear warmup steps, cosine decay to "
        f"{p['min_lr']:g} at the last step; no gradient clipping (it would rescale what "
        f"GAAF adds). Model: GPT2LMHeadModel, vocabulary 256 (bytes), {layers}, width "
        f"{p['n_embd']}, {p['n_head']} heads, context {p['context']}, dropout 0 (short "
        f"runs; the variants of a seed then start from the same weights and see the same "
        f"batches, deterministically). Evaluation at step 0 and every "
        f"{p['eval_every']} steps on the same {p['val_windows']} windows, evenly spaced over "
        f"the validation split. Seeds {', '.join(map(str, meta['seeds']))}; mean ± sample "
        f"sd over seeds.", "",
        f"Corpus: {len(c['train_files']) + len(c['val_files'])} files of `{c['source']}` "
        f"(Python {c['python']}), sorted by name; file i is validation if i % {VAL_EVERY} "
        f"== {VAL_EVERY - 1}. Validation ({c['val_bytes']} bytes, sha256 "
        f"`{c['sha256']['val'][:16]}…`): {', '.join(c['val_files'])}. Training "
        f"({c['train_bytes']} bytes, sha256 `{c['sha256']['train'][:16]}…`): "
        f"{', '.join(c['train_files'])}. The full hashes are in table.json and every "
        f"record; other bytes give other numbers.", "",
        "Variants:", "",
        *[f"- `{r}`: {DESCRIPTIONS[r]}; {_acts(runs, r)}"
          for r in dict.fromkeys(x["variant"] for x in runs)], ""]


def _acts(runs: list[dict], variant: str) -> str:
    acts = next(r["activations"] for r in runs if r["variant"] == variant)
    return ", ".join(f"{n} x `{a}`" for a, n in
                     {a: acts.count(a) for a in dict.fromkeys(acts)}.items())


def _sds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def format_markdown(meta: dict, runs: list[dict], rows: list[dict], curves: dict,
                    missing: list[str]) -> str:
    out = _header(meta, runs, missing)
    out += ["## Final validation loss, speed and GELU saturation", "",
            "| Variant | Val loss (nats/byte) | Bits per byte | vs base (sds) | Train loss | "
            "Tokens/s | GELU inputs < -3, start (%) | at the end (%) | Diverged | Seeds |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['variant']} | {_ms(r['val_loss'], 4)} | {_ms(r['val_bpb'], 4)} | "
                   f"{_sds(r['val_loss_sds_from_base'])} | {_ms(r['train_loss'], 4)} | "
                   f"{_ms(r['tokens_per_s'], 0)} | {_ms(r['below_start'], 3, 100)} | "
                   f"{_ms(r['below'], 3, 100)} | {r['diverged']}/{r['runs']} | {r['runs']} |")
    out += ["", "vs base: (mean - base mean) / sqrt((sd² + base sd²) / 2) of the final "
            "validation loss (negative: lower loss than base); n/a with one seed. Train "
            "loss: mean over the last evaluation interval. Tokens/s: training tokens over "
            "training time, evaluation and the first (compiling) step of each process "
            "excluded; runs in side-by-side processes share the machine. GELU inputs < -3: "
            "the MLP activations' inputs on the validation windows, all layers together "
            "(GELU saturates there: gelu'(-3) = -0.012).", "",
            "## Validation loss (nats/byte) against steps, mean over seeds", "",
            "| Step | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
    steps = sorted({s for c in curves.values() for s in c["steps"]})
    for s in steps:
        cells = []
        for c in curves.values():
            at = c["val_loss"][c["steps"].index(s)] if s in c["steps"] else {"mean": None}
            cells.append("n/a" if at["mean"] is None else f"{at['mean']:.4f}")
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    width = max((len(r["below_layers"] or []) for r in rows), default=0)
    out += ["", "## GELU inputs per layer at the end, mean over seeds", "",
            "Share below -3 (%), and the inputs' standard deviation and minimum on the "
            "validation windows (layer 1 is the bottom block).", "",
            "| Variant | what | " + " | ".join(f"layer {i + 1}" for i in range(width)) + " |",
            "|---|---|" + "---|" * width]
    for r in rows:
        for what, key, fmt in (("< -3 (%)", "below_layers", "{:.3g}"),
                               ("sd", "input_std_layers", "{:.3f}"),
                               ("min", "input_min_layers", "{:.2f}")):
            if r[key] is None:  # a record written before that was recorded
                continue
            scale = 100.0 if key == "below_layers" else 1.0
            out.append(f"| {r['variant']} | {what} | "
                       + " | ".join(fmt.format(scale * x) for x in r[key]) + " |")
    out += ["", *[f"![{name}]({name})" for name in FIGURES if rows], ""]
    if missing:
        out += ["## Missing runs (not finished)", "", *[f"- {m}" for m in missing], ""]
    return "\n".join(out)


def to_json(meta: dict, runs: list[dict], rows: list[dict], curves: dict,
            missing: list[str]) -> bytes:
    data = {"study": "lm", **meta, "rows": rows, "curves": curves, "runs": runs,
            "missing": missing}
    return (json.dumps(data, indent=1, allow_nan=True) + "\n").encode()


def _band(ax, curve: dict, key: str, label: str, scale: float = 1.0) -> None:
    pts = [(s, st["mean"] * scale, (st["std"] or 0.0) * scale)
           for s, st in zip(curve["steps"], curve[key]) if st["mean"] is not None]
    if not pts:
        return
    xs, ys, es = zip(*pts)
    (line,) = ax.plot(xs, ys, marker=".", label=label)
    ax.fill_between(xs, [y - e for y, e in zip(ys, es)], [y + e for y, e in zip(ys, es)],
                    color=line.get_color(), alpha=0.2)


def plot(curves: dict, p: LMProtocol, out: Path, write) -> list[Path]:
    """Write the PNGs with ``write(path, bytes)``; return their paths."""
    if not curves:
        return []
    from .report import _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, first in ((axes[0], 0), (axes[1], p.steps // 2)):
        for variant, curve in curves.items():
            part = {k: [v for s, v in zip(curve["steps"], vals) if s >= first]
                    for k, vals in curve.items() if k != "steps"}
            part["steps"] = [s for s in curve["steps"] if s >= first]
            _band(ax, part, "val_loss", variant)
        ax.set(xlabel="step", ylabel="validation loss (nats/byte)",
               title="whole run" if first == 0 else f"from step {first}")
        ax.legend(fontsize=8)
    fig.suptitle("Validation loss (mean over seeds, band: ±1 sd)")
    _save(fig, out / FIGURES[0], write)
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, curve in curves.items():
        _band(ax, curve, "below", variant, 100.0)
    ax.set(xlabel="step", ylabel="GELU inputs below -3 (%)",
           title="Saturated GELU inputs on the validation windows\n"
                 "(all layers; mean over seeds, band: ±1 sd)")
    ax.legend(fontsize=8)
    _save(fig, out / FIGURES[1], write)
    return [out / name for name in FIGURES]
