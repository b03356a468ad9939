"""The ``gaaf`` command line."""

from __future__ import annotations

import argparse
import importlib
import os
import runpy
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gaaf_kernels.table import format_table

if TYPE_CHECKING:
    from gaaf_kernels.verify import Fault


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def _progress(label: str):
    """A one-line progress bar on stderr (a line per 10% when not a terminal)."""
    start = time.monotonic()
    tty = sys.stderr.isatty()
    last = [-1]

    def update(done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if not tty and pct // 10 == last[0] // 10 and done != total:
            return
        last[0] = pct
        bar = "#" * (pct // 4)
        elapsed = time.monotonic() - start
        end = "\n" if done == total or not tty else ""
        print(f"\r{label} [{bar:<25}] {done}/{total} {elapsed:5.1f}s", end=end,
              file=sys.stderr, flush=True)

    return update


def _import_user_modules(names: list[str]) -> None:
    """``--import`` takes module names or paths to .py files that register functions."""
    for name in names:
        if name.endswith(".py") or os.sep in name:
            path = Path(name)
            if not path.is_file():
                raise UsageError(f"--import {name}: no such file")
            runpy.run_path(str(path), run_name=f"gaaf_user_{path.stem}")
        else:
            importlib.import_module(name)


def _needs_interpreter() -> bool:
    from gaaf_kernels.kernels.launch import interpreting

    if interpreting() or os.environ.get("GAAF_NO_REEXEC"):
        return False
    import torch

    return not torch.cuda.is_available()


def cmd_verify(args: argparse.Namespace) -> int:
    import gaaf_kernels as gk

    _import_user_modules(args.imports)
    names = [args.activation] if args.activation else gk.activations()
    if args.activation and args.activation not in gk.activations():
        raise UsageError(f"unknown activation {args.activation!r}; registered: "
                         f"{', '.join(gk.activations())}")
    if args.compile:
        return _verify_compile(args, names)
    from gaaf_kernels import verify

    dtypes = args.dtypes.split(",")
    unknown = [d for d in dtypes if d not in verify.DTYPES]
    if unknown:
        raise UsageError(f"unknown dtype(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(verify.DTYPES)}")
    backends = verify.available_backends()
    shapes = args.shape.split(",") if args.shape else None
    bands = BAND_CHOICES[args.band]
    problems = _check_imported_derivatives() if args.imports else []
    with verify.torch_compile_disabled():
        rows = verify.run(names, shapes, dtypes, backends, progress=_progress("verify"),
                          bands=bands, compiled=not args.no_compiled)
    verify.blame_reference(rows, problems)
    print(verify.format_rows(rows))
    _report_bandless(names, bands)
    _report_faults(problems)
    failed = [r for r in rows if not r.ok]
    where = "CUDA" if "triton" in backends and not _interpreting() else "CPU"
    shown = backends + ([] if args.no_compiled else [verify.COMPILED])
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"(backends: {', '.join(shown)}; Triton on {where})")
    _report_jax(backends)
    return 1 if failed or problems else 0


def _check_imported_derivatives() -> list[Fault]:
    """The registered (non-built-in) functions' NumPy derivatives against finite
    differences of their values; prints what is at fault."""
    import gaaf_kernels as gk
    from gaaf_kernels import verify
    from gaaf_kernels.reference.registry import BUILTIN_ACTIVATIONS, BUILTIN_SHAPES

    user = [("activation", n) for n in gk.activations() if n not in BUILTIN_ACTIVATIONS]
    user += [("shape", n) for n in gk.shapes() if n not in BUILTIN_SHAPES]
    problems = verify.check_registered_derivatives(user)
    if user and not problems:
        print(f"registered functions' NumPy derivatives agree with finite differences: "
              f"{', '.join(name for _, name in user)}")
    return problems


def _report_faults(problems: list[Fault]) -> None:
    """After the table: the registered functions at fault, by name."""
    if problems:
        print("\nregistered functions at fault (the rows that compare against them fail, "
              "whatever the path computes):")
    for problem in problems:
        print(f"FAIL {problem}")


def _report_jax(backends: list[str]) -> None:
    """Say whether the JAX adapter was checked, and which of its paths ran."""
    if "jax" not in backends:
        print("JAX: not installed, its path was not checked")
        return
    import jax

    from gaaf_kernels import verify_jax

    print(f"JAX {jax.__version__}: checked the {verify_jax.path()} path on "
          f"{jax.default_backend()} (jax.vjp for the backward)")


BAND_CHOICES = {"off": (False,), "on": (True,), "both": (False, True)}


def _report_bandless(names: list[str], bands: tuple[bool, ...]) -> None:
    """Name the activations that the band cases left out (no phi'' or unbounded phi')."""
    from gaaf_kernels.reference import band_activations

    with_band = set(band_activations())
    left_out = [name for name in names if name not in with_band]
    if True in bands and left_out:
        print(f"\nno saturation band (band=True is refused) for: {', '.join(left_out)}")


def _interpreting() -> bool:
    from gaaf_kernels.kernels.launch import interpreting

    return interpreting()


def _verify_compile(args: argparse.Namespace, names: list[str]) -> int:
    from gaaf_kernels.kernels import compile_check as cc

    try:
        targets = [cc.parse_target(t) for t in args.compile.split(",") if t.strip()]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    pairs = cc.default_pairs(args.activation)
    band_pairs = []
    if True in BAND_CHOICES[args.band]:
        from gaaf_kernels.reference import band_activations

        with_band = set(band_activations())
        band_pairs = [(a, s) for a, s in pairs if a in with_band]
        if args.band == "on":
            pairs = []
    results = cc.sweep(targets, pairs, progress=_progress("compile"), band_pairs=band_pairs)
    failed = [r for r in results if not r.ok]
    if args.json:
        import dataclasses
        import json

        print(json.dumps([dict(dataclasses.asdict(r), ok=r.ok) for r in results], indent=1))
        return 1 if failed else 0
    header = ("target", "kernel", "activation", "shape", "band", "dtype", "offsets",
              "registers",
              "spill bytes", "stack bytes", "128-bit loads", "SASS/elem", "MUFU/elem",
              "predicted % of copy roofline", "result")
    print(format_table(header, [
        (r.target, r.kernel, r.activation, r.shape, "yes" if r.band else "no", r.dtype,
         "int64" if r.int64_offsets else "int32", r.registers, r.spill_bytes, r.stack_bytes,
         "yes" if r.wide_loads else "no", f"{r.instructions_per_element:.1f}"
         + ("" if r.straight_line else " (branches)"), f"{r.mufu_per_element:.2f}",
         " ".join(f"{card} {100 * frac:.0f}%" for card, frac in r.predicted.items()),
         "ok" if r.ok else ("FAIL " + r.error).strip())
        for r in results]))
    _report_bandless(names, BAND_CHOICES[args.band])
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed "
          f"(targets: {args.compile}; max registers {max(r.registers for r in results)}); "
          "roofline figures are predictions of the static model in "
          "gaaf_kernels/kernels/throughput.py, not measurements")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gaaf", description="GAAF kernels: checks and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check every path against the NumPy reference")
    v.add_argument("--activation", help="check only this activation (with every shape)")
    v.add_argument("--shape", help="comma-separated shapes (default: all registered); "
                   "'default' stands for each activation's default shape")
    v.add_argument("--dtypes", default="float32,float64,float16,bfloat16",
                   help="comma-separated dtypes (default: all four)")
    v.add_argument("--import", dest="imports", action="append", default=[],
                   metavar="MODULE_OR_PATH",
                   help="import a module or run a .py file first (to register functions)")
    v.add_argument("--compile", metavar="TARGETS",
                   help="instead: compile every specialization for GPU targets, e.g. "
                        "sm_80,sm_90, and report registers, spills, load width, SASS "
                        "instructions per element and the predicted %% of the copy roofline")
    v.add_argument("--no-compiled", action="store_true",
                   help="skip the rows of the compiled CPU path (the composite compiled by "
                        "TorchInductor, each activation with its default shape)")
    v.add_argument("--band", choices=tuple(BAND_CHOICES), default="both",
                   help="check the saturation band (band=True) too: off, on or both "
                        "(default: both)")
    v.add_argument("--json", action="store_true",
                   help="with --compile: print the results as JSON")
    v.set_defaults(func=cmd_verify)
    from gaaf_kernels.experiments.cli import add_commands  # train, reproduce, analyze

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "verify":
        # The interpreter is chosen when the kernels are defined (at import), so switching
        # it on (no GPU) or off (compiling for a GPU target) means starting afresh.
        if args.compile and _interpreting():
            env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
            _restart(argv, env)
        if not args.compile and _needs_interpreter():
            _restart(argv, dict(os.environ, TRITON_INTERPRET="1"))
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"gaaf: {exc}", file=sys.stderr)
        return 2


def _restart(argv: list[str], env: dict[str, str]) -> None:
    os.execve(sys.executable, [sys.executable, "-m", "gaaf_kernels.cli", *argv], env)


if __name__ == "__main__":
    sys.exit(main())
