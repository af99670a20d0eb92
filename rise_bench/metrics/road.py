"""ROAD, RemOve And Debias (Rong, Leemann, Nguyen, Fiedler, Kasneci & Kasneci, ICML 2022).

Deletion's blanked pixels are out of distribution: the model may react to the blank, not
to what was removed. ROAD removes pixels by *noisy linear imputation* instead
(``imputation.py``): each removed pixel becomes the weighted mean of its neighbours plus
Gaussian noise (sigma ``noise`` in normalised units), so the removed shape leaks little.

Per (image, explained target), at the model's input resolution on the normalised tensor:

- pixels are ranked as deletion ranks them (descending saliency, ties row-major);
- for each fraction ``k`` in ``1/(steps+1) ... steps/(steps+1)`` (default 10%, ..., 90%),
  ``round(k * H * W)`` pixels are removed: the most salient first (``road_morf``, MoRF)
  or the least salient first (``road_lerf``, LeRF);
- the curve is the target's softmax probability of each imputed image (``steps`` points);
  the score is the curve's mean. MoRF: lower is better. LeRF: higher is better;
- ``road`` is ``(LeRF - MoRF) / 2`` per sample: higher is better.

The noise of a sample is drawn once, from ``derive_seed(seed, sample id, "road")``, as one
``[2, steps, 3, H, W]`` tensor (MoRF, LeRF): every method of the sample, and any batch
size, sees the same noise. The imputed images are solved and scored ``batch_size`` at a
time on the model's device. When two or three of the ROAD metrics run, each method's
curves are computed once and shared.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from ..models import scores_only
from ..seeds import derive_seed, seeded_generator
from .base import HIGHER, LOWER, Metric, MetricParams, Preparation, SampleContext, Score, Scores, register_metric
from .curves import check_inputs, pixel_ranks
from .imputation import impute

MORF, LERF = "morf", "lerf"
ORDERS = (MORF, LERF)


def road_fractions(steps: int) -> list[float]:
    """The removed fractions ``1/(steps+1), ..., steps/(steps+1)`` (default 9 steps: 10%, ..., 90%)."""
    return [index / (steps + 1) for index in range(1, steps + 1)]


def removal_masks(saliency: torch.Tensor, fractions: list[float], order: str) -> torch.Tensor:
    """``[F,H,W]`` bool: the ``round(k*H*W)`` most (``morf``) or least (``lerf``) salient pixels per fraction."""
    ranks = pixel_ranks(saliency)
    pixels = ranks.numel()
    counts = torch.tensor([round(k * pixels) for k in fractions], device=ranks.device)
    if order == MORF:
        return ranks[None] < counts[:, None, None]
    return ranks[None] >= (pixels - counts)[:, None, None]


def road_noise(shape: tuple[int, ...], steps: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """``[2, steps, C, H, W]`` standard normal draws (MoRF, LeRF), the same for every method of a sample."""
    return torch.randn((2, steps, *shape), generator=generator, device=device)


def road_curves(
    model,
    image: torch.Tensor,
    saliency: torch.Tensor,
    target: int,
    *,
    order: str,
    steps: int = 9,
    noise: float = 0.01,
    draws: torch.Tensor | None = None,
    batch_size: int = 32,
) -> torch.Tensor:
    """One ROAD curve: the target's probability after removing each fraction by noisy linear imputation.

    Args:
        model: a ``Classifier`` (only ``scores`` is called).
        image: normalised ``[1,3,H,W]``.
        saliency: ``[H,W]`` map.
        target: the class whose softmax probability is tracked.
        order: ``morf`` (most salient removed first) or ``lerf`` (least salient first).
        steps: number of fractions (``road_fractions``).
        noise: standard deviation of the imputation noise (normalised units).
        draws: ``[2, steps, 3, H, W]`` standard normal noise (``road_noise``); None draws from the global RNG.
        batch_size: imputed images solved and scored per batch.

    Returns:
        ``[steps]`` probabilities.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    device = image.device
    masks = removal_masks(saliency.to(device), road_fractions(steps), order)
    if draws is None:
        draws = road_noise(tuple(image.shape[1:]), steps, None, device)
    draws = draws[ORDERS.index(order)].to(device)
    curve = torch.empty(steps, device=device)
    with torch.inference_mode():
        for chunk in torch.arange(steps, device=device).split(max(1, batch_size)):
            imputed = impute(image.expand(len(chunk), -1, -1, -1), masks[chunk], noise, draws[chunk])
            with scores_only(model):  # the fast backend may run the curve's passes
                curve[chunk] = model.scores(imputed, "softmax")[:, int(target)]
    return curve


@dataclass
class RoadResult:
    """ROAD curves and scores for a batch.

    Attributes:
        morf, lerf: ``[B, steps]`` curves.
        morf_score, lerf_score: ``[B]`` curve means (MoRF lower is better, LeRF higher).
        road: ``[B]`` ``(lerf_score - morf_score) / 2`` (higher is better).
    """

    morf: torch.Tensor
    lerf: torch.Tensor
    morf_score: torch.Tensor
    lerf_score: torch.Tensor
    road: torch.Tensor


