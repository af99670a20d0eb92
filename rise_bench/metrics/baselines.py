"""Chance-level saliency maps scored beside every method, so its numbers can be read.

- ``random``: uniform noise from a per-sample seed; its maximum is a uniformly random
  point (the pointing game's random baseline).
- ``center``: a Gaussian blob at the image centre with a standard deviation of a quarter
  of each side; its maximum is the centre (the pointing game's centre baseline).
"""

from __future__ import annotations

import torch

BASELINES = ("center", "random")


def center_map(size: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Gaussian blob ``[H,W]`` centred in the image, sigma = side / 4 per axis."""
    height, width = size
    rows = (torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2) / (height / 4)
    cols = (torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2) / (width / 4)
    return torch.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2))


def random_map(size: tuple[int, int], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform noise ``[H,W]`` from a local generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return torch.rand(size, generator=generator).to(device)


def baseline_map(name: str, size: tuple[int, int], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The baseline map ``name`` (``center`` or ``random``) of shape ``[H,W]``."""
    if name == "center":
        return center_map(size, device)
    if name == "random":
        return random_map(size, seed, device)
    raise ValueError(f"unknown baseline '{name}'; choose from {', '.join(BASELINES)}")
