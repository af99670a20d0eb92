"""Saliency methods behind one contract (see ``base.py``); importing registers them all."""

from .base import (
    Explainer,
    ExplainerParams,
    create_explainer,
    explainer_class,
    list_explainers,
    register_explainer,
)
from . import rise, gradcam, gradient, lime, perturbation  # noqa: E402,F401  (registration)

__all__ = [
    "Explainer",
    "ExplainerParams",
    "create_explainer",
    "explainer_class",
    "list_explainers",
    "register_explainer",
]
