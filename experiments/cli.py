"""``gaaf train`` / ``gaaf reproduce`` / ``gaaf data`` subcommands.

Heavy modules (torch, the training loop) are imported inside the command functions, so
that ``gaaf verify`` does not pay for them. Bad arguments print one ``gaaf: ...`` line on
stderr and return 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from .analyze_cli import (
    add_analyze_command,
    add_recording_arguments,
    close_callbacks,
    recording_callbacks,
)

__all__ = ["add_commands", "add_train_arguments", "cmd_train", "cmd_reproduce", "cmd_data"]

TABLES = ("table4", "table5")


def _error(message: str, code: int = 2) -> int:
    print(f"gaaf: {message}", file=sys.stderr)
    return code


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``gaaf train`` (also ``python -m gaaf_kernels.experiments``)."""
    p.add_argument("task", help="mnist-mlp, fashion-mlp, cifar10-vgg, cifar100-vgg, svhn-cnn "
                                "or fashion-cnn")
    p.add_argument("--variant", default="base",
                   help="base, dropout, gaaf (MLP tasks); base, bn, gaaf, bn-gaaf (CNN tasks)")
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
    add_recording_arguments(p)


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
                   help="comma-separated variants to run (default: all of each task's)")
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
    r.set_defaults(func=cmd_reproduce)

    d = subparsers.add_parser("data", help="fetch or verify datasets")
    d.add_argument("action", help="fetch-mnist or verify-mnist")
    d.add_argument("--data-dir", default=None)
    d.set_defaults(func=cmd_data)

    add_analyze_command(subparsers)


def cmd_train(args: argparse.Namespace) -> int:
    from .data import DatasetNotFoundError
    from .train import HarnessError, RunConfig, check_config, train

    cfg = RunConfig(task=args.task, variant=args.variant, seed=args.seed, epochs=args.epochs,
                    patience=args.patience, device=args.device, out=args.out,
                    data_dir=args.data_dir, threads=args.threads, train_limit=args.train_limit,
                    progress=not args.no_progress)
    try:
        check_config(cfg)
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
    if args.table not in TABLES:
        return _error(f"unknown table {args.table!r}; choose from {', '.join(TABLES)}")
    if args.seeds is not None and args.seeds < 1:
        return _error(f"--seeds must be >= 1, got {args.seeds}")
    if args.epochs is not None and args.epochs < 1:
        return _error(f"--epochs must be a positive integer, got {args.epochs}")
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
                         progress=not args.no_progress, train_limit=args.train_limit)
    except HarnessError as exc:
        return _error(str(exc))
    except (DatasetNotFoundError, DatasetFetchError) as exc:
        return _error(str(exc), 1)


def cmd_data(args: argparse.Namespace) -> int:
    from . import data

    if args.action == "fetch-mnist":
        try:
            print(data.ensure_mnist(args.data_dir))
        except data.DatasetFetchError as exc:
            return _error(str(exc), 1)
        return 0
    if args.action == "verify-mnist":
        problems = data.verify_mnist(data._resolve(args.data_dir) / "mnist")
        print("\n".join(problems) if problems else "MNIST verified")
        return 1 if problems else 0
    return _error(f"unknown data action {args.action!r}; choose from fetch-mnist, verify-mnist")
