"""``gaaf reproduce table4|table5``: every variant and seed, finished runs skipped, then
``results/<table>.md`` (ours beside the paper's numbers) and a PNG of the learning curves."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import records
from .tasks import get_task

__all__ = ["TABLES", "PAPER", "reproduce", "collect", "format_table", "plot_curves"]

TABLES: dict[str, dict[str, Any]] = {
    "table4": {"tasks": ("mnist-mlp",), "quick_epochs": 5, "quick_limit": None,
               "title": "Table 4: MLP 784-512-256-256-10, tanh"},
    "table5": {"tasks": ("cifar100-vgg", "cifar10-vgg", "svhn-cnn"), "quick_epochs": 2,
               "quick_limit": 5000, "title": "Table 5: CNNs (VGG16-like, SVHN CNN), ReLU"},
}
ROW_NAMES = {"base": "Base Model", "dropout": "+Dropout", "gaaf": "+GAAF", "bn": "+Batch Norm (BN)",
             "bn-gaaf": "+BN +GAAF", "gaaf-band": "+GAAF (band)",
             "bn-gaaf-band": "+BN +GAAF (band)"}
#: The paper's numbers: (test accuracy %, its std or None, epochs, their std or None).
PAPER: dict[str, dict[str, tuple]] = {
    "mnist-mlp": {"base": (98.23, 0.075, 82, 16.6), "dropout": (98.40, 0.034, 169, 9.7),
                  "gaaf": (98.35, 0.059, 114, 24.8)},
    "cifar100-vgg": {"base": (59.63,), "bn": (67.48,), "gaaf": (61.29,), "bn-gaaf": (69.36,)},
    "cifar10-vgg": {"base": (89.55,), "bn": (91.1,), "gaaf": (90.16,), "bn-gaaf": (91.92,)},
    "svhn-cnn": {"base": (92.03,), "bn": (93.80,), "gaaf": (92.19,), "bn-gaaf": (94.16,)},
}


def _ms(values: list[float], digits: int) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    std = f"{statistics.stdev(values):.{digits + 1}f}" if len(values) > 1 else "-"
    return f"{mean:.{digits}f} ({std})"


def _paper(task: str, variant: str, what: str) -> str:
    entry = PAPER.get(task, {}).get(variant)
    if entry is None:
        return "-"
    if what == "acc":
        return f"{entry[0]:.2f}" + (f" ({entry[1]})" if len(entry) > 1 else "")
    return f"{entry[2]} ({entry[3]})" if len(entry) > 2 else "-"


def _variants(task: str, only: list[str] | None) -> list[str]:
    """The task's default variants, or those of ``only`` among all it allows."""
    spec = get_task(task)
    if only is None:
        return list(spec.variants)
    return [v for v in spec.all_variants if v in only]


def collect(out: str | Path, tasks: list[str], seeds: list[int],
            variants: list[str] | None = None) -> dict:
    """``{task: {variant: [finished records]}}`` for the given seeds (and variants)."""
    found: dict[str, dict[str, list[dict]]] = {}
    for task in tasks:
        for variant in _variants(task, variants):
            recs = [records.read_finished(records.run_dir(out, task, variant, s)) for s in seeds]
            found.setdefault(task, {})[variant] = [r for r in recs if r is not None]
    return found


def _describe(found: dict, seeds: list[int], missing: dict[str, str]) -> list[str]:
    recs = [r for by_v in found.values() for rs in by_v.values() for r in rs]
    lines = []
    if recs:
        r0 = recs[0]
        proto = r0["config"]["protocol"]
        epochs = sorted({r["final"]["epochs_run"] for r in recs})
        lines += [
            f"Ours: mean (sample std) over seeds {', '.join(map(str, seeds))}; "
            f"{len(recs)} finished runs. Machine: {r0['machine']['cpu_model']} "
            f"({r0['machine']['torch_threads']} torch threads), device {r0['device']}, "
            f"torch {r0['versions']['torch']}.",
            f"Protocol: SGD lr {proto['lr']} momentum {proto['momentum']} weight decay "
            f"{proto['weight_decay']}, batch {proto['batch_size']}, at most "
            f"{proto['max_epochs']} epochs, patience {proto['patience']} (epochs actually run: "
            f"{epochs[0]}-{epochs[-1]}); {proto['convergence']}.",
            f"Init {proto['init']}, input normalization {proto['normalize']}, augmentation "
            f"{proto['augment']}, gradient clipping {proto.get('grad_clip', 'none')}, "
            f"validation: last {proto['val_fraction']:.3g} of the training set.",
        ]
        limit = r0["config"].get("train_limit")
        if limit:
            lines.append(f"Training set limited to its first {limit} examples (reduced run).")
    for task, why in missing.items():
        lines.append(f"{task}: not run ({why}).")
    return lines


