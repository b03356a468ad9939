"""The dropout analysis of the paper's section 3 on finished runs (``gaaf analyze``).

For each run: the converged weights (``model.pt``) are loaded into the rebuilt model, the
test set is forwarded once in eval mode, and hooks keep the net values ``z`` (outputs of
each ``nn.Linear``) and the node values (outputs of the activation after each hidden
Linear). From these: weight distributions (Figure 1), absolute correlations between the
node values of each hidden layer (Table 1, Figure 2), net-value distributions and the
share in tanh's saturation region (Figure 4). Tables 2 and 3 come from ``analysis.json``,
written during training by :mod:`.recording`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import records
from .recording import layer_names, linear_layers, read_analysis

__all__ = ["THRESHOLDS", "SATURATION", "AnalysisError", "Run", "RunStats", "VariantSummary",
           "abs_correlations", "count_above", "load_run", "analyze_run", "summarize",
           "forward_values", "group_runs"]

THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5)
#: |z| beyond which tanh counts as saturated: tanh'(2) = 0.071 (7% of its peak slope).
SATURATION = 2.0
SAMPLE = 200_000  # net values kept per layer and run for the plots
VARIANT_LABELS = {"base": "Without dropout", "dropout": "With dropout", "gaaf": "GAAF"}


class AnalysisError(ValueError):
    """A run directory that cannot be analyzed (the CLI exits 2)."""


@dataclass
class Run:
    """A finished run directory."""

    path: Path
    task: str
    variant: str
    seed: int
    record: dict
    analysis: dict | None


def load_run(path: str | Path) -> Run:
    """Read a finished run directory; :class:`AnalysisError` if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise AnalysisError(f"{path}: no such run directory")
    rec = records.read_record(path)
    if rec is None:
        raise AnalysisError(f"{path}: no readable {records.RECORD} (not a run directory?)")
    if rec.get("status") != "finished":
        raise AnalysisError(f"{path}: the run is not finished (status {rec.get('status')!r})")
    if not (path / records.MODEL).is_file():
        raise AnalysisError(f"{path}: {records.MODEL} is missing")
    return Run(path, rec["task"], rec["variant"], int(rec["seed"]), rec, read_analysis(path))


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs by variant (in the order first seen); all must share one MLP task."""
    tasks = sorted({r.task for r in runs})
    if len(tasks) != 1:
        raise AnalysisError(f"runs of several tasks given ({', '.join(tasks)}); "
                            "analyze one task at a time")
    from ..tasks import get_task

    if get_task(tasks[0]).arch != "mlp":
        raise AnalysisError(f"{tasks[0]}: the dropout analysis supports MLP tasks only")
    groups: dict[str, list[Run]] = {}
    for r in runs:
        if any(o.seed == r.seed for o in groups.get(r.variant, [])):
            raise AnalysisError(f"{r.path}: {r.variant} seed {r.seed} given twice")
        groups.setdefault(r.variant, []).append(r)
    return groups


def abs_correlations(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Absolute Pearson correlations of the columns of ``values`` (examples x nodes) for
    every pair ``i < j``, and the number of zero-variance columns left out (their
    correlation is undefined)."""
    x = np.asarray(values, dtype=np.float64)
    x = x - x.mean(axis=0)
    std = np.sqrt((x * x).mean(axis=0))
    scale = np.abs(values).max(initial=0.0) if np.size(values) else 0.0
    keep = std > 1e-12 * max(float(scale), 1.0)
    z = x[:, keep] / std[keep]
    corr = np.clip(np.abs(z.T @ z) / len(x), 0.0, 1.0)
    iu = np.triu_indices(z.shape[1], 1)
    return corr[iu], int((~keep).sum())


