"""The markdown report of ``gaaf analyze``: every table beside the paper's values, the
figures, and a reading of each claim of the paper's section 3 (and 5.1) computed from
the numbers (so it says what the runs show, whatever they show)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .stats import SATURATION, THRESHOLDS, VariantSummary

__all__ = ["PAPER", "claims", "render_report", "results_json"]

#: The paper's numbers (section 3 Tables 1-3; section 5.1 for GAAF's gradients, in the
#: printed order, which we map to Layer3, Layer2, Layer1 like Table 2's rows: ambiguous).
PAPER: dict[str, Any] = {
    "table1": {
        "base": {"Layer3": [1, 123, 676, 1989, 4393], "Layer2": [0, 6, 71, 373, 1305],
                 "Layer1": [0, 5, 91, 826, 3939]},
        "dropout": {"Layer3": [174, 618, 1625, 3388, 6037],
                    "Layer2": [35, 287, 1016, 2541, 5077],
                    "Layer1": [16, 181, 769, 2510, 6734]},
    },
    "table2": {"base": {"Layer3": 9.35e-5, "Layer2": 1.40e-4, "Layer1": 1.07e-4},
               "dropout": {"Layer3": 5.83e-4, "Layer2": 6.52e-4, "Layer1": 5.93e-4},
               "gaaf": {"Layer3": 1.15e-3, "Layer2": 6.43e-4, "Layer1": 1.78e-4}},
    "table3": {"Last Layer": 1.97, "Layer3": 1.07, "Layer2": 1.07, "Layer1": 0.0},
}


def _by(summaries: Sequence[VariantSummary], variant: str) -> VariantSummary | None:
    return next((s for s in summaries if s.variant == variant), None)


def _num(x: float, std: float | None = None, n: int = 1, fmt: str = ".3g") -> str:
    if std is not None and n > 1:
        return f"{x:{fmt}} ± {std:{fmt}}"
    return f"{x:{fmt}}"


def _count(x: float, std: float, n: int) -> str:
    if n > 1:
        return f"{x:.1f} ± {std:.1f}"
    return f"{x:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table (``|`` inside cells escaped)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def _runs_table(summaries: Sequence[VariantSummary]) -> str:
    rows = []
    for s in summaries:
        acc = [e["test_acc"] for e in s.epochs]
        rows.append([s.label, ", ".join(map(str, s.seeds)),
                     ", ".join(str(e["converged"]) for e in s.epochs),
                     ", ".join(str(e["run"]) for e in s.epochs),
                     _num(float(np.mean(acc)), float(np.std(acc, ddof=1)) if len(acc) > 1
                          else None, len(acc), ".2f"),
                     ", ".join(map(str, s.recorded_seeds)) or "none"])
    return _table(["model", "seeds", "converged epoch", "epochs run", "test acc. %",
                   "seeds with analysis.json"], rows)


def table1(summaries: Sequence[VariantSummary]) -> str:
    """Table 1 per model: our mean count (± std over seeds) / the paper's count."""
    out = []
    for s in summaries:
        paper = PAPER["table1"].get(s.variant)
        rows = []
        for k in reversed(range(len(s.corr_counts))):
            name = s.layers[k]
            cells = [_count(m, sd, s.n) + (f" / {paper[name][i]}" if paper and name in paper
                                           else "")
                     for i, (m, sd) in enumerate(zip(s.corr_counts[k], s.corr_counts_std[k]))]
            excl = np.mean([st.excluded_nodes[k] for st in s.stats])
            n_pairs = len(s.stats[0].abs_corr[k]) if excl == 0 else "varies"
            rows.append([name, *cells, f"{excl:g}", str(n_pairs)])
        head = "ours / paper" if paper else "ours (the paper has no Table 1 for GAAF)"
        out.append(f"**{s.label}** (n={s.n}; cells: {head})\n\n" + _table(
            ["layer", *(f">{t}" for t in THRESHOLDS), "zero-variance nodes excluded",
             "pairs"], rows))
    return "\n\n".join(out)


def table2(summaries: Sequence[VariantSummary]) -> str:
    """Table 2 (+ section 5.1's GAAF numbers): recorded mean |dL/dz| per layer."""
    rec = [s for s in summaries if s.grad_mean is not None]
    if not rec:
        return "_No run given has an `analysis.json` (train with `--record-analysis`)._"
    layers = rec[0].layers
    base = _by(rec, "base")
    header = ["layer"]
    for s in rec:
        header += [f"{s.label} (n={s.n_recorded})", "paper"]
    header += [f"{s.label} / without dropout" for s in rec if base and s is not base]
    rows = []
    for k in reversed(range(len(layers))):
        name = layers[k]
        row = [name]
        for s in rec:
            assert s.grad_mean is not None and s.grad_std is not None
            p = PAPER["table2"].get(s.variant, {}).get(name)
            row += [_num(s.grad_mean[k], s.grad_std[k], s.n_recorded, ".3e"),
                    f"{p:.2e}" if p is not None else "–"]
        for s in rec:
            if base and s is not base:
                row.append(f"{s.grad_mean[k] / base.grad_mean[k]:.2f}x")  # type: ignore
        rows.append(row)
    return _table(header, rows)


