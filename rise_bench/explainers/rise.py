"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

Saliency is the average of random masks weighted by the model's score on the masked
image: ``S = sum_i score(I * M_i) * M_i / (N * p)``. A mask is a random binary
``grid_size x grid_size`` grid (each cell kept with probability ``p``), upsampled
bilinearly to ``(grid_size + 1) * cell`` pixels and cropped at a random shift of up to
one cell, as in the authors' reference code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models import ScoreKind
from ..seeds import seeded_generator
from .base import Explainer, ExplainerParams, chunks
from .registry import register_explainer


@dataclass(frozen=True)
class RiseParams(ExplainerParams):
    """RISE parameters (paper defaults).

    Attributes:
        num_masks: number of random masks N (paper: 4000 for ResNet50).
        grid_size: cells per side of the binary grid s (paper: 7).
        keep_prob: probability p that a cell is kept (paper: 0.5).
        seed: seed of the masks; the same seed gives the same masks for every image.
        score: explained score: ``softmax`` probability (paper), ``sigmoid`` or ``logit``.
    """

    num_masks: int = 4000
    grid_size: int = 7
    keep_prob: float = 0.5
    seed: int = 0
    score: ScoreKind = "softmax"

    def __post_init__(self) -> None:
        if self.num_masks < 1 or self.grid_size < 1 or not 0 < self.keep_prob <= 1:
            raise ValueError("need num_masks >= 1, grid_size >= 1 and 0 < keep_prob <= 1")


class RiseMasks:
    """The masks of one (seed, N, s, p, input size): grids drawn once, pixels on demand.

    Only the ``N x s x s`` grids and the ``N`` shifts live in memory (drawn on the
    CPU with a local generator, so they are the same on every device); each batch of
    masks is upsampled and cropped on ``device`` when asked for. Mask ``i`` depends only
    on the seed and ``i``, never on the batch size.
    """

    def __init__(self, params: RiseParams, input_size: tuple[int, int], device: torch.device) -> None:
        self.params = params
        self.height, self.width = input_size
        self.device = device
        side = params.grid_size
        self.cell = (math.ceil(self.height / side), math.ceil(self.width / side))
        generator = seeded_generator(params.seed)
        grids = torch.rand(params.num_masks, side, side, generator=generator) < params.keep_prob
        self.grids = grids.to(device=device, dtype=torch.float32)
        shift_y = torch.randint(0, self.cell[0], (params.num_masks,), generator=generator)
        shift_x = torch.randint(0, self.cell[1], (params.num_masks,), generator=generator)
        # host-side shifts: slicing needs no device sync
        self.shifts = list(zip(shift_y.tolist(), shift_x.tolist(), strict=True))

    def __len__(self) -> int:
        return self.params.num_masks

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Masks ``start..stop-1`` as float32 ``[n,H,W]`` in [0, 1] on the device."""
        side = self.params.grid_size
        up_size = ((side + 1) * self.cell[0], (side + 1) * self.cell[1])
        upsampled = F.interpolate(self.grids[start:stop, None], size=up_size, mode="bilinear", align_corners=False)[
            :, 0
        ]
        return torch.stack(
            [upsampled[i, y : y + self.height, x : x + self.width] for i, (y, x) in enumerate(self.shifts[start:stop])]
        )


@register_explainer("rise")
class Rise(Explainer):
    """RISE (Petsiuk et al. 2018): gradient-free, one set of masked passes for all targets."""

    Params = RiseParams
    quick_params = {"num_masks": 1000}
    tiny_params = {"num_masks": 500}

    def _masks(self, size: tuple[int, int], device: torch.device) -> RiseMasks:
        """The masks for this input size and device, drawn once and kept for the next images."""
        cached = getattr(self, "_cached_masks", None)
        if cached is None or cached.device != device or (cached.height, cached.width) != tuple(size):
            cached = self._cached_masks = RiseMasks(self.params, size, device)
        return cached

    def _explain(self, model, images, targets, seeds, execution):
        params: RiseParams = self.params
        batch, _, height, width = images.shape
        masks = self._masks((height, width), images.device)
        saliency = torch.zeros(batch, targets.shape[1], height * width, device=images.device)
        total = len(masks) * batch
        done = 0
        with torch.inference_mode():
            for start, stop in chunks(len(masks), execution.batch_size):
                mask_batch = masks.batch(start, stop)
                flat = mask_batch.view(stop - start, height * width)
                for index in range(batch):
                    masked = images[index : index + 1] * mask_batch[:, None]
                    scores = model.scores(masked, params.score)[:, targets[index]]
                    saliency[index] += scores.T @ flat
                    done += stop - start
                    execution.report(done, total)
        saliency = saliency / (len(masks) * params.keep_prob)
        return saliency.view(batch, targets.shape[1], height, width).clone()
