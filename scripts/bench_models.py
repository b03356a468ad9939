"""The whole-model table of bench_report.py (suite "models", benchmarks/test_bench_models.py).

One row per (device, model, threads): the median time of one training step for each
activation (plain, GAAF, naive formula) eager and under ``torch.compile``, then the
ratios the targets are stated in. Standard library only.
"""

from __future__ import annotations

MODEL_LABEL = {"mlp": "MNIST MLP, batch 128", "cnn": "BN CNN (fashion-cnn), batch 64"}
COLUMNS = [("eager", "plain"), ("eager", "gaaf"), ("eager", "naive"),
           ("compiled", "plain"), ("compiled", "gaaf"), ("compiled", "naive"),
           ("compiled", "gaaf_fused")]
LABEL = {"plain": "plain", "gaaf": "GAAF", "naive": "naive", "gaaf_fused": "GAAF fused"}
RATIOS = [("GAAF / plain, eager", ("eager", "gaaf"), ("eager", "plain")),
          ("GAAF / plain, compiled", ("compiled", "gaaf"), ("compiled", "plain")),
          ("GAAF / naive, compiled", ("compiled", "gaaf"), ("compiled", "naive")),
          ("GAAF fused / naive, compiled", ("compiled", "gaaf_fused"), ("compiled", "naive"))]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f} ms"


def collect(entries: list[dict]) -> dict:
    """{(device, model, threads): {(mode, contender): median seconds}}."""
    table: dict = {}
    for entry in entries:
        info = entry.get("extra_info") or {}
        median = (entry.get("stats") or {}).get("median")
        if info.get("suite") != "models" or not median:
            continue
        key = (info.get("device", "?"), info.get("model", "?"), info.get("threads"))
        table.setdefault(key, {})[(info.get("mode"), info.get("contender"))] = median
    return table


def _ratio(cells: dict, num, den) -> float | None:
    a, b = cells.get(num), cells.get(den)
    return a / b if a and b else None


def markdown(entries: list[dict]) -> str:
    table = collect(entries)
    if not table:
        return "(no model results)"
    columns = [c for c in COLUMNS if any(c in cells for cells in table.values())]
    ratios = [r for r in RATIOS if any(_ratio(cells, r[1], r[2]) for cells in table.values())]
    head = (["model", "device", "threads"] + [f"{LABEL[c]} {m}" for m, c in columns]
            + [r[0] for r in ratios])
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * (len(head) - 3)]
    for (device, model, threads), cells in sorted(table.items(),
                                                  key=lambda kv: (kv[0][0], kv[0][1],
                                                                  -(kv[0][2] or 0))):
        values = [_ms(cells.get(c)) for c in columns]
        values += [f"{v:.2f}x" if (v := _ratio(cells, r[1], r[2])) else "-" for r in ratios]
        lines.append("| " + " | ".join([MODEL_LABEL.get(model, model), device, str(threads),
                                        *values]) + " |")
    return "\n".join(lines)


def summary_lines(entries: list[dict]) -> list[str]:
    lines = []
    for (device, model, threads), cells in sorted(collect(entries).items()):
        parts = [f"{name} {v:.2f}x" for name, num, den in RATIOS
                 if (v := _ratio(cells, num, den))]
        if parts:
            lines.append(f"{device} {model} threads={threads}: " + ", ".join(parts))
    return lines
