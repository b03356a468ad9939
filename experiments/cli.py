"""The experiment subcommands of ``gaaf``: ``train``, ``reproduce``, ``study``, ``data``
and ``analyze`` (and the ``--record-analysis`` flag of ``train``); ``python -m
gaaf_kernels.experiments`` is ``gaaf train`` for torchrun.

Heavy modules (torch, the training loop) are imported inside the command functions, so
that ``gaaf verify`` does not pay for them. Bad arguments print one ``gaaf: ...`` line on
stderr and return 2; a missing dataset returns 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "add_train_arguments", "add_analyze_command", "add_study_command",
           "add_recording_arguments", "recording_callbacks", "close_callbacks", "cmd_train",
           "cmd_reproduce", "cmd_study", "cmd_data", "cmd_analyze"]


def _error(message: str, code: int = 2) -> int:
    """Print one ``gaaf: message`` line on stderr; return the exit status."""
    print(f"gaaf: {message}", file=sys.stderr)
    return code


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``gaaf train`` (also ``python -m gaaf_kernels.experiments``)."""
    p.add_argument("task", help="mnist-mlp, fashion-mlp, cifar10-vgg, cifar100-vgg, svhn-cnn "
                                "or fashion-cnn")
    p.add_argument("--variant", default="base",
                   help="base, dropout, gaaf, gaaf-band (MLP tasks); base, bn, gaaf, bn-gaaf, "
                        "gaaf-band, bn-gaaf-band (CNN tasks); -band: the saturation band")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None,
                   help="maximum epochs (default: the task's protocol)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a new best validation "
                        "accuracy (default: the task's protocol)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--out", default="runs", help="runs directory (default: ./runs)")
    p.add_argument("--data-dir", default=None, help="default: $GAAF_DATA_DIR or ./data")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--train-limit", type=int, default=None,
                   help="use only the first N training examples (quick runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-grad-clip", action="store_true",
                   help="turn off the protocol's gradient clipping (the CNN tasks clip at 5)")
    add_recording_arguments(p)


def add_recording_arguments(p: argparse.ArgumentParser) -> None:
    """``--record-analysis`` for ``gaaf train``."""
    p.add_argument("--record-analysis", action="store_true",
                   help="record the mean |gradient| per layer and, every epoch, the net "
                        "variance over 20 dropout masks into RUN_DIR/analysis.json "
                        "(for gaaf analyze; it slows training a little: docs/analysis.md)")


def recording_callbacks(args: argparse.Namespace, cfg: Any) -> list:
    """The callbacks ``gaaf train`` passes to ``train`` (none without the flag)."""
    if not getattr(args, "record_analysis", False):
        return []
    from .analysis.recording import make_recording_callbacks

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


def add_study_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``study`` to the ``gaaf`` subcommands."""
    s = subparsers.add_parser(
        "study", help="depth, sensitivity, cnn or lm study (tables, JSON and PNGs)",
        description="depth: MNIST tanh MLPs of 3-20 hidden layers, base/dropout/gaaf/"
                    "gaaf-band, 3 seeds; sensitivity: GAAF's K and c on the paper's MLP; cnn: "
                    "ReLU CNNs (with/without BatchNorm, a deep plain one under SGD and "
                    "Adam) on Fashion-MNIST and MNIST with GAAF, the surrogate shapes "
                    "bsilu/nelu and leaky relu; "
                    "lm: a small GPT-2 on the bytes of Python's standard library, base/gaaf/"
                    "gaaf-band, 3 seeds (--quick: 150 steps, one seed). "
                    "Finished runs are skipped, interrupted ones resume; writes table.md, "
                    "table.json and PNGs into --out.")
    s.add_argument("study", help="depth, sensitivity, cnn or lm")
    s.add_argument("--quick", action="store_true",
                   help="reduced grid, one seed, one epoch on 2000 images; its own "
                        "runs and results directories")
    s.add_argument("--out", default=None, help="results folder (default "
                   "results/study-<study>[-quick])")
    s.add_argument("--runs", default=None, help="runs directory (default "
                   "runs/study-<study>[-quick])")
    s.add_argument("--jobs", type=int, default=1,
                   help="worker processes, one torch thread each (default 1)")
    s.add_argument("--seeds", type=int, default=None,
                   help="number of seeds (default 3; 1 with --quick)")
    s.add_argument("--data-dir", default=None, help="default: $GAAF_DATA_DIR or ./data")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: synthetic
    s.set_defaults(func=cmd_study)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the experiment subcommands to the ``gaaf`` parser.

    Each subcommand sets ``func`` (``args -> int`` exit status) via ``set_defaults``.
    """
    t = subparsers.add_parser("train", help="train one (task, variant, seed) run")
    add_train_arguments(t)
    t.set_defaults(func=cmd_train)

    r = subparsers.add_parser("reproduce", help="run every variant and seed of a paper table")
    r.add_argument("table", help="table4 (MNIST MLP) or table5 (CNNs)")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5; "
                   "1 with --quick)")
    r.add_argument("--quick", action="store_true",
                   help="a few epochs, one seed, separate runs dir and results file")
    r.add_argument("--tasks", default=None,
                   help="comma-separated tasks (default: the paper's; e.g. fashion-cnn)")
    r.add_argument("--variants", default=None,
                   help="comma-separated variants to run (default: each task's paper "
                        "variants; gaaf-band and bn-gaaf-band run only when named)")
    r.add_argument("--epochs", type=int, default=None, help="override max epochs")
    r.add_argument("--patience", type=int, default=None, help="override the patience")
    r.add_argument("--train-limit", type=int, default=None,
                   help="use only the first N training examples")
    r.add_argument("--device", default="auto")
    r.add_argument("--out", default=None, help="runs directory (default ./runs, "
                   "./runs/quick with --quick)")
    r.add_argument("--results-dir", default="results")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; 1 with --quick)")
    r.add_argument("--no-fetch", action="store_true", help="do not fetch MNIST if missing")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--no-grad-clip", action="store_true",
                   help="turn off the protocol's gradient clipping (the CNN tasks clip at 5)")
    r.set_defaults(func=cmd_reproduce)

    d = subparsers.add_parser("data", help="fetch or verify datasets")
    d.add_argument("action", help="fetch-mnist or verify-mnist")
    d.add_argument("--data-dir", default=None)
    d.set_defaults(func=cmd_data)

    add_study_command(subparsers)
    add_analyze_command(subparsers)


