"""Meaningful perturbation, deletion variant (Fong & Vedaldi, ICCV 2017).

Learns a small mask ``m`` (1 keeps the image, 0 replaces it with a heavily blurred copy)
that minimises ``l1 * ||1 - m||_1 + tv * sum |grad m|^beta + p_target(x(m))`` with Adam,
where ``x(m) = x * M + blur(x) * (1 - M)`` and ``M`` is ``m`` upsampled bilinearly to the
input size and then blurred. Each iteration jitters the perturbed image by up to
``jitter`` pixels. The saliency is ``1 - M``: what must be deleted to drop the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..images import gaussian_blur
from ..models import ScoreKind
from ..seeds import seeded_generator
from .base import ExplainerParams
from .mask_optimisation import MaskOptimisation, descend
from .registry import register_explainer


@dataclass(frozen=True)
class PerturbationParams(ExplainerParams):
    """Meaningful-perturbation parameters (Fong & Vedaldi 2017 settings).

    Attributes:
        mask_size: side of the learned mask (28).
        iterations: Adam steps (300).
        learning_rate: Adam learning rate (0.1).
        l1_weight: weight of the L1 term on ``1 - m``, summed over mask cells (1e-4).
        tv_weight: weight of the total-variation term, summed over mask cells (1e-2).
        tv_beta: exponent of the total-variation term (3).
        blur_sigma: std in pixels of the Gaussian blur that replaces deleted pixels (10).
        mask_blur_sigma: std in pixels of the blur applied to the upsampled mask (5).
        jitter: largest random shift in pixels of the perturbed image per step (4).
        seed: seed of the jitter (per image, see ``explain``'s ``seeds``).
        score: explained score: ``softmax`` probability (default), ``sigmoid`` or ``logit``.
    """

    mask_size: int = 28
    iterations: int = 300
    learning_rate: float = 0.1
    l1_weight: float = 1e-4
    tv_weight: float = 1e-2
    tv_beta: float = 3.0
    blur_sigma: float = 10.0
    mask_blur_sigma: float = 5.0
    jitter: int = 4
    seed: int = 0
    score: ScoreKind = "softmax"

    def __post_init__(self) -> None:
        if self.mask_size < 2 or self.iterations < 0 or self.jitter < 0:
            raise ValueError("need mask_size >= 2, iterations >= 0 and jitter >= 0")


def total_variation(mask: torch.Tensor, beta: float) -> torch.Tensor:
    """``sum |m[i+1,j] - m[i,j]|^beta + |m[i,j+1] - m[i,j]|^beta`` per mask of ``[m,1,h,w]`` -> ``[m]``."""
    rows = (mask[..., 1:, :] - mask[..., :-1, :]).abs().pow(beta).sum(dim=(1, 2, 3))
    cols = (mask[..., :, 1:] - mask[..., :, :-1]).abs().pow(beta).sum(dim=(1, 2, 3))
    return rows + cols


def shift_images(images: torch.Tensor, offsets: torch.Tensor, jitter: int) -> torch.Tensor:
    """Shift each image of ``[m,C,H,W]`` by ``offsets [m,2]`` in ``0..2*jitter`` (edge padded).

    Offset ``(jitter, jitter)`` is no shift; ``(0, 0)`` moves the content ``jitter``
    pixels down and right. One slice per image: its backward pass is a plain copy, several
    times cheaper than the scatter-add of advanced indexing.
    """
    if jitter == 0:
        return images
    height, width = images.shape[-2:]
    padded = F.pad(images, (jitter, jitter, jitter, jitter), mode="replicate")
    return torch.stack([padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(offsets.tolist())])


@register_explainer("perturbation")
class MeaningfulPerturbation(MaskOptimisation):
    """Meaningful perturbation (Fong & Vedaldi 2017), deletion variant; uses input gradients only."""

    Params = PerturbationParams
    quick_params = {"iterations": 100}
    tiny_params = {"iterations": 60, "mask_size": 14, "blur_sigma": 3.0, "mask_blur_sigma": 1.0, "jitter": 1}

    @property
    def iterations(self) -> int:
        return self.params.iterations

    def _offsets(self, seed: int) -> torch.Tensor:
        """Jitter offsets ``[iterations, 2]`` of one image, from its own seed."""
        params: PerturbationParams = self.params
        generator = seeded_generator(seed)
        return torch.randint(0, 2 * params.jitter + 1, (max(params.iterations, 1), 2), generator=generator)

    def upsample_direct(self, mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The mask at input size: bilinear upsampling, then a Gaussian blur (replicate padding)."""
        upsampled = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
        return gaussian_blur(upsampled, self.params.mask_blur_sigma, padding_mode="replicate")

    def _operators(self, size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows [H,s], cols [W,s])`` with ``upsample_direct(m) == rows @ m @ cols.T``.

        Upsampling and blurring are both separable and linear, so each axis is one small
        matrix, read off by pushing the basis masks (one row or column of ones) through
        ``upsample_direct``. Two matrix products per step then replace an upsampling and
        a 2 x 31-tap convolution at full resolution, forward and backward.
        """
        key = (tuple(size), str(device))
        cached = getattr(self, "_cached_operators", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        side = self.params.mask_size
        eye = torch.eye(side, device=device)
        ones_rows = eye[:, :, None].expand(side, side, side)[:, None]  # mask i: row i all ones
        ones_cols = eye[:, None, :].expand(side, side, side)[:, None]  # mask j: column j all ones
        with torch.no_grad():
            # a constant mask stays constant (normalised kernel), so each output varies along one axis only
            rows = self.upsample_direct(ones_rows, size)[:, 0, :, 0].T.contiguous()
            cols = self.upsample_direct(ones_cols, size)[:, 0, 0, :].T.contiguous()
        self._cached_operators = (key, (rows, cols))
        return rows, cols

    def upsample(self, mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``upsample_direct`` of ``[m,1,s,s]`` masks as two matrix products (see ``_operators``)."""
        rows, cols = self._operators(size, mask.device)
        return rows @ mask @ cols.T

    def _optimise(self, model, images, targets, seeds, report) -> torch.Tensor:
        """Learn masks for ``images [m,3,H,W]`` and ``targets [m]`` -> saliency ``[m,H,W]``."""
        params: PerturbationParams = self.params
        size = images.shape[-2:]
        offsets = torch.stack([self._offsets(int(seed)) for seed in seeds.tolist()])
        blurred = gaussian_blur(images, params.blur_sigma)
        mask = torch.ones(images.shape[0], 1, params.mask_size, params.mask_size, device=images.device)
        optimiser = torch.optim.Adam([mask], lr=params.learning_rate)

        def energy(step: int) -> torch.Tensor:
            upsampled = self.upsample(mask, size)
            perturbed = images * upsampled + blurred * (1 - upsampled)
            perturbed = shift_images(perturbed, offsets[:, step], params.jitter)
            score = model.scores(perturbed, params.score).gather(1, targets[:, None])[:, 0]
            return (
                params.l1_weight * (1 - mask).abs().sum(dim=(1, 2, 3))
                + params.tv_weight * total_variation(mask, params.tv_beta)
                + score
            ).sum()

        descend(mask, optimiser, params.iterations, energy, report)
        with torch.no_grad():
            return 1 - self.upsample(mask, size)[:, 0]
