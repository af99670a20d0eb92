"""Saliency methods and baselines behind one contract (``base.py``); importing registers them all."""

# Registration order is the order of listings and of ``--method all``: methods first, then baselines.
from . import rise, gradcam, gradient, lime, perturbation, baselines  # noqa: F401 # isort: skip
from .base import Execution, Explainer, ExplainerParams
from .registry import (
    create_explainer,
    create_explainers,
    explainer_class,
    is_baseline,
    list_baselines,
    list_explainers,
    register_explainer,
)

__all__ = [
    "Execution",
    "Explainer",
    "ExplainerParams",
    "create_explainer",
    "create_explainers",
    "explainer_class",
    "is_baseline",
    "list_baselines",
    "list_explainers",
    "register_explainer",
]
