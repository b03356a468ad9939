"""Figures of ``gaaf analyze`` (matplotlib, Agg): Figure 1 (weights), Figure 2 (node
correlations), Figure 4 (net values), and the recorded gradients / net variances per
epoch. Also a Gaussian kernel density estimate (SciPy's when importable, else NumPy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .stats import SATURATION, THRESHOLDS, VariantSummary

__all__ = ["kde", "kde_numpy", "plot_weights", "plot_correlations", "plot_nets",
           "plot_recorded", "FIGURES"]

FIGURES = {"weights": "fig1_weights.png", "correlations": "fig2_correlations.png",
           "nets": "fig4_nets.png", "recorded": "recorded_per_epoch.png"}
COLORS = {"base": "tab:blue", "dropout": "tab:red", "gaaf": "tab:green"}
KDE_POINTS = 20_000  # points the density estimate uses (a fixed random subsample)
DPI = 90


def kde_numpy(data: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE of 1-D ``data`` on ``grid``, bandwidth by Scott's rule
    (``std * n ** -1/5``, the sample std with ``ddof=1`` as in SciPy)."""
    x = np.asarray(data, dtype=np.float64).ravel()
    n = len(x)
    bw = x.std(ddof=1) * n ** (-1 / 5)
    if not np.isfinite(bw) or bw <= 0:
        raise ValueError("KDE needs at least two distinct values")
    out = np.empty(len(grid))
    for i in range(0, len(grid), 64):
        u = (np.asarray(grid[i:i + 64], dtype=np.float64)[:, None] - x[None, :]) / bw
        out[i:i + 64] = np.exp(-0.5 * u * u).sum(axis=1)
    return out / (n * bw * np.sqrt(2 * np.pi))


