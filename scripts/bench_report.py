#!/usr/bin/env python3
"""Tables and a plot from pytest-benchmark JSON written by the GAAF benchmarks.

    python scripts/bench_report.py RUN.json [MORE.json ...] --out-dir DIR [--name NAME]
                                   [--summary] [--merge-json ALL.json] [--no-plot]

Writes ``DIR/NAME.md`` (markdown tables: contender, activation, dtype, size, pass,
median time, GB/s, ratio to the plain activation, % of the copy ceiling) and
``DIR/NAME.png`` (GB/s per contender, matplotlib Agg; skipped with a warning when
matplotlib is missing). NAME defaults to ``bench_<device>`` (``bench_cpu``,
``bench_cuda``). Several JSON files (say, one per pytest run) are merged; derived
metrics missing from the JSON are computed here. ``--summary`` also prints a short
plain-text summary (the largest tensor's forward+backward, the target, the overhead).

Needs only the standard library (and matplotlib for the plot): no torch.

Derived metrics (:func:`add_derived`, also used by benchmarks/conftest.py at the end
of a run): ``gbps`` = bytes that must move / median time, where the bytes are 2
tensor passes forward, 3 backward, 5 forward+backward, 2 for a copy;
``ratio_to_floor`` = median / median of the plain activation in the same group;
``pct_of_copy`` = GB/s over the GB/s of the device-to-device copy of the largest
tensor copied on the same device.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

PASS_ORDER = {"fwd": 0, "bwd": 1, "fwdbwd": 2, "copy": 3}
PASS_LABEL = {"fwd": "forward", "bwd": "backward", "fwdbwd": "fwd+bwd", "copy": "copy"}
DTYPE_ORDER = {"float32": 0, "bfloat16": 1, "float16": 2}
CONTENDER_ORDER = ["plain", "torch.relu", "torch.tanh", "gaaf_triton", "gaaf", "gaaf_auto",
                   "gaaf_torch", "gaaf_compiled", "compile", "eager", "copy"]
CONTENDER_LABEL = {
    "gaaf_triton": "GAAF Triton (fused)",
    "gaaf_torch": "GAAF torch (fused, compiled)",
    "gaaf_compiled": "torch.compile(gaaf)",
    "gaaf_auto": "gaaf (auto)",
    "gaaf": "gaaf (auto)",
    "compile": "torch.compile(formula)",
    "eager": "eager composite",
    "copy": "copy (ceiling)",
}
SUITE_ORDER = {"copy": 0, "target": 1, "models": 2, "passes": 3, "overhead": 4}
SUITE_TITLE = {
    "copy": "Bandwidth ceiling: device-to-device copy (float32)",
    "target": "Target: forward+backward, 10^7 float32 elements (floor: torch.tanh)",
    "passes": "Passes (floor: the plain activation of the same group)",
    "overhead": "Host overhead per call, 128x512 float32 (floor: torch.tanh)",
    "models": "Training steps of whole models (median per step)",
}


# --- derived metrics --------------------------------------------------------------


def _median(entry: dict) -> float | None:
    median = (entry.get("stats") or {}).get("median")
    return median if isinstance(median, (int, float)) and median > 0 else None


def add_derived(entries: list[dict]) -> None:
    """Fill ``median_s``, ``gbps``, ``ratio_to_floor``, ``pct_of_copy`` in place.

    ``entries`` are pytest-benchmark JSON benchmarks (``group``, ``extra_info`` with
    ``bytes``, ``role``, ``device``, ``numel``; ``stats`` with ``median``).
    """
    floors: dict[str, float] = {}
    ceilings: dict[str, tuple[int, float]] = {}
    for entry in entries:
        info = entry.setdefault("extra_info", {})
        median = _median(entry)
        if median is None or "bytes" not in info:
            continue
        info["median_s"] = median
        info["gbps"] = info["bytes"] / median / 1e9
        if info.get("role") == "floor":
            floors[entry.get("group")] = median
        elif info.get("role") == "copy":
            device = info.get("device")
            best = ceilings.get(device)
            if best is None or info.get("numel", 0) > best[0]:
                ceilings[device] = (info.get("numel", 0), info["gbps"])
    for entry in entries:
        info = entry["extra_info"]
        median = _median(entry)
        if median is None or "bytes" not in info:
            continue
        floor = floors.get(entry.get("group"))
        if floor and info.get("role") != "copy":
            info["ratio_to_floor"] = median / floor
        ceiling = ceilings.get(info.get("device"))
        if ceiling and ceiling[1] > 0:
            info["copy_ceiling_gbps"] = ceiling[1]
            info["pct_of_copy"] = 100.0 * info["gbps"] / ceiling[1]


# --- loading ----------------------------------------------------------------------


def load(paths: list[Path]) -> tuple[list[dict], dict, dict]:
    """GAAF benchmarks of all files (later files win on equal fullname), the first file's
    metadata, and a merged pytest-benchmark document (the first file's, all benchmarks)."""
    by_name: dict[str, dict] = {}
    meta: dict = {}
    merged: dict = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if not merged:
            merged = {k: v for k, v in data.items() if k != "benchmarks"}
            meta = {"machine_info": data.get("machine_info") or {},
                    "environment": data.get("gaaf_environment") or {},
                    "datetime": data.get("datetime"), "version": data.get("version")}
        for entry in data.get("benchmarks") or []:
            if "contender" in (entry.get("extra_info") or {}):
                by_name[entry.get("fullname") or str(len(by_name))] = entry
    entries = list(by_name.values())
    add_derived(entries)
    merged["benchmarks"] = entries
    return entries, meta, merged


def _size_key(size: str) -> float:
    """Order sizes by element count ("128x512", "2^24", "1e7")."""
    try:
        if "^" in size:
            base, exp = size.split("^")
            return float(base) ** float(exp)
        if "x" in size:
            return math.prod(float(p) for p in size.split("x"))
        return float(size)
    except ValueError:
        return math.inf


def _contender_key(name: str) -> int:
    return CONTENDER_ORDER.index(name) if name in CONTENDER_ORDER else len(CONTENDER_ORDER)


def sort_key(entry: dict):
    i = entry["extra_info"]
    return (i.get("device", ""), SUITE_ORDER.get(i.get("suite", "passes"), 9),
            i.get("activation", ""), _size_key(i.get("size", "")),
            DTYPE_ORDER.get(i.get("dtype"), 9), PASS_ORDER.get(i.get("pass_name"), 9),
            0 if i.get("role") == "floor" else 1, _contender_key(i.get("contender", "")))


# --- formatting -------------------------------------------------------------------


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def contender_label(info: dict) -> str:
    name = info.get("contender", "?")
    if name == "plain":
        return f"torch.{info.get('activation', '?')}"
    return CONTENDER_LABEL.get(name, name)


COLUMNS = ("contender", "activation", "dtype", "size", "pass", "median time", "GB/s",
           "ratio to plain", "% of copy ceiling")


def row(entry: dict) -> list[str]:
    i = entry["extra_info"]
    return [contender_label(i), i.get("activation", "-"), i.get("dtype", "-"),
            i.get("size", "-"), PASS_LABEL.get(i.get("pass_name"), i.get("pass_name", "-")),
            format_time(i.get("median_s")), _fmt(i.get("gbps"), ".1f"),
            _fmt(i.get("ratio_to_floor"), ".2f", "x"), _fmt(i.get("pct_of_copy"), ".0f", "%")]


def markdown_table(entries: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" if c in ("contender", "activation", "dtype", "size", "pass")
                            else "---:" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(row(e)) + " |" for e in entries]
    return "\n".join(lines)


def machine_line(meta: dict) -> str:
    mi = meta.get("machine_info") or {}
    cpu = mi.get("cpu") or {}
    parts = []
    brand = cpu.get("brand_raw") or mi.get("processor")
    if brand:
        parts.append(str(brand))
    if cpu.get("count"):
        parts.append(f"{cpu['count']} logical cores")
    env = meta.get("environment") or {}
    if env.get("cuda_device"):
        parts.append(f"{env['cuda_device']} (CUDA {env.get('cuda_runtime')})")
    if env.get("cpu_model"):
        isa = f", {env['isa']}" if env.get("isa") else ""
        parts.append(f"CPU {env['cpu_model']} (family/model {env.get('cpu_family_model')}{isa})")
    if mi.get("python_version"):
        parts.append(f"Python {mi['python_version']}")
    if env.get("torch"):
        threads = env.get("torch_threads")
        plural = "" if threads == 1 else "s"
        parts.append(f"torch {env['torch']} ({threads} CPU thread{plural})")
    if env.get("triton"):
        parts.append(f"triton {env['triton']}")
    if meta.get("datetime"):
        parts.append(f"run {meta['datetime'][:19].replace('T', ' ')} UTC")
    return ", ".join(parts)


def _models():
    """scripts/bench_models.py, the model-step table (loaded by path, like this file)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gaaf_bench_models",
                                                  Path(__file__).with_name("bench_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def devices(entries: list[dict]) -> list[str]:
    return sorted({e["extra_info"].get("device", "?") for e in entries})


def render_markdown(entries: list[dict], meta: dict, title: str, png_name: str | None) -> str:
    out = [f"## {title}", ""]
    line = machine_line(meta)
    if line:
        out += [f"Machine: {line}.", ""]
    for device in devices(entries):
        mine = sorted((e for e in entries if e["extra_info"].get("device") == device),
                      key=sort_key)
        for suite in sorted({e["extra_info"].get("suite", "passes") for e in mine},
                            key=lambda s: SUITE_ORDER.get(s, 9)):
            rows = [e for e in mine if e["extra_info"].get("suite", "passes") == suite]
            table = _models().markdown(rows) if suite == "models" else markdown_table(rows)
            out += [f"### {device}: {SUITE_TITLE.get(suite, suite)}", "", table, ""]
    if png_name:
        out += [f"![GB/s per contender]({png_name})", ""]
    return "\n".join(out)


def summary(entries: list[dict]) -> str:
    """A short text table: per device, forward+backward at the largest suite size, the
    target group and the overhead groups."""
    picked = []
    for device in devices(entries):
        mine = [e for e in entries if e["extra_info"].get("device") == device]
        suite = [e for e in mine if e["extra_info"].get("suite", "passes") == "passes"
                 and e["extra_info"].get("pass_name") == "fwdbwd"
                 and e["extra_info"].get("activation") == "tanh"]
        if suite:
            largest = max(_size_key(e["extra_info"]["size"]) for e in suite)
            picked += [e for e in suite if _size_key(e["extra_info"]["size"]) == largest]
        copies = [e for e in mine if e["extra_info"].get("role") == "copy"]
        if copies:  # the ceiling: the copy of the largest tensor
            picked.append(max(copies, key=lambda e: e["extra_info"].get("numel", 0)))
        picked += [e for e in mine if e["extra_info"].get("suite") in ("target", "overhead")]
    picked.sort(key=sort_key)
    header = ["device", "contender", "dtype", "size", "pass", "median", "GB/s", "x plain",
              "% copy"]
    rows = [[e["extra_info"].get("device", "?")] + [c for i, c in enumerate(row(e))
                                                    if i != 1] for e in picked]
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]

    def line(cells) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    return "\n".join(lines + _models().summary_lines(entries))


# --- plot -------------------------------------------------------------------------


def _wrap(size: str) -> str:
    """"128x64x32x32" -> "128x64x\n32x32": long size labels on two lines."""
    parts = size.split("x")
    if len(parts) <= 2:
        return size
    half = len(parts) // 2
    return "x".join(parts[:half]) + "x\n" + "x".join(parts[half:])


def plot(entries: list[dict], path: Path, title: str) -> bool:
    """Grouped bars of GB/s: one panel per (activation, pass), bars per contender."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench_report: matplotlib is not installed; no plot", file=sys.stderr)
        return False
    suite = [e for e in entries if e["extra_info"].get("suite", "passes") == "passes"
             and e["extra_info"].get("gbps")]
    if not suite:
        print("bench_report: no timed suite results to plot", file=sys.stderr)
        return False
    activations = sorted({e["extra_info"]["activation"] for e in suite},
                         key=lambda a: (a != "tanh", a))
    passes = sorted({e["extra_info"]["pass_name"] for e in suite}, key=PASS_ORDER.get)
    contenders = sorted({e["extra_info"]["contender"] for e in suite}, key=_contender_key)
    ceilings = {e["extra_info"]["device"]: e["extra_info"]["copy_ceiling_gbps"]
                for e in entries if e["extra_info"].get("copy_ceiling_gbps")}
    fig, axes = plt.subplots(len(activations), len(passes), squeeze=False,
                             figsize=(5.2 * len(passes), 3.6 * len(activations)))
    cmap = plt.get_cmap("tab10")
    for r, activation in enumerate(activations):
        for c, pass_ in enumerate(passes):
            ax = axes[r][c]
            here = [e for e in suite if e["extra_info"]["activation"] == activation
                    and e["extra_info"]["pass_name"] == pass_]
            cases = sorted({(e["extra_info"]["device"], e["extra_info"]["size"],
                             e["extra_info"]["dtype"]) for e in here},
                           key=lambda k: (k[0], _size_key(k[1]), DTYPE_ORDER.get(k[2], 9)))
            width = 0.8 / max(1, len(contenders))
            for k, contender in enumerate(contenders):
                values = []
                for case in cases:
                    hit = [e for e in here if (e["extra_info"]["device"], e["extra_info"]["size"],
                                               e["extra_info"]["dtype"]) == case
                           and e["extra_info"]["contender"] == contender]
                    values.append(hit[0]["extra_info"]["gbps"] if hit else 0.0)
                xs = [i + (k - (len(contenders) - 1) / 2) * width for i in range(len(cases))]
                label = ("plain activation" if contender == "plain"
                         else contender_label({"contender": contender}))
                ax.bar(xs, values, width, label=label, color=cmap(k))
            for device, ceiling in ceilings.items():
                ax.axhline(ceiling, color="black", linestyle="--", linewidth=1,
                           label=f"copy ceiling ({device})")
            ax.set_xticks(range(len(cases)))
            ax.set_xticklabels([f"{_wrap(s)}\n{d}" for _, s, d in cases], fontsize=7)
            ax.set_yscale("log")
            ax.set_ylabel("GB/s (bytes that must move)")
            ax.set_title(f"{activation}: {PASS_LABEL.get(pass_, pass_)}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8,
               frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- command line -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark JSON file(s)")
    parser.add_argument("--out-dir", type=Path, required=True, help="where to write NAME.md/.png")
    parser.add_argument("--name", help="base name of the outputs (default bench_<device>)")
    parser.add_argument("--title", help="title of the table and the plot")
    parser.add_argument("--no-plot", action="store_true", help="write the markdown only")
    parser.add_argument("--summary", action="store_true", help="print a short summary table")
    parser.add_argument("--merge-json", type=Path, metavar="PATH",
                        help="also write all inputs merged into one pytest-benchmark JSON")
    args = parser.parse_args(argv)

    missing = [str(p) for p in args.json if not p.is_file()]
    if missing:
        print(f"bench_report: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    entries, meta, merged = load(args.json)
    if args.merge_json:
        args.merge_json.parent.mkdir(parents=True, exist_ok=True)
        args.merge_json.write_text(json.dumps(merged, indent=1))
    if not entries:
        print("bench_report: no GAAF benchmark results in the input (was the run "
              "--benchmark-disable'd, or everything skipped?)", file=sys.stderr)
        return 1
    devs = devices(entries)
    name = args.name or "bench_" + "_".join(devs)
    title = args.title or f"GAAF benchmarks ({', '.join(devs)})"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    png = args.out_dir / f"{name}.png"
    plotted = False if args.no_plot else plot(entries, png, f"{title}: {machine_line(meta)}")
    md = args.out_dir / f"{name}.md"
    md.write_text(render_markdown(entries, meta, title, png.name if plotted else None))
    print(f"bench_report: {len(entries)} results -> {md}" + (f", {png}" if plotted else ""))
    if args.summary:
        print(summary(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
