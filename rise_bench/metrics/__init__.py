"""Metrics: pure functions of (model, images, saliency, targets, params); no explainers.

- ``causal.py``: deletion and insertion (Petsiuk et al. 2018).
- ``pointing.py``: the pointing game (Zhang et al. 2016, TorchRay semantics).
- ``baselines.py``: the ``center`` and ``random`` maps scored beside every method.
"""

from .baselines import BASELINES, baseline_map
from .causal import CausalResult, auc, deletion, insertion, insertion_start
from .pointing import PointingOutcome, boxes_mask, is_difficult, point_and_score, pointing_game

#: Metric names as the CLI and result rows spell them.
METRICS = ("deletion", "insertion", "pointing")

__all__ = [
    "BASELINES", "METRICS", "CausalResult", "PointingOutcome", "auc", "baseline_map", "boxes_mask",
    "deletion", "insertion", "insertion_start", "is_difficult", "point_and_score", "pointing_game",
]
