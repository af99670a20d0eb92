"""ROAD (Rong, Leemann et al. 2022): the noisy linear imputation and the three metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import rise_bench.metrics.road as road_module
from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.runner import evaluate
from rise_bench.images import read_image
from rise_bench.metrics import auc, metric_class, noisy_linear_impute
from rise_bench.metrics.road import LERF, MORF, removal_masks, road, road_curves, road_fractions
from rise_bench.seeds import seeded_generator

from .helpers import FAST, IMAGENET_SAMPLE
from .helpers.models import REGION, TINY_SIZE, texture_images

#: The stencil: 1/6 for direct neighbours, 1/12 for diagonals.
WEIGHTS = {(dy, dx): (1 / 6 if dy == 0 or dx == 0 else 1 / 12) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx}


def smooth_map(height: int, width: int, seed: int) -> torch.Tensor:
    coarse = torch.rand(1, 1, 7, 7, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=(height, width), mode="bilinear")[0, 0]


def test_a_linear_ramp_is_imputed_exactly():
    height, width = 30, 41
    rows, cols = torch.meshgrid(torch.arange(height) * 1.0, torch.arange(width) * 1.0, indexing="ij")
    image = torch.stack([0.1 * rows - 0.05 * cols, 0.02 * cols + 1, -0.03 * rows])[None]
    removed = torch.zeros(1, height, width, dtype=torch.bool)
    removed[0, 5:25, 4:30] = True  # a large block (away from the border, where the weights are renormalised)
    removed[0, 2:28:3, 33:39:2] = True  # and scattered pixels
    out = noisy_linear_impute(image, removed, noise=0)
    assert torch.allclose(out, image, atol=1e-5)


def test_an_isolated_pixel_is_the_weighted_mean_of_its_neighbours():
    image = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    removed = torch.zeros(1, 9, 11, dtype=torch.bool)
    removed[0, 4, 5] = removed[0, 0, 0] = True  # an inner pixel and a corner (3 neighbours, renormalised)
    out = noisy_linear_impute(image, removed, noise=0)
    inner = sum(w * image[0, :, 4 + dy, 5 + dx] for (dy, dx), w in WEIGHTS.items())
    corner = (image[0, :, 0, 1] / 6 + image[0, :, 1, 0] / 6 + image[0, :, 1, 1] / 12) / (5 / 12)
    assert torch.allclose(out[0, :, 4, 5], inner, atol=1e-6)
    assert torch.allclose(out[0, :, 0, 0], corner, atol=1e-6)
    kept = ~removed[:, None].expand_as(image)
    assert torch.equal(out[kept], image[kept])


@pytest.fixture(scope="module")
def photographs(default_model):
    files = sorted(IMAGENET_SAMPLE.glob("*.JPEG"))[:2]
    return torch.stack([default_model.transform(read_image(f)) for f in files])


def test_equals_the_authors_imputer_on_real_images(photographs):
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    reference = NoisyLinearImputer(noise=0)
    cases = [
        (photographs[0], removal_masks(smooth_map(224, 224, 0), [0.3], MORF)[0]),
        (photographs[0], removal_masks(smooth_map(224, 224, 1), [0.9], LERF)[0]),
        (photographs[1], torch.rand(224, 224, generator=torch.Generator().manual_seed(2)) < 0.5),
        (photographs[1, :, 10:71, 100:145], removal_masks(smooth_map(61, 45, 3), [0.6], MORF)[0]),  # odd sides
    ]
    for image, removed in cases:
        ours = noisy_linear_impute(image[None], removed[None], noise=0)[0]
        theirs = reference(image, (~removed).float())
        assert (ours - theirs).abs().max() < 1e-4


def test_the_noise_is_seeded_and_only_on_imputed_pixels(photographs):
    removed = removal_masks(smooth_map(224, 224, 4), [0.5], MORF)
    image = photographs[:1]
    clean = noisy_linear_impute(image, removed, noise=0)
    first = noisy_linear_impute(image, removed, generator=seeded_generator(7))
    again = noisy_linear_impute(image, removed, generator=seeded_generator(7))
    other = noisy_linear_impute(image, removed, generator=seeded_generator(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    inside = removed[:, None].expand_as(image)
    assert torch.equal(first[~inside], image[~inside])
    assert abs(float((first - clean)[inside].std()) - 0.01) < 0.001


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="removed must be"):
        noisy_linear_impute(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 9, dtype=torch.bool))


def test_a_perfect_map_keeps_the_evidence_under_lerf_and_loses_it_under_morf(region_model):
    image = texture_images(1)  # the region model normalises with mean 0, std 1
    perfect = torch.zeros(1, *TINY_SIZE)
    perfect[0, REGION[0], REGION[1]] = 1
    original = float(region_model.scores(image, "softmax")[0, 0])  # about 0.5
    result = road(region_model, image, perfect, [0], generators=[seeded_generator(0)])
    assert (result.lerf[0] - original).abs().max() < 0.02  # the region is never touched (7.5% of the pixels)
    assert result.morf[0].max() < 0.2  # its texture is imputed away from the first fraction on
    assert result.road[0] > 0.15
    assert torch.allclose(result.road, (result.lerf_score - result.morf_score) / 2)
    inverted = road(region_model, image, 1 - perfect, [0], generators=[seeded_generator(0)])
    assert inverted.road[0] < -0.15


def test_curves_do_not_depend_on_the_batch_size(region_model):
    image = texture_images(1, seed=1)
    saliency = torch.rand(*TINY_SIZE, generator=torch.Generator().manual_seed(0))
    draws = torch.randn(2, 9, 3, *TINY_SIZE, generator=torch.Generator().manual_seed(1))
    curves = [
        road_curves(region_model, image, saliency, 0, order=LERF, draws=draws, batch_size=size) for size in (2, 32)
    ]
    assert torch.allclose(curves[0], curves[1], atol=1e-5)
    assert road_fractions(9) == pytest.approx([0.1 * k for k in range(1, 10)])


def test_plots_draw_road_curves_over_the_fractions_with_their_mean():
    curve = np.linspace(0.9, 0.1, 9) ** 2
    assert metric_class("road_morf").curve_points(9) == pytest.approx(road_fractions(9))
    assert metric_class("road_lerf").curve_score(curve) == pytest.approx(curve.mean())
    assert metric_class("road_lerf").curve_score_name == "mean"
    deletion = np.linspace(1, 0, 29) ** 3
    assert metric_class("deletion").curve_score(deletion) == pytest.approx(float(auc(deletion)))


def test_the_three_metrics_share_their_curves_in_a_run(tmp_path, monkeypatch):
    calls = []
    original = road_module.road_curves

    def counted(*args, **kwargs):
        calls.append(kwargs["order"])
        return original(*args, **kwargs)

    monkeypatch.setattr(road_module, "road_curves", counted)
    config = RunConfig(**{**FAST, "limit": 1, "methods": ["gradcam"]}, metrics=["road", "road_morf", "road_lerf"],
                       out=str(tmp_path / "run"))  # fmt: skip
    evaluate(config, log=lambda line: None)
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    rows = rows[rows.metric.str.startswith("road")].pivot_table(index=["sample_id", "method"], columns="metric",
                                                                 values="value")  # fmt: skip
    assert len(rows) == 3  # gradcam and the two baselines
    assert sorted(calls) == sorted([MORF, LERF] * 3)  # each curve once per method, for the three metrics
    assert ((rows.road - (rows.road_lerf - rows.road_morf) / 2).abs() < 1e-6).all()
    assert rows.loc[(slice(None), "gradcam"), "road"].iloc[0] > rows.loc[(slice(None), "random"), "road"].iloc[0]