def table2_matched(summaries: Sequence[VariantSummary]) -> str:
    """Table 2 over the same number of epochs for every run (the fewest any recorded run
    has): the whole-run mean depends on how long a run trains, as gradients shrink."""
    rec = [s for s in summaries if s.grad_mean is not None]
    runs = [st for s in rec for st in s.stats if st.grad_cumulative]
    if not runs:
        return ""
    first = max(st.grad_cumulative[0]["epoch"] for st in runs)
    epochs = min(st.grad_cumulative[-1]["epoch"] for st in runs)
    if epochs < first:
        return ""
    layers = rec[0].layers
    means = []
    for s in rec:
        rows = []
        for st in s.stats:
            e = next((e for e in st.grad_cumulative if e["epoch"] == epochs), None)
            if e is not None:
                rows.append(np.asarray(e["sum"]) / e["steps"])
        means.append(np.mean(rows, axis=0) if rows else None)
    base = next((m for s, m in zip(rec, means) if s.variant == "base"), None)
    rows = []
    for k in reversed(range(len(layers))):
        row = [layers[k]]
        for m in means:
            row.append("–" if m is None else f"{m[k]:.3e}" + (
                f" ({m[k] / base[k]:.2f}x)" if base is not None else ""))
        rows.append(row)
    return (f"The same, over the first {epochs} epochs of every recorded run (the shortest "
            "run's length; in parentheses: ratio to without dropout):\n\n"
            + _table(["layer", *(s.label for s in rec)], rows))


def table3(summaries: Sequence[VariantSummary]) -> str:
    """Table 3: mean net variance over 20 dropout masks at the converged epoch."""
    rec = [s for s in summaries if s.net_variance is not None]
    if not rec:
        return "_No run given has an `analysis.json` (train with `--record-analysis`)._"
    header = ["layer"]
    for s in rec:
        ep = sorted({st.variance_epoch for st in s.stats if st.variance_epoch is not None})
        header.append(f"{s.label} (n={s.n_recorded}, epoch {', '.join(map(str, ep))})")
    header.append("paper (with dropout)")
    rows = []
    for k in reversed(range(len(rec[0].layers))):
        name = rec[0].layers[k]
        row = [name] + [_num(s.net_variance[k], s.net_variance_std[k],  # type: ignore
                             s.n_recorded, ".3g") for s in rec]
        rows.append(row + [f"{PAPER['table3'][name]:g}" if name in PAPER["table3"] else "–"])
    return _table(header, rows)


def table_nets(summaries: Sequence[VariantSummary]) -> str:
    """Share of test-set net values in tanh's saturation region, and mean |z|."""
    hidden = summaries[0].layers[:-1]
    rows = [[name] + [f"{100 * s.saturated[k]:.1f}% ({s.mean_abs_net[k]:.2f})"
                      for s in summaries] for k, name in reversed(list(enumerate(hidden)))]
    return _table(["layer", *(f"{s.label} (n={s.n})" for s in summaries)], rows)


def table_weights(summaries: Sequence[VariantSummary]) -> str:
    """Weight standard deviation and excess kurtosis per layer and model."""
    layers = summaries[0].layers
    rows = [[name] + [f"{s.weight_std[k]:.4f} / {s.weight_kurtosis[k]:.2f}" for s in summaries]
            for k, name in reversed(list(enumerate(layers)))]
    return _table(["layer", *(f"{s.label}: std / excess kurtosis" for s in summaries)], rows)


def _verdict(good: int, total: int) -> str:
    if total == 0:
        return "not measured"
    return "holds" if good == total else ("does not hold" if good == 0 else "partly holds")


