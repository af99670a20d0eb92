"""Summaries of results: each metric's own aggregate with a seeded bootstrap 95% CI over samples.

A metric owns its aggregation (``Metric.sample_statistics`` and ``aggregate``: the mean
of per-sample values for deletion and insertion, the mean of per-class hit rates for the
pointing game); the bootstrap resamples samples with replacement 1000 times and takes
the 2.5th and 97.5th percentiles of the aggregate. Subsets a metric flags as counted
(maps holding NaN or inf, ``invalid``; pointing's ``constant``) are counted, and a
metric's per-class breakdown adds rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RiseBenchError
from ..evaluation.results import CLASSIFIER, CLASSIFIER_METRICS, read_frame
from ..explainers.registry import is_baseline
from ..metrics.base import INVALID, METRICS, Metric, list_metrics

BOOTSTRAP_SAMPLES = 1000
SUMMARY_COLUMNS = ["method", "metric", "subset", "class", "value", "ci_low", "ci_high", "n"]
#: What tells two settings of one (method, metric) apart.
SETTINGS = ["params_hash", "metric_params", "backend"]
#: What a result is about, besides its settings.
IDENTITY = ["sample_id", "dataset", "model", "method", "metric"]


def read_results(
    paths: Sequence[str | Path], log: Callable[[str], None] | None = None, allow_empty: bool = False
) -> pd.DataFrame:
    """Rows of one or more ``results.csv`` files (or run folders holding one), kept apart as ``compare`` needs.

    Adds ``source`` (the file) and ``method_name`` (the method as written) columns, and
    relabels ``method`` as an entry: what a table row, a curve and a gallery column stand
    for, one (model, data set, method, settings). Rows repeated across files (same key and
    target) keep the last, so the same results read twice are one entry. A method that
    appears with other settings (method or metric parameters) in another run is named
    after the run folder, ``rise (runA)``; with several models or data sets, each entry
    names its own, ``rise [resnet50, voc]``. Malformed rows are skipped and ``log`` is
    told how many (``results.read_frame``).

    Raises:
        RiseBenchError: a file is missing or is not a results file, or (unless
            ``allow_empty``) holds no rows.
    """
    frames = []
    for source in paths:
        path = Path(source)
        if path.is_dir():
            path = path / "results.csv"
        frame = read_frame(path, log)
        if frame.empty and not allow_empty:
            raise RiseBenchError(f"{path} holds no result rows")
        frame["source"] = str(path)
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    rows = rows.drop_duplicates(subset=[*IDENTITY, "target", "subset", *SETTINGS], keep="last")
    rows["method_name"] = rows.method  # as written; ``method`` becomes the entry's label
    scored = rows[rows.method != CLASSIFIER]
    if scored.empty:  # nothing to tell apart (a run whose every sample failed)
        return rows
    runs = rows.source.map(lambda s: Path(s).parent.name)
    keys = ["model", "dataset", "method", "metric"]
    settings = scored.groupby(keys)[SETTINGS].apply(lambda g: len(g.drop_duplicates()))
    for model, dataset, method in sorted({key[:3] for key, count in settings.items() if count > 1}):
        chosen = (rows.method == method) & (rows.model == model) & (rows.dataset == dataset)
        rows.loc[chosen, "method"] = method + " (" + runs[chosen] + ")"
    varying = [c for c in ("model", "dataset") if scored[c].nunique() > 1]
    if varying:
        where = rows[varying].astype(str).agg(", ".join, axis=1)
        scored_rows = rows.method != CLASSIFIER
        rows.loc[scored_rows, "method"] = rows.method[scored_rows] + " [" + where[scored_rows] + "]"
    return rows


def entries(rows: pd.DataFrame) -> dict[str, list[tuple[Path, str]]]:
    """Entry (the relabelled method of ``read_results``) -> its (run folder, method folder name) pairs.

    What the curves and the gallery draw for each entry, so that pictures keep runs apart
    exactly as the table does.
    """
    scored = rows[rows.method != CLASSIFIER]
    found: dict[str, list[tuple[Path, str]]] = {}
    for (entry, source, name), _ in scored.groupby(["method", "source", "method_name"], sort=False):
        pair = (Path(source).parent, str(name))
        found.setdefault(entry, [])
        if pair not in found[entry]:
            found[entry].append(pair)
    return found


def metric_of(name: str) -> type[Metric]:
    """The registered metric of a results file's ``metric`` column.

    Raises:
        RiseBenchError: the name is not a registered metric (a file from another version or tool).
    """
    if name not in METRICS:
        raise RiseBenchError(
            f"results hold metric '{name}', which this version does not know ({', '.join(list_metrics())})"
        )
    return METRICS.get(name)


def bootstrap(statistics: np.ndarray, aggregate: Callable[[np.ndarray], np.ndarray], seed: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of ``aggregate`` over the rows (samples) of ``statistics [n,k]``."""
    count = len(statistics)
    if count < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, count, size=(BOOTSTRAP_SAMPLES, count))
    values = aggregate(statistics[picks].sum(axis=1))
    return float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5))


