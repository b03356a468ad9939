"""``gaaf study lm``: a small GPT-2 trained from scratch on the bytes of Python's standard
library: the plain model (``base``) against ``convert(model)`` (``gaaf``: GAAF gelu_tanh
with its default shape) and ``convert(model, band=True)`` (``gaaf-band``), 3 seeds.

Corpus, a file list every machine has: the 48 modules of :data:`CORPUS_FILES` (top-level
files of the standard library of every Python from 3.10 to 3.13), read from
``sysconfig.get_paths()["stdlib"]`` in that sorted order. The file at index i is
validation if ``i % 8 == 7`` (cmd, datetime, functools, ipaddress, random, typing), the
other 42 are training; each split is its files' bytes concatenated in list order, so no
file is in both. Tokens are bytes (vocabulary 256). The files differ between Python
versions, so every run records the Python version and the sha256 of both splits; the
hashes are part of the protocol, and a runs directory trained on other bytes is refused.

Model: ``GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=128, n_embd=128,
n_layer=4, n_head=4, activation_function="gelu_new"))``, all dropout 0 (short runs, and
a deterministic comparison: the same seed gives the same initial weights and the same
batches to every variant, so they differ only by the activation: GAAF's forward is GELU
within 0.5/K, its backward adds the shape). Training
and evaluation: :mod:`.lm_train`; tables and figures: :mod:`.lm_report`. Runs in
``<runs>/gpt2-stdlib/<variant>/seed<N>`` (the harness's layout); rerunning skips
finished runs and resumes interrupted ones from their last evaluation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_atomic

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CORPUS_FILES", "VAL_EVERY", "LM_VARIANTS", "LMProtocol", "Corpus", "split_files",
           "load_corpus", "lm_protocol", "lr_at", "build_lm_model", "activation_modules",
           "count_below", "val_windows", "evaluate", "run_lm_study"]

#: Top-level modules present in the standard library of Python 3.10, 3.11, 3.12 and 3.13.
CORPUS_FILES = (
    "abc.py", "argparse.py", "ast.py", "base64.py", "bdb.py", "bisect.py", "calendar.py",
    "cmd.py", "code.py", "codecs.py", "configparser.py", "contextlib.py", "copy.py",
    "csv.py", "dataclasses.py", "datetime.py", "difflib.py", "dis.py", "enum.py",
    "fileinput.py", "fnmatch.py", "fractions.py", "ftplib.py", "functools.py", "getopt.py",
    "gettext.py", "glob.py", "gzip.py", "heapq.py", "hmac.py", "inspect.py",
    "ipaddress.py", "linecache.py", "mimetypes.py", "numbers.py", "operator.py",
    "optparse.py", "pprint.py", "queue.py", "random.py", "shlex.py", "shutil.py",
    "statistics.py", "string.py", "tempfile.py", "textwrap.py", "threading.py", "typing.py",
)
VAL_EVERY = 8  # file i of the sorted list is validation if i % 8 == 7
LM_VARIANTS = ("base", "gaaf", "gaaf-band")
SEEDS = 3
TASK, TINY_TASK = "gpt2-stdlib", "tiny-gpt2"
BELOW = -3.0  # GELU saturates below: gelu(-3) = -0.004, gelu'(-3) = -0.012
DATA_SEED = 1000  # the batch generator of seed s starts from DATA_SEED + s
EVAL_CHUNK = 32  # validation windows per forward


@dataclass(frozen=True)
class LMProtocol:
    """Everything a run's numbers depend on, besides the corpus bytes and the seed."""

    steps: int
    eval_every: int
    context: int
    batch_size: int
    n_layer: int
    n_embd: int
    n_head: int
    lr: float
    warmup: int  # linear warmup steps, then cosine decay to min_lr at the last step
    min_lr: float
    weight_decay: float
    betas: tuple[float, float]
    val_windows: int  # fixed validation windows, evenly spaced over the validation split
    below: float = BELOW

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples as lists


