"""Model-randomisation sanity check (Adebayo et al., NeurIPS 2018, "Sanity Checks for Saliency Maps").

The model's parameterised layers are re-initialised cascading from the logits downwards,
on a copy of the model (the original is never touched): first the head, then each
top-level stage from the top (timm: each ``blocks[i]``; torchvision ResNet: ``layer4``
... ``layer1``), then the stem. Every module of a step is re-initialised with its own
``reset_parameters()`` (batch-norm statistics included) inside ``torch.random.fork_rng``,
seeded from (``seed``, step) through ``seeds.derive_seed``: the global RNG is untouched
and every run randomises alike. After each step the method explains the same target
again, and the new map is compared with the original one:

- ``randomisation_spearman``: Spearman rank correlation of the maps' absolute values;
- ``randomisation_ssim``: SSIM (scikit-image) of the maps min-max scaled to [0, 1]
  (``data_range=1``).

Rows: subset ``step<i>:<block>`` for each depth, and ``all`` for the similarity after the
last step (full randomisation), the summary's headline: lower is better, since a map
that does not change when the model is destroyed does not explain the model. A map that
is constant (nothing to rank) gives a row in subset ``constant`` for that step instead of
a similarity. The two metrics share one set of re-explanations per method and sample.
"""

from __future__ import annotations

import copy
import math
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..seeds import derive_seed
from .base import LOWER, Metric, MetricParams, Preparation, SampleContext, Score, Scores, register_metric

#: Children that hold a network's stages, from the input up (timm, torchvision, others).
STAGE_CONTAINERS = ("blocks", "stages", "layers", "features")


def randomisation_steps(net: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """(name, modules) of each randomisation step, from the logits down: head, stages from the top, stem.

    The stages are the items of the first child named ``blocks``, ``stages``, ``layers``
    or ``features``, or the children named ``layer<N>`` (torchvision ResNet); the head is
    every child after them and the stem every child before. Steps without parameters or
    buffers are left out.
    """
    children = list(net.named_children())
    names = [name for name, _ in children]
    stages: list[tuple[str, nn.Module]] = []
    first = last = None
    for position, (name, child) in enumerate(children):
        if name in STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child):
            stages = [(f"{name}.{i}", item) for i, item in enumerate(child)]
            first = last = position
            break
    if not stages:
        positions = [i for i, name in enumerate(names) if name.startswith("layer") and name[5:].isdigit()]
        if positions:
            stages = [children[i] for i in positions]
            first, last = positions[0], positions[-1]
    if not stages:  # no stage structure: each child is a step
        return [(name, [child]) for name, child in reversed(children) if _has_state(child)]
    head = [child for _, child in children[last + 1 :]]
    stem = [child for _, child in children[:first]]
    steps = [("head", head), *[(name, [module]) for name, module in reversed(stages)], ("stem", stem)]
    return [(name, modules) for name, modules in steps if any(_has_state(m) for m in modules)]


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def reset_modules(modules: list[nn.Module], seed: int) -> None:
    """Re-initialise every submodule that can (``reset_parameters``, batch-norm statistics too), seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in modules:
            for part in module.modules():
                if hasattr(part, "reset_running_stats"):
                    part.reset_running_stats()
                if hasattr(part, "reset_parameters"):
                    part.reset_parameters()


def cascading_randomisation(model: nn.Module, seed: int):
    """Yield (step index, step name, model) with the layers re-initialised down to that step, on one copy."""
    randomised = copy.deepcopy(model)
    network = getattr(randomised, "net", randomised)
    for index, (name, modules) in enumerate(randomisation_steps(network), 1):
        reset_modules(modules, derive_seed(seed, name, f"randomisation:{index}"))
        yield index, name, randomised


def spearman_abs(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two maps' absolute values (NaN when one is constant)."""
    from scipy.stats import spearmanr

    a, b = np.abs(first).ravel(), np.abs(second).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def ssim01(first: np.ndarray, second: np.ndarray) -> float:
    """SSIM of two maps min-max scaled to [0, 1] (NaN when one is constant)."""
    from skimage.metrics import structural_similarity

    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return math.nan
    scale = [(m - m.min()) / np.ptp(m) for m in (first, second)]
    return float(structural_similarity(scale[0], scale[1], data_range=1.0))


@dataclass(frozen=True)
class RandomisationParams(MetricParams):
    """Model-randomisation parameters.

    Attributes:
        seed: seed of the re-initialisation (the same layers get the same random weights in every run).
    """

    seed: int = 0


#: Re-explanations shared by the two statistics: explain callable -> (image, target) -> maps per step.
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Randomisation(Metric):
    """Similarity of the map after cascading model randomisation to the original map (lower is better)."""

    Params = RandomisationParams
    direction = LOWER
    category = "sanity"
    re_explains = True
    changes_model = True
    default = False
    counted_subsets = ("constant", "invalid")
    detail_prefix = "step"
    #: The similarity of ``(original map, randomised map)``: each registered subclass sets its own.
    similarity: staticmethod

    def prepare(self, context: SampleContext) -> Preparation:
        name = context.model.classes[context.target]
        return Preparation(context.model, [context.target], [name], (context.image, context.target))

    def score(self, preparation, maps, *, batch_size, explain=None) -> Scores:
        if explain is None:
            raise ValueError("the randomisation check re-explains: it needs an explain function")
        image, target = preparation.state
        steps = self._steps(preparation.model, image, target, explain)
        original = maps[0].detach().float().cpu().numpy()
        rows, last = [], math.nan
        for index, name, randomised in steps:
            value = type(self).similarity(original, randomised)
            subset = f"step{index}:{name}"
            if math.isnan(value):
                rows.append(Score(preparation.names[0], 1.0, "constant"))
            else:
                rows.append(Score(preparation.names[0], value, subset))
            last = value
        if not math.isnan(last):
            rows.append(Score(preparation.names[0], last, "all"))
        return Scores(rows)

    def _steps(self, model, image, target, explain) -> list[tuple[int, str, np.ndarray]]:
        """Maps of ``target`` after each randomisation step, computed once for both statistics."""
        shared = _SHARED.setdefault(explain, {})
        key = (id(model), image.data_ptr(), int(target), self.params.seed)
        if key not in shared:
            targets = torch.tensor([[int(target)]], device=image.device)
            shared[key] = [
                (index, name, explain(randomised, image, targets)[0, 0].detach().float().cpu().numpy())
                for index, name, randomised in cascading_randomisation(model, self.params.seed)
            ]
        return shared[key]


@register_metric("randomisation_spearman")
class RandomisationSpearman(Randomisation):
    """Model randomisation: Spearman correlation of |map| before and after (Adebayo et al. 2018)."""

    title = "similarity after model randomisation, Spearman"
    similarity = staticmethod(spearman_abs)


@register_metric("randomisation_ssim")
class RandomisationSSIM(Randomisation):
    """Model randomisation: SSIM of the scaled maps before and after (Adebayo et al. 2018)."""

    title = "similarity after model randomisation, SSIM"
    similarity = staticmethod(ssim01)
