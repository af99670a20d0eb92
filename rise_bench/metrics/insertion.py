"""Insertion (Petsiuk, Das & Saenko, BMVC 2018): reveal the most salient pixels first on a blurred copy.

Starting from the reference's blur of the image, changed pixels take their original
values, ``step`` pixels at a time in saliency order (see ``curves.py``). The blur is
the RISE authors': an 11x11 kernel that is ``scipy.ndimage.gaussian_filter`` (sigma 5,
its default reflect mode) of a centred delta, convolved per channel over the normalised
image with zero padding. A faithful map makes the probability rise fast: higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .base import HIGHER, register_metric
from .curves import CurveMetric, CurveParams, CurveResult, curve_result

#: Side and sigma of the reference's insertion blur kernel.
BLUR_KERNEL_SIZE = 11
BLUR_SIGMA = 5.0


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
) -> CurveResult:
    """Insertion curves and AUCs (higher is better).

    Args:
        model, images, saliency, targets, step, batch_size: as for ``deletion``.
        blurred: the start images (default ``insertion_start(images)``, the reference blur);
            pass it to reuse one blur across several maps of the same images.
        endpoints: known ``[B]`` probabilities of the blurred and of the original images
            (the first and last points); None scores them.

    Returns:
        ``CurveResult`` with ``auc [B]`` and ``curves [B, n+1]``.
    """
    start = insertion_start(images) if blurred is None else blurred
    return curve_result(model, start, images, saliency, targets, step=step, batch_size=batch_size, endpoints=endpoints)


@dataclass(frozen=True)
class InsertionParams(CurveParams):
    """Insertion parameters.

    Attributes:
        step: pixels inserted per step (default none: the input width, 224 steps at 224x224).
        blur_size: side of the start image's blur kernel (11, the reference's).
        blur_sigma: sigma of the start image's blur kernel (5, the reference's).
    """

    blur_size: int = BLUR_KERNEL_SIZE
    blur_sigma: float = BLUR_SIGMA

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.blur_size < 1 or self.blur_size % 2 == 0 or self.blur_sigma <= 0:
            raise ValueError("need an odd blur_size >= 1 and blur_sigma > 0")


@register_metric("insertion")
class Insertion(CurveMetric):
    """Insertion AUC: the target's probability as the most salient pixels are revealed on a blur."""

    Params = InsertionParams
    direction = HIGHER
    title = "insertion AUC"
    curve_label = "fraction of pixels inserted"
    starts_at_image = False

    def references(self, image: torch.Tensor) -> torch.Tensor:
        return insertion_start(image, self.params.blur_size, self.params.blur_sigma)
