"""Metric reliability (Tomsett et al., AAAI 2020, "Sanity Checks for Saliency Metrics").

Computed from a run's per-sample results, for every metric with at least two methods
and ten samples they all have (baselines left out unless asked), within one data set and
model. Every metric ranks the methods on each image in its own direction (rank 1: best).

- **Inter-rater reliability**: Krippendorff's alpha (ordinal; the ``krippendorff``
  package), the images as raters and the methods as units, the values their ranks. 1:
  every image ranks the methods alike; about 0: the ranking changes from image to image
  as if at random; below 0: systematic disagreement.
- **Inter-method reliability**: per pair of methods, the Spearman correlation of their
  per-image scores: do images hard for one method tend to be hard for the other?
- **Internal consistency**: per pair of metrics meant to measure the same thing
  (deletion and insertion; ROAD's pairs once registered), the Spearman correlation of
  the method rankings they give on each image, averaged over images.

Each value has a percentile-bootstrap 95% CI over images (SciPy's ``bootstrap``, seeded).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..evaluation.results import CLASSIFIER
from .summary import is_baseline_entry, metric_of, per_sample

#: Fewest shared samples for which reliability is computed.
MIN_SAMPLES = 10
#: Pairs of metrics meant to measure the same thing (both must be in the results).
CONSISTENT_PAIRS = [("deletion", "insertion"), ("deletion", "road_morf"), ("insertion", "road_lerf")]
RELIABILITY_COLUMNS = ["statistic", "dataset", "model", "metric", "pair", "value", "ci_low", "ci_high", "n"]
BOOTSTRAP_RESAMPLES = 1000


#: What the statistics mean, in words (under every reliability table).
RELIABILITY_MEANING = (
    "Metric reliability (Tomsett et al. 2020). Inter-rater alpha near 1: the images agree on how the metric "
    "ranks the methods; near 0: the ranking changes from image to image as if at random, so a mean over few "
    "images says little; below 0: images disagree systematically. Inter-method: do two methods find the same "
    "images hard? Internal consistency: do two metrics meant to measure the same thing rank methods alike?"
)


def krippendorff_alpha(ranks: np.ndarray) -> float:
    """Ordinal Krippendorff's alpha of ``ranks [images, methods]`` (images are the raters)."""
    import krippendorff

    if ranks.shape[0] < 2 or ranks.shape[1] < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=ranks, level_of_measurement="ordinal"))


def rank_methods(scores: pd.DataFrame, higher_is_better: bool) -> np.ndarray:
    """Per image (row), each method's (column) rank, 1 the best, ties sharing their mean rank."""
    return scores.rank(axis=1, ascending=not higher_is_better, method="average").to_numpy()


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    from scipy.stats import spearmanr

    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return math.nan
    return float(spearmanr(first, second).statistic)


def bootstrap_ci(count: int, statistic: Callable[[np.ndarray], float], seed: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of ``statistic(image indices)`` over ``count`` images."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    if count < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():  # every resample giving one value (perfect agreement) is a fine answer
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap(
            (np.arange(count),),
            lambda picks: statistic(np.asarray(picks, dtype=int)),
            vectorized=False,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
    low, high = result.confidence_interval
    return float(low), float(high)


def score_table(rows: pd.DataFrame, metric: str, methods: list[str]) -> pd.DataFrame:
    """Images x methods: each method's per-image value of ``metric`` (subset ``all``), on the images all have."""
    table = pd.concat({m: per_sample(rows, m, metric) for m in methods}, axis=1)
    return table.dropna()


def reliability_table(rows: pd.DataFrame, seed: int = 0, baselines: bool = False) -> pd.DataFrame:
    """The reliability statistics of every metric of ``rows`` (``summary.read_results``), see the module."""
    out = []
    scored = rows[rows.method != CLASSIFIER]
    for (dataset, model), group in scored.groupby(["dataset", "model"], sort=False):
        methods = [m for m in dict.fromkeys(group.method) if baselines or not is_baseline_entry(m)]
        if len(methods) < 2:
            continue
        tables = {}
        for metric in dict.fromkeys(group.metric):
            table = score_table(group, metric, methods)
            if len(table) < MIN_SAMPLES:
                continue
            tables[metric] = table
            higher = metric_of(metric).higher_is_better()
            ranks = rank_methods(table, higher)
            value = krippendorff_alpha(ranks)
            low, high = bootstrap_ci(len(ranks), lambda picks, r=ranks: krippendorff_alpha(r[picks]), seed)
            out.append(["inter-rater alpha", dataset, model, metric, "", value, low, high, len(ranks)])
            for first, second in itertools.combinations(methods, 2):
                a, b = table[first].to_numpy(), table[second].to_numpy()
                value = spearman(a, b)
                low, high = bootstrap_ci(len(a), lambda picks, a=a, b=b: spearman(a[picks], b[picks]), seed)
                out.append(["inter-method spearman", dataset, model, metric, f"{first} / {second}", value, low, high,
                            len(a)])  # fmt: skip
        for first, second in CONSISTENT_PAIRS:
            if first not in tables or second not in tables:
                continue
            shared = tables[first].index.intersection(tables[second].index)
            if len(shared) < MIN_SAMPLES:
                continue
            one = rank_methods(tables[first].loc[shared], metric_of(first).higher_is_better())
            two = rank_methods(tables[second].loc[shared], metric_of(second).higher_is_better())
            per_image = np.array([spearman(x, y) for x, y in zip(one, two, strict=True)])

            def mean_of(picks: np.ndarray, values: np.ndarray = per_image) -> float:
                return float(np.nanmean(values[picks]))

            low, high = bootstrap_ci(len(per_image), mean_of, seed)
            out.append(["internal consistency", dataset, model, f"{first} / {second}", "",
                        float(np.nanmean(per_image)), low, high, len(per_image)])  # fmt: skip
    return pd.DataFrame(out, columns=RELIABILITY_COLUMNS)


def reliability_text(table: pd.DataFrame) -> str:
    """A short table for people, and what the values mean."""
    lines = ["| statistic | metric | pair | value [95% CI] | n |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        ci = "" if math.isnan(r.ci_low) else f" [{r.ci_low:.2f}, {r.ci_high:.2f}]"
        pair = r.pair if isinstance(r.pair, str) else ""  # read back from a CSV, an empty pair is NaN
        lines.append(f"| {r.statistic} | {r.metric} | {pair} | {r.value:.2f}{ci} | {r.n} |")
    return "\n".join(lines) + "\n\n" + RELIABILITY_MEANING + "\n"
