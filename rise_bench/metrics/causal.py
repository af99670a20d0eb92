"""Deletion and insertion (Petsiuk, Das & Saenko, BMVC 2018), as in the authors' code.

Per (image, target class), at the model's input resolution on the normalised tensor:

- Pixels are ranked by saliency, descending; ties keep row-major order (the pixel
  nearer the top-left comes first; ``torch.sort(..., stable=True)``).
- ``step`` pixels change per step (default: the image width), ``n = ceil(H*W / step)``
  steps, ``n + 1`` points including both ends; the x-axis is ``i / n``.
- Deletion starts from the image and changed pixels take the substrate (default zeros
  in normalised space, i.e. the mean colour). Insertion starts from the reference's
  blurred copy and changed pixels take their original values. All channels of a pixel
  change together.
- The curve is the softmax probability of the target class; the score is the
  normalised trapezoid ``AUC = (sum(h) - h[0]/2 - h[n]/2) / n``.
  Lower deletion and higher insertion are better.

The ``n + 1`` perturbed images of a curve are scored ``batch_size`` at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

#: Side and sigma of the reference's insertion blur kernel.
BLUR_KERNEL_SIZE = 11
BLUR_SIGMA = 5.0


@dataclass
class CausalResult:
    """Scores of one metric for a batch.

    Attributes:
        auc: ``[B]`` normalised trapezoid area under each curve.
        curves: ``[B, n+1]`` target probability after ``i * step`` pixels changed.
    """

    auc: torch.Tensor
    curves: torch.Tensor


@lru_cache(maxsize=4)
def _reference_kernel(size: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1
    return gaussian_filter(delta, sigma)  # default mode 'reflect', as the reference


def reference_blur_kernel(size: int = BLUR_KERNEL_SIZE, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """The RISE reference's blur kernel: ``gaussian_filter`` of a centred delta, ``[size,size]``."""
    return torch.from_numpy(_reference_kernel(size, sigma).astype(np.float32))


def insertion_start(images: torch.Tensor, size: int = BLUR_KERNEL_SIZE, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Blurred copies of normalised ``[B,3,H,W]`` images: the reference kernel per channel, zero padding."""
    channels = images.shape[1]
    kernel = reference_blur_kernel(size, sigma).to(images.device, images.dtype)
    weight = kernel.expand(channels, 1, size, size)
    return F.conv2d(images, weight, padding=size // 2, groups=channels)


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Normalised trapezoid area ``(sum(h) - h[0]/2 - h[n]/2) / n`` of ``[..., n+1]`` curves."""
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
                curves[index, chunk] = model.scores(perturbed, "softmax")[:, targets[index]]
    return curves


def _check(images: torch.Tensor, saliency: torch.Tensor, targets) -> None:
    if images.dim() != 4 or saliency.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"saliency must be [B,H,W] = {[images.shape[0], *images.shape[2:]]}, got {list(saliency.shape)}")
    if torch.as_tensor(targets).numel() != images.shape[0]:
        raise ValueError("targets must hold one class per image")


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
) -> CausalResult:
    """Deletion metric: remove the most salient pixels first (lower AUC is better).

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
        ``CausalResult`` with ``auc [B]`` and ``curves [B, n+1]``.
    """
    _check(images, saliency, targets)
    finish = torch.zeros_like(images) if substrate is None else substrate.expand_as(images).to(images)
    curves = causal_curves(model, images, finish, saliency, targets, step=step, batch_size=batch_size, endpoints=endpoints)
    return CausalResult(auc(curves), curves)


def insertion(
    model,
    images: torch.Tensor,
    saliency: torch.Tensor,
    targets,
    *,
    step: int | None = None,
    batch_size: int = 32,
    blurred: torch.Tensor | None = None,
    endpoints: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
) -> CausalResult:
    """Insertion metric: reveal the most salient pixels first on a blurred copy (higher AUC is better).

    Args:
        model, images, saliency, targets, step, batch_size: as for ``deletion``.
        blurred: the start images (default ``insertion_start(images)``, the reference blur);
            pass it to reuse one blur across several maps of the same images.
        endpoints: known ``[B]`` probabilities of the blurred and of the original images
            (the first and last points); None scores them.

    Returns:
        ``CausalResult`` with ``auc [B]`` and ``curves [B, n+1]``.
    """
    _check(images, saliency, targets)
    start = insertion_start(images) if blurred is None else blurred
    curves = causal_curves(model, start, images, saliency, targets, step=step, batch_size=batch_size, endpoints=endpoints)
    return CausalResult(auc(curves), curves)