def estimate(rows: pd.DataFrame, metric: type[Metric], seed: int) -> tuple[float, float, float, int]:
    """(value, ci_low, ci_high, n) of one method's rows of one metric and subset."""
    statistics = metric.sample_statistics(rows)
    matrix = statistics.to_numpy(dtype=float)
    value = float(metric.aggregate(matrix.sum(axis=0))) if len(matrix) else math.nan
    low, high = bootstrap(matrix, metric.aggregate, seed)
    return value, low, high, metric.size(statistics)


def per_sample(rows: pd.DataFrame, method: str, metric: str, subset: str = "all") -> pd.Series:
    """A method's per-sample value of a metric (the mean over the sample's targets)."""
    chosen = rows[(rows.method == method) & (rows.metric == metric) & (rows.subset == subset)]
    return chosen.groupby("sample_id")["value"].mean()


def base_method(entry: str) -> str:
    """The registered method of an entry label (``rise (runA) [resnet50]`` -> ``rise``)."""
    return entry.split(" ", 1)[0]


def is_baseline_entry(entry: str) -> bool:
    """Whether an entry label names a registered baseline."""
    return is_baseline(base_method(entry))


def baselines_last(methods: Iterable[str]) -> list[str]:
    """``methods`` (or entry labels) in their order, with the registered baselines moved to the end."""
    methods = list(methods)
    return [m for m in methods if not is_baseline_entry(m)] + [m for m in methods if is_baseline_entry(m)]


def subsets_of(rows: pd.DataFrame, metric: type[Metric]) -> list[str]:
    """A metric's subsets in a table's order: ``all``, the others as they appear, the counted ones last."""
    found = list(dict.fromkeys(rows.subset))
    middle = [s for s in found if s != "all" and s not in metric.counted_subsets]
    return (["all"] if "all" in found else []) + middle + [s for s in metric.counted_subsets if s in found]


def summarise(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The summary table (``SUMMARY_COLUMNS``): methods x metrics x subsets, per-class rows, classifier statistics."""
    out = []
    scored = rows[rows.method != CLASSIFIER]
    present = {name: metric_of(name) for name in dict.fromkeys(scored.metric)}  # an unknown metric fails here
    names = [name for name in list_metrics() if name in present]
    for method in baselines_last(dict.fromkeys(scored.method)):
        mine = scored[scored.method == method]
        for name in names:
            metric = present[name]
            chosen = mine[mine.metric == name]
            for subset in subsets_of(chosen, metric):
                part = chosen[chosen.subset == subset]
                if subset in metric.counted_subsets:
                    out.append([method, name, subset, "all", float(len(part)), math.nan, math.nan, len(part)])
                    continue
                value, low, high, count = estimate(part, metric, seed)
                out.append([method, name, subset, "all", value, low, high, count])
                out += [
                    [method, name, subset, cls, v, math.nan, math.nan, n]
                    for cls, (v, n) in metric.breakdown(part).items()
                ]
    classifier = rows[rows.method == CLASSIFIER]
    for name in CLASSIFIER_METRICS:
        chosen = classifier[classifier.metric == name]
        if len(chosen):  # the mean over samples, as the default metric aggregation
            out.append([CLASSIFIER, name, "all", "all", *estimate(chosen, Metric, seed)])
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def forward_passes(rows: pd.DataFrame) -> dict[str, float]:
    """Method -> mean forward passes per sample of its explanations (methods that record them; results.csv rows)."""
    known = rows[(rows.method != CLASSIFIER) & rows.forward_passes.notna()]
    if known.empty:
        return {}
    per_sample = known.groupby(["method", "sample_id"]).forward_passes.first()
    return per_sample.groupby(level="method").mean().to_dict()


def scoring_backends(rows: pd.DataFrame) -> list[str]:
    """The backends that ran the rows' gradient-free passes (``backend`` column; empty in older files), sorted."""
    values = rows.loc[rows.method != CLASSIFIER, "backend"].fillna("").astype(str)
    return sorted(set(values) - {""})


def is_detail(metric: str, subset: str) -> bool:
    """Whether a summary row is a per-depth detail (randomisation's ``step<i>:<block>``) rather than a headline."""
    prefix = METRICS.get(metric).detail_prefix if metric in METRICS else None
    return prefix is not None and subset.startswith(prefix)


def is_counted(metric: str, subset: str) -> bool:
    """Whether a summary row counts flags (pointing's ``constant``) rather than aggregating values."""
    return metric in METRICS and subset in METRICS.get(metric).counted_subsets


def overall_invalid(summary: pd.DataFrame) -> dict[str, int]:
    """Method -> the samples whose maps held NaN or inf (the most over its metrics), for methods that had any."""
    rows = summary[(summary.subset == INVALID) & (summary["class"] == "all")]
    return {method: int(group.value.max()) for method, group in rows.groupby("method", sort=False)}


def overall(summary: pd.DataFrame, classifier: bool = False) -> pd.DataFrame:
    """A summary's rows over every class, without counted or per-depth subsets and (unless asked) the classifier's."""
    keep = (summary["class"] == "all") & pd.Series(
        [not is_counted(m, s) and not is_detail(m, s) for m, s in zip(summary.metric, summary.subset, strict=True)],
        index=summary.index,
        dtype=bool,
    )
    if not classifier:
        keep &= summary.method != CLASSIFIER
    return summary[keep]