def count_above(abs_corr: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> list[int]:
    """How many values are strictly above each threshold."""
    return [int((abs_corr > t).sum()) for t in thresholds]


def _activation_after(model: nn.Module, layers: list[nn.Linear]) -> list[nn.Module]:
    """The activation module following each hidden Linear in the (Sequential) MLP."""
    children = list(model.children())
    acts = []
    for layer in layers[:-1]:
        i = next(k for k, c in enumerate(children) if c is layer)
        nxt = next((c for c in children[i + 1:] if not isinstance(c, nn.Dropout)), None)
        if nxt is None or isinstance(nxt, nn.Linear):
            raise AnalysisError("no activation module after a hidden Linear layer")
        acts.append(nxt)
    return acts


@torch.no_grad()
def forward_values(model: nn.Module, x: torch.Tensor, batch: int = 1000
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Eval-mode forward of ``x``: (net values of every Linear, node values of every hidden
    layer), each an (examples x nodes) float32 array."""
    layers = linear_layers(model)
    acts = _activation_after(model, layers)
    nets: list[list[torch.Tensor]] = [[] for _ in layers]
    nodes: list[list[torch.Tensor]] = [[] for _ in acts]
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: nets[k].append(o.detach().cpu()))
             for k, m in enumerate(layers)]
    hooks += [m.register_forward_hook(lambda m, i, o, k=k: nodes[k].append(o.detach().cpu()))
              for k, m in enumerate(acts)]
    model.eval()
    try:
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    finally:
        for h in hooks:
            h.remove()
    return ([torch.cat(n).float().numpy() for n in nets],
            [torch.cat(n).float().numpy() for n in nodes])


@dataclass
class RunStats:
    """What one run contributes: numbers for the tables, samples for the plots."""

    layers: list[str]
    weights: list[np.ndarray]
    abs_corr: list[np.ndarray]
    corr_counts: list[list[int]]
    excluded_nodes: list[int]
    net_sample: list[np.ndarray]
    saturated: list[float]
    mean_abs_net: list[float]
    grad_mean: list[float] | None = None
    grad_steps: int | None = None
    grad_cumulative: list[dict] = field(default_factory=list)  # per epoch: sum, steps
    net_variance: list[float] | None = None
    variance_epoch: int | None = None
    recording_partial: bool = False
    notes: list[str] = field(default_factory=list)


def _recorded(run: Run, stats: RunStats) -> None:
    a = run.analysis
    if not a or not a.get("epochs"):
        return
    if a.get("layers") != stats.layers:
        stats.notes.append(f"{run.path}: analysis.json layers do not match the model")
        return
    final = run.record["final"]
    last = a["epochs"][-1]
    stats.grad_mean, stats.grad_steps = last["grad_mean"], last["grad_steps"]
    stats.grad_cumulative = [{"epoch": e["epoch"], "steps": e["grad_steps"],
                              "sum": e["grad_sum"]} for e in a["epochs"]]
    if last["epoch"] != final["epochs_run"]:
        stats.notes.append(f"{run.path}: gradients recorded up to epoch {last['epoch']} of "
                           f"{final['epochs_run']}")
    stats.recording_partial = a.get("first_step", 1) != 1
    if stats.recording_partial:
        stats.notes.append(f"{run.path}: recording started at step {a['first_step']}")
    by_epoch = {e["epoch"]: e for e in a["epochs"]}
    conv = final["converged_epoch"]
    entry = by_epoch.get(conv) or a["epochs"][-1]
    stats.net_variance, stats.variance_epoch = entry["net_variance"], entry["epoch"]


def analyze_run(run: Run, test_x: torch.Tensor, seed: int = 0) -> RunStats:
    """Load ``run``'s converged weights and compute its statistics on ``test_x``."""
    from ..models import build_model

    model = build_model(run.task, run.variant, init=False)
    state = torch.load(run.path / records.MODEL, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    layers = linear_layers(model)
    names = layer_names(len(layers))
    nets, nodes = forward_values(model, test_x)
    rng = np.random.default_rng(seed)
    corr = [abs_correlations(h) for h in nodes]
    sample = [n.ravel() if n.size <= SAMPLE else rng.choice(n.ravel(), SAMPLE, replace=False)
              for n in nets[:-1]]
    stats = RunStats(
        layers=names, weights=[m.weight.detach().numpy().ravel().copy() for m in layers],
        abs_corr=[c.astype(np.float32) for c, _ in corr],
        corr_counts=[count_above(c) for c, _ in corr], excluded_nodes=[e for _, e in corr],
        net_sample=sample, saturated=[float((np.abs(n) > SATURATION).mean()) for n in nets[:-1]],
        mean_abs_net=[float(np.abs(n).mean()) for n in nets[:-1]])
    _recorded(run, stats)
    return stats


def _mean_std(rows: Sequence[Sequence[float] | None]) -> tuple[list[float], list[float]]:
    arr = np.asarray(rows, dtype=np.float64)
    std = arr.std(axis=0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
    return arr.mean(axis=0).tolist(), std.tolist()


def _kurtosis(w: np.ndarray) -> float:
    d = w.astype(np.float64) - w.mean()
    return float((d ** 4).mean() / (d ** 2).mean() ** 2 - 3.0)


@dataclass
class VariantSummary:
    """A variant's statistics averaged over its seeds (``n`` runs; ``n_recorded`` of them
    with an ``analysis.json``)."""

    variant: str
    label: str
    seeds: list[int]
    epochs: list[dict[str, Any]]
    layers: list[str]
    stats: list[RunStats]
    corr_counts: list[list[float]] = field(default_factory=list)
    corr_counts_std: list[list[float]] = field(default_factory=list)
    weight_std: list[float] = field(default_factory=list)
    weight_kurtosis: list[float] = field(default_factory=list)
    saturated: list[float] = field(default_factory=list)
    mean_abs_net: list[float] = field(default_factory=list)
    grad_mean: list[float] | None = None
    grad_std: list[float] | None = None
    net_variance: list[float] | None = None
    net_variance_std: list[float] | None = None
    n_recorded: int = 0
    recorded_seeds: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.stats)


def summarize(variant: str, runs: list[Run], stats: list[RunStats]) -> VariantSummary:
    """Average ``stats`` (one per run of ``variant``) over seeds."""
    s = VariantSummary(variant, VARIANT_LABELS.get(variant, variant), [r.seed for r in runs],
                       [{"seed": r.seed, "converged": r.record["final"]["converged_epoch"],
                         "run": r.record["final"]["epochs_run"],
                         "test_acc": r.record["final"]["test_acc"],
                         "stopped_early": bool(r.record["final"].get("stopped_early"))}
                        for r in runs],
                       stats[0].layers, stats)
    n_hidden = len(stats[0].corr_counts)
    for k in range(n_hidden):
        mean, std = _mean_std([st.corr_counts[k] for st in stats])
        s.corr_counts.append(mean)
        s.corr_counts_std.append(std)
    s.weight_std = [float(np.mean([st.weights[k].std() for st in stats]))
                    for k in range(len(s.layers))]
    s.weight_kurtosis = [float(np.mean([_kurtosis(st.weights[k]) for st in stats]))
                         for k in range(len(s.layers))]
    s.saturated = _mean_std([st.saturated for st in stats])[0]
    s.mean_abs_net = _mean_std([st.mean_abs_net for st in stats])[0]
    rec = [(r, st) for r, st in zip(runs, stats) if st.grad_mean is not None]
    if rec:
        s.n_recorded, s.recorded_seeds = len(rec), [r.seed for r, _ in rec]
        s.grad_mean, s.grad_std = _mean_std([st.grad_mean for _, st in rec])
        s.net_variance, s.net_variance_std = _mean_std([st.net_variance for _, st in rec])
    return s
