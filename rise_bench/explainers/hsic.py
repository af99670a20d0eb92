"""HSIC attribution (Novello, Fel & Vigouroux, NeurIPS 2022).

``num_masks`` binary masks on a ``grid_size x grid_size`` grid come from a Latin hypercube
design (SciPy's ``qmc.LatinHypercube``, rounded to {0, 1}); a cell at 0 sets its pixels
to 0, the data set's mean colour (``x * M``). The attribution of cell i is the
Hilbert-Schmidt independence criterion between the cell's presence ``X_i`` and the
model's score ``Y`` over the masks, with Gaussian kernels on both sides::

    HSIC_i = tr(K_i H L H) / n**2,  K_i = exp(-(x_i - x_i')**2 / (2 * 0.5**2)),
    L = exp(-(y - y')**2 / (2 * median(y)**2)),  H = I - 1/n

(the input kernel width 0.5 and the output width, the median of the scores, are the
authors'). The map is the values upsampled bicubically to the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..models import ScoreKind
from .base import ExplainerParams
from .masking import GridSensitivity
from .registry import register_explainer

#: Width of the Gaussian kernel on a cell's presence (0 or 1), the authors' value.
INPUT_WIDTH = 0.5


@dataclass(frozen=True)
class HsicParams(ExplainerParams):
    """HSIC attribution parameters.

    Attributes:
        grid_size: cells per side of the mask grid (7).
        num_masks: binary masks, one forward pass each (1500; 750 is the paper's budget setting).
        seed: seed of the Latin hypercube design (per image, see ``explain``'s ``seeds``).
        score: explained score: ``softmax`` probability (default), ``sigmoid`` or ``logit``.
    """

    grid_size: int = 7
    num_masks: int = 1500
    seed: int = 0
    score: ScoreKind = "softmax"

    def __post_init__(self) -> None:
        if self.grid_size < 1 or self.num_masks < 2:
            raise ValueError("need grid_size >= 1 and num_masks >= 2")


def latin_hypercube_masks(dimension: int, count: int, seed: int) -> np.ndarray:
    """``[count, dimension]`` binary masks: a Latin hypercube design rounded to {0, 1}."""
    from scipy.stats import qmc

    return np.round(qmc.LatinHypercube(dimension, seed=np.random.default_rng(seed)).random(count))


def hsic_binary(presence: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """HSIC ``[T,d]`` between binary ``presence [n,d]`` and ``outputs [n,T]`` (Gaussian kernels, see the module).

    For x in {0, 1} the input kernel is ``1 - c (x - x')**2`` with ``c = 1 - exp(-1 / (2 w**2))``;
    the constant part vanishes against the centred ``HLH`` (its rows sum to 0), and
    ``(x - x')**2 = x + x' - 2 x x'`` leaves ``tr(K_i HLH) = 2 c x_i^T HLH x_i``.
    """
    presence, outputs = presence.double(), outputs.double()
    count = presence.shape[0]
    coefficient = 1 - math.exp(-1 / (2 * INPUT_WIDTH**2))
    values = []
    for column in outputs.T:
        width = column.median().clamp_min(1e-12)  # the authors' width: the median score
        gram = torch.exp(-((column[:, None] - column[None]) ** 2) / (2 * width**2))
        centred = gram - gram.mean(0, keepdim=True) - gram.mean(1, keepdim=True) + gram.mean()
        values.append(2 * coefficient * (presence * (centred @ presence)).sum(0) / count**2)
    return torch.stack(values)


@register_explainer("hsic")
class Hsic(GridSensitivity):
    """HSIC between grid cells' presence and the score, over Latin-hypercube binary masks; gradient-free."""

    Params = HsicParams
    quick_params = {"num_masks": 750}
    tiny_params = {"grid_size": 5, "num_masks": 400}

    def design(self, seed: int) -> np.ndarray:
        return latin_hypercube_masks(self.params.grid_size**2, self.params.num_masks, seed)

    def estimate(self, design: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return hsic_binary(design, outputs)
