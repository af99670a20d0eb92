"""Pointing game (Zhang et al., ECCV 2016), with TorchRay's semantics.

Per (image, class present in the image): the saliency map is resized to the original
image size and its maximum is the point (first in row-major order on ties; a constant
map is flagged). It is a hit when the point lies strictly less than ``tolerance`` (15)
pixels, Euclidean, from the class's ground truth: the union of all its boxes
(``difficult`` ones included; VOC boxes are 1-based and inclusive; a class annotated
only as difficult is not asked about) or of all its instance masks, crowd regions
included, as TorchRay's ``coco_as_mask`` (COCO; every category present is asked about,
one present only as a crowd region too; ``crowds=false`` leaves crowds out). Accuracy is
the mean over classes of the per-class hit rate; classes with no trials are left out
(TorchRay counts them as 0, which only matters on subsets).

The ``difficult`` subset holds the (image, class) pairs where the image also holds
another class (a distractor; a class whose every box is difficult does not count, a
crowd-only category does unless crowds are left out) and the class's ground truth
covers less than 25% of the image.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .base import HIGHER, INVALID, Metric, MetricParams, Preparation, SampleContext, Score, Scores, register_metric

#: Pointing tolerance in pixels at the original resolution (strictly less than).
TOLERANCE = 15
#: A pair is 'difficult' only when its ground truth covers less than this fraction of the image.
DIFFICULT_AREA = 0.25


@dataclass(frozen=True)
class PointingOutcome:
    """One (image, class) trial.

    Attributes:
        hit: the point lies within tolerance of the ground truth.
        point: (row, column) of the map's maximum at the original resolution.
        constant: the map is constant (its point is then the top-left pixel).
    """

    hit: bool
    point: tuple[int, int]
    constant: bool


def saliency_point(saliency: torch.Tensor | np.ndarray, size: tuple[int, int]) -> tuple[tuple[int, int], bool]:
    """((row, col), constant) of the maximum of a ``[h,w]`` map resized bilinearly to ``size``."""
    tensor = torch.as_tensor(np.asarray(saliency, dtype=np.float32) if isinstance(saliency, np.ndarray) else saliency)
    tensor = tensor.detach().float().cpu()
    constant = bool(tensor.max() == tensor.min())
    if constant:
        return (0, 0), True
    if tuple(tensor.shape) != tuple(size):
        tensor = F.interpolate(tensor[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    index = int(torch.argmax(tensor.reshape(-1)))  # first maximum in row-major order
    return divmod(index, size[1]), False


def is_hit(point: tuple[int, int], ground_truth: np.ndarray, tolerance: float = TOLERANCE) -> bool:
    """True when a ground-truth pixel lies at distance strictly less than ``tolerance`` from ``point``."""
    row, col = point
    reach = int(np.ceil(tolerance))
    top, left = max(row - reach, 0), max(col - reach, 0)
    window = ground_truth[top : row + reach + 1, left : col + reach + 1]
    if not window.any():
        return False
    rows, cols = np.nonzero(window)
    distance2 = (rows + top - row) ** 2 + (cols + left - col) ** 2
    return bool((distance2 < tolerance**2).any())


def point_and_score(saliency, ground_truth: np.ndarray, tolerance: float = TOLERANCE) -> PointingOutcome:
    """Play one trial: the point of ``saliency`` (any size) against a ``[H,W]`` ground-truth mask."""
    point, constant = saliency_point(saliency, ground_truth.shape)
    return PointingOutcome(is_hit(point, ground_truth, tolerance), point, constant)


def is_difficult(ground_truth: np.ndarray, other_classes_present: bool, area: float = DIFFICULT_AREA) -> bool:
    """The difficult-subset rule: a distractor class is present and the class covers less than ``area``."""
    return bool(other_classes_present and ground_truth.mean() < area)


def accuracy(hits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pointing accuracy from per-class hits and trials ``[..., C]``: the mean of the rates of classes with trials."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(counts > 0, hits / np.where(counts > 0, counts, 1), np.nan)
    present = (counts > 0).sum(-1)
    return np.where(present > 0, np.nansum(rates, axis=-1) / np.maximum(present, 1), np.nan)


def pointing_game(trials: Iterable[tuple[str, bool]]) -> tuple[float, dict[str, float]]:
    """Accuracy from ``(class, hit)`` trials: the mean of per-class hit rates.

    Returns:
        (accuracy, per-class hit rate); classes without trials do not appear, and the
        accuracy of no trials at all is NaN.
    """
    hits: dict[str, list[bool]] = defaultdict(list)
    for name, hit in trials:
        hits[name].append(bool(hit))
    classes = sorted(hits)
    hit_counts = np.array([sum(hits[c]) for c in classes], dtype=float)
    counts = np.array([len(hits[c]) for c in classes], dtype=float)
    per_class = {c: float(h / n) for c, h, n in zip(classes, hit_counts, counts, strict=True)}
    return float(accuracy(hit_counts, counts)), per_class


@dataclass(frozen=True)
class PointingParams(MetricParams):
    """Pointing-game parameters (TorchRay's).

    Attributes:
        tolerance: a hit lies strictly closer than this many pixels to the ground truth (15).
        difficult_area: the difficult subset's largest ground-truth share of the image (0.25).
        crowds: count COCO crowd regions as ground truth and crowd-only categories as present (TorchRay).
    """

    tolerance: float = TOLERANCE
    difficult_area: float = DIFFICULT_AREA
    crowds: bool = True

    def __post_init__(self) -> None:
        if self.tolerance <= 0 or not 0 < self.difficult_area <= 1:
            raise ValueError("need tolerance > 0 and 0 < difficult_area <= 1")


@dataclass
class Trial:
    """One class of a sample: its ground truth and difficult flag."""

    truth: np.ndarray
    difficult: bool


@register_metric("pointing")
class Pointing(Metric):
    """Pointing accuracy: does the map's maximum fall on (within 15 px of) the annotated class?"""

    Params = PointingParams
    direction = HIGHER
    title = "pointing accuracy"
    category = "localisation"
    needs_ground_truth = True
    counted_subsets = ("constant", INVALID)

    def prepare(self, context: SampleContext) -> Preparation:
        params: PointingParams = self.params
        sample = context.sample
        present = sample.pointing_labels(crowds=params.crowds)
        playable = [c for c in present if c in context.scorable]
        trials = []
        for cls in playable:
            truth = sample.ground_truth(cls, crowds=params.crowds)
            trials.append(Trial(truth, is_difficult(truth, len(present) > 1, params.difficult_area)))
        skipped = [context.classes[c] for c in present if c not in context.scorable]
        skipped += [f"{context.classes[c]} (no valid annotation)" for c in sample.unplayable]
        return Preparation(context.annotated_model, playable, [context.classes[c] for c in playable], trials, skipped)

    def score(self, preparation, maps, *, batch_size, explain=None) -> Scores:
        rows = []
        for name, trial, saliency in zip(preparation.names, preparation.state, maps, strict=True):
            outcome = point_and_score(saliency.cpu(), trial.truth, self.params.tolerance)
            rows.append(Score(name, float(outcome.hit)))
            if trial.difficult:
                rows.append(Score(name, float(outcome.hit), "difficult"))
            if outcome.constant:
                rows.append(Score(name, 1.0, "constant"))
        return Scores(rows)

    # -- aggregation: the mean of per-class hit rates ------------------------------------
    @classmethod
    def sample_statistics(cls, rows: pd.DataFrame) -> pd.DataFrame:
        """Per sample: hits per class, then trials per class (columns ``hits:<class>``, ``trials:<class>``)."""
        classes = sorted(rows.target.unique())
        samples = sorted(rows.sample_id.unique())
        table = {}
        for kind, function in (("hits", "sum"), ("trials", "count")):
            pivot = rows.pivot_table(index="sample_id", columns="target", values="value", aggfunc=function)
            pivot = pivot.reindex(index=samples, columns=classes).fillna(0)
            table.update({f"{kind}:{c}": pivot[c].to_numpy(dtype=float) for c in classes})
        return pd.DataFrame(table, index=samples)

    @classmethod
    def aggregate(cls, totals: np.ndarray) -> np.ndarray:
        classes = totals.shape[-1] // 2
        return accuracy(totals[..., :classes], totals[..., classes:])

    @classmethod
    def size(cls, statistics: pd.DataFrame) -> int:
        """Trials, not images."""
        return int(statistics.filter(like="trials:").to_numpy().sum())

    @classmethod
    def breakdown(cls, rows: pd.DataFrame) -> dict[str, tuple[float, int]]:
        _, rates = pointing_game(zip(rows.target, rows.value.astype(bool), strict=True))
        counts = rows.groupby("target").size()
        return {name: (rate, int(counts[name])) for name, rate in rates.items()}
