"""Metrics behind one contract (``base.py``); importing registers them all.

- ``deletion.py`` and ``insertion.py`` (Petsiuk et al. 2018), over ``curves.py``.
- ``pointing.py``: the pointing game (Zhang et al. 2016, TorchRay semantics).
- ``road.py``: ROAD MoRF, LeRF and combined (Rong, Leemann et al. 2022), over the noisy
  linear imputation of ``imputation.py`` (``noisy_linear_impute``).
- ``randomisation.py``: the model-randomisation sanity check (Adebayo et al. 2018).

Every module here is imported when the package is, which registers its metrics: a new
metric is one new file (plus its tests; the registry-driven ones enrol it by themselves).

Pure functions of tensors stay public beside the classes: ``deletion.deletion``,
``insertion.insertion`` and ``insertion_start``, ``curves.auc``, ``pointing.point_and_score``
and ``pointing_game``... (the modules keep the metric names, so the functions are
imported from them: ``from rise_bench.metrics.deletion import deletion``).
"""

import importlib
import pkgutil

from .base import (
    HIGHER,
    LOWER,
    Metric,
    MetricParams,
    Preparation,
    SampleContext,
    Score,
    Scores,
    create_metric,
    create_metrics,
    default_metrics,
    list_metrics,
    metric_class,
    register_metric,
)
from .curves import CurveResult, auc
from .imputation import noisy_linear_impute
from .insertion import insertion_start
from .pointing import PointingOutcome, is_difficult, point_and_score, pointing_game

__all__ = [
    "HIGHER",
    "LOWER",
    "CurveResult",
    "Metric",
    "MetricParams",
    "PointingOutcome",
    "Preparation",
    "SampleContext",
    "Score",
    "Scores",
    "auc",
    "create_metric",
    "create_metrics",
    "default_metrics",
    "insertion_start",
    "is_difficult",
    "list_metrics",
    "noisy_linear_impute",
    "metric_class",
    "point_and_score",
    "pointing_game",
    "register_metric",
]

# Every public module of the package holds metrics (or helpers of some): importing it registers them, so a new
# metric is one new file.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")
