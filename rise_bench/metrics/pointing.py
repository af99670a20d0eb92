"""Pointing game (Zhang et al., ECCV 2016), with TorchRay's semantics.

Per (image, class present in the image): the saliency map is resized to the original
image size and its maximum is the point (first in row-major order on ties; a constant
map is flagged). It is a hit when the point lies strictly less than ``tolerance`` (15)
pixels, Euclidean, from the class's ground truth: the union of all its boxes
(``difficult`` ones included; VOC boxes are 1-based and inclusive) or of its non-crowd
instance masks (COCO). Accuracy is the mean over classes of the per-class hit rate;
classes with no samples are left out (TorchRay counts them as 0).

The ``difficult`` subset holds the (image, class) pairs where the image also holds
another class (a distractor; a class whose every box is difficult does not count) and
the class's ground truth covers less than 25% of the image.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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


def boxes_mask(boxes: Iterable[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    """Union of VOC boxes ``(xmin, ymin, xmax, ymax)``, 1-based inclusive, as a ``[H,W]`` bool mask."""
    height, width = size
    mask = np.zeros((height, width), dtype=bool)
    for xmin, ymin, xmax, ymax in boxes:
        top, left = max(int(round(ymin)) - 1, 0), max(int(round(xmin)) - 1, 0)
        bottom, right = min(int(round(ymax)), height), min(int(round(xmax)), width)
        mask[top:bottom, left:right] = True
    return mask


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


def is_difficult(ground_truth: np.ndarray, other_classes_present: bool) -> bool:
    """The difficult-subset rule: a distractor class is present and the class covers < 25%."""
    return bool(other_classes_present and ground_truth.mean() < DIFFICULT_AREA)


def pointing_game(trials: Iterable[tuple[str, bool]]) -> tuple[float, dict[str, float]]:
    """Accuracy from ``(class, hit)`` trials: the mean of per-class hit rates.

    Returns:
        (accuracy, per-class hit rate); classes without trials do not appear, and the
        accuracy of no trials at all is NaN.
    """
    hits: dict[str, list[bool]] = defaultdict(list)
    for name, hit in trials:
        hits[name].append(bool(hit))
    per_class = {name: float(np.mean(values)) for name, values in sorted(hits.items())}
    accuracy = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return accuracy, per_class