def claims(summaries: Sequence[VariantSummary]) -> list[tuple[str, str, str]]:
    """(claim, verdict, evidence) for each checkable claim of the paper."""
    base, drop, gaaf = (_by(summaries, v) for v in ("base", "dropout", "gaaf"))
    out: list[tuple[str, str, str]] = []
    if base and drop:
        h = range(len(base.layers) - 1)
        spread = [max(s.weight_std[k] for k in h) / min(s.weight_std[k] for k in h)
                  for s in (base, drop)]
        out.append(("Fig. 1: with dropout the hidden layers' weight distributions have "
                    "similar statistics (the lower layers train more)",
                    _verdict(int(spread[1] < spread[0]), 1),
                    f"largest/smallest weight std over Layer1-3: without dropout "
                    f"{spread[0]:.2f}, with dropout {spread[1]:.2f}"))
        gauss = sum(abs(drop.weight_kurtosis[k]) < abs(base.weight_kurtosis[k]) for k in h)
        out.append(("Fig. 1: dropout makes the hidden layers' weight distributions "
                    "Gaussian-like", _verdict(gauss, len(h)),
                    "|excess kurtosis| (0 for a Gaussian, -1.2 for the uniform initial "
                    f"weights) is smaller with dropout in {gauss} of {len(h)} layers"))
        cells = [(k, i) for k in h for i in range(len(THRESHOLDS))]
        more = sum(drop.corr_counts[k][i] > base.corr_counts[k][i] for k, i in cells)
        top = sum(drop.corr_counts[k][0] > base.corr_counts[k][0] for k in h)
        out.append(("Table 1 / Fig. 2: dropout increases the correlation between node "
                    "values (dropout does not avoid co-adaptation)",
                    _verdict(more, len(cells)),
                    f"dropout has more pairs in {more} of {len(cells)} (layer, threshold) "
                    f"cells; above 0.9 in {top} of {len(h)} layers"))
        sat = sum(drop.saturated[k] > base.saturated[k] for k in h)
        out.append(("Fig. 4: dropout pushes more net values into tanh's saturation region",
                    _verdict(sat, len(h)), "share with |z| > "
                    f"{SATURATION:g} (Layer1..3): without dropout "
                    + ", ".join(f"{100 * base.saturated[k]:.1f}%" for k in h)
                    + "; with dropout " + ", ".join(f"{100 * drop.saturated[k]:.1f}%"
                                                    for k in h)))
        incr = sum(drop.saturated[k + 1] > drop.saturated[k] for k in range(len(h) - 1))
        out.append(("Fig. 4: with dropout, higher layers have more saturated net values",
                    _verdict(incr, len(h) - 1), "shares above rise layer to layer "
                    f"in {incr} of {len(h) - 1} steps"))
        if base.grad_mean is not None and drop.grad_mean is not None:
            r = [drop.grad_mean[k] / base.grad_mean[k] for k in h]
            ratios = ", ".join(f"{x:.2f}x" for x in r)
            out.append(("Table 2: dropout increases the gradient reaching the hidden layers",
                        _verdict(sum(x > 1 for x in r), len(r)),
                        f"dropout / without dropout (Layer1..3): {ratios}"))
            out.append(("Table 2: ... by around five times",
                        _verdict(sum(2.5 <= x <= 10 for x in r), len(r)),
                        f"{ratios} (counted as 'around 5x' within 2.5x-10x; paper: "
                        "5.5x, 4.7x, 6.2x)"))
    if drop and drop.net_variance is not None:
        v = drop.net_variance
        ok = int(v[0] == 0) + sum(x > 0 for x in v[1:])
        out.append(("Table 3: dropout gives the nets above Layer1 a sizeable variance; "
                    "Layer1's is zero", _verdict(ok, len(v)),
                    ", ".join(f"{n} {x:.3g}" for n, x in zip(drop.layers, v))
                    + " (paper: Layer2 1.07, Layer3 1.07, Last 1.97)"))
    if gaaf and base and gaaf.grad_mean is not None and base.grad_mean is not None:
        h = range(len(base.layers) - 1)
        r = [gaaf.grad_mean[k] / base.grad_mean[k] for k in h]
        out.append(("Sec. 5.1: GAAF increases the gradient reaching the hidden layers",
                    _verdict(sum(x > 1 for x in r), len(r)), "GAAF / without dropout "
                    "(Layer1..3): " + ", ".join(f"{x:.2f}x" for x in r)))
        if drop and drop.grad_mean is not None:
            q = [gaaf.grad_mean[k] / drop.grad_mean[k] for k in h]
            out.append(("Sec. 5.1: GAAF's gradients are as large as dropout's",
                        _verdict(sum(0.5 <= x <= 2 for x in q), len(q)),
                        "GAAF / dropout (Layer1..3): " + ", ".join(f"{x:.2f}x" for x in q)
                        + " (counted as 'as large' within 0.5x-2x)"))
    if gaaf and base:
        h = range(len(base.layers) - 1)
        sat = sum(gaaf.saturated[k] > base.saturated[k] for k in h)
        out.append(("Sec. 4/5: GAAF pushes net values towards saturation like dropout",
                    _verdict(sat, len(h)), "share with |z| > "
                    f"{SATURATION:g} (Layer1..3), GAAF: "
                    + ", ".join(f"{100 * gaaf.saturated[k]:.1f}%" for k in h)))
    return out


