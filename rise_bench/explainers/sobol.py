"""Sobol attribution (Fel, Cadène, Chalvidal, Cord, Vigouroux & Serre, NeurIPS 2021).

Each cell of a coarse ``grid_size x grid_size`` grid is a variable in [0, 1] that scales
the image's pixels in the cell (``x * M``, 0 being the data set's mean colour). Two
matrices A and B of ``num_designs`` points come from a scrambled Sobol sequence in
``2 * grid_size**2`` dimensions (SciPy's ``qmc.Sobol``); for each cell i, ``C_i`` is A with
column i taken from B. The model scores all ``N * (grid_size**2 + 2)`` masked copies, and
the total Sobol index of cell i is Jansen's estimator::

    ST_i = sum_j (f(A_j) - f(C_i,j))**2 / (2 N Var[f(A)])

The map is the indices upsampled to the input bicubically, as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import ScoreKind
from .base import ExplainerParams
from .masking import GridSensitivity
from .registry import register_explainer


@dataclass(frozen=True)
class SobolParams(ExplainerParams):
    """Sobol attribution parameters (the paper's settings).

    Attributes:
        grid_size: cells per side of the perturbation grid (8).
        num_designs: points N of each Sobol matrix, a power of two (32): N * (grid_size**2 + 2) passes.
        seed: seed of the Sobol sequence's scrambling (per image, see ``explain``'s ``seeds``).
        score: explained score: ``softmax`` probability (default), ``sigmoid`` or ``logit``.
    """

    grid_size: int = 8
    num_designs: int = 32
    seed: int = 0
    score: ScoreKind = "softmax"

    def __post_init__(self) -> None:
        if self.grid_size < 1:
            raise ValueError("grid_size must be >= 1")
        if self.num_designs < 2 or self.num_designs & (self.num_designs - 1):
            raise ValueError("num_designs must be a power of two >= 2 (Sobol sequences are balanced there)")


def sobol_design(dimension: int, num_designs: int, seed: int) -> np.ndarray:
    """The ``[N * (d + 2), d]`` points A, B, C_1..C_d of a scrambled Sobol sequence (``qmc.Sobol``)."""
    from scipy.stats import qmc

    points = qmc.Sobol(2 * dimension, scramble=True, seed=np.random.default_rng(seed)).random(num_designs)
    a, b = points[:, :dimension], points[:, dimension:]
    replicated = np.repeat(a[None], dimension, axis=0)  # [d, N, d]
    columns = np.arange(dimension)
    replicated[columns, :, columns] = b.T
    return np.concatenate([a, b, replicated.reshape(-1, dimension)])


def jansen_total_indices(outputs: torch.Tensor, num_designs: int, dimension: int) -> torch.Tensor:
    """Jansen's total Sobol indices ``[T,d]`` from outputs ``[N * (d + 2), T]`` in the order A, B, C_1..C_d."""
    outputs = outputs.double()
    a = outputs[:num_designs]
    c = outputs[2 * num_designs :].reshape(dimension, num_designs, -1)
    variance = a.var(dim=0, unbiased=True).clamp_min(1e-30)
    return (((a[None] - c) ** 2).sum(dim=1) / (2 * num_designs * variance)).T


@register_explainer("sobol")
class Sobol(GridSensitivity):
    """Total Sobol indices of grid cells from quasi-Monte Carlo masks; gradient-free."""

    Params = SobolParams
    quick_params = {"num_designs": 16}
    tiny_params = {"grid_size": 4, "num_designs": 32}

    def design(self, seed: int) -> np.ndarray:
        return sobol_design(self.params.grid_size**2, self.params.num_designs, seed)

    def estimate(self, design: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return jansen_total_indices(outputs, self.params.num_designs, design.shape[1])
