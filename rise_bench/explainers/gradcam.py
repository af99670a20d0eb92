"""Grad-CAM (Selvaraju et al., ICCV 2017).

``map = ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial mean of ``d logit / d A_k`` over
the feature map ``A`` before global pooling (the model's ``cam_layer``; for ViTs the
patch tokens entering the last block, reshaped to their grid), upsampled bilinearly to
the input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ModelError
from ..models import ScoreKind
from .base import Explainer, ExplainerParams, chunks
from .registry import register_explainer


@dataclass(frozen=True)
class GradCamParams(ExplainerParams):
    """Grad-CAM parameters.

    Attributes:
        score: explained score: the ``logit`` (paper), ``softmax`` or ``sigmoid``.
        relu: apply the ReLU of the paper to the weighted sum.
    """

    score: ScoreKind = "logit"
    relu: bool = True


def capture_activations(layer: torch.nn.Module, store: list[torch.Tensor]):
    """Forward hook on ``layer`` appending its output to ``store``; returns the handle."""

    def hook(_module, _inputs, output):
        store.append(output)

    return layer.register_forward_hook(hook)


@register_explainer("gradcam")
class GradCam(Explainer):
    """Grad-CAM on the model's ``cam_layer`` (CNN feature map or ViT token grid)."""

    Params = GradCamParams
    needs_gradients = True

    def _explain(self, model, images, targets, seeds, execution):
        params: GradCamParams = self.params
        layer = getattr(model, "cam_layer", None)
        if layer is None:
            raise ModelError(f"model '{getattr(model, 'name', model)}' has no cam_layer for Grad-CAM")
        reshape = getattr(model, "cam_reshape", None)
        batch, _, height, width = images.shape
        count = targets.shape[1]
        out = torch.empty(batch, count, height, width, device=images.device)
        for start, stop in chunks(batch, execution.batch_size):
            store: list[torch.Tensor] = []
            handle = capture_activations(layer, store)
            try:
                with torch.enable_grad():
                    # Parameters are frozen, so the input carries the graph.
                    inputs = images[start:stop].clone().requires_grad_(True)
                    scores = model.scores(inputs, params.score)
                    activation = store[-1]
                    grads = [
                        torch.autograd.grad(
                            scores.gather(1, targets[start:stop, column : column + 1]).sum(),
                            activation,
                            retain_graph=column < count - 1,
                        )[0]
                        for column in range(count)
                    ]
            finally:
                handle.remove()
            features = activation.detach().float()
            if reshape is not None:
                features = reshape(features)
            for column, gradient in enumerate(grads):
                gradient = gradient.float() if reshape is None else reshape(gradient.float())
                weights = gradient.mean(dim=(2, 3), keepdim=True)
                cam = (weights * features).sum(dim=1, keepdim=True)
                if params.relu:
                    cam = cam.clamp_min(0)
                cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)
                out[start:stop, column] = cam[:, 0]
            execution.report(stop, batch)
        return out
