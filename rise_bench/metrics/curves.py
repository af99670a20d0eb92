"""Perturbation curves, shared by deletion and insertion (Petsiuk, Das & Saenko, BMVC 2018).

Per (image, target class), at the model's input resolution on the normalised tensor:

- Pixels are ranked by saliency, descending; ties keep row-major order (the pixel
  nearer the top-left comes first; ``torch.sort(..., stable=True)``).
- ``step`` pixels change per step (default: the image width), ``n = ceil(H*W / step)``
  steps, ``n + 1`` points including both ends; the x-axis is ``i / n``.
- Changed pixels move from a start image to a finish image, all channels together; the
  curve is the target's softmax probability after each step.
- The score is the normalised trapezoid ``AUC = (sum(h) - h[0]/2 - h[n]/2) / n``.

The ``n + 1`` perturbed images of a curve are scored ``batch_size`` at a time.
``CurveMetric`` is the shared body of the two registered metrics: its start and finish
images are the metric's ``references`` (scored once per sample in the runner's shared
forward pass, which also gives both endpoints of every method's curve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..models import scores_only
from .base import Metric, MetricParams, Preparation, SampleContext, Score, Scores


@dataclass
class CurveResult:
    """Curves and their scores for a batch.

    Attributes:
        auc: ``[B]`` normalised trapezoid area under each curve.
        curves: ``[B, n+1]`` target probability after ``i * step`` pixels changed.
    """

    auc: torch.Tensor
    curves: torch.Tensor


def auc(curves):
    """Normalised trapezoid area ``(sum(h) - h[0]/2 - h[n]/2) / n`` of ``[..., n+1]`` curves (tensor or array)."""
    steps = curves.shape[-1] - 1
    return (curves.sum(-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / steps


def pixel_ranks(saliency: torch.Tensor) -> torch.Tensor:
    """Rank of every pixel of ``[H,W]`` saliency (0 = most salient; ties row-major) -> ``[H,W]``."""
    flat = saliency.reshape(-1)
    order = torch.sort(flat, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(flat.numel(), device=flat.device)
    return ranks.view(saliency.shape)


def num_steps(height: int, width: int, step: int | None) -> tuple[int, int]:
    """(step, n): pixels per step (default ``width``) and the number of steps."""
    step = width if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    return step, math.ceil(height * width / step)


def causal_curves(
    model,
    start: torch.Tensor,
    finish: torch.Tensor,
    saliency: torch.Tensor,
    targets: torch.Tensor,
    *,
    step: int | None = None,
    batch_size: int = 32,
    endpoints: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """Curves of the target probability while pixels move from ``start`` to ``finish``.

    Args:
        model: a ``Classifier`` (only ``scores`` is called).
        start, finish: ``[B,3,H,W]`` images at the first and last point.
        saliency: ``[B,H,W]`` maps; the most salient pixels change first.
        targets: ``[B]`` class indices.
        step: pixels per step (default: the width).
        batch_size: perturbed images per forward pass.
        endpoints: ``(first, last)``: ``[B]`` target probabilities of ``start`` and
            ``finish`` when already known (either may be None); those points are not
            scored again. The runner scores them once per sample for all methods.

    Returns:
        ``[B, n+1]`` probabilities.
    """
    batch, _, height, width = start.shape
    step, steps = num_steps(height, width, step)
    device = start.device
    points = torch.arange(steps + 1, device=device)
    changed = torch.clamp(points * step, max=height * width)
    curves = torch.empty(batch, steps + 1, device=device)
    targets = torch.as_tensor(targets, device=device).long().view(-1)
    first_known, last_known = endpoints if endpoints is not None else (None, None)
    if first_known is not None:
        curves[:, 0] = torch.as_tensor(first_known, device=device).float().view(-1)
        points = points[1:]
    if last_known is not None:
        curves[:, steps] = torch.as_tensor(last_known, device=device).float().view(-1)
        points = points[points != steps]
    with torch.inference_mode():
        for index in range(batch):
            ranks = pixel_ranks(saliency[index].to(device))
            for chunk in points.split(batch_size):
                moved = (ranks[None] < changed[chunk][:, None, None])[:, None]
                perturbed = torch.where(moved, finish[index : index + 1], start[index : index + 1])
                with scores_only(model):  # the fast backend may run the curve's passes
                    curves[index, chunk] = model.scores(perturbed, "softmax")[:, targets[index]]
    return curves


def check_inputs(images: torch.Tensor, saliency: torch.Tensor, targets) -> None:
    """``images [B,3,H,W]``, ``saliency [B,H,W]`` and one target per image, or a ValueError."""
    if images.dim() != 4 or saliency.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(
            f"saliency must be [B,H,W] = {[images.shape[0], *images.shape[2:]]}, got {list(saliency.shape)}"
        )
    if torch.as_tensor(targets).numel() != images.shape[0]:
        raise ValueError("targets must hold one class per image")


def curve_result(
    model, start: torch.Tensor, finish: torch.Tensor, saliency: torch.Tensor, targets, **options
) -> CurveResult:
    """``causal_curves`` of checked inputs and their AUCs (``options``: step, batch_size, endpoints)."""
    check_inputs(start, saliency, targets)
    curves = causal_curves(model, start, finish, saliency, targets, **options)
    return CurveResult(auc(curves), curves)


@dataclass(frozen=True)
class CurveParams(MetricParams):
    """Parameters every curve metric has.

    Attributes:
        step: pixels changed per step (default none: the input width, 224 steps at 224x224).
    """

    step: int | None = None

    def __post_init__(self) -> None:
        if self.step is not None and self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")


@dataclass
class CurveState:
    """What a curve metric keeps of a sample: the images at both ends and the known endpoints."""

    image: torch.Tensor
    reference: torch.Tensor
    endpoints: tuple[torch.Tensor, torch.Tensor]


class CurveMetric(Metric):
    """A registered deletion or insertion metric: one curve per sample for the explained target.

    Subclasses give ``references(image)`` (the substrate or the blurred start, a
    ``[1,3,H,W]`` image, scored in the sample's shared pass) and ``starts_at_image``
    (whether the image is the curve's first point, or its last).
    """

    Params: ClassVar[type] = CurveParams
    category: ClassVar[str] = "faithfulness"
    #: True when the curve starts at the image (deletion), False when it ends there (insertion).
    starts_at_image: ClassVar[bool] = True

    def prepare(self, context: SampleContext) -> Preparation:
        target = context.target
        reference, probabilities = context.references[self.name]
        at_image = context.probabilities[target : target + 1]
        at_reference = probabilities[0:1, target]
        endpoints = (at_image, at_reference) if self.starts_at_image else (at_reference, at_image)
        state = CurveState(context.image, reference[:1], endpoints)
        return Preparation(context.model, [target], [context.model.classes[target]], state)

    def score(self, preparation, maps, *, batch_size, explain=None) -> Scores:
        state: CurveState = preparation.state
        ends = (state.image, state.reference) if self.starts_at_image else (state.reference, state.image)
        targets = torch.tensor(preparation.targets[:1], device=state.image.device)
        result = curve_result(
            preparation.model, *ends, maps[:1], targets, step=self.params.step, batch_size=batch_size,
            endpoints=state.endpoints,
        )  # fmt: skip
        return Scores([Score(preparation.names[0], float(result.auc[0]))], result.curves[0].cpu().numpy())
