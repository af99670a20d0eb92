"""Extremal perturbation (Fong, Patrick & Vedaldi, ICCV 2019), preservation game; TorchRay's behaviour.

For each area ``a`` a smooth mask ``M`` keeps about a fraction ``a`` of the image and
maximises the target's score on the perturbed image, where pixels with ``M = 0`` are
replaced by the most blurred level of a blur pyramid (``levels`` levels, blur std from
``max_blur`` down to 0, mask values interpolating linearly between levels). The area is
a soft constraint: ``area_weight * mean((sort(M) - r_a)**2)``, with ``r_a`` the sorted
reference mask (a fraction ``1 - a`` of zeros, then ones) and a weight that grows by
``area_growth`` per step. Masks are smooth by construction: a parameter per ``step``
pixels, and each pixel is a smooth maximum (softmax pooling, coldness 20) of its
neighbouring parameters weighted by ``exp(-2 max(d / sigma - 0.5, 0)**2)`` of their
distance ``d``. SGD with momentum 0.9 (lr 0.01), ``iterations`` steps, the image flipped
horizontally on even steps (``jitter``). The map is the sum of the masks over the areas, as
TorchRay's benchmark does. The explained score defaults to the logit, TorchRay's reward,
for which the area weights are tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..images import gaussian_blur
from ..models import ScoreKind
from .base import ExplainerParams
from .mask_optimisation import MaskOptimisation, descend
from .registry import register_explainer

#: Coldness of the softmax pooling that makes each pixel a smooth maximum of its parameters (TorchRay's).
COLDNESS = 20.0


@dataclass(frozen=True)
class ExtremalParams(ExplainerParams):
    """Extremal perturbation parameters (TorchRay's defaults; areas of its VOC benchmark).

    Attributes:
        areas: fractions of the image each mask keeps (0.025, 0.05, 0.1, 0.2); one mask per area.
        iterations: SGD steps (800).
        step: pixels per mask parameter (7).
        sigma: smoothing radius of the mask in pixels (21).
        levels: levels of the blur pyramid (8).
        max_blur: blur std in pixels of the most perturbed level (20).
        learning_rate: SGD learning rate (0.01; momentum and dampening 0.9).
        area_weight: initial weight of the area constraint (300).
        area_growth: factor by which the area weight grows each step (1.0035).
        jitter: flip the perturbed image horizontally on even steps (TorchRay's jitter).
        score: explained score: the ``logit`` (TorchRay's reward), ``softmax`` or ``sigmoid``.
    """

    areas: list[float] = field(default_factory=lambda: [0.025, 0.05, 0.1, 0.2])
    iterations: int = 800
    step: int = 7
    sigma: float = 21.0
    levels: int = 8
    max_blur: float = 20.0
    learning_rate: float = 0.01
    area_weight: float = 300.0
    area_growth: float = 1.0035
    jitter: bool = True
    score: ScoreKind = "logit"

    def __post_init__(self) -> None:
        if not self.areas or not all(0 < a < 1 for a in self.areas):
            raise ValueError("areas must be one or more fractions in (0, 1)")
        if self.iterations < 0 or self.step < 1 or self.sigma <= 0 or self.levels < 2 or self.max_blur <= 0:
            raise ValueError("need iterations >= 0, step >= 1, sigma > 0, levels >= 2 and max_blur > 0")


def smooth_mask_weights(size: tuple[int, int], step: int, sigma: float, device: torch.device) -> torch.Tensor:
    """``[K*K,H,W]`` weight of each of a pixel's K x K neighbouring parameters (K = 2 radius + 1).

    Parameter ``(i, j)`` sits at the centre of its ``step x step`` block; a pixel's
    neighbours are the parameters within ``radius = 1 + ceil(sigma / step)`` blocks of its own.
    """
    radius = 1 + math.ceil(sigma / step)
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    rows = torch.arange(size[0], device=device, dtype=torch.float32)
    cols = torch.arange(size[1], device=device, dtype=torch.float32)
    # distance along each axis from a pixel to the centre of the block `offset` blocks from its own
    centre = (step - 1) / 2

    def axis(coords: torch.Tensor) -> torch.Tensor:
        return (torch.div(coords, step, rounding_mode="floor") + offsets[:, None]) * step + centre - coords

    dy, dx = axis(rows), axis(cols)  # [K,H], [K,W]
    distance = torch.sqrt(dy[:, None, :, None] ** 2 + dx[None, :, None, :] ** 2) / sigma  # [K,K,H,W]
    weights = torch.exp(-2 * (distance - 0.5).clamp_min(0) ** 2)
    return weights.reshape(-1, size[0], size[1])


def smooth_mask(parameters: torch.Tensor, weights: torch.Tensor, step: int) -> torch.Tensor:
    """Masks ``[m,1,H,W]`` in [0, 1] from parameters ``[m,1,h,w]``: each pixel a smooth max of its neighbours."""
    count = parameters.shape[0]
    neighbours = weights.shape[0]
    side = math.isqrt(neighbours)
    height, width = weights.shape[-2:]
    grid = F.unfold(parameters, side, padding=side // 2).view(count, neighbours, *parameters.shape[-2:])
    values = grid.repeat_interleave(step, dim=2).repeat_interleave(step, dim=3)[:, :, :height, :width] * weights
    pooled = (values * torch.softmax(COLDNESS * values, dim=1)).sum(dim=1, keepdim=True)
    return pooled.clamp(0, 1)


def blur_pyramid(images: torch.Tensor, levels: int, max_blur: float) -> torch.Tensor:
    """``[m,L,3,H,W]``: level ``l`` blurred with std ``max_blur * (1 - l / (L - 1))`` (the last is the image)."""
    sigmas = [max_blur * (1 - level / (levels - 1)) for level in range(levels)]
    return torch.stack([gaussian_blur(images, sigma, padding_mode="zeros") for sigma in sigmas], dim=1)


def perturb(pyramid: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images ``[m,3,H,W]`` from pyramids ``[m,L,3,H,W]``: mask 1 the image, 0 the most blurred, linear between."""
    levels = pyramid.shape[1]
    position = mask * (levels - 1)  # [m,1,H,W]
    steps = torch.arange(levels, device=mask.device, dtype=mask.dtype).view(1, levels, 1, 1, 1)
    weights = (1 - (position[:, None] - steps).abs()).clamp_min(0)  # [m,L,1,H,W]
    return (weights * pyramid).sum(dim=1)


@register_explainer("extremal")
class ExtremalPerturbation(MaskOptimisation):
    """Extremal perturbation (Fong et al. 2019): area-constrained smooth masks; the sum over areas."""

    Params = ExtremalParams
    quick_params = {"iterations": 80, "areas": [0.05, 0.1]}
    # no jitter on the tiny models: the region model is not mirror-symmetric, a photograph's class nearly is
    tiny_params = {"iterations": 80, "areas": [0.08, 0.15], "step": 4, "sigma": 6.0, "max_blur": 6.0, "jitter": False}

    @property
    def iterations(self) -> int:
        return self.params.iterations

    @property
    def copies_per_pair(self) -> int:  # one perturbed copy per area
        return len(self.params.areas)

    def _optimise(self, model, images, targets, seeds, report) -> torch.Tensor:
        params: ExtremalParams = self.params
        pairs, areas = images.shape[0], len(params.areas)
        height, width = images.shape[-2:]
        device = images.device
        weights = smooth_mask_weights((height, width), params.step, params.sigma, device)
        pyramid = blur_pyramid(images.float(), params.levels, params.max_blur).repeat_interleave(areas, dim=0)
        chosen = targets.repeat_interleave(areas)[:, None]
        pixels = height * width
        reference = torch.ones(areas, pixels, device=device)
        for index, area in enumerate(params.areas):
            reference[index, : int(pixels * (1 - area))] = 0
        reference = reference.repeat(pairs, 1)
        grid = (math.ceil(height / params.step), math.ceil(width / params.step))
        parameters = torch.ones(pairs * areas, 1, *grid, device=device)
        optimiser = torch.optim.SGD([parameters], lr=params.learning_rate, momentum=0.9, dampening=0.9)

        def energy(step: int) -> torch.Tensor:
            mask = smooth_mask(parameters, weights, params.step)
            perturbed = perturb(pyramid, mask)
            if params.jitter and step % 2 == 0:
                perturbed = perturbed.flip(dims=(3,))
            reward = model.scores(perturbed.to(images.dtype), params.score).gather(1, chosen)[:, 0]
            ordered = mask.view(pairs * areas, -1).sort(dim=1).values
            area_weight = params.area_weight * params.area_growth**step
            penalty = ((ordered - reference) ** 2).mean(dim=1) * area_weight
            return (penalty - reward).sum()

        descend(parameters, optimiser, params.iterations, energy, report)
        with torch.no_grad():
            masks = smooth_mask(parameters, weights, params.step)
        return masks.view(pairs, areas, height, width).sum(dim=1)
