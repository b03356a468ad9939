"""The dropout analysis of the paper's section 3 (``gaaf analyze``), by job:
:mod:`.recording` (callbacks that record gradients and net variances while a model
trains), :mod:`.stats` (the statistics of finished runs), :mod:`.plots` (the figures),
:mod:`.report` (the markdown report and ``results.json``) and :mod:`.analyze` (the
pipeline that writes them). The names below are the public API (they were the
``gaaf_kernels.experiments.analysis`` module's)."""

from .stats import (
    SATURATION,
    THRESHOLDS,
    AnalysisError,
    Run,
    RunStats,
    VariantSummary,
    abs_correlations,
    analyze_run,
    count_above,
    forward_values,
    group_runs,
    load_run,
    summarize,
)

__all__ = ["THRESHOLDS", "SATURATION", "AnalysisError", "Run", "RunStats", "VariantSummary",
           "abs_correlations", "count_above", "load_run", "analyze_run", "summarize",
           "forward_values", "group_runs"]
