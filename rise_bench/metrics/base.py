"""The metric contract and the registry of metrics.

A metric subclasses ``Metric``, declares a frozen dataclass of parameters with
documented defaults, and registers under a name::

    @register_metric("deletion")
    class Deletion(Metric):
        Params = DeletionParams
        direction = LOWER
        title = "deletion AUC"
        def prepare(self, context): ...      # once per sample, shared by every method
        def score(self, preparation, maps, *, batch_size, explain=None): ...

Its class attributes are its metadata, read by generic code (the runner, ``compare``,
``list-metrics``, table headers): the ``direction`` (higher or lower is better) and the
``header`` that says so, the ``category``, whether it ``needs_ground_truth`` (boxes or
masks) and whether it ``re_explains`` (it then receives an ``explain`` callable: metrics
never import explainers).

Per sample the runner makes one forward pass over the image and every metric's
``references`` (the deletion substrate, the insertion start...), builds a
``SampleContext``, and calls each metric's ``prepare`` once; then, for each method, it
hands ``score`` the maps of the targets that ``prepare`` asked for. A metric owns its
aggregation over samples (``sample_statistics`` and ``aggregate``; the reporting adds
bootstrap confidence intervals by resampling samples).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..datasets.base import Sample
from ..errors import UsageError
from ..models import scores_only
from ..parameters import Configurable, Override, check_overrides, parse_overrides
from ..registry import Registry

HIGHER = "higher"
LOWER = "lower"
#: The subset of the rows that flag a map holding NaN or inf: counted, never scored.
INVALID = "invalid"

#: ``explain(model, images [B,3,H,W], targets [B,T]) -> maps [B,T,H,W]``, for metrics that re-explain.
ExplainFunction = Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricParams:
    """Parameters every metric has: none."""


@dataclass
class SampleContext:
    """What the runner knows of one sample before any method runs (built once per sample).

    Attributes:
        sample: the data set's record (original resolution, annotations).
        image: the normalised ``[1,3,H,W]`` model input.
        model: the classifier, in its own label space.
        probabilities: ``[K]`` softmax probabilities of the unperturbed image.
        target: the class explained by prediction-based metrics (top-1, or the label with
            ``--target label``).
        label: the image's labelled class in the model's label space, when known (ImageNet).
        references: metric name -> (``[R,3,H,W]`` images the metric asked for, their
            ``[R,K]`` softmax probabilities), scored in the same pass as the image.
        annotated_model: the classifier in the data set's label space (through a class map
            for an ImageNet model), or None when the data set has no boxes or masks.
        classes: the data set's class names.
        scorable: the data-set classes ``annotated_model`` can score (a class map may
            have no counterpart for some, e.g. person).
    """

    sample: Sample
    image: torch.Tensor
    model: Any
    probabilities: torch.Tensor
    target: int
    label: int | None = None
    references: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    annotated_model: Any = None
    classes: Sequence[str] = ()
    scorable: frozenset[int] = frozenset()

    @classmethod
    def build(
        cls,
        sample: Sample,
        image: torch.Tensor,
        model: Any,
        metrics: Iterable[Metric],
        *,
        label: int | None = None,
        explain_label: bool = False,
        annotated_model: Any = None,
        classes: Sequence[str] = (),
        scorable: Iterable[int] = (),
    ) -> SampleContext:
        """The shared forward pass of one sample: the image and every metric's ``references`` at once.

        Args:
            sample, image, model, label, annotated_model, classes, scorable: as the attributes.
            metrics: the metrics that will ``prepare`` on this context.
            explain_label: explain ``label`` (when known) instead of the top-1 class.
        """
        images = {metric.name: metric.references(image) for metric in metrics}
        images = {name: batch for name, batch in images.items() if batch is not None}
        with torch.inference_mode(), scores_only(model):
            probabilities = model.scores(torch.cat([image, *images.values()]), "softmax")
        references, offset = {}, 1
        for name, batch in images.items():
            references[name] = (batch, probabilities[offset : offset + len(batch)])
            offset += len(batch)
        top1 = int(probabilities[0].argmax())
        return cls(
            sample=sample,
            image=image,
            model=model,
            probabilities=probabilities[0],
            target=label if (explain_label and label is not None) else top1,
            label=label,
            references=references,
            annotated_model=annotated_model,
            classes=classes,
            scorable=frozenset(scorable),
        )


@dataclass
class Preparation:
    """A metric's once-per-sample work, shared by every method.

    Attributes:
        model: the classifier whose class indices ``targets`` are (the maps are explained for it).
        targets: the classes whose maps ``score`` needs, in order.
        names: their names, as result rows spell them.
        state: whatever ``score`` needs (endpoints, ground truth, ...).
        skipped: names of classes the metric would ask about but ``model`` cannot score.
    """

    model: Any
    targets: list[int]
    names: list[str]
    state: Any = None
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Score:
    """One result row's worth: a target, a subset and a value."""

    target: str
    value: float
    subset: str = "all"


