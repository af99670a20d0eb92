"""Deletion (Petsiuk, Das & Saenko, BMVC 2018): remove the most salient pixels first.

Starting from the image, changed pixels take the substrate (default zeros in normalised
space, i.e. the mean colour), ``step`` pixels at a time in saliency order (see
``curves.py``). The curve is the target's softmax probability; the score its normalised
trapezoid area. A faithful map makes the probability fall fast: lower is better.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import LOWER, register_metric
from .curves import CurveMetric, CurveParams, CurveResult, curve_result


def deletion(
    model,
    images: torch.Tensor,
    saliency: torch.Tensor,
    targets,
    *,
    step: int | None = None,
    batch_size: int = 32,
    substrate: torch.Tensor | None = None,
    endpoints: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
) -> CurveResult:
    """Deletion curves and AUCs (lower is better).

    Args:
        model: a ``Classifier``.
        images: normalised ``[B,3,H,W]`` at the model's input size.
        saliency: ``[B,H,W]`` maps at the same size.
        targets: ``[B]`` classes whose softmax probability is tracked.
        step: pixels removed per step (default: the image width).
        batch_size: perturbed images per forward pass.
        substrate: what removed pixels become (default zeros: the mean colour).
        endpoints: known ``[B]`` probabilities of the image and of the substrate (the
            first and last points), e.g. from a forward pass already made; None scores them.

    Returns:
        ``CurveResult`` with ``auc [B]`` and ``curves [B, n+1]``.
    """
    finish = torch.zeros_like(images) if substrate is None else substrate.expand_as(images).to(images)
    return curve_result(model, images, finish, saliency, targets, step=step, batch_size=batch_size, endpoints=endpoints)


@dataclass(frozen=True)
class DeletionParams(CurveParams):
    """Deletion parameters.

    Attributes:
        step: pixels removed per step (default none: the input width, 224 steps at 224x224).
    """


@register_metric("deletion")
class Deletion(CurveMetric):
    """Deletion AUC: the target's probability as the most salient pixels are removed."""

    Params = DeletionParams
    direction = LOWER
    title = "deletion AUC"
    curve_label = "fraction of pixels deleted"
    starts_at_image = True

    def references(self, image: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(image)