def road(
    model,
    images: torch.Tensor,
    saliency: torch.Tensor,
    targets,
    *,
    steps: int = 9,
    noise: float = 0.01,
    generators: list[torch.Generator] | None = None,
    batch_size: int = 32,
) -> RoadResult:
    """ROAD MoRF and LeRF curves of a batch of maps, and the combined score.

    Args:
        model, steps, noise, batch_size: as ``road_curves``.
        images: normalised ``[B,3,H,W]``.
        saliency: ``[B,H,W]`` maps.
        targets: ``[B]`` classes.
        generators: one generator per image for its noise (on the images' device), or None.
    """
    check_inputs(images, saliency, targets)
    targets = torch.as_tensor(targets).view(-1).tolist()
    curves = {order: [] for order in ORDERS}
    for index, image in enumerate(images):
        generator = generators[index] if generators is not None else None
        draws = road_noise(tuple(image.shape), steps, generator, images.device)
        for order in ORDERS:
            curves[order].append(
                road_curves(
                    model,
                    image[None],
                    saliency[index],
                    targets[index],
                    order=order,
                    steps=steps,
                    noise=noise,
                    draws=draws,
                    batch_size=batch_size,
                )  # fmt: skip
            )
    morf, lerf = torch.stack(curves[MORF]), torch.stack(curves[LERF])
    morf_score, lerf_score = morf.mean(1), lerf.mean(1)
    return RoadResult(morf, lerf, morf_score, lerf_score, (lerf_score - morf_score) / 2)


@dataclass(frozen=True)
class RoadParams(MetricParams):
    """ROAD parameters (shared by road_morf, road_lerf and road).

    Attributes:
        steps: number of removed fractions, 1/(steps+1) ... steps/(steps+1) of the pixels (9: 10%, ..., 90%).
        noise: standard deviation of the Gaussian noise on imputed pixels, in normalised units.
        seed: seed of the noise, drawn per sample (every method of a sample gets the same noise).
    """

    steps: int = 9
    noise: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")


@dataclass
class RoadSample:
    """What the ROAD metrics keep of a sample: its image, target, noise and the curves computed so far."""

    image: torch.Tensor
    target: int
    draws: torch.Tensor
    #: (order, noise, map digest) -> ``[steps]`` curve.
    curves: dict = field(default_factory=dict)


#: The sample being evaluated (a weak reference to its model input) and, per parameters, the state the three ROAD
#: metrics share for it. Samples are prepared one after the other, so one is kept.
_CURRENT: list = [lambda: None, {}]


def _shared_states(image: torch.Tensor) -> dict:
    if _CURRENT[0]() is not image:
        _CURRENT[:] = [weakref.ref(image), {}]
    return _CURRENT[1]


def _digest(saliency: torch.Tensor) -> str:
    return hashlib.blake2b(saliency.detach().float().cpu().numpy().tobytes(), digest_size=16).hexdigest()


class RoadMetric(Metric):
    """The shared body of the three ROAD metrics: which orders a subclass needs, and its value from them."""

    Params: ClassVar[type] = RoadParams
    category: ClassVar[str] = "faithfulness"
    default: ClassVar[bool] = False
    curve_label: ClassVar[str | None] = "fraction of pixels removed (imputed)"
    curve_score_name: ClassVar[str] = "mean"
    #: The curves the value is made of.
    orders: ClassVar[tuple[str, ...]] = ORDERS

    @classmethod
    def curve_points(cls, length: int) -> np.ndarray:
        return np.asarray(road_fractions(length))

    @classmethod
    def curve_score(cls, curve: np.ndarray) -> float:
        return float(np.mean(curve))

    def prepare(self, context: SampleContext) -> Preparation:
        target = context.target
        key = (self.params.steps, self.params.seed, int(target))
        shared = _shared_states(context.image)
        if key not in shared:
            seed = derive_seed(self.params.seed, context.sample.id, "road")
            generator = seeded_generator(seed, context.image.device)
            draws = road_noise(tuple(context.image.shape[1:]), self.params.steps, generator, context.image.device)
            shared[key] = RoadSample(context.image, int(target), draws)
        return Preparation(context.model, [target], [context.model.classes[target]], shared[key])

    def curve(self, preparation: Preparation, saliency: torch.Tensor, order: str, batch_size: int) -> torch.Tensor:
        """The sample's ``order`` curve for ``saliency``, computed once for all ROAD metrics."""
        state: RoadSample = preparation.state
        key = (order, self.params.noise, _digest(saliency))
        if key not in state.curves:
            state.curves[key] = road_curves(
                preparation.model, state.image, saliency, state.target, order=order, steps=self.params.steps,
                noise=self.params.noise, draws=state.draws, batch_size=batch_size,
            )  # fmt: skip
        return state.curves[key]

    def score(self, preparation, maps, *, batch_size, explain=None) -> Scores:
        curves = {order: self.curve(preparation, maps[0], order, batch_size) for order in self.orders}
        value, curve = self.combine(curves)
        return Scores([Score(preparation.names[0], value)], curve)

    def combine(self, curves: dict[str, torch.Tensor]) -> tuple[float, np.ndarray | None]:
        """The value (and the curve to save, or None) from the curves of ``orders``."""
        (curve,) = curves.values()
        return float(curve.mean()), curve.cpu().numpy()


@register_metric("road_morf")
class RoadMorf(RoadMetric):
    """ROAD MoRF: mean probability as the most salient pixels are imputed away (Rong et al. 2022)."""

    direction = LOWER
    title = "ROAD MoRF"
    orders = (MORF,)


@register_metric("road_lerf")
class RoadLerf(RoadMetric):
    """ROAD LeRF: mean probability as the least salient pixels are imputed away (Rong et al. 2022)."""

    direction = HIGHER
    title = "ROAD LeRF"
    orders = (LERF,)


@register_metric("road")
class Road(RoadMetric):
    """ROAD combined: (LeRF - MoRF) / 2 per sample (Rong et al. 2022)."""

    direction = HIGHER
    title = "ROAD (LeRF - MoRF) / 2"
    curve_label = None

    def combine(self, curves):
        return float((curves[LERF].mean() - curves[MORF].mean()) / 2), None
