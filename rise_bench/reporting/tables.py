"""Tables for people: summary cells for the terminal and a Markdown comparison, headers from the metrics."""

from __future__ import annotations

import math

import pandas as pd

from .summary import metric_of, overall


def estimate_text(mean: float, low: float, high: float) -> str:
    """``0.123 [0.100, 0.150]``: a value with its CI (the CI left out when undefined)."""
    return f"{mean:.3f}" + ("" if math.isnan(low) else f" [{low:.3f}, {high:.3f}]")


def column_header(metric: str, subset: str, subset_word: str = ", {} subset") -> str:
    """A metric's header (which way is better), with the subset when it is not ``all``."""
    return metric_of(metric).header() + ("" if subset == "all" else subset_word.format(subset))


def summary_grid(summary: pd.DataFrame) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Headers and per-method cells (value [CI]) of a summary's overall rows, for display."""
    rows = overall(summary)
    columns = list(dict.fromkeys(zip(rows.metric, rows.subset, strict=True)))
    headers = [column_header(m, s) for m, s in columns]
    grid = []
    for method in dict.fromkeys(rows.method):
        cells = []
        for metric, subset in columns:
            match = rows[(rows.method == method) & (rows.metric == metric) & (rows.subset == subset)]
            cells.append("" if match.empty else estimate_text(*match[["value", "ci_low", "ci_high"]].iloc[0]))
        grid.append((method, cells))
    return headers, grid


#: Below this many samples a bootstrap interval says little.
FEW_SAMPLES = 5


def small_n_note(counts) -> str:
    """'n=2: intervals are not meaningful.' when the smallest ``n`` is below ``FEW_SAMPLES``, else ''."""
    counts = [int(c) for c in counts if not math.isnan(c)]
    if not counts or min(counts) >= FEW_SAMPLES:
        return ""
    return f"n={min(counts)}: intervals are not meaningful."


def markdown_table(table: pd.DataFrame) -> str:
    """Entries x metrics as Markdown: value [CI], rank, and p against the best.

    The model and data set get columns of their own when the table holds several; an
    entry without a rank (too few samples shared with the best) says so under the table.
    """
    columns = list(dict.fromkeys(zip(table.metric, table.subset, strict=True)))
    where = [c for c in ("model", "dataset") if c in table and table[c].nunique() > 1]
    header = ["method", *where] + [column_header(m, s, ", {}") for m, s in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in dict.fromkeys(table.method):
        mine = table[table.method == method]
        cells = [method, *(str(mine[c].iloc[0]) for c in where)]
        for metric, subset in columns:
            match = mine[(mine.metric == metric) & (mine.subset == subset)]
            if match.empty:
                cells.append("")
                continue
            r = match.iloc[0]
            p = "" if math.isnan(r.p_vs_best) else f", p={r.p_vs_best:.2g}"
            rank = "no rank" if math.isnan(r["rank"]) else f"#{int(r['rank'])}"
            cells.append(f"{estimate_text(r['mean'], r.ci_low, r.ci_high)} ({rank}{p})")
        lines.append("| " + " | ".join(cells) + " |")
    note = "Mean [bootstrap 95% CI] (#rank, paired Wilcoxon p against the best method on shared samples)."
    if where:
        note += " Ranks and tests compare entries of the same model and data set only."
    notes = [note, small_n_note(table.n)]
    notes += sorted({f"{r.method}, {r.metric}: {r.note}." for r in table.itertuples() if r.note})
    return "\n".join(lines) + "\n\n" + "\n".join(n for n in notes if n) + "\n"


def baseline_note(summary: pd.DataFrame) -> str:
    """One sentence when a baseline beats methods on a metric (overall rows), else ''.

    Deletion rewards maps that scatter the removed pixels: the blanked image leaves the
    data distribution fastest, an artefact of the metric rather than a merit of the map.
    """
    from .summary import base_method, is_baseline_entry

    rows = overall(summary)
    found = []
    for (metric, subset), group in rows.groupby(["metric", "subset"], sort=False):
        if subset != "all":
            continue
        higher = metric_of(metric).higher_is_better()
        baselines = group[[is_baseline_entry(m) for m in group.method]]
        methods = group[[not is_baseline_entry(m) for m in group.method]]
        for record in baselines.itertuples():
            beaten = methods[(methods.value < record.value) if higher else (methods.value > record.value)]
            if len(beaten):
                found.append(f"{base_method(record.method)} beats {', '.join(beaten.method)} on {metric}")
    if not found:
        return ""
    return (
        f"Note: the baseline {'; '.join(found)}. Pixel-removal metrics can reward maps for pushing the image off "
        "the data distribution rather than for finding what the model uses: see README, 'When a baseline wins' "
        "(ROAD, Rong et al. 2022, imputes removed pixels to correct for this)."
    )
