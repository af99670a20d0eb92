"""Summaries and comparisons of results: means, bootstrap CIs, ranks, Wilcoxon tests, plots.

- Deletion/insertion: the mean AUC over samples (a sample's value is the mean over its
  targets) with a seeded percentile-bootstrap 95% CI over samples.
- Pointing: accuracy = the mean over classes of per-class hit rates, for the ``all`` and
  ``difficult`` subsets, with a bootstrap CI over images; per-class rates as extra rows.
- Significance: paired Wilcoxon signed-rank test of each method against the best one on
  the samples both have (per-sample values as above).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .config import write_atomic
from .errors import RiseBenchError
from .runner import CLASSIFIER, COLUMNS

#: Which way is better, per metric.
HIGHER_IS_BETTER = {"deletion": False, "insertion": True, "pointing": True}
#: Table headers that say it.
HEADERS = {
    "deletion": "deletion AUC (lower is better)",
    "insertion": "insertion AUC (higher is better)",
    "pointing": "pointing accuracy (higher is better)",
}
BOOTSTRAP_SAMPLES = 1000
SUMMARY_COLUMNS = ["method", "metric", "subset", "class", "value", "ci_low", "ci_high", "n"]


def read_results(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Rows of one or more ``results.csv`` files (or run folders holding one).

    Raises:
        RiseBenchError: a file is missing or is not a results file.
    """
    frames = []
    for source in paths:
        path = Path(source)
        if path.is_dir():
            path = path / "results.csv"
        if not path.is_file():
            raise RiseBenchError(f"results file '{path}' does not exist")
        try:
            frame = pd.read_csv(path, dtype={"sample_id": str, "target": str, "params_hash": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise RiseBenchError(f"'{path}' is not a results file ({exc})") from None
        if list(frame.columns) != COLUMNS:
            raise RiseBenchError(f"'{path}' is not a rise-bench results file (columns {list(frame.columns)})")
        frame["source"] = str(path)
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    key = ["sample_id", "model", "method", "metric", "target", "subset", "params_hash"]
    rows = rows.drop_duplicates(subset=key, keep="last")
    # the same method with other parameters in another run: tell them apart by run folder
    settings = rows[rows.method != CLASSIFIER].groupby("method")["params_hash"].nunique()
    for method in settings[settings > 1].index:
        chosen = rows.method == method
        rows.loc[chosen, "method"] = method + " (" + rows.loc[chosen, "source"].map(lambda s: Path(s).parent.name) + ")"
    return rows


def per_sample(rows: pd.DataFrame, method: str, metric: str, subset: str = "all") -> pd.Series:
    """A method's per-sample value of a metric (the mean over the sample's targets)."""
    chosen = rows[(rows.method == method) & (rows.metric == metric) & (rows.subset == subset)]
    return chosen.groupby("sample_id")["value"].mean()


def _bootstrap(values: np.ndarray, statistic, seed: int) -> tuple[float, float]:
    if len(values) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))
    stats = statistic(picks)
    return float(np.nanpercentile(stats, 2.5)), float(np.nanpercentile(stats, 97.5))


def causal_summary(values: pd.Series, seed: int) -> tuple[float, float, float, int]:
    """(mean, ci_low, ci_high, n) of per-sample values."""
    array = values.to_numpy(dtype=float)
    low, high = _bootstrap(array, lambda picks: array[picks].mean(axis=1), seed)
    return float(array.mean()) if len(array) else math.nan, low, high, len(array)


def pointing_summary(rows: pd.DataFrame, seed: int) -> tuple[float, float, float, int, dict[str, tuple[float, int]]]:
    """(accuracy, ci_low, ci_high, trials, per-class (rate, trials)) of pointing rows."""
    if rows.empty:
        return math.nan, math.nan, math.nan, 0, {}
    classes = sorted(rows.target.unique())
    samples = sorted(rows.sample_id.unique())
    hits = rows.pivot_table(index="sample_id", columns="target", values="value", aggfunc="sum").reindex(index=samples, columns=classes).fillna(0).to_numpy()
    counts = rows.pivot_table(index="sample_id", columns="target", values="value", aggfunc="count").reindex(index=samples, columns=classes).fillna(0).to_numpy()
    total_hits, total_counts = hits.sum(0), counts.sum(0)
    rates = total_hits / total_counts
    per_class = {c: (float(r), int(n)) for c, r, n in zip(classes, rates, total_counts)}

    def statistic(picks: np.ndarray) -> np.ndarray:
        picked_hits, picked_counts = hits[picks].sum(1), counts[picks].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(np.where(picked_counts > 0, picked_hits / picked_counts, np.nan), axis=1)

    low, high = _bootstrap(np.arange(len(samples)), statistic, seed)
    return float(rates.mean()), low, high, int(total_counts.sum()), per_class