def kde(data: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE (Scott's rule): ``scipy.stats.gaussian_kde`` if SciPy is importable,
    otherwise :func:`kde_numpy` (the same estimate)."""
    try:
        from scipy.stats import gaussian_kde
    except ImportError:
        return kde_numpy(data, grid)
    return gaussian_kde(np.asarray(data, dtype=np.float64).ravel())(grid)


def _subsample(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(x) <= n:
        return x
    return np.random.default_rng(seed).choice(x, n, replace=False)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _seeds(s: VariantSummary) -> str:
    return f"{s.label} (n={s.n})"


def plot_weights(summaries: Sequence[VariantSummary], out: Path) -> Path:
    """Figure 1: one panel per (layer, model): normalized histogram + KDE curve."""
    plt = _plt()
    layers = summaries[0].layers
    fig, axes = plt.subplots(len(layers), len(summaries), figsize=(3.6 * len(summaries),
                             2.3 * len(layers)), squeeze=False)
    for col, s in enumerate(summaries):
        for row, name in enumerate(layers):
            ax = axes[len(layers) - 1 - row, col]  # top layer on top, as in the network
            w = np.concatenate([st.weights[row] for st in s.stats])
            lim = float(np.quantile(np.abs(w), 0.999)) * 1.1
            ax.hist(w, bins=80, range=(-lim, lim), density=True, color=COLORS.get(
                s.variant, "gray"), alpha=0.45)
            grid = np.linspace(-lim, lim, 300)
            ax.plot(grid, kde(_subsample(w, KDE_POINTS), grid), color="black", lw=1.2)
            ax.set_title(f"{s.label}: {name}  (std {w.std():.3f})", fontsize=9)
            ax.tick_params(labelsize=7)
    fig.suptitle("Figure 1: weight distributions (bars: normalized histogram, curve: KDE; "
                 "Layer1 = bottom)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, out / FIGURES["weights"])


def plot_correlations(summaries: Sequence[VariantSummary], out: Path) -> Path:
    """Figure 2: |correlation| densities per hidden layer (top) and the number of pairs
    above each threshold (bottom, log scale; the Table 1 thresholds marked)."""
    plt = _plt()
    hidden = summaries[0].layers[:-1]
    fig, axes = plt.subplots(2, len(hidden), figsize=(4.2 * len(hidden), 6.4), squeeze=False)
    bins = np.linspace(0, 1, 101)
    t = np.linspace(0, 1, 201)
    for k, name in enumerate(hidden):
        for s in summaries:
            c = np.concatenate([st.abs_corr[k] for st in s.stats])
            color = COLORS.get(s.variant, "gray")
            axes[0, k].hist(c, bins=bins, density=True, histtype="step", lw=1.3, color=color,
                            label=_seeds(s))
            srt = np.sort(c)
            above = (len(srt) - np.searchsorted(srt, t, side="right")) / s.n
            axes[1, k].plot(t, np.where(above > 0, above, np.nan), color=color, lw=1.3,
                            label=_seeds(s))
        axes[0, k].set_title(f"{name}: |corr| between node values", fontsize=9)
        axes[0, k].set_xlabel("|correlation|", fontsize=8)
        axes[0, k].set_ylabel("density", fontsize=8)
        axes[1, k].set_yscale("log")
        for th in THRESHOLDS:
            axes[1, k].axvline(th, color="gray", lw=0.6, ls=":")
        axes[1, k].set_xlim(0.3, 1.0)
        axes[1, k].set_xlabel("threshold t", fontsize=8)
        axes[1, k].set_ylabel("pairs with |corr| > t (mean per run)", fontsize=8)
        for ax in axes[:, k]:
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Figure 2: correlations between node values (test set)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _save(fig, out / FIGURES["correlations"])


def plot_nets(summaries: Sequence[VariantSummary], out: Path) -> Path:
    """Figure 4: densities of the net values (tanh inputs) per hidden layer and model, the
    saturation region ``|z| > SATURATION`` shaded; linear (top) and log (bottom) scale."""
    plt = _plt()
    hidden = summaries[0].layers[:-1]
    fig, axes = plt.subplots(2, len(hidden), figsize=(4.2 * len(hidden), 6.4), squeeze=False)
    allv = np.concatenate([st.net_sample[k] for s in summaries for st in s.stats
                           for k in range(len(hidden))])
    lim = max(float(np.quantile(np.abs(allv), 0.999)) * 1.05, SATURATION + 1.0)
    bins = np.linspace(-lim, lim, 121)
    for k, name in enumerate(hidden):
        for s in summaries:
            z = np.concatenate([st.net_sample[k] for st in s.stats])
            for ax in axes[:, k]:
                ax.hist(np.clip(z, -lim, lim), bins=bins, density=True, histtype="step",
                        lw=1.3, color=COLORS.get(s.variant, "gray"),
                        label=f"{_seeds(s)}: {100 * s.saturated[k]:.1f}% saturated")
        for ax in axes[:, k]:
            ax.axvspan(-lim, -SATURATION, color="orange", alpha=0.15)
            ax.axvspan(SATURATION, lim, color="orange", alpha=0.15)
            ax.set_xlim(-lim, lim)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("net value z (input to tanh)", fontsize=8)
        axes[0, k].set_title(f"{name} (shaded: |z| > {SATURATION:g}, tanh saturated)",
                             fontsize=9)
        axes[0, k].legend(fontsize=6.5, loc="upper left")
        axes[1, k].set_yscale("log")
        axes[1, k].set_ylabel("density (log)", fontsize=8)
        axes[0, k].set_ylabel("density", fontsize=8)
    fig.suptitle("Figure 4: distributions of net values on the test set "
                 "(values beyond the axis are piled in the end bins)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _save(fig, out / FIGURES["nets"])


def _per_epoch_grad(epochs: list[dict]) -> np.ndarray:
    """Mean |dL/dz| of each epoch alone, from the cumulative sums (epochs x layers)."""
    rows, prev_steps = [], 0
    prev_sum: np.ndarray | float = 0.0
    for e in epochs:
        cur = np.asarray(e["grad_sum"], dtype=np.float64)
        rows.append((cur - prev_sum) / max(e["grad_steps"] - prev_steps, 1))
        prev_sum, prev_steps = cur, e["grad_steps"]
    return np.asarray(rows)


def plot_recorded(summaries: Sequence[VariantSummary], per_epoch: dict[str, list[dict]],
                  out: Path) -> Path | None:
    """Per-epoch mean |dL/dz| (one panel per layer, one curve per recorded model) and the
    net variance of each layer under dropout. ``per_epoch[variant]`` is the ``epochs``
    list of one recorded run's analysis.json."""
    if not per_epoch:
        return None
    plt = _plt()
    layers = summaries[0].layers
    fig, axes = plt.subplots(1, len(layers) + 1, figsize=(3.4 * (len(layers) + 1), 3.4))
    for variant, epochs in per_epoch.items():
        x = [e["epoch"] for e in epochs]
        grad = _per_epoch_grad(epochs)
        for k, name in enumerate(layers):
            axes[k].plot(x, grad[:, k], color=COLORS.get(variant, "gray"), lw=1.2,
                         label=variant)
            axes[k].set_title(f"{name}: mean |dL/dz| per epoch", fontsize=9)
            axes[k].set_yscale("log")
        var = np.asarray([e["net_variance"] for e in epochs])
        if variant == "dropout" or var.max() > 0:
            for k, name in enumerate(layers):
                axes[-1].plot(x, var[:, k], color=COLORS.get(variant, "gray"),
                              ls=["-", "--", "-.", ":"][k % 4], label=f"{variant} {name}")
    axes[0].legend(fontsize=7)
    axes[-1].set_title("net variance over 20 masks (fixed batch)", fontsize=9)
    if axes[-1].lines:
        axes[-1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _save(fig, out / FIGURES["recorded"])
