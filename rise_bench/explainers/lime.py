"""LIME-style superpixel explanations (Ribeiro, Singh & Guestrin, KDD 2016).

The image is cut into SLIC superpixels (scikit-image). Random binary vectors ``z``
switch superpixels on (original pixels) or off (the superpixel's mean colour, LIME's
default); the first sample keeps every superpixel. A weighted ridge regression from
``z`` to the model's score, with LIME's kernel ``sqrt(exp(-d^2 / width^2))`` on the
cosine distance ``d`` between ``z`` and the all-on vector, gives one weight per
superpixel; the map paints each superpixel with its weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import ScoreKind, scores_only
from ..seeds import seeded_generator
from .base import Explainer, ExplainerParams, chunks
from .registry import register_explainer


@dataclass(frozen=True)
class LimeParams(ExplainerParams):
    """LIME parameters.

    Attributes:
        num_samples: perturbed copies per image (LIME's default 1000).
        num_segments: SLIC's target number of superpixels.
        compactness: SLIC's colour/space trade-off.
        kernel_width: width of the exponential kernel on cosine distance (0.25, LIME's).
        ridge_alpha: L2 penalty of the weighted ridge regression (1.0, sklearn's).
        seed: seed of the on/off samples (per image, see ``explain``'s ``seeds``).
        score: explained score: ``softmax`` probability (default), ``sigmoid`` or ``logit``.
    """

    num_samples: int = 1000
    num_segments: int = 50
    compactness: float = 10.0
    kernel_width: float = 0.25
    ridge_alpha: float = 1.0
    seed: int = 0
    score: ScoreKind = "softmax"

    def __post_init__(self) -> None:
        if self.num_samples < 2 or self.num_segments < 1:
            raise ValueError("need num_samples >= 2 and num_segments >= 1")


def superpixels(rgb: torch.Tensor, num_segments: int, compactness: float) -> torch.Tensor:
    """SLIC segments of a [0, 1] RGB ``[3,H,W]`` image -> int64 ``[H,W]`` labels 0..S-1."""
    from skimage.segmentation import slic

    array = rgb.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float64)
    labels = slic(array, n_segments=num_segments, compactness=compactness, start_label=0, channel_axis=-1)
    _, contiguous = np.unique(labels, return_inverse=True)
    return torch.from_numpy(contiguous.reshape(labels.shape).astype(np.int64))


def weighted_ridge(features: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, alpha: float) -> torch.Tensor:
    """Coefficients of a weighted ridge regression with an unpenalised intercept.

    Args:
        features: ``[n,S]`` design matrix.
        values: ``[n,T]`` targets.
        weights: ``[n]`` sample weights.
        alpha: L2 penalty on the coefficients.

    Returns:
        ``[S,T]`` coefficients (float64), as sklearn's ``Ridge(alpha).fit(X, y, sample_weight=w)``.
    """
    features, values, weights = features.double(), values.double(), weights.double()
    total = weights.sum()
    feature_mean = (weights[:, None] * features).sum(0) / total
    value_mean = (weights[:, None] * values).sum(0) / total
    centred = features - feature_mean
    weighted = centred * weights[:, None]
    gram = weighted.T @ centred + alpha * torch.eye(features.shape[1], dtype=torch.float64, device=features.device)
    return torch.linalg.solve(gram, weighted.T @ (values - value_mean))


@register_explainer("lime")
class Lime(Explainer):
    """LIME with SLIC superpixels, mean-colour hiding and a weighted ridge surrogate."""

    Params = LimeParams
    quick_params = {"num_samples": 300}
    tiny_params = {"num_samples": 300, "num_segments": 40}

    def _explain(self, model, images, targets, seeds, execution):
        batch = images.shape[0]
        maps = [
            self._explain_one(model, images[i], targets[i], int(seeds[i]), i, batch, execution) for i in range(batch)
        ]
        return torch.stack(maps)

    def _explain_one(self, model, image, targets, seed, index, batch, execution) -> torch.Tensor:
        params: LimeParams = self.params
        device = image.device
        segments = superpixels(model.denormalise(image), params.num_segments, params.compactness).to(device)
        count = int(segments.max()) + 1
        flat_segments = segments.view(-1)
        sums = torch.zeros(count, 3, device=device).index_add_(0, flat_segments, image.reshape(3, -1).T.float())
        sizes = torch.bincount(flat_segments, minlength=count).clamp_min(1)
        hidden = (sums / sizes[:, None])[segments].permute(2, 0, 1).to(image.dtype)

        generator = seeded_generator(seed)
        on_off = torch.randint(0, 2, (params.num_samples, count), generator=generator).to(device)
        on_off[0] = 1
        values = torch.empty(params.num_samples, targets.numel(), device=device)
        with torch.inference_mode():
            for start, stop in chunks(params.num_samples, execution.batch_size):
                keep = on_off[start:stop][:, segments].to(image.dtype)[:, None]
                perturbed = image[None] * keep + hidden[None] * (1 - keep)
                with scores_only(model):  # the fast backend may run LIME's samples
                    values[start:stop] = model.scores(perturbed, params.score)[:, targets]
                execution.report(index * params.num_samples + stop, batch * params.num_samples)
        kept = on_off.double().sum(1)
        distance = torch.where(kept > 0, 1 - torch.sqrt(kept / count), torch.ones_like(kept))
        weights = torch.sqrt(torch.exp(-(distance**2) / params.kernel_width**2))
        coefficients = weighted_ridge(on_off, values, weights, params.ridge_alpha).float()
        return coefficients.T[:, segments]
