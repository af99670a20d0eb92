"""Gradient saliency (Simonyan, Vedaldi & Zisserman, ICLR workshop 2014) and input x gradient.

``map = max_c |d score / d x_c|``; with ``input_x_gradient`` (Shrikumar et al. 2016) the
gradient is multiplied by the input before the channel reduction. SmoothGrad is a wrapper
of its own, ``smoothgrad:gradient`` (``smoothgrad.py``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..models import ScoreKind
from .base import Explainer, ExplainerParams, chunks
from .registry import register_explainer


@dataclass(frozen=True)
class GradientParams(ExplainerParams):
    """Gradient parameters.

    Attributes:
        score: explained score: the ``logit`` (default), ``softmax`` or ``sigmoid``.
        input_x_gradient: multiply the gradient by the input.
    """

    score: ScoreKind = "logit"
    input_x_gradient: bool = False


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
    """Vanilla gradient, with optional input x gradient."""

    Params = GradientParams
    needs_gradients = True

    def _explain(self, model, images, targets, seeds, execution):
        params: GradientParams = self.params
        batch = images.shape[0]
        parts = []
        for start, stop in chunks(batch, execution.batch_size):
            parts.append(input_gradients(model, images[start:stop], targets[start:stop], params.score))
            execution.report(stop, batch)
        grads = torch.cat(parts)
        if params.input_x_gradient:
            grads = grads * images[:, None].float()
        return grads.abs().amax(dim=2)
