"""Gradient saliency (Simonyan, Vedaldi & Zisserman, ICLR workshop 2014) and variants.

``map = max_c |d score / d x_c|``. Options: SmoothGrad (Smilkov et al. 2017), the mean
gradient over ``smoothgrad_samples`` noisy copies with noise std ``smoothgrad_sigma``
times the image's value range; and input x gradient (Shrikumar et al. 2016), the
gradient multiplied by the input before the channel reduction.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..models import ScoreKind
from ..seeds import seeded_generator
from .base import Explainer, ExplainerParams, chunks
from .registry import register_explainer


@dataclass(frozen=True)
class GradientParams(ExplainerParams):
    """Gradient parameters.

    Attributes:
        score: explained score: the ``logit`` (default), ``softmax`` or ``sigmoid``.
        smoothgrad: average gradients over noisy copies of the image.
        smoothgrad_samples: noisy copies per image (SmoothGrad paper: 50).
        smoothgrad_sigma: noise std as a fraction of the image's value range (0.15).
        input_x_gradient: multiply the gradient by the input.
        seed: seed of the SmoothGrad noise (per image, see ``explain``'s ``seeds``).
    """

    score: ScoreKind = "logit"
    smoothgrad: bool = False
    smoothgrad_samples: int = 50
    smoothgrad_sigma: float = 0.15
    input_x_gradient: bool = False
    seed: int = 0


def input_gradients(model, inputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """``d score_t / d input`` for ``inputs [m,3,H,W]`` and ``targets [m,T]`` -> ``[m,T,3,H,W]``."""
    count = targets.shape[1]
    full_precision = getattr(model, "full_precision", contextlib.nullcontext)
    with (
        torch.enable_grad(),
        full_precision(),
    ):  # bf16 input gradients are too coarse (models.Classifier.full_precision)
        leaf = inputs.detach().clone().requires_grad_(True)
        scores = model.scores(leaf, kind)
        grads = []
        for column in range(count):
            chosen = scores.gather(1, targets[:, column : column + 1]).sum()
            (gradient,) = torch.autograd.grad(chosen, leaf, retain_graph=column < count - 1)
            grads.append(gradient.float())
    return torch.stack(grads, dim=1)


@register_explainer("gradient")
class Gradient(Explainer):
    """Vanilla gradient, with optional SmoothGrad and input x gradient."""

    Params = GradientParams
    tiny_params = {"smoothgrad": True, "smoothgrad_samples": 8}

    def _explain(self, model, images, targets, seeds, execution):
        params: GradientParams = self.params
        batch = images.shape[0]
        if params.smoothgrad:
            grads = torch.stack(
                [
                    self._smoothgrad(model, images[i], targets[i], int(seeds[i]), execution.batch_size)
                    for i in range(batch)
                ]
            )
        else:
            parts = []
            for start, stop in chunks(batch, execution.batch_size):
                parts.append(input_gradients(model, images[start:stop], targets[start:stop], params.score))
                execution.report(stop, batch)
            grads = torch.cat(parts)
        if params.input_x_gradient:
            grads = grads * images[:, None].float()
        return grads.abs().amax(dim=2)

    def _smoothgrad(
        self, model, image: torch.Tensor, targets: torch.Tensor, seed: int, batch_size: int
    ) -> torch.Tensor:
        """Mean gradient over noisy copies of one image ``[3,H,W]`` -> ``[T,3,H,W]``."""
        params: GradientParams = self.params
        samples = params.smoothgrad_samples
        sigma = params.smoothgrad_sigma * float(image.max() - image.min())
        generator = seeded_generator(seed)
        noise = torch.randn((samples, *image.shape), generator=generator).to(image.device) * sigma
        total = torch.zeros(targets.numel(), *image.shape, device=image.device)
        for start, stop in chunks(samples, batch_size):
            noisy = image[None] + noise[start:stop]
            repeated = targets[None].expand(stop - start, -1)
            total += input_gradients(model, noisy, repeated, params.score).sum(dim=0)
        return total / samples
