"""The machinery shared by the methods that learn a mask by gradient descent (meaningful and extremal perturbation).

``MaskOptimisation`` is their base class: it pairs every image with each of its targets,
optimises the pairs in batches (``execution.batch_size`` perturbed copies per forward
pass) and reports progress per step; a subclass says how many copies a pair needs and
learns the masks of a batch of pairs in ``_optimise``. ``descend`` is the optimisation
loop both use: energy, backward, step, then the mask parameters projected back to
[0, 1].
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import torch

from .base import Explainer, chunks


def descend(
    parameters: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    iterations: int,
    energy: Callable[[int], torch.Tensor],
    report: Callable[[int], None],
) -> None:
    """Minimise ``energy(step)`` over ``parameters`` for ``iterations`` steps, clamping them to [0, 1] after each.

    Args:
        parameters: the leaf tensor the optimiser updates (mask parameters).
        optimiser: an optimiser over ``parameters``.
        iterations: number of steps.
        energy: the scalar to minimise at a step (the sum over the batch's masks).
        report: called with the number of steps done.
    """
    with torch.enable_grad():
        parameters.requires_grad_(True)
        for step in range(iterations):
            loss = energy(step)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                parameters.clamp_(0, 1)
            report(step + 1)
    parameters.requires_grad_(False)


class MaskOptimisation(Explainer):
    """Base of the mask-learning methods: (image, target) pairs optimised in batches.

    Subclasses implement ``_optimise`` and ``iterations`` (and set ``copies_per_pair`` when
    one pair optimises several masks at once).
    """

    needs_gradients = True
    #: Perturbed copies one pair sends through the model per step (extremal perturbation: one per area).
    copies_per_pair: int = 1

    @property
    @abstractmethod
    def iterations(self) -> int:
        """Optimisation steps per pair (for progress)."""

    def _explain(self, model, images, targets, seeds, execution):
        batch, _, height, width = images.shape
        count = targets.shape[1]
        pair_image = torch.arange(batch).repeat_interleave(count)
        pair_target = targets.reshape(-1)
        pair_seed = seeds[pair_image]
        out = torch.empty(batch * count, height, width, device=images.device)
        pairs = batch * count
        steps = max(self.iterations, 1)
        total = pairs * steps
        per_batch = max(1, execution.batch_size // self.copies_per_pair)
        for start, stop in chunks(pairs, per_batch):
            chosen = pair_image[start:stop].to(images.device)
            out[start:stop] = self._optimise(
                model,
                images[chosen],
                pair_target[start:stop],
                pair_seed[start:stop],
                lambda step, s=start, e=stop: execution.report(s * steps + (e - s) * step, total),
            )
        return out.view(batch, count, height, width)

    @abstractmethod
    def _optimise(
        self,
        model,
        images: torch.Tensor,
        targets: torch.Tensor,
        seeds: torch.Tensor,
        report: Callable[[int], None],
    ) -> torch.Tensor:
        """Learn the masks of ``images [m,3,H,W]`` for ``targets [m]`` (``seeds [m]``) -> saliency ``[m,H,W]``."""
