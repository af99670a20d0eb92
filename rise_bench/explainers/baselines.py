"""Chance-level maps scored beside every method, so that its numbers can be read.

- ``center``: a Gaussian blob at the image centre with a standard deviation of a quarter
  of each side; its maximum is the centre (the pointing game's centre baseline, a
  centre-bias prior for deletion and insertion).
- ``random``: uniform noise from a per-image seed; its maximum is a uniformly random
  point (the pointing game's random baseline).

Both ignore the model and the target: every target of an image gets the same map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..seeds import seeded_generator
from .base import Explainer, ExplainerParams
from .registry import register_explainer


def center_map(size: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Gaussian blob ``[H,W]`` centred in the image, sigma = side / 4 per axis."""
    height, width = size
    rows = (torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2) / (height / 4)
    cols = (torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2) / (width / 4)
    return torch.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2))


def random_map(size: tuple[int, int], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform noise ``[H,W]`` from a local CPU generator seeded with ``seed`` (the same on every device)."""
    return torch.rand(size, generator=seeded_generator(seed)).to(device)


@register_explainer("center")
class Center(Explainer):
    """Centre baseline: a Gaussian blob at the image centre, whatever the model and target."""

    baseline = True

    def _explain(self, model, images, targets, seeds, execution):
        batch, count = targets.shape
        blob = center_map(tuple(images.shape[-2:]), images.device)
        return blob.expand(batch, count, -1, -1).clone()


@dataclass(frozen=True)
class RandomParams(ExplainerParams):
    """Random-baseline parameters.

    Attributes:
        seed: seed of the noise (per image, see ``explain``'s ``seeds``; the run's ``--seed``).
    """

    seed: int = 0


@register_explainer("random")
class Random(Explainer):
    """Random baseline: uniform noise from each image's seed, whatever the model and target."""

    Params = RandomParams
    baseline = True

    def _explain(self, model, images, targets, seeds, execution):
        size = tuple(images.shape[-2:])
        maps = torch.stack([random_map(size, int(seed), images.device) for seed in seeds.tolist()])
        return maps[:, None].expand(-1, targets.shape[1], -1, -1).clone()