def render_report(summaries: Sequence[VariantSummary], figures: dict[str, Path | None],
                  meta: dict[str, Any]) -> str:
    """The whole analysis.md (figures linked relative to the report's folder)."""
    def fig(key: str, caption: str) -> str:
        path = figures.get(key)
        return f"![{caption}]({path.name})\n\n*{caption}*" if path else ""

    notes = [n for s in summaries for st in s.stats for n in st.notes]
    for s in summaries:
        capped = [e["seed"] for e in s.epochs if not e["stopped_early"]]
        if capped:
            notes.append(f"{s.label}: seed(s) {', '.join(map(str, capped))} ran to the "
                         "epoch limit without early stopping (possibly not converged).")
    parts = [
        "# Dropout analysis (paper section 3 and 5.1)\n",
        f"Task `{meta['task']}`; test examples: {meta['test_examples']}; machine: "
        f"{meta['machine']}. Model weights: `model.pt` of each run (the converged, "
        "best-validation epoch). Means over the seeds given (± sample std where n > 1).\n",
        "## Runs\n", _runs_table(summaries), "",
        "## Figure 1: weight distributions\n", fig("weights", "Figure 1: weights per layer "
                                                  "(histogram + Gaussian KDE, Scott's rule)"),
        "\n" + table_weights(summaries), "",
        "## Table 1 and Figure 2: correlations between node values\n",
        "Node values: tanh (or GAAF) outputs of each hidden layer on the test set; pairs "
        "i < j counted where |Pearson correlation| is strictly above the threshold. Nodes "
        "with zero variance on the test set have an undefined correlation: they are left "
        "out (count shown) and so are their pairs.\n", table1(summaries), "",
        fig("correlations", "Figure 2: distributions of |correlation| per hidden layer"), "",
        "## Table 2: mean absolute gradient per layer\n",
        "Mean over every optimizer step of the run of the mean over batch and nodes of "
        "|dL/dz| (z: a Linear layer's output, L: the batch's mean cross-entropy), recorded "
        "during training. The paper's GAAF numbers are section 5.1's '1.15E-3, 6.43E-4, "
        "1.78E-4 for the three layers', placed here in Table 2's row order (Layer3, 2, 1); "
        "the paper does not say the order, so it may be the reverse (read bottom-up: "
        "Layer1 1.15E-3, Layer2 6.43E-4, Layer3 1.78E-4).\n", table2(summaries),
        "", table2_matched(summaries), "", "## Table 3: net variance under dropout\n",
        "Per layer, the variance over 20 dropout masks (ddof=0) of each net value of one "
        "fixed batch of 128 training images, averaged over nodes and examples, measured "
        "in train mode at the end of the converged epoch.\n", table3(summaries), "",
        fig("recorded", "Recorded per epoch: mean |dL/dz| of each layer (one seed per "
            "model), and the net variance under dropout (right)"), "",
        "## Figure 4: net values and saturation\n",
        f"Share of test-set net values with |z| > {SATURATION:g} (tanh'(2) = 0.07), and "
        "mean |z| in parentheses.\n", table_nets(summaries), "",
        fig("nets", "Figure 4: distributions of the net values (inputs to tanh)"), "",
        "## Reading: do the paper's claims hold here?\n",
        _table(["claim", "here", "evidence"], [list(c) for c in claims(summaries)]),
    ]
    if notes:
        parts += ["\n## Notes\n", *(f"- {n}" for n in notes)]
    return "\n".join(parts) + "\n"


def results_json(summaries: Sequence[VariantSummary], meta: dict[str, Any]) -> str:
    """The numbers of every table, machine-readable."""
    variants: dict[str, Any] = {}
    out = {"meta": meta, "thresholds": list(THRESHOLDS), "saturation": SATURATION,
           "paper": PAPER, "variants": variants}
    for s in summaries:
        variants[s.variant] = {
            "label": s.label, "seeds": s.seeds, "runs": s.epochs, "layers": s.layers,
            "corr_counts": s.corr_counts, "corr_counts_std": s.corr_counts_std,
            "excluded_nodes": [[st.excluded_nodes[k] for st in s.stats]
                               for k in range(len(s.corr_counts))],
            "weight_std": s.weight_std, "weight_excess_kurtosis": s.weight_kurtosis,
            "saturated_share": s.saturated, "mean_abs_net": s.mean_abs_net,
            "grad_mean": s.grad_mean, "grad_std": s.grad_std,
            "net_variance": s.net_variance, "net_variance_std": s.net_variance_std,
            "recorded_seeds": s.recorded_seeds}
    return json.dumps(out, indent=1) + "\n"
