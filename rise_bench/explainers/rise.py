"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

Saliency is the average of random masks weighted by the model's score on the masked
image: ``S = sum_i score(I * M_i) * M_i / (N * p)``. A mask is a random binary
``grid_size x grid_size`` grid (each cell kept with probability ``p``), upsampled
bilinearly to ``(grid_size + 1) * cell`` pixels and cropped at a random shift of up to
one cell, as in the authors' reference code. Mask ``i`` depends only on the seed and
``i`` (grid and shift), so RISE-500's masks are the first 500 of RISE-4000's.

Adaptive RISE (``tolerance``, off by default): every ``check_every`` masks the running
map is compared with the previous check's by rank correlation, and drawing stops once it
exceeds ``1 - tolerance`` at two consecutive checks for every target of the image.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models import ScoreKind
from ..seeds import derive_seed, seeded_generator
from .base import Explainer, ExplainerParams
from .masking import masked_scores
from .registry import register_explainer

#: Masks are drawn in blocks of this many, block ``b`` from its own seed: mask ``i`` never depends on N.
MASK_BLOCK = 256


@dataclass(frozen=True)
class RiseParams(ExplainerParams):
    """RISE parameters (paper defaults).

    Attributes:
        num_masks: number of random masks N (paper: 4000 for ResNet50).
        grid_size: cells per side of the binary grid s (paper: 7).
        keep_prob: probability p that a cell is kept (paper: 0.5).
        seed: seed of the masks; the same seed gives the same masks for every image.
        score: explained score: ``softmax`` probability (paper), ``sigmoid`` or ``logit``.
        tolerance: adaptive RISE: stop once the running map's rank correlation with the previous
            check's exceeds 1 - tolerance at two consecutive checks (none: always num_masks masks).
        check_every: masks between two convergence checks of adaptive RISE (500).
    """

    num_masks: int = 4000
    grid_size: int = 7
    keep_prob: float = 0.5
    seed: int = 0
    score: ScoreKind = "softmax"
    tolerance: float | None = None
    check_every: int = 500

    def __post_init__(self) -> None:
        if self.num_masks < 1 or self.grid_size < 1 or not 0 < self.keep_prob <= 1:
            raise ValueError("need num_masks >= 1, grid_size >= 1 and 0 < keep_prob <= 1")
        if self.tolerance is not None and not 0 < self.tolerance < 1:
            raise ValueError("tolerance must be in (0, 1), or none for the paper's fixed N")
        if self.check_every < 1:
            raise ValueError("check_every must be >= 1")


class RiseMasks:
    """The masks of one (seed, N, s, p, input size): grids drawn once, pixels on demand.

    Only the ``N x s x s`` grids and the ``N`` shifts live in memory (drawn on the
    CPU with local generators, so they are the same on every device); each batch of
    masks is upsampled and cropped on ``device`` when asked for. Mask ``i`` (grid and
    shift) depends only on the seed and ``i``: never on N or the batch size.
    """

    def __init__(self, params: RiseParams, input_size: tuple[int, int], device: torch.device) -> None:
        self.params = params
        self.height, self.width = input_size
        self.device = device
        side = params.grid_size
        self.cell = (math.ceil(self.height / side), math.ceil(self.width / side))
        grids, shift_y, shift_x = [], [], []
        for block in range(math.ceil(params.num_masks / MASK_BLOCK)):
            generator = seeded_generator(derive_seed(params.seed, "rise-masks", str(block)))
            grids.append(torch.rand(MASK_BLOCK, side, side, generator=generator) < params.keep_prob)
            shift_y.append(torch.randint(0, self.cell[0], (MASK_BLOCK,), generator=generator))
            shift_x.append(torch.randint(0, self.cell[1], (MASK_BLOCK,), generator=generator))
        count = params.num_masks
        self.grids = torch.cat(grids)[:count].to(device=device, dtype=torch.float32)
        # host-side shifts: slicing needs no device sync
        self.shifts = list(zip(torch.cat(shift_y)[:count].tolist(), torch.cat(shift_x)[:count].tolist(), strict=True))

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
        batch, _, height, width = images.shape
        maps = [self._explain_one(model, images[i], targets[i], (i, batch), execution) for i in range(batch)]
        return torch.stack(maps).view(batch, targets.shape[1], height, width)

    def running_maps(
        self, model, image, targets, stops, execution, position=(0, 1)
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """``(n, [T,H*W] map of the first n masks)`` for each n of the increasing ``stops``, from one pass.

        Args:
            image: one normalised ``[3,H,W]`` image; ``targets``: its ``[T]`` classes.
            stops: mask counts, increasing, at most ``num_masks``.
            position: ``(index, batch)`` of the image in its call, for progress.
        """
        masks = self._masks(tuple(image.shape[-2:]), image.device)
        count = len(masks)
        index, batch = position
        sums = torch.zeros(targets.numel(), image.shape[-2] * image.shape[-1], device=image.device)
        start = 0
        for stop in stops:
            report = (index * count + start, batch * count)
            for first, last, mask_batch, scores in masked_scores(
                model, image, targets, masks, self.params.score, execution, start, stop, report
            ):
                sums += scores.T @ mask_batch.reshape(last - first, -1)
            yield stop, sums / (stop * self.params.keep_prob)
            start = stop

    def _explain_one(self, model, image, targets, position, execution) -> torch.Tensor:
        """``[T,H*W]`` map of one image: all masks, or (adaptive) until the map has converged."""
        params: RiseParams = self.params
        count = params.num_masks
        if params.tolerance is None:
            stops = [count]
        else:
            stops = [*range(params.check_every, count, params.check_every), count]
        previous, streak = None, 0
        for stop, saliency in self.running_maps(model, image, targets, stops, execution, position):
            if params.tolerance is None or stop == count:
                return saliency
            if previous is not None:
                converged = bool((rank_correlation(saliency, previous) > 1 - params.tolerance).all())
                streak = streak + 1 if converged else 0
            if streak >= 2:
                return saliency
            previous = saliency
        raise AssertionError("unreachable: the last stop is num_masks")


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation (SciPy's) of each row of ``first`` with the same row of ``second``: ``[T]``."""
    from scipy.stats import spearmanr

    pairs = zip(first.double().cpu().numpy(), second.double().cpu().numpy(), strict=True)
    return torch.tensor([float(spearmanr(a, b).statistic) for a, b in pairs], dtype=torch.float64)