@dataclass
class Scores:
    """What ``score`` returns for one method on one sample.

    Attributes:
        rows: one ``Score`` per (target, subset).
        curve: the metric's curve for the sample (``[n+1]``), saved beside the maps, or None.
    """

    rows: list[Score]
    curve: np.ndarray | None = None


class Metric(Configurable, ABC):
    """Base class of all metrics; see the module docstring for the contract."""

    kind: ClassVar[str] = "metric"
    Params: ClassVar[type] = MetricParams
    #: ``higher`` or ``lower``: which values are better.
    direction: ClassVar[str] = HIGHER
    #: What the value is, for table headers ("deletion AUC").
    title: ClassVar[str] = ""
    #: ``faithfulness`` (does the map rank what the model uses?), ``localisation`` (does
    #: the map point at the annotated object?) or ``sanity`` (does the method depend on
    #: the model at all?).
    category: ClassVar[str] = "faithfulness"
    #: Needs boxes or masks (a localised data set).
    needs_ground_truth: ClassVar[bool] = False
    #: Calls ``explain`` again (e.g. on a modified model or input).
    re_explains: ClassVar[bool] = False
    #: Changes the model's weights (on a copy): needs a PyTorch model, not an ONNX file.
    changes_model: ClassVar[bool] = False
    #: In the default selection (of the localisation metrics on a data set with boxes or
    #: masks, of the others elsewhere).
    default: ClassVar[bool] = True
    #: The x-axis of the metric's curve, for plots; None when it has no curve.
    curve_label: ClassVar[str | None] = None
    #: What ``curve_score`` computes, for plot legends.
    curve_score_name: ClassVar[str] = "AUC"
    #: Subsets whose rows are flags to count, not values to aggregate (``invalid`` maps,
    #: pointing's ``constant``).
    counted_subsets: ClassVar[tuple[str, ...]] = (INVALID,)
    #: Subsets starting with this are per-depth details (summarised, left out of overview tables), or None.
    detail_prefix: ClassVar[str | None] = None

    @classmethod
    def header(cls) -> str:
        """The table header: the title and which way is better."""
        return f"{cls.title} ({cls.direction} is better)"

    @classmethod
    def curve_points(cls, length: int) -> np.ndarray:
        """The x-axis of a ``length``-point curve (default: ``i / (length - 1)``, from 0 to 1)."""
        return np.linspace(0, 1, length)

    @classmethod
    def curve_score(cls, curve: np.ndarray) -> float:
        """The number a curve stands for in plot legends, named ``curve_score_name`` (default: the trapezoid
        area over ``curve_points``, which is deletion's and insertion's AUC)."""
        return float(np.trapezoid(np.asarray(curve), cls.curve_points(len(curve))))

    @classmethod
    def higher_is_better(cls) -> bool:
        return cls.direction == HIGHER

    # -- per sample -------------------------------------------------------------------
    def references(self, image: torch.Tensor) -> torch.Tensor | None:
        """``[R,3,H,W]`` images to score in the sample's shared forward pass, or None."""
        return None

    @abstractmethod
    def prepare(self, context: SampleContext) -> Preparation:
        """Once per sample: the targets to explain and what ``score`` needs."""

    @abstractmethod
    def score(
        self, preparation: Preparation, maps: torch.Tensor, *, batch_size: int, explain: ExplainFunction | None = None
    ) -> Scores:
        """Score one method's ``maps`` (``[T,H,W]``, one per ``preparation.targets``) on the sample."""

    # -- aggregation over samples ------------------------------------------------------
    @classmethod
    def sample_statistics(cls, rows: pd.DataFrame) -> pd.DataFrame:
        """Per-sample statistics that add up over samples (index: sample id).

        The default: a sample's value is the mean over its targets; statistics (sum, count).
        """
        values = rows.groupby("sample_id", sort=True)["value"].mean()
        return pd.DataFrame({"sum": values, "count": np.ones(len(values))}, index=values.index)

    @classmethod
    def aggregate(cls, totals: np.ndarray) -> np.ndarray:
        """The metric's value from statistics summed over samples: ``[..., k] -> [...]`` (default: the mean)."""
        return totals[..., 0] / totals[..., 1]

    @classmethod
    def size(cls, statistics: pd.DataFrame) -> int:
        """What the summary's ``n`` counts (default: samples)."""
        return len(statistics)

    @classmethod
    def breakdown(cls, rows: pd.DataFrame) -> dict[str, tuple[float, int]]:
        """Extra summary rows per class: class -> (value, count); none by default."""
        return {}


