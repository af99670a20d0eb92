"""Comparisons of methods and runs: ranks, paired Wilcoxon tests against the best, and the regression gate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..evaluation.results import CLASSIFIER
from .summary import bootstrap, metric_of, overall, per_sample, summarise

COMPARISON_COLUMNS = [
    "method", "model", "dataset", "metric", "subset", "mean", "ci_low", "ci_high", "n", "rank", "p_vs_best",
    "diff_vs_best", "diff_low", "diff_high", "note",
]  # fmt: skip


def paired_samples(first: pd.Series, second: pd.Series) -> pd.Index:
    """The samples two per-sample series share."""
    return first.index.intersection(second.index)


def wilcoxon_p(first: pd.Series, second: pd.Series) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value on the samples both series have (NaN below 2)."""
    from scipy.stats import wilcoxon

    shared = paired_samples(first, second)
    if len(shared) < 2:
        return math.nan
    difference = first[shared].to_numpy() - second[shared].to_numpy()
    if np.allclose(difference, 0):
        return 1.0
    return float(wilcoxon(first[shared].to_numpy(), second[shared].to_numpy(), zero_method="zsplit").pvalue)


def paired_difference(first: pd.Series, second: pd.Series, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``first - second`` over the samples both have, with a seeded bootstrap 95% CI (NaN below 2)."""
    shared = paired_samples(first, second)
    if len(shared) < 2:
        return math.nan, math.nan, math.nan
    difference = first[shared].to_numpy() - second[shared].to_numpy()
    low, high = bootstrap(difference[:, None], lambda totals: totals[..., 0] / len(difference), seed)
    return float(difference.mean()), low, high


def comparison_table(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (data set, model, metric, subset): every entry's value, CI, rank and p-value against the best,
    and its mean paired difference from the best with a bootstrap CI (both on the samples they share).

    Entries (``summary.read_results``) are ranked and tested only against entries of the
    same data set and model, on the samples both have: an entry that shares fewer than 2
    samples with the best gets no rank and no test, and its ``note`` says why.
    """
    where = rows[rows.method != CLASSIFIER].groupby("method")[["model", "dataset"]].first()
    table = overall(summarise(rows, seed)).join(where, on="method")
    out = []
    for (dataset, model, metric, subset), group in table.groupby(["dataset", "model", "metric", "subset"], sort=False):
        ranked = group.sort_values("value", ascending=not metric_of(metric).higher_is_better())
        best = ranked.iloc[0].method
        best_values = per_sample(rows, best, metric, subset)
        rank = 0
        for record in ranked.itertuples():
            values = per_sample(rows, record.method, metric, subset)
            shared = len(paired_samples(values, best_values))
            place, p_value, note = math.nan, math.nan, ""
            difference = (math.nan, math.nan, math.nan)
            if record.method == best or shared >= 2:
                rank += 1
                place = rank
                if record.method != best:
                    p_value = wilcoxon_p(values, best_values)
                    difference = paired_difference(values, best_values, seed)
            else:
                note = f"{shared} sample(s) shared with {best}: no rank or test"
            out.append(
                [record.method, model, dataset, metric, subset, record.value, record.ci_low, record.ci_high,
                 record.n, place, p_value, *difference, note]
            )  # fmt: skip
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


def backend_note(rows: pd.DataFrame, baseline: pd.DataFrame | None = None) -> str:
    """One line when the compared runs (and the baseline) scored on different backends, else ''.

    The backend is an execution knob outside the results' key: fp32 backends agree with
    torch within 1e-3 AUC and bf16 within 0.01 (the agreement tests), so small differences
    between such runs may come from the backend rather than the method.
    """
    frames = [rows] + ([baseline] if baseline is not None else [])
    per_run: dict[str, list[str]] = {}
    for frame in frames:
        scored = frame[(frame.method != CLASSIFIER) & frame.backend.fillna("").astype(str).ne("")]
        for source, group in scored.groupby("source"):
            per_run[str(source)] = sorted(set(group.backend.astype(str)))
    if len({tuple(v) for v in per_run.values()}) <= 1:
        return ""
    described = "; ".join(f"{source}: {', '.join(names)}" for source, names in per_run.items())
    return (
        f"note: these runs scored their gradient-free passes on different backends ({described}); fp32 backends "
        "agree within 1e-3 AUC and bf16 within 0.01, so differences that small may be the backend's"
    )


def regressions(current: pd.DataFrame, baseline: pd.DataFrame, tolerance: float, seed: int = 0) -> list[str]:
    """(method, metric, subset) whose value moved beyond ``tolerance`` from the baseline, or vanished."""

    def values(rows: pd.DataFrame) -> dict[tuple[str, str, str], float]:
        table = overall(summarise(rows, seed), classifier=True)
        return {(r.method, r.metric, r.subset): float(r.value) for r in table.itertuples()}

    now, before = values(current), values(baseline)
    problems = []
    for key, old in before.items():
        method, metric, subset = key
        label = f"{method} {metric}" + ("" if subset == "all" else f" ({subset})")
        if key not in now:
            problems.append(f"{label}: in the baseline ({old:.4f}) but missing now")
        elif abs(now[key] - old) > tolerance or (math.isnan(now[key]) != math.isnan(old)):
            problems.append(
                f"{label}: {old:.4f} -> {now[key]:.4f} (moved {now[key] - old:+.4f}, tolerance {tolerance})"
            )
    return problems
