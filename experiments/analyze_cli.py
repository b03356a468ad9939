"""``gaaf analyze RUN_DIR... [--out DIR]`` and the ``--record-analysis`` flag of
``gaaf train``.

Wiring (experiments/cli.py): ``add_analyze_command(subparsers)`` in ``add_commands``;
``add_recording_arguments(p)`` in ``add_train_arguments``; in ``cmd_train`` pass
``callbacks=recording_callbacks(args, cfg)`` to ``train`` and call ``close_callbacks`` after.
Bad arguments print one ``gaaf: ...`` line on stderr and return 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_analyze_command", "add_recording_arguments", "recording_callbacks",
           "close_callbacks", "cmd_analyze", "run_analysis", "main"]

ORDER = ("base", "dropout", "gaaf")


def _error(message: str, code: int = 2) -> int:
    print(f"gaaf: {message}", file=sys.stderr)
    return code


def add_recording_arguments(p: argparse.ArgumentParser) -> None:
    """``--record-analysis`` for ``gaaf train``."""
    p.add_argument("--record-analysis", action="store_true",
                   help="record the mean |gradient| per layer and, every epoch, the net "
                        "variance over 20 dropout masks into RUN_DIR/analysis.json "
                        "(for gaaf analyze; about 3%% slower on the MNIST MLP)")


def recording_callbacks(args: argparse.Namespace, cfg: Any) -> list:
    """The callbacks ``gaaf train`` passes to ``train`` (none without the flag)."""
    if not getattr(args, "record_analysis", False):
        return []
    from .recording import make_recording_callbacks

    return make_recording_callbacks(cfg)


def close_callbacks(callbacks: Sequence[Any]) -> None:
    """Release what the callbacks hold (a global hook while training has not started)."""
    for cb in callbacks:
        if hasattr(cb, "close"):
            cb.close()


def add_analyze_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to the ``gaaf`` subcommands (``func`` returns the exit status)."""
    a = subparsers.add_parser(
        "analyze", help="dropout analysis (paper section 3) of finished runs",
        description="Figure 1, Table 1 / Figure 2, Tables 2-3 and Figure 4 of the paper for "
                    "finished runs (several seeds per variant are averaged); writes "
                    "analysis.md, results.json and PNGs into --out.")
    a.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories <out>/<task>/<variant>/seed<N> of one task")
    a.add_argument("--out", default="analysis", help="output folder (default ./analysis)")
    a.add_argument("--data-dir", default=None, help="default: $GAAF_DATA_DIR or ./data")
    a.add_argument("--test-limit", type=int, default=None,
                   help="use only the first N test examples (quick checks)")
    a.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    a.set_defaults(func=cmd_analyze)


def _meta(task: str, n_test: int) -> dict[str, Any]:
    from .records import cpu_model

    return {"task": task, "test_examples": n_test,
            "machine": f"{cpu_model()}, {os.cpu_count()} CPUs"}


def run_analysis(paths: Sequence[str | Path], out: str | Path,
                 data_dir: str | Path | None = None, test_limit: int | None = None,
                 progress: bool = True) -> Path:
    """Analyze the runs at ``paths``; write the report, results and figures into ``out``;
    return the report's path. Raises ``AnalysisError`` for unusable runs."""
    from . import analysis_plots as plots
    from .analysis import analyze_run, group_runs, load_run, summarize
    from .analysis_report import render_report, results_json
    from .datasets import load_splits
    from .tasks import get_task

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


def cmd_analyze(args: argparse.Namespace) -> int:
    """``gaaf analyze``: exit 0, 2 on bad arguments, 1 when the dataset is missing."""
    if args.test_limit is not None and args.test_limit < 1:
        return _error(f"--test-limit must be >= 1, got {args.test_limit}")
    if args.threads is not None and args.threads < 1:
        return _error(f"--threads must be >= 1, got {args.threads}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        return _error(f"--out {args.out}: exists and is not a directory")
    from .analysis import AnalysisError
    from .data import DatasetNotFoundError

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        report = run_analysis(args.runs, args.out, args.data_dir, args.test_limit)
    except AnalysisError as exc:
        return _error(str(exc))
    except DatasetNotFoundError as exc:
        return _error(str(exc), 1)
    print(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gaaf_kernels.experiments.analyze_cli analyze ...`` (until ``gaaf``
    has the subcommand)."""
    parser = argparse.ArgumentParser(prog="gaaf")
    add_analyze_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
