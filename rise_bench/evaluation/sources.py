"""Where an evaluation's maps come from: an explainer, or a folder of maps saved elsewhere.

A source has a ``name`` and a ``params_hash`` (what result rows record) and gives the
``[T,H,W]`` maps of one sample's targets. Explainers are built once per run; their
per-image seeds come from ``seeds.derive_seed(the method's seed, sample id)``, so a
``--param lime.seed=5`` changes LIME's maps and a map never depends on order, batching
or sharding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from ..datasets import Sample
from ..errors import UsageError
from ..explainers import Explainer, list_baselines
from ..explainers.registry import EXPLAINERS, expand_methods
from ..files import short_hash
from ..metrics import Preparation
from ..parameters import Override
from ..seeds import derive_seed
from .artifacts import load_maps


class MapSource(ABC):
    """Something that yields maps for a sample's targets."""

    name: str
    params_hash: str
    #: Whether the model's forward passes while ``maps`` runs are the source's cost (not for saved maps).
    counts_passes: bool = True

    @abstractmethod
    def maps(
        self,
        model,
        image: torch.Tensor,
        targets: Sequence[int],
        names: Sequence[str],
        sample: Sample,
        batch_size: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """``[T,H,W]`` maps of ``targets`` (named ``names``) for one normalised ``[1,3,H,W]`` image.

        ``progress(done, total)`` hears of the work as it goes, when the source reports it.
        """

    def resolved_params(self) -> dict:
        return {}

    def explain_function(self, sample: Sample, batch_size: int):
        """``explain(model, images, targets, progress=None) -> maps`` for metrics that re-explain, or None when the
        source cannot."""
        return None


class ExplainerSource(MapSource):
    """Maps from a registered explainer, with per-image seeds from (its seed, sample id)."""

    def __init__(self, explainer: Explainer, run_seed: int) -> None:
        self.explainer = explainer
        self.name = explainer.name
        self.params_hash = explainer.params_hash()
        self.seed = explainer.seed if explainer.seed is not None else run_seed

    def resolved_params(self) -> dict:
        return self.explainer.resolved_params()

    def maps(self, model, image, targets, names, sample, batch_size, progress=None):
        seeds = [derive_seed(self.seed, sample.id)]
        chosen = torch.tensor([list(targets)], device=image.device)
        return self.explainer.explain(model, image, chosen, seeds, batch_size=batch_size, progress=progress)[0]

    def explain_function(self, sample: Sample, batch_size: int):
        seed = derive_seed(self.seed, sample.id)

        def explain(model, images, targets, progress=None):
            seeds = [seed] * images.shape[0]
            return self.explainer.explain(model, images, targets, seeds, batch_size=batch_size, progress=progress)

        return explain


class SavedMaps(MapSource):
    """Maps saved elsewhere as ``ROOT/<method>/<sample>.npy`` (see ``artifacts.py``)."""

    counts_passes = False

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.params_hash = "maps-" + short_hash(str(root.resolve()))

    def maps(self, model, image, targets, names, sample, batch_size, progress=None):
        return load_maps(self.root, self.name, sample.id, names, tuple(image.shape[-2:])).to(image.device)


class Explanations:
    """What a sample asks of every source: one explanation per classifier, covering all its metrics' targets.

    Deletion and insertion share the prediction's class; the pointing game asks for the
    data set's classes through the annotated classifier. Each classifier is explained once
    per source, and each metric gets its targets' slices.
    """

    def __init__(self, preparations: Iterable[Preparation]) -> None:
        self.requests: dict[int, tuple[object, list[int], list[str]]] = {}
        for preparation in preparations:
            model, targets, names = self.requests.setdefault(id(preparation.model), (preparation.model, [], []))
            for target, name in zip(preparation.targets, preparation.names, strict=True):
                if target not in targets:
                    targets.append(target)
                    names.append(name)
        self.requests = {key: request for key, request in self.requests.items() if request[1]}

    def __bool__(self) -> bool:
        return bool(self.requests)

    @property
    def names(self) -> list[str]:
        """The targets of every explanation, in the order ``explain`` concatenates them."""
        return [name for _, _, names in self.requests.values() for name in names]

    def explain(
        self,
        source: MapSource,
        image: torch.Tensor,
        sample: Sample,
        batch_size: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[int, torch.Tensor]:
        """The source's ``[T,H,W]`` maps per classifier (``progress`` as for ``MapSource.maps``)."""
        return {
            key: source.maps(model, image, targets, names, sample, batch_size, progress).float()
            for key, (model, targets, names) in self.requests.items()
        }

    def select(self, maps: dict[int, torch.Tensor], preparation: Preparation) -> torch.Tensor:
        """The ``[T,H,W]`` maps of one metric's targets, in its order."""
        targets = self.requests[id(preparation.model)][1]
        return maps[id(preparation.model)][[targets.index(t) for t in preparation.targets]]


def build_sources(
    methods: Sequence[str],
    overrides: Sequence[Override],
    *,
    quick: bool,
    seed: int,
    baselines: bool,
    maps: str | None = None,
    gradient_free: bool = False,
) -> list[MapSource]:
    """The sources of a run: explainers (or saved maps), then the baselines (unless ``baselines`` is False).

    ``gradient_free``: the model gives no gradients (an ONNX file): ``all`` is every
    gradient-free method and a gradient method is an error (``expand_methods``).

    Raises:
        UsageError: an unknown method, a gradient method on a model without gradients, or a
            missing ``maps`` folder.
    """
    if maps is not None:
        folder = Path(maps)
        if not folder.is_dir():
            raise UsageError(f"--maps folder '{folder}' does not exist")
        names = [m for m in methods if m != "all"] or sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not names:
            raise UsageError(f"--maps folder '{folder}' has no <method>/ subfolders")
        sources: list[MapSource] = [SavedMaps(folder, name) for name in names]
    else:
        presets = (lambda cls: cls.quick_params) if quick else None
        explainers = EXPLAINERS.create(
            expand_methods(methods, gradient_free), overrides, presets=presets, common={"seed": seed}
        )
        sources = [ExplainerSource(e, seed) for e in explainers.values()]
    if baselines:
        taken = {s.name for s in sources}
        extra = EXPLAINERS.create([b for b in list_baselines() if b not in taken], overrides, common={"seed": seed})
        sources += [ExplainerSource(e, seed) for e in extra.values()]
    return sources