def summarise(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The summary table (``SUMMARY_COLUMNS``): methods x metrics, pointing per class, classifier stats."""
    out = []
    for method in _method_order(rows):
        mine = rows[rows.method == method]
        for metric in ("deletion", "insertion"):
            values = per_sample(mine, method, metric)
            if len(values):
                mean, low, high, n = causal_summary(values, seed)
                out.append([method, metric, "all", "all", mean, low, high, n])
        for subset in ("all", "difficult"):
            chosen = mine[(mine.metric == "pointing") & (mine.subset == subset)]
            if chosen.empty:
                continue
            accuracy, low, high, n, per_class = pointing_summary(chosen, seed)
            out.append([method, "pointing", subset, "all", accuracy, low, high, n])
            out += [[method, "pointing", subset, cls, rate, math.nan, math.nan, count] for cls, (rate, count) in per_class.items()]
        constant = mine[(mine.metric == "pointing") & (mine.subset == "constant")]
        if not constant.empty:
            out.append([method, "pointing", "constant", "all", float(len(constant)), math.nan, math.nan, len(constant)])
    classifier = rows[rows.method == CLASSIFIER]
    for metric in ("top1", "target_is_label"):
        values = classifier[classifier.metric == metric].groupby("sample_id")["value"].mean()
        if len(values):
            mean, low, high, n = causal_summary(values, seed)
            out.append([CLASSIFIER, metric, "all", "all", mean, low, high, n])
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def _method_order(rows: pd.DataFrame) -> list[str]:
    """Methods in order of appearance, the baselines last."""
    return baselines_last(m for m in dict.fromkeys(rows.method) if m != CLASSIFIER)


def baselines_last(methods) -> list[str]:
    """``methods`` in their order, with the ``center`` and ``random`` baselines moved to the end."""
    methods = list(methods)
    return [m for m in methods if m not in ("center", "random")] + [m for m in methods if m in ("center", "random")]


def summarise_file(results: Path, summary: Path, seed: int = 0) -> pd.DataFrame:
    """Summarise ``results`` into ``summary`` (atomically) and return the table."""
    table = summarise(read_results([results]), seed)
    write_atomic(summary, table.to_csv(index=False))
    return table


# -- comparison -------------------------------------------------------------------------
def wilcoxon_p(first: pd.Series, second: pd.Series) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value on the samples both series have."""
    from scipy.stats import wilcoxon

    shared = first.index.intersection(second.index)
    if len(shared) < 2:
        return math.nan
    difference = first[shared].to_numpy() - second[shared].to_numpy()
    if np.allclose(difference, 0):
        return 1.0
    return float(wilcoxon(first[shared].to_numpy(), second[shared].to_numpy(), zero_method="zsplit").pvalue)


def comparison_table(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (metric, subset): every method's mean, CI, rank and p-value against the best."""
    summary = summarise(rows, seed)
    summary = summary[(summary["class"] == "all") & (summary.method != CLASSIFIER) & (summary.subset != "constant")]
    out = []
    for (metric, subset), group in summary.groupby(["metric", "subset"], sort=False):
        better = HIGHER_IS_BETTER[metric]
        ranked = group.sort_values("value", ascending=not better)
        best = ranked.iloc[0].method
        best_values = per_sample(rows, best, metric, subset)
        for rank, record in enumerate(ranked.itertuples(), 1):
            p_value = math.nan if record.method == best else wilcoxon_p(per_sample(rows, record.method, metric, subset), best_values)
            out.append([record.method, metric, subset, record.value, record.ci_low, record.ci_high, record.n, rank, p_value])
    return pd.DataFrame(out, columns=["method", "metric", "subset", "mean", "ci_low", "ci_high", "n", "rank", "p_vs_best"])


def estimate_text(mean: float, low: float, high: float) -> str:
    """``0.123 [0.100, 0.150]``: a mean with its CI (the CI left out when undefined)."""
    return f"{mean:.3f}" + ("" if math.isnan(low) else f" [{low:.3f}, {high:.3f}]")


def summary_grid(summary: pd.DataFrame) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Headers and per-method cells (mean [CI]) of a summary's overall rows, for display."""
    overall = summary[(summary["class"] == "all") & (summary.method != CLASSIFIER) & (summary.subset != "constant")]
    columns = list(dict.fromkeys(zip(overall.metric, overall.subset)))
    headers = [HEADERS[m] + ("" if s == "all" else f", {s} subset") for m, s in columns]
    grid = []
    for method in dict.fromkeys(overall.method):
        cells = []
        for metric, subset in columns:
            match = overall[(overall.method == method) & (overall.metric == metric) & (overall.subset == subset)]
            cells.append("" if match.empty else estimate_text(*match[["value", "ci_low", "ci_high"]].iloc[0]))
        grid.append((method, cells))
    return headers, grid


def markdown_table(table: pd.DataFrame) -> str:
    """Methods x metrics as Markdown: mean [CI], rank, and p against the best."""
    columns = [(m, s) for m, s in dict.fromkeys(zip(table.metric, table.subset))]
    methods = list(dict.fromkeys(table.method))
    header = ["method"] + [HEADERS[m] + ("" if s == "all" else f", {s}") for m, s in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        cells = [method]
        for metric, subset in columns:
            match = table[(table.method == method) & (table.metric == metric) & (table.subset == subset)]
            if match.empty:
                cells.append("")
                continue
            r = match.iloc[0]
            p = "" if math.isnan(r.p_vs_best) else f", p={r.p_vs_best:.2g}"
            cells.append(f"{estimate_text(r['mean'], r.ci_low, r.ci_high)} (#{int(r['rank'])}{p})")
        lines.append("| " + " | ".join(cells) + " |")
    note = "Mean [bootstrap 95% CI] (#rank, paired Wilcoxon p against the best method on shared samples)."
    return "\n".join(lines) + "\n\n" + note + "\n"


def regressions(current: pd.DataFrame, baseline: pd.DataFrame, tolerance: float, seed: int = 0) -> list[str]:
    """(method, metric, subset) whose mean moved beyond ``tolerance`` from the baseline, or vanished."""
    def means(rows: pd.DataFrame) -> dict[tuple[str, str, str], float]:
        table = summarise(rows, seed)
        table = table[(table["class"] == "all") & (table.subset != "constant")]
        return {(r.method, r.metric, r.subset): float(r.value) for r in table.itertuples()}

    now, before = means(current), means(baseline)
    problems = []
    for key, old in before.items():
        method, metric, subset = key
        label = f"{method} {metric}" + ("" if subset == "all" else f" ({subset})")
        if key not in now:
            problems.append(f"{label}: in the baseline ({old:.4f}) but missing now")
        elif abs(now[key] - old) > tolerance or (math.isnan(now[key]) != math.isnan(old)):
            problems.append(f"{label}: {old:.4f} -> {now[key]:.4f} (moved {now[key] - old:+.4f}, tolerance {tolerance})")
    return problems


def plot_curves(sources: Sequence[Path], path: Path) -> bool:
    """Mean deletion and insertion curves per method from the runs' ``curves/`` folders."""
    curves: dict[str, dict[str, list[np.ndarray]]] = {"deletion": {}, "insertion": {}}
    for source in sources:
        for folder in sorted((source / "curves").glob("*")) if (source / "curves").is_dir() else []:
            for file in sorted(folder.glob("*.npz")):
                with np.load(file) as data:
                    for metric in curves:
                        if metric in data:
                            curves[metric].setdefault(folder.name, []).append(data[metric])
    if not any(curves.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, (metric, by_method) in zip(axes, curves.items()):
        for method in baselines_last(sorted(by_method)):
            items = by_method[method]
            length = min(len(c) for c in items)
            mean = np.mean([c[:length] for c in items], axis=0)
            style = "--" if method in ("center", "random") else "-"
            axis.plot(np.linspace(0, 1, length), mean, style, label=f"{method} (AUC {np.mean([_auc(c) for c in items]):.3f})")
        axis.set_title(HEADERS[metric])
        axis.set_xlabel("fraction of pixels " + ("deleted" if metric == "deletion" else "inserted"))
        axis.set_ylabel("probability of the target")
        axis.set_ylim(0, 1)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _auc(curve: np.ndarray) -> float:
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (len(curve) - 1))


def plot_gallery(sources: Sequence[Path], path: Path, count: int = 4) -> bool:
    """A grid of maps: one row per sample (up to ``count``), one column per method."""
    import json

    from .images import overlay, read_image

    maps: dict[str, dict[str, Path]] = {}
    for source in sources:
        for folder in sorted((source / "maps").glob("*")) if (source / "maps").is_dir() else []:
            for file in sorted(folder.glob("*.npy")):
                maps.setdefault(file.stem, {})[folder.name] = file
    methods = baselines_last(sorted(dict.fromkeys(m for per in maps.values() for m in per)))
    samples = [s for s in maps if len(maps[s]) == len(methods)][:count]
    if not samples:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(samples), len(methods) + 1, figsize=(2.2 * (len(methods) + 1), 2.2 * len(samples)), squeeze=False)
    for row, sample in enumerate(samples):
        first = maps[sample][methods[0]]
        sidecar = json.loads(first.with_suffix(".json").read_text()) if first.with_suffix(".json").exists() else {}
        try:
            image = read_image(sidecar.get("image", ""))
        except RiseBenchError:
            image = None
        if image is not None:
            axes[row, 0].imshow(image)
        axes[row, 0].set_title(f"{sample}\n{(sidecar.get('targets') or [''])[0]}", fontsize=7)
        for column, method in enumerate(methods, 1):
            saliency = np.load(maps[sample][method])[0]
            axes[row, column].imshow(overlay(image, saliency) if image is not None else saliency)
            if row == 0:
                axes[row, column].set_title(method, fontsize=9)
    for axis in axes.ravel():
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True