METRICS: Registry[Metric] = Registry("metric")

register_metric = METRICS.register


def list_metrics() -> list[str]:
    """Registered metric names, alphabetically (the order of listings and tables)."""
    return sorted(METRICS.names())


def metric_class(name: str) -> type[Metric]:
    """The class registered as ``name``.

    Raises:
        UsageError: no metric has that name (with close matches).
    """
    return METRICS.get(name)


def create_metric(name: str, **params: Any) -> Metric:
    """Instantiate the metric ``name`` with ``params`` (others keep their defaults)."""
    return metric_class(name)(**params)


def default_metrics(localised: bool) -> list[str]:
    """The default selection: localisation metrics for data sets with boxes or masks, the others elsewhere."""
    return [n for n in list_metrics() if metric_class(n).default and metric_class(n).needs_ground_truth == localised]


def expand_metrics(names: Sequence[str]) -> list[str]:
    """Metric names from repeatable, comma-separated options; ``all`` means every metric."""
    return METRICS.expand(names, list_metrics())


def select_metrics(
    names: Sequence[str] | None,
    localised: bool,
    dataset: str,
    overrides: Sequence[Override] = (),
    black_box: bool = False,
) -> dict[str, Metric]:
    """A run's metrics: ``names`` (or the defaults for the data set) with their ``--param`` values.

    ``black_box``: the model is an ONNX file, whose weights cannot be changed.

    Raises:
        UsageError: an unknown metric, one that needs boxes or masks on a data set without
            them, or one that changes the model's weights on a black box.
    """
    chosen = expand_metrics(names) if names else default_metrics(localised)
    for name in chosen:
        if metric_class(name).needs_ground_truth and not localised:
            raise UsageError(f"metric '{name}' needs boxes or masks: data set '{dataset}' has none (use voc or coco)")
        if metric_class(name).changes_model and black_box:
            raise UsageError(f"metric '{name}' changes the model's weights: it needs a PyTorch model, not an ONNX file")
    return METRICS.create(chosen, overrides)


def create_metrics(names: Sequence[str], overrides: Sequence[str] = (), validate: bool = True) -> dict[str, Metric]:
    """Metrics for ``names`` with ``--param`` overrides (``METRIC.KEY=VALUE`` or ``KEY=VALUE``).

    Raises:
        UsageError: unknown metric or parameter, or a bad value.
    """
    metrics = expand_metrics(names)
    parsed = parse_overrides(overrides)
    if validate:
        check_overrides(parsed, METRICS.classes(), metrics, "metric")
    return METRICS.create(metrics, parsed)