# 9 runs (3 variants x 3 seeds) ~37 min with --jobs 2 on 2 cores (docs/reproduction.md).
FULL = LMProtocol(steps=2000, eval_every=125, context=128, batch_size=16, n_layer=4,
                  n_embd=128, n_head=4, lr=1e-3, warmup=100, min_lr=1e-4, weight_decay=0.01,
                  betas=(0.9, 0.95), val_windows=128)
# --quick: one seed, 150 steps, the same model and validation windows (under 2 min).
QUICK = dataclasses.replace(FULL, steps=150, eval_every=25, warmup=15)
# --tiny (tests): synthetic bytes, one layer of width 32, a handful of steps.
TINY = LMProtocol(steps=12, eval_every=4, context=16, batch_size=4, n_layer=1, n_embd=32,
                  n_head=2, lr=1e-2, warmup=2, min_lr=1e-4, weight_decay=0.01,
                  betas=(0.9, 0.95), val_windows=8)


def lm_protocol(quick: bool, tiny: bool) -> LMProtocol:
    return TINY if tiny else QUICK if quick else FULL


def lr_at(step: int, p: LMProtocol) -> float:
    """The learning rate of optimizer step ``step`` (1-based): linear warmup to ``lr``,
    then cosine decay to ``min_lr`` at the last step."""
    if step <= p.warmup:
        return p.lr * step / p.warmup
    progress = (step - p.warmup) / max(1, p.steps - p.warmup)
    return p.min_lr + (p.lr - p.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Corpus:
    """The two splits' bytes and where they came from."""

    source: str  # the stdlib directory, or "synthetic"
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    train: bytes
    val: bytes

    def sha256(self) -> dict[str, str]:
        return {"train": hashlib.sha256(self.train).hexdigest(),
                "val": hashlib.sha256(self.val).hexdigest()}

    def info(self) -> dict[str, Any]:
        """What a record says about the corpus (everything but the bytes)."""
        return {"source": self.source, "python": platform.python_version(),
                "split": f"file i of the sorted list is validation if i % {VAL_EVERY} == "
                         f"{VAL_EVERY - 1}", "train_files": list(self.train_files),
                "val_files": list(self.val_files), "train_bytes": len(self.train),
                "val_bytes": len(self.val), "sha256": self.sha256()}


def split_files(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(training files, validation files) of a sorted file list."""
    val = tuple(n for i, n in enumerate(names) if i % VAL_EVERY == VAL_EVERY - 1)
    return tuple(n for n in names if n not in val), val


def _tiny_files() -> dict[str, bytes]:
    """Eight small deterministic Python-like 'files' (the tests' corpus)."""
    return {f"tiny{k}.py": b"".join(
        f"def f{k}_{i}(x):\n    return x * {i % 7} + {(i * k) % 5}\n\n".encode()
        for i in range(40)) for k in range(VAL_EVERY)}


def load_corpus(tiny: bool = False, stdlib: str | Path | None = None) -> Corpus:
    """The corpus (synthetic with ``tiny``). A missing file raises
    ``DatasetNotFoundError`` naming it."""
    if tiny:
        files, source = _tiny_files(), "synthetic"
    else:
        from ..data import DatasetNotFoundError

        root = Path(stdlib if stdlib is not None else sysconfig.get_paths()["stdlib"])
        files = {}
        for name in CORPUS_FILES:
            try:
                files[name] = (root / name).read_bytes()
            except OSError as exc:
                raise DatasetNotFoundError(
                    f"the lm study's corpus file {root / name} cannot be read ({exc}); it "
                    f"needs the source files of Python's standard library (some "
                    f"distributions ship only the compiled ones)") from None
        source = str(root)
    train, val = split_files(tuple(sorted(files)))
    return Corpus(source, train, val, b"".join(files[n] for n in train),
                  b"".join(files[n] for n in val))


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """The GELU of each block's MLP (``GAAF`` once converted), bottom block first."""
    return [block.mlp.act for block in model.transformer.h]  # type: ignore[union-attr]


def build_lm_model(variant: str, p: LMProtocol, seed: int) -> tuple[nn.Module, dict]:
    """The seeded GPT-2 of ``variant`` and a description of its activations. Raises
    ``RuntimeError`` if ``convert`` did not turn every MLP's GELU into GAAF gelu_tanh (a
    partly converted model would make the comparison wrong)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if variant not in LM_VARIANTS:
        raise ValueError(f"unknown lm variant {variant!r}; choose from {', '.join(LM_VARIANTS)}")
    config = GPT2Config(vocab_size=256, n_positions=p.context, n_embd=p.n_embd,
                        n_layer=p.n_layer, n_head=p.n_head, activation_function="gelu_new",
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)  # the same initial weights for every variant of a seed
    model = GPT2LMHeadModel(config)
    info: dict[str, Any] = {"class": "GPT2LMHeadModel",
                            "parameters": sum(t.numel() for t in model.parameters()),
                            "attn_implementation": model.config._attn_implementation,
                            "conversion": None}
    base_act = activation_modules(model)[0]
    if variant != "base":
        from gaaf_kernels import GAAF, convert_report, get_options

        report = convert_report(model, band=variant == "gaaf-band",
                                example_inputs=(torch.zeros(1, 4, dtype=torch.long),))
        acts = activation_modules(model)
        ok = (report.complete and len(report.converted) == p.n_layer
              and _catalogue_name(type(base_act)) is not None  # GPT-2's own GELU's entry
              and all(c.activation == _catalogue_name(type(base_act))
                      for c in report.converted)
              and all(isinstance(a, GAAF) and a.config.band == (variant == "gaaf-band")
                      for a in acts))
        if not ok:
            raise RuntimeError(f"convert() did not turn the {p.n_layer} GELUs of GPT-2 into "
                               f"GAAF gelu_tanh:\n{report.summary()}")
        info["conversion"] = report.summary()
        info["gaaf_options"] = get_options()
    info["activations"] = [repr(a) for a in activation_modules(model)]
    return model, info


def _catalogue_name(cls: type) -> str | None:
    """The catalogue entry that ``convert`` maps the class ``cls`` to (None: none)."""
    from gaaf_kernels.reference.catalogue import ACTIVATIONS

    path = f"{cls.__module__}.{cls.__qualname__}"
    return next((e.name for e in ACTIVATIONS if any(m == path for m, _ in e.modules)), None)


def count_below(x, threshold: float = BELOW) -> tuple[int, int]:
    """(elements of the tensor ``x`` below ``threshold``, elements)."""
    return int((x < threshold).sum()), x.numel()


def val_windows(data, p: LMProtocol):
    """The fixed validation windows: ``val_windows`` rows of ``context + 1`` bytes at
    evenly spaced offsets of ``data`` (a uint8 tensor)."""
    import torch

    starts = torch.linspace(0, len(data) - p.context - 1, p.val_windows).long()
    return data[starts[:, None] + torch.arange(p.context + 1)].long()


def evaluate(model, windows, threshold: float) -> dict[str, Any]:
    """Mean next-byte cross-entropy over ``windows`` (rows of context + 1 bytes) and the
    fraction of the GELU inputs below ``threshold``, per layer and overall; per layer also
    the inputs' minimum and standard deviation (how far they are from the threshold)."""
    import torch
    import torch.nn.functional as F

    acts = activation_modules(model)
    below, total = [0] * len(acts), [0] * len(acts)
    low, sums = [math.inf] * len(acts), [[0.0, 0.0] for _ in acts]

    def hook(i):
        def count(module, args):
            x = args[0].detach()
            b, n = count_below(x, threshold)
            below[i] += b
            total[i] += n
            low[i] = min(low[i], float(x.min()))
            sums[i][0] += float(x.double().sum())
            sums[i][1] += float(x.double().square().sum())
        return count

    handles = [a.register_forward_pre_hook(hook(i)) for i, a in enumerate(acts)]
    loss_sum, count = 0.0, 0
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for chunk in windows.split(EVAL_CHUNK):
                chunk = chunk.to(device)
                logits = model(chunk[:, :-1]).logits
                loss_sum += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                  chunk[:, 1:].reshape(-1), reduction="sum"))
                count += chunk[:, 1:].numel()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    val_loss = loss_sum / count
    return {"val_loss": val_loss, "val_bpb": val_loss / math.log(2.0),
            "below": sum(below) / sum(total),
            "below_layers": [b / n for b, n in zip(below, total)],
            "input_min_layers": low,
            "input_std_layers": [math.sqrt(max(0.0, q / n - (m / n) ** 2))
                                 for (m, q), n in zip(sums, total)]}


def run_lm_study(name: str = "lm", *, quick: bool = False, seeds: int | None = None,
                 jobs: int = 1, out: str | Path | None = None,
                 runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 device: str = "auto", progress: bool = True, tiny: bool = False) -> int:
    """``run_study("lm", ...)``: train (or skip, or resume) every run, then write
    ``table.md``, ``table.json`` and the PNGs into ``out``. Returns 0, or 1 if a run
    failed. ``data_dir`` is not used (the corpus is the standard library's sources).

    Raises ``HarnessError`` for bad arguments or a runs directory holding runs of another
    protocol (before anything runs), ``DatasetNotFoundError`` for a missing corpus file
    and ``KeyboardInterrupt`` after the workers stopped.
    """
    from ..train import HarnessError
    from . import finish_study, study_dirs, study_meta
    from .lm_report import collect, format_markdown, plot, summarize, to_json
    from .lm_train import LMJob, check_protocol, run_lm_jobs, run_state

    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise HarnessError(f"--seeds must be >= 1, got {seeds}")
    out, runs_dir, dev = study_dirs(name, quick, jobs, out, runs_dir, device)
    if data_dir is not None:
        print("study lm: --data-dir is not used (the corpus is Python's standard library)",
              file=sys.stderr)
    protocol = lm_protocol(quick, tiny)
    corpus = load_corpus(tiny)
    seed_list = tuple(range(seeds if seeds is not None else (1 if quick or tiny else SEEDS)))
    task = TINY_TASK if tiny else TASK
    # Seed by seed: the first finished seeds already compare all the variants.
    all_jobs = [LMJob(task, v, s, protocol, corpus, str(runs_dir), device)
                for s in seed_list for v in LM_VARIANTS]
    for job in all_jobs:  # another protocol: refused before anything runs
        check_protocol(job)
    todo, skipped = [], 0
    for job in all_jobs:
        if run_state(job) == "done":
            skipped += 1
            print(f"{job.label}: finished, skipped", file=sys.stderr)
        else:
            todo.append(job)
    workers = min(jobs, len(todo))
    import torch

    threads = 1 if workers > 1 else torch.get_num_threads()
    print(f"study {name}: {len(all_jobs)} runs, {skipped} finished, {len(todo)} to run"
          + (f" ({workers} worker processes of one torch thread)" if workers > 1 else ""),
          file=sys.stderr)
    t0 = time.perf_counter()
    failures = run_lm_jobs(todo, jobs, progress) if todo else []

    found, missing = collect(all_jobs)
    rows, curves = summarize(found)
    from importlib.metadata import version

    meta = study_meta(name, quick, seeds, jobs, out, runs_dir, data_dir, device, tiny, dev,
                      threads=threads, t0=t0, protocol=protocol.to_dict(),
                      corpus=corpus.info())
    meta.update(quick=quick, tiny=tiny, seeds=list(seed_list))
    meta["versions"]["transformers"] = version("transformers")
    text = format_markdown(meta, found, rows, curves, missing)
    return finish_study(out, text, to_json(meta, found, rows, curves, missing),
                        lambda: plot(curves, protocol, out, write_atomic), failures, missing,
                        t0)
