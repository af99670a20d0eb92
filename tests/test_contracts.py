"""The contracts, checked for every registered method and metric (a new one is enrolled without editing a test).

Methods run with their ``tiny_params`` on the tiny region model; metrics run on it too,
through ``SampleContext.build`` as the runner does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rise_bench.datasets import Sample
from rise_bench.errors import UsageError
from rise_bench.explainers import explainer_class, list_explainers
from rise_bench.metrics import HIGHER, LOWER, SampleContext, create_metric, list_metrics, metric_class
from rise_bench.parameters import describe

from .helpers import IMAGENET_SAMPLE, REGION, TINY_SIZE, make_region_model, texture_images

EXPLAINERS = list_explainers(adapters=False)
METHODS = list_explainers(baselines=False, adapters=False)
STOCHASTIC = [name for name in EXPLAINERS if explainer_class(name)().seed is not None]
#: Adapters to Captum and pytorch-grad-cam: the contract's shapes, batching and documentation on the tiny model
#: (their maps are the libraries', checked against direct calls in test_adapters.py).
ADAPTERS = [name for name in list_explainers(baselines=False) if explainer_class(name).library]
METRICS = list_metrics()


def tiny(name: str, **params):
    cls = explainer_class(name)
    return cls(**{**cls.tiny_params, **params})


def tolerance(name: str) -> float:
    return 2e-2 if name in ("perturbation", "extremal") else 1e-5  # mask learning on a batch is not bitwise per image


# -- explainers ------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_map_peaks_inside_the_only_region_the_model_sees(method, region_model):
    saliency = tiny(method).explain(region_model, texture_images(1), [0])
    assert saliency.shape == (1, *TINY_SIZE) and saliency.dtype == torch.float32
    margin = 2  # the 3x3 filter lets pixels next to the region matter too
    near = torch.zeros(TINY_SIZE, dtype=torch.bool)
    near[REGION[0].start - margin : REGION[0].stop + margin, REGION[1].start - margin : REGION[1].stop + margin] = True
    spread = float(saliency.max() - saliency.min())
    # the peak value is reached near the region (LIME's maps are flat per superpixel)
    assert float(saliency[0][near].max()) >= float(saliency.max()) - 1e-6 * spread
    inside = torch.zeros(TINY_SIZE, dtype=torch.bool)
    inside[REGION] = True
    contrast = saliency[0][inside].mean() - saliency[0][~inside].mean()
    assert contrast > 0.1 * (saliency.max() - saliency.min()) > 0


@pytest.mark.parametrize("method", EXPLAINERS)
def test_maps_are_finite_on_a_real_photograph_with_the_real_model(method, default_model):
    from rise_bench.images import read_image

    image = default_model.transform(read_image(IMAGENET_SAMPLE / "n01530575_brambling.JPEG"))[None]
    saliency = tiny(method).explain(default_model, image, torch.tensor([10]), batch_size=16)
    assert saliency.shape == (1, *image.shape[-2:])
    assert torch.isfinite(saliency).all(), f"{method} gives NaN or inf on a real image"


@pytest.mark.parametrize("method", EXPLAINERS + ADAPTERS)
def test_contract_shapes_devices_and_no_mutation(method, region_model):
    images = texture_images(2, seed=1)
    before = images.clone()
    explainer = tiny(method)
    single = explainer.explain(region_model, images, torch.tensor([0, 1]))
    several = explainer.explain(region_model, images, torch.tensor([[0, 1], [1, 0]]))
    assert torch.equal(images, before)
    assert single.shape == (2, *TINY_SIZE) and several.shape == (2, 2, *TINY_SIZE)
    assert single.device == images.device and several.dtype == torch.float32
    # equal_nan: pytorch-grad-cam's AblationCAM divides by the region model's constant logit of 0 (class 1)
    torch.testing.assert_close(several[0, 0], single[0], atol=tolerance(method), rtol=0, equal_nan=True)
    torch.testing.assert_close(several[1, 0], single[1], atol=tolerance(method), rtol=0, equal_nan=True)
    with pytest.raises(UsageError):
        explainer.explain(region_model, images, [0])
    with pytest.raises(UsageError):
        explainer.explain(region_model, images, [0, 1], batch_size=0)


@pytest.mark.parametrize("method", EXPLAINERS + ADAPTERS)
def test_batch_size_and_batching_invariance(method, region_model):
    images = texture_images(3, seed=2)
    targets = torch.tensor([0, 1, 0])
    seeds = torch.tensor([11, 12, 13])
    explainer = tiny(method)
    small = explainer.explain(region_model, images, targets, seeds, batch_size=1)
    large = explainer.explain(region_model, images, targets, seeds, batch_size=7)
    alone = explainer.explain(region_model, images[1:2], targets[1:2], seeds[1:2])
    scale = float(large.nan_to_num().abs().max())
    torch.testing.assert_close(small, large, atol=tolerance(method) * scale, rtol=0, equal_nan=True)
    torch.testing.assert_close(alone[0], large[1], atol=tolerance(method) * scale, rtol=0, equal_nan=True)


@pytest.mark.parametrize("method", STOCHASTIC)
def test_same_seed_same_map_other_seed_other_map(method, region_model):
    images = texture_images(1, seed=3)
    first = tiny(method, seed=5).explain(region_model, images, [0])
    torch.manual_seed(123)  # the global RNG must not matter
    second = tiny(method, seed=5).explain(region_model, images, [0])
    other = tiny(method, seed=6).explain(region_model, images, [0])
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("method", EXPLAINERS + ADAPTERS)
def test_parameters_are_documented_and_hashed(method):
    cls = explainer_class(method)
    documented = {name: doc for name, _, doc in describe(cls.Params)}
    assert all(documented.values()), f"{method}: every parameter needs a docstring line"
    assert set(cls.tiny_params) <= set(documented) and set(cls.quick_params) <= set(documented)
    assert tiny(method).params_hash() == tiny(method).params_hash()
    if cls.tiny_params:
        assert tiny(method).params_hash() != cls().params_hash()


# -- metrics ---------------------------------------------------------------------------
def oracle_sample(image_size: tuple[int, int]) -> Sample:
    """A sample whose one annotated class (0, "region") has a box exactly on the region model's region."""
    height, width = image_size
    scale_y, scale_x = height / TINY_SIZE[0], width / TINY_SIZE[1]
    box = (
        REGION[1].start * scale_x + 1,
        REGION[0].start * scale_y + 1,
        REGION[1].stop * scale_x,
        REGION[0].stop * scale_y,
    )
    picture = Image.fromarray((texture_images(1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).resize(
        (width, height)
    )
    return Sample(id="oracle", image=picture, labels=[0], boxes=[(0, box)], difficult=[False])


def context_for(metric, model):
    sample = oracle_sample((80, 112))
    image = texture_images(1)
    return SampleContext.build(
        sample,
        image,
        model,
        [metric],
        label=0,
        explain_label=True,
        annotated_model=model,
        classes=model.classes,
        scorable=range(len(model.classes)),
    )


def region_map(sign: float = 1.0) -> torch.Tensor:
    """The region (plus a faint ramp that breaks ties) or, with ``sign=-1``, its reverse."""
    saliency = torch.linspace(0, 0.01, TINY_SIZE[0] * TINY_SIZE[1]).view(TINY_SIZE)
    saliency[REGION] += 1.0
    return sign * saliency


def value(metric, preparation, saliency) -> float:
    scores = metric.score(preparation, saliency[None].expand(len(preparation.targets), -1, -1), batch_size=16)
    (overall,) = [s.value for s in scores.rows if s.subset == "all"][:1] or [float("nan")]
    return overall


@pytest.mark.parametrize("name", METRICS)
def test_metric_metadata(name):
    cls = metric_class(name)
    assert cls.direction in (HIGHER, LOWER) and cls.direction in cls.header() and cls.title in cls.header()
    assert cls.category in ("faithfulness", "localisation", "sanity")
    assert all(doc for _, _, doc in describe(cls.Params))
    assert create_metric(name).params_hash() == create_metric(name).params_hash()


@pytest.mark.parametrize("name", [m for m in METRICS if metric_class(m).category == "faithfulness"])
def test_a_perfect_map_beats_its_reversed_map(name):
    model = make_region_model()
    metric = create_metric(name)
    preparation = metric.prepare(context_for(metric, model))
    perfect, reverse = value(metric, preparation, region_map()), value(metric, preparation, region_map(-1))
    better = perfect > reverse if metric.higher_is_better() else perfect < reverse
    assert better, (perfect, reverse)


@pytest.mark.parametrize("name", [m for m in METRICS if metric_class(m).category == "localisation"])
def test_an_oracle_map_hits_and_a_far_map_misses(name):
    model = make_region_model()
    metric = create_metric(name)
    preparation = metric.prepare(context_for(metric, model))
    assert preparation.targets == [0] and preparation.model is model
    far = torch.zeros(TINY_SIZE)
    far[-1, 0] = 1.0  # the bottom-left corner, far from the box
    perfect, wrong = value(metric, preparation, region_map()), value(metric, preparation, far)
    best, worst = (1.0, 0.0) if metric.higher_is_better() else (0.0, 1.0)
    assert (perfect, wrong) == (best, worst)


@pytest.mark.parametrize("name", METRICS)
def test_metric_aggregation_of_identical_samples_is_their_value(name):
    import pandas as pd

    cls = metric_class(name)
    rows = pd.DataFrame({"sample_id": ["a", "b", "c"], "target": ["x", "x", "x"], "value": [1.0, 1.0, 1.0]})
    statistics = cls.sample_statistics(rows)
    assert len(statistics) == 3
    assert float(cls.aggregate(statistics.to_numpy().sum(axis=0))) == pytest.approx(1.0)