def format_table(table: str, found: dict, seeds: list[int],
                 missing: dict[str, str] | None = None) -> str:
    """The markdown of ``results/<table>.md``."""
    missing = missing or {}
    tasks = list(found)
    out = [f"# {TABLES[table]['title']}", "", *_describe(found, seeds, missing), ""]
    variants: list[str] = []
    for task in tasks:
        variants += [v for v in found[task] if v not in variants]
    if table == "table4" or all(get_task(t).arch == "mlp" for t in tasks):
        for task in tasks:
            out += [f"## {task}", "",
                    "| Model | Activation | Test accuracy (%), ours | paper | "
                    "Epochs to converge, ours | paper | runs |", "|---|---|---|---|---|---|---|"]
            for v in found[task]:
                rs = found[task][v]
                out.append(
                    f"| {ROW_NAMES[v]} | {'GAAF' if 'gaaf' in v else 'tanh'} | "
                    f"{_ms([r['final']['test_acc'] for r in rs], 2)} | {_paper(task, v, 'acc')} | "
                    f"{_ms([r['final']['converged_epoch'] for r in rs], 1)} | "
                    f"{_paper(task, v, 'epochs')} | {len(rs)} |")
            out.append("")
        return "\n".join(out)
    head = "| Model | Activation | " + " | ".join(f"{t}, ours | paper" for t in tasks) + " |"
    out += ["Test accuracy (%):", "", head, "|---|---|" + "---|---|" * len(tasks)]
    for v in variants:
        cells = [f"{_ms([r['final']['test_acc'] for r in found[t].get(v, [])], 2)} | "
                 f"{_paper(t, v, 'acc')}" for t in tasks]
        out.append(f"| {ROW_NAMES[v]} | {'GAAF' if 'gaaf' in v else 'ReLU'} | "
                   + " | ".join(cells) + " |")
    out += ["", "Epochs to converge (ours; the paper gives none) and runs:", "",
            "| Model | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for v in variants:
        cells = [f"{_ms([r['final']['converged_epoch'] for r in found[t].get(v, [])], 1)} "
                 f"[{len(found[t].get(v, []))}]" for t in tasks]
        out.append(f"| {ROW_NAMES[v]} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def plot_curves(found: dict, path: str | Path, title: str) -> None:
    """Validation accuracy and training loss per epoch, every run (a color per variant)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in found if any(found[t].values())]
    if not tasks:
        return
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for i, (variant, rs) in enumerate(found[task].items()):
            color = f"C{i}"
            for j, r in enumerate(rs):
                ep = [h["epoch"] for h in r["epochs"]]
                label = f"{variant} ({len(rs)} runs)" if j == 0 else None
                axes[row, 0].plot(ep, [h["val_acc"] for h in r["epochs"]], color=color,
                                  alpha=0.7, lw=1, label=label)
                axes[row, 1].plot(ep, [h["train_loss"] for h in r["epochs"]], color=color,
                                  alpha=0.7, lw=1, label=label)
                c = r["final"]["converged_epoch"]
                axes[row, 0].plot([c], [r["epochs"][c - 1]["val_acc"]], "o", color=color, ms=3)
        axes[row, 0].set(title=f"{task}: validation accuracy (dot: converged epoch)",
                         xlabel="epoch", ylabel="%")
        axes[row, 1].set(title=f"{task}: training loss", xlabel="epoch", yscale="log")
        axes[row, 0].legend(fontsize=8)
        axes[row, 1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _writable(directory: Path, option: str, error: type[Exception]) -> None:
    """Create ``directory`` and a file in it, or raise ``error`` naming the option."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise error(f"cannot write {directory} ({option}): {exc}") from None


def reproduce(table: str, *, seeds: int | None = None, quick: bool = False,
              tasks: list[str] | None = None, variants: list[str] | None = None,
              epochs: int | None = None, patience: int | None = None, device: str = "auto",
              out: str | Path | None = None, results_dir: str | Path = "results",
              data_dir: str | Path | None = None, threads: int | None = None,
              fetch: bool = True, progress: bool = True,
              train_limit: int | None = None, no_grad_clip: bool = False) -> int:
    """Run (or skip) every (seed, task, variant); write the table and the curves.

    ``variants`` restricts the runs to those variants (each must exist in every task);
    the table then reports only them. Without it the task's default variants run (not
    the band's, which run only when named). ``no_grad_clip`` turns the protocol's
    gradient clipping off (the CNN tasks clip at 5).
    """
    from .data import DatasetNotFoundError, ensure_mnist
    from .train import HarnessError, RunConfig, train

    if table not in TABLES:
        raise HarnessError(f"unknown table {table!r}; choose from {', '.join(TABLES)}")
    if seeds is not None and seeds < 1:
        raise HarnessError(f"--seeds must be >= 1, got {seeds}")
    spec = TABLES[table]
    task_names = list(tasks or spec["tasks"])
    for name in task_names:
        try:
            task = get_task(name)
        except KeyError as exc:
            raise HarnessError(exc.args[0]) from None
        unknown = [v for v in variants or () if v not in task.all_variants]
        if unknown:
            raise HarnessError(f"unknown variant {unknown[0]!r} for {name}; choose from "
                               f"{', '.join(task.all_variants)}")
    seed_list = list(range(seeds if seeds is not None else (1 if quick else 5)))
    if quick:
        epochs = spec["quick_epochs"] if epochs is None else epochs
        train_limit = spec["quick_limit"] if train_limit is None else train_limit
        # One thread: on a shared 2-core machine, two OpenMP threads competing with other
        # processes made some MNIST epochs many times slower (docs/reproduction.md); one
        # thread is never far off.
        threads = 1 if threads is None else threads
    out = Path(out if out is not None else ("runs/quick" if quick else "runs"))
    # Every run's configuration is made, and so validated, before anything runs.
    runs = [RunConfig(task=name, variant=variant, seed=seed, epochs=epochs, patience=patience,
                      device=device, out=out, data_dir=data_dir, threads=threads,
                      train_limit=train_limit, progress=progress, no_grad_clip=no_grad_clip)
            for seed in seed_list for name in task_names for variant in _variants(name, variants)]
    stem = table if tasks is None else f"{table}-{'-'.join(task_names)}"
    stem += f"-{'-'.join(variants)}" if variants else ""
    stem += "-noclip" if no_grad_clip else ""
    stem += "-quick" if quick else ""
    # Where it writes, checked before the first run (not after hours, at the table).
    _writable(out, "--out", HarnessError)
    _writable(Path(results_dir), "--results-dir", HarnessError)
    if fetch and any(get_task(t).dataset == "mnist" for t in task_names):
        ensure_mnist(data_dir)
    missing: dict[str, str] = {}
    t0 = time.perf_counter()
    for cfg in runs:
        if cfg.task in missing:
            continue
        label = f"{cfg.task}/{cfg.variant}/seed{cfg.seed}"
        if records.read_finished(records.run_dir(out, cfg.task, cfg.variant, cfg.seed)):
            print(f"{label}: finished, skipped", file=sys.stderr)
        try:
            rec = train(cfg)
        except DatasetNotFoundError as exc:
            if len(task_names) == 1:
                raise
            missing[cfg.task] = "dataset not found"
            print(f"gaaf: {cfg.task}: {str(exc).splitlines()[0]} (skipped)", file=sys.stderr)
            continue
        fin = rec["final"]
        print(f"{label}: test {fin['test_acc']:.2f}% at epoch {fin['converged_epoch']} "
              f"(ran {fin['epochs_run']}), {rec['wall_time_s']:.0f} s", file=sys.stderr)
    found = collect(out, [t for t in task_names if t not in missing], seed_list, variants)
    text = format_table(table, found, seed_list, missing)
    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.md").write_text(text)
    plot_curves(found, results / f"{stem}.png", f"{spec['title']} ({stem})")
    print(text)
    print(f"wrote {results / f'{stem}.md'} and {results / f'{stem}.png'} "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0 if found else 1
