"""``gaaf analyze RUN_DIR...``: load finished runs, compute their statistics, write the
report (``analysis.md``), the numbers (``results.json``) and the figures into a folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datasets import load_splits
from ..records import cpu_model
from ..tasks import get_task
from . import plots
from .report import render_report, results_json
from .stats import analyze_run, group_runs, load_run, summarize

__all__ = ["ORDER", "run_analysis"]

#: Report order of the variants; others follow alphabetically.
ORDER = ("base", "dropout", "gaaf")


def _meta(task: str, n_test: int) -> dict[str, Any]:
    return {"task": task, "test_examples": n_test,
            "machine": f"{cpu_model()}, {os.cpu_count()} CPUs"}


def run_analysis(paths: Sequence[str | Path], out: str | Path,
                 data_dir: str | Path | None = None, test_limit: int | None = None,
                 progress: bool = True) -> Path:
    """Analyze the runs at ``paths``; write the report, results and figures into ``out``;
    return the report's path. Raises ``AnalysisError`` for unusable runs."""
    runs = [load_run(p) for p in paths]
    groups = group_runs(runs)
    task = get_task(runs[0].task)
    test_x = load_splits(task, data_dir).test_x
    if test_limit is not None:
        test_x = test_x[:test_limit]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    variants = sorted(groups, key=lambda v: (ORDER.index(v) if v in ORDER else 99, v))
    summaries = []
    for v in variants:
        stats = []
        for r in groups[v]:
            if progress:
                print(f"analyzing {r.path}", file=sys.stderr)
            stats.append(analyze_run(r, test_x, seed=r.seed))
        summaries.append(summarize(v, groups[v], stats))
    per_epoch: dict[str, list[dict]] = {}
    for s in summaries:
        rec = [r for r in groups[s.variant] if r.analysis and r.analysis.get("epochs")]
        if rec:
            per_epoch[s.variant] = rec[0].analysis["epochs"]  # type: ignore[index]
    figures = {"weights": plots.plot_weights(summaries, out),
               "correlations": plots.plot_correlations(summaries, out),
               "nets": plots.plot_nets(summaries, out),
               "recorded": plots.plot_recorded(summaries, per_epoch, out)}
    meta = _meta(task.name, len(test_x))
    meta["runs"] = [str(r.path) for r in runs]
    (out / "results.json").write_text(results_json(summaries, meta))
    report = out / "analysis.md"
    report.write_text(render_report(summaries, figures, meta))
    return report
