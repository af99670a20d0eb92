"""Sobol, HSIC, adaptive RISE and extremal perturbation: known answers and invariants.

The contract tests (``test_contracts.py``) already check, for every registered method, that
the map peaks on the region model's region, seed determinism and batch-size invariance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rise_bench
from rise_bench.explainers.hsic import INPUT_WIDTH, hsic_binary, latin_hypercube_masks
from rise_bench.explainers.rise import RiseMasks, RiseParams, rank_correlation
from rise_bench.explainers.sobol import jansen_total_indices, sobol_design

from .helpers import TINY_SIZE, texture_images


# -- Sobol ------------------------------------------------------------------------------
def test_sobol_design_is_a_and_b_then_a_with_one_column_of_b():
    design = sobol_design(3, 8, seed=1)
    a, b, c = design[:8], design[8:16], design[16:].reshape(3, 8, 3)
    assert design.shape == (8 * 5, 3) and 0 <= design.min() and design.max() < 1
    for column in range(3):
        expected = a.copy()
        expected[:, column] = b[:, column]
        np.testing.assert_array_equal(c[column], expected)
    np.testing.assert_array_equal(sobol_design(3, 8, seed=1), design)
    assert not np.array_equal(sobol_design(3, 8, seed=2), design)


def test_jansen_indices_of_an_additive_function_are_its_variance_shares():
    weights = np.array([3.0, 1.0, 0.0, 2.0])
    dimension, designs = len(weights), 1024
    design = sobol_design(dimension, designs, seed=0)
    outputs = torch.from_numpy(design @ weights)[:, None]  # f(x) = sum w_i x_i, x_i uniform: Var share w_i^2 / sum
    indices = jansen_total_indices(outputs, designs, dimension)[0].numpy()
    np.testing.assert_allclose(indices, weights**2 / (weights**2).sum(), atol=0.02)


# -- HSIC -------------------------------------------------------------------------------
def test_hsic_binary_equals_the_estimator_written_out():
    generator = np.random.default_rng(0)
    presence = torch.from_numpy(latin_hypercube_masks(5, 40, seed=3))
    outputs = torch.from_numpy(generator.random((40, 2)))
    outputs[:, 0] += 2 * presence[:, 1]  # target 0 depends on cell 1
    fast = hsic_binary(presence, outputs)
    n = presence.shape[0]
    centring = torch.eye(n, dtype=torch.float64) - 1.0 / n
    for target in range(2):
        y = outputs[:, target]
        width = y.median()
        gram_y = torch.exp(-((y[:, None] - y[None]) ** 2) / (2 * width**2))
        for cell in range(5):
            x = presence[:, cell]
            gram_x = torch.exp(-((x[:, None] - x[None]) ** 2) / (2 * INPUT_WIDTH**2))
            direct = torch.trace(gram_x @ centring @ gram_y @ centring) / n**2
            assert float(fast[target, cell]) == pytest.approx(float(direct), rel=1e-9, abs=1e-12)
    assert int(fast[0].argmax()) == 1


def test_latin_hypercube_masks_are_binary_balanced_and_seeded():
    masks = latin_hypercube_masks(49, 1500, seed=4)
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert abs(masks.mean(axis=0) - 0.5).max() < 0.01  # a Latin hypercube keeps each cell half the time
    np.testing.assert_array_equal(masks, latin_hypercube_masks(49, 1500, seed=4))


# -- RISE: masks by index, adaptive stopping -------------------------------------------------
def test_rise_mask_i_depends_only_on_the_seed_and_i():
    few = RiseMasks(RiseParams(num_masks=300, seed=3), (30, 20), torch.device("cpu"))
    many = RiseMasks(RiseParams(num_masks=1000, seed=3), (30, 20), torch.device("cpu"))
    assert torch.equal(few.grids, many.grids[:300]) and few.shifts == many.shifts[:300]
    torch.testing.assert_close(few.batch(250, 300), many.batch(250, 300))
    other = RiseMasks(RiseParams(num_masks=300, seed=4), (30, 20), torch.device("cpu"))
    assert not torch.equal(few.grids, other.grids)


def test_rank_correlation_is_spearmans():
    from scipy.stats import spearmanr

    generator = torch.Generator().manual_seed(0)
    first, second = torch.rand(2, 500, generator=generator), torch.rand(2, 500, generator=generator)
    second[1] = first[1] ** 3 + 0.01 * second[1]
    ours = rank_correlation(first, second)
    for row in range(2):
        assert float(ours[row]) == pytest.approx(spearmanr(first[row], second[row]).statistic, abs=1e-9)


def test_adaptive_rise_stops_early_and_equals_rise_with_the_masks_it_used(region_model):
    images = texture_images(2, seed=6)
    targets = torch.tensor([[0, 1], [0, 1]])
    counter = region_model.pass_counter
    adaptive = rise_bench.create_explainer("rise", num_masks=4000, tolerance=0.05, check_every=200)
    before = counter.count
    saliency = adaptive.explain(region_model, images[:1], targets[:1], batch_size=64)
    used = counter.count - before
    assert used % 200 == 0 and 600 <= used < 4000  # three checks at least, and fewer masks than the cap
    fixed = rise_bench.create_explainer("rise", num_masks=used).explain(region_model, images[:1], targets[:1])
    torch.testing.assert_close(saliency, fixed, atol=1e-5, rtol=1e-5)
    # the stopping point is counted in masks, so the batch size does not move it
    again = adaptive.explain(region_model, images[:1], targets[:1], batch_size=7)
    torch.testing.assert_close(again, saliency, atol=1e-5, rtol=1e-5)
    # off by default: the paper's fixed N
    assert rise_bench.create_explainer("rise").params.tolerance is None


def test_adaptive_rise_needs_every_target_to_converge(region_model):
    image = texture_images(1, seed=6)
    counter = region_model.pass_counter
    adaptive = rise_bench.create_explainer("rise", num_masks=3000, tolerance=0.05, check_every=200)
    used = []
    for targets in ([[0]], [[0, 1]]):
        before = counter.count
        adaptive.explain(region_model, image, targets, batch_size=100)
        used.append(counter.count - before)
    assert used[1] >= used[0]


# -- extremal perturbation -----------------------------------------------------------------
def test_extremal_masks_keep_about_their_area(region_model):
    from rise_bench.explainers.extremal import ExtremalPerturbation

    explainer = ExtremalPerturbation(iterations=150, areas=[0.1], step=4, sigma=6.0, max_blur=6.0, jitter=False)
    saliency = explainer.explain(region_model, texture_images(1), [0])[0]
    kept = float((saliency > 0.5).float().mean())
    assert saliency.min() >= 0 and saliency.max() <= 1
    assert abs(kept - 0.1) < 0.05


def test_extremal_map_is_the_sum_of_its_area_masks(region_model):
    from rise_bench.explainers.extremal import ExtremalPerturbation

    settings = dict(iterations=30, step=4, sigma=6.0, max_blur=6.0, jitter=False)
    image = texture_images(1)
    both = ExtremalPerturbation(areas=[0.05, 0.2], **settings).explain(region_model, image, [0])
    small = ExtremalPerturbation(areas=[0.05], **settings).explain(region_model, image, [0])
    large = ExtremalPerturbation(areas=[0.2], **settings).explain(region_model, image, [0])
    torch.testing.assert_close(both, small + large, atol=1e-5, rtol=1e-5)


def test_smooth_masks_are_smooth_and_reach_one():
    from rise_bench.explainers.extremal import smooth_mask, smooth_mask_weights

    weights = smooth_mask_weights(TINY_SIZE, 4, 6.0, torch.device("cpu"))
    parameters = torch.zeros(1, 1, math.ceil(TINY_SIZE[0] / 4), math.ceil(TINY_SIZE[1] / 4))
    parameters[0, 0, 5, 7] = 1
    mask = smooth_mask(parameters, weights, 4)[0, 0]
    assert float(mask[5 * 4 + 1, 7 * 4 + 1]) == pytest.approx(1.0, abs=1e-6)  # the cell's own pixels are kept
    assert float(mask[0, 0]) == 0.0 and float((mask[:, 1:] - mask[:, :-1]).abs().max()) < 0.35


# -- SmoothGrad wrapper ----------------------------------------------------------------------
def test_smoothgrad_wraps_gradient_methods_only(region_model):
    from rise_bench.errors import UsageError
    from rise_bench.explainers.registry import create_explainers

    explainers = create_explainers(["smoothgrad:gradcam"], ["smoothgrad:gradcam.samples=3", "relu=false"])
    wrapper = explainers["smoothgrad:gradcam"]
    assert wrapper.params.samples == 3 and wrapper.params.relu is False
    images = texture_images(1, seed=2)
    saliency = wrapper.explain(region_model, images, [0], seeds=[9])
    generator = torch.Generator().manual_seed(9)
    noise = torch.randn((3, *images.shape[1:]), generator=generator) * 0.15 * float(images.max() - images.min())
    gradcam = rise_bench.create_explainer("gradcam", relu=False)
    expected = gradcam.explain(region_model, images + noise, [0, 0, 0]).mean(0, keepdim=True)
    torch.testing.assert_close(saliency, expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(UsageError, match="does not use gradients"):
        create_explainers(["smoothgrad:rise"])