def cmd_train(args: argparse.Namespace) -> int:
    from .data import DatasetNotFoundError
    from .train import HarnessError, RunConfig, train

    try:
        cfg = RunConfig(task=args.task, variant=args.variant, seed=args.seed,
                        epochs=args.epochs, patience=args.patience, device=args.device,
                        out=args.out, data_dir=args.data_dir, threads=args.threads,
                        train_limit=args.train_limit, progress=not args.no_progress,
                        no_grad_clip=args.no_grad_clip)
        callbacks = recording_callbacks(args, cfg)
        try:
            record = train(cfg, callbacks=callbacks)
        finally:
            close_callbacks(callbacks)
    except HarnessError as exc:
        return _error(str(exc))
    except DatasetNotFoundError as exc:
        return _error(str(exc), 1)
    final = record["final"]
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports
    print(f"{record['task']}/{record['variant']}/seed{record['seed']}: test accuracy "
          f"{final['test_acc']:.2f}% at epoch {final['converged_epoch']} "
          f"(ran {final['epochs_run']} epochs, {record['wall_time_s']:.0f} s)")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .data import DatasetFetchError, DatasetNotFoundError
    from .reproduce import reproduce
    from .train import HarnessError

    tasks = args.tasks.split(",") if args.tasks else None
    variants = args.variants.split(",") if args.variants else None
    try:
        return reproduce(args.table, seeds=args.seeds, quick=args.quick, tasks=tasks,
                         variants=variants, epochs=args.epochs, patience=args.patience,
                         device=args.device, out=args.out,
                         results_dir=args.results_dir, data_dir=args.data_dir,
                         threads=args.threads, fetch=not args.no_fetch,
                         progress=not args.no_progress, train_limit=args.train_limit,
                         no_grad_clip=args.no_grad_clip)
    except HarnessError as exc:
        return _error(str(exc))
    except (DatasetNotFoundError, DatasetFetchError) as exc:
        return _error(str(exc), 1)


def cmd_study(args: argparse.Namespace) -> int:
    """``gaaf study``: 0, 1 if a run failed or the dataset is missing, 2 on bad
    arguments, 130 after Ctrl-C (rerun the same command to continue)."""
    from .data import DatasetNotFoundError
    from .study import run_study
    from .train import HarnessError

    try:
        return run_study(args.study, quick=args.quick, seeds=args.seeds, jobs=args.jobs,
                         out=args.out, runs_dir=args.runs, data_dir=args.data_dir,
                         device=args.device, progress=not args.no_progress, tiny=args.tiny)
    except HarnessError as exc:
        return _error(str(exc))
    except DatasetNotFoundError as exc:
        return _error(str(exc), 1)
    except KeyboardInterrupt:
        return _error("interrupted; run the same command again to continue (finished runs "
                      "are kept, interrupted ones resume from their last epoch)", 130)


def cmd_data(args: argparse.Namespace) -> int:
    from . import data

    if args.action == "fetch-mnist":
        try:
            print(data.ensure_mnist(args.data_dir))
        except data.DatasetFetchError as exc:
            return _error(str(exc), 1)
        return 0
    if args.action == "verify-mnist":
        problems = data.verify_mnist(data.resolve_data_dir(args.data_dir) / "mnist")
        print("\n".join(problems) if problems else "MNIST verified")
        return 1 if problems else 0
    return _error(f"unknown data action {args.action!r}; choose from fetch-mnist, verify-mnist")


def cmd_analyze(args: argparse.Namespace) -> int:
    """``gaaf analyze``: exit 0, 2 on bad arguments, 1 when the dataset is missing."""
    if args.test_limit is not None and args.test_limit < 1:
        return _error(f"--test-limit must be >= 1, got {args.test_limit}")
    if args.threads is not None and args.threads < 1:
        return _error(f"--threads must be >= 1, got {args.threads}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        return _error(f"--out {args.out}: exists and is not a directory")
    from .analysis import AnalysisError
    from .analysis.analyze import run_analysis
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
