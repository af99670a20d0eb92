"""The masked-scoring engine shared by the black-box methods that score masked copies (RISE, Sobol, HSIC).

A method draws a set of masks (``MaskSet``: ``len`` and ``batch(start, stop)`` at the
input's size, on its device), the engine multiplies the normalised image by each mask
(0 is the data set's mean colour, as in the RISE, Sobol and HSIC reference code) and
scores the copies in batches of ``execution.batch_size``, reporting progress as it goes;
the method turns (masks, scores) into a map. ``GridSensitivity`` is the base of Sobol and
HSIC: a design of coarse-grid masks per image (``GridMasks``, upsampled with nearest
neighbours), one value per grid cell estimated from the scores, and that grid map brought
to the input bicubically, as the authors' code does.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..models import scores_only
from .base import Execution, Explainer, chunks


class MaskSet(Protocol):
    """Masks drawn once, rendered at the input's size on demand."""

    def __len__(self) -> int: ...

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Masks ``start..stop-1`` as float ``[n,H,W]`` in [0, 1] on the input's device."""
        ...


class GridMasks:
    """``[N,s,s]`` grids in [0, 1] upsampled to the input with nearest neighbours (each cell a block).

    Args:
        grids: ``[N,s,s]`` values per cell (binary or continuous).
        size: the input's (height, width).
        device: where the rendered masks live.
    """

    def __init__(self, grids: torch.Tensor, size: tuple[int, int], device: torch.device) -> None:
        self.grids = grids.to(device=device, dtype=torch.float32)
        self.size = (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return self.grids.shape[0]

    def batch(self, start: int, stop: int) -> torch.Tensor:
        return F.interpolate(self.grids[start:stop, None], size=self.size, mode="nearest")[:, 0]


def masked_scores(
    model,
    image: torch.Tensor,
    targets: torch.Tensor,
    masks: MaskSet,
    kind: str,
    execution: Execution,
    start: int = 0,
    stop: int | None = None,
    progress: tuple[int, int] = (0, 0),
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """Score ``image * mask`` for masks ``start..stop-1``, one batch at a time.

    Args:
        model: a classifier with ``scores(x, kind)``.
        image: one normalised ``[3,H,W]`` image.
        targets: ``[T]`` classes to score.
        masks: the mask set.
        kind: ``softmax``, ``sigmoid`` or ``logit``.
        execution: batch size and progress callback.
        start, stop: the range of masks (default: all of them).
        progress: ``(done before, total)`` units of the whole call, for ``execution.report``; the
            masks scored here are added to ``done before`` (total 0: ``len(masks)``).

    Yields:
        ``(first, last, masks [n,H,W], scores [n,T])`` per batch, in order.
    """
    stop = len(masks) if stop is None else stop
    done, total = progress
    total = total or len(masks)
    with torch.inference_mode():
        for first, last in chunks(stop - start, execution.batch_size):
            first, last = first + start, last + start
            mask_batch = masks.batch(first, last)
            with scores_only(model):  # no gradients, no hooks: the fast backend may run these passes
                scores = model.scores(image[None] * mask_batch[:, None].to(image.dtype), kind)[:, targets]
            execution.report(done + last - start, total)
            yield first, last, mask_batch, scores.float()


def score_all(model, image, targets, masks: MaskSet, kind: str, execution: Execution, progress=(0, 0)) -> torch.Tensor:
    """Scores ``[N,T]`` of every masked copy (``masked_scores`` collected)."""
    batches = masked_scores(model, image, targets, masks, kind, execution, progress=progress)
    return torch.cat([scores for _, _, _, scores in batches])


def upsample_grid_map(grid_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[T,s,s]`` values per grid cell -> ``[T,H,W]`` by bicubic interpolation (the Sobol and HSIC authors')."""
    return F.interpolate(grid_map[:, None].float(), size=size, mode="bicubic", align_corners=False)[:, 0]


class GridSensitivity(Explainer):
    """Base of the methods that score a design of grid masks and estimate one value per cell (Sobol, HSIC).

    The parameters hold ``grid_size``, ``seed`` and ``score``; a subclass draws the design and
    estimates the cells' values.
    """

    @abstractmethod
    def design(self, seed: int) -> np.ndarray:
        """``[N, grid_size**2]`` mask values in [0, 1] for one image, from its seed."""

    @abstractmethod
    def estimate(self, design: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """Per-cell values ``[T, grid_size**2]`` from the design ``[N, d]`` and the scores ``[N, T]``."""

    def _explain(self, model, images, targets, seeds, execution):
        side = self.params.grid_size
        batch, _, height, width = images.shape
        maps = []
        for index in range(batch):
            design = torch.from_numpy(self.design(int(seeds[index])))
            masks = GridMasks(design.float().view(-1, side, side), (height, width), images.device)
            position = (index * len(masks), batch * len(masks))
            outputs = score_all(model, images[index], targets[index], masks, self.params.score, execution, position)
            values = self.estimate(design.to(outputs.device), outputs)
            maps.append(upsample_grid_map(values.view(-1, side, side), (height, width)))
        return torch.stack(maps)
