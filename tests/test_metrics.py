"""Deletion, insertion and the pointing game against known answers and naive loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rise_bench.datasets.annotations import boxes_mask
from rise_bench.errors import UsageError
from rise_bench.metrics import (
    auc,
    create_metric,
    create_metrics,
    default_metrics,
    insertion_start,
    list_metrics,
    point_and_score,
    pointing_game,
    register_metric,
)
from rise_bench.metrics.curves import pixel_ranks
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion, reference_blur_kernel
from rise_bench.metrics.pointing import accuracy, is_difficult, is_hit, saliency_point
from rise_bench.models import Classifier

from .helpers import fraction_model


def test_registry_lists_the_metrics_with_their_directions():
    assert list_metrics() == [
        "deletion", "insertion", "pointing", "randomisation_spearman", "randomisation_ssim", "road", "road_lerf",
        "road_morf",
    ]  # fmt: skip
    assert default_metrics(localised=False) == ["deletion", "insertion"] and default_metrics(localised=True) == [
        "pointing"
    ]
    with pytest.raises(ValueError, match="already registered"):
        register_metric("deletion")(type(create_metric("deletion")))
    with pytest.raises(UsageError, match="did you mean: deletion"):
        create_metric("deletoin")


def test_metric_parameters_from_overrides_enter_the_hash():
    metrics = create_metrics(["deletion,insertion"], ["deletion.step=1792", "blur_sigma=3"])
    assert metrics["deletion"].params.step == 1792 and metrics["insertion"].params.step is None
    assert metrics["insertion"].params.blur_sigma == 3.0
    assert metrics["deletion"].params_hash() != create_metric("deletion").params_hash()
    assert create_metrics(["deletion"], ["deletion.step=none"])["deletion"].params.step is None
    with pytest.raises(UsageError, match="did you mean: step"):
        create_metrics(["deletion"], ["deletion.stpe=3"])
    with pytest.raises(UsageError, match="not a valid int"):
        create_metrics(["deletion"], ["deletion.step=wide"])
    with pytest.raises(UsageError, match="step must be >= 1"):
        create_metric("deletion", step=0)
    with pytest.raises(UsageError, match="no selected metric"):
        create_metrics(["pointing"], ["step=3"])


def test_deletion_of_a_kept_fraction_model_is_a_straight_line():
    model = fraction_model(8, 12)
    images = torch.ones(2, 3, 8, 12)
    saliency = torch.rand(2, 8, 12)
    result = deletion(model, images, saliency, [0, 0])
    assert result.curves.shape == (2, 9)  # step = width 12, n = 96 / 12 = 8 steps, 9 points
    expected = 1 - torch.arange(9) / 8
    torch.testing.assert_close(result.curves, expected.expand(2, -1).clamp(1e-6, 1 - 1e-6), atol=1e-5, rtol=0)
    torch.testing.assert_close(result.auc, torch.full((2,), 0.5), atol=1e-5, rtol=0)


def test_insertion_from_a_blank_start_and_an_uneven_last_step():
    model = fraction_model(5, 7)
    images = torch.ones(1, 3, 5, 7)
    saliency = torch.rand(1, 5, 7)
    result = insertion(model, images, saliency, [0], step=10, blurred=torch.zeros_like(images))
    # 35 pixels, 10 per step: n = 4 steps, points after 0, 10, 20, 30, 35 pixels
    expected = torch.tensor([0, 10, 20, 30, 35]) / 35
    torch.testing.assert_close(result.curves[0], expected.float().clamp(1e-6, 1 - 1e-6), atol=1e-5, rtol=0)
    h = expected.double()
    assert float(result.auc[0]) == pytest.approx(float((h.sum() - h[0] / 2 - h[-1] / 2) / 4), abs=1e-5)


def test_endpoints_are_the_image_the_substrate_and_the_blur():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    model = Classifier(net, name="small", classes=list("abcde"), input_size=(16, 20), mean=(0, 0, 0), std=(1, 1, 1))
    images = torch.randn(2, 3, 16, 20)
    saliency = torch.randn(2, 16, 20)
    targets = torch.tensor([1, 3])
    with torch.no_grad():
        p_image = model.score(images, targets)
        p_zero = model.score(torch.zeros_like(images), targets)
        p_blur = model.score(insertion_start(images), targets)
    removed = deletion(model, images, saliency, targets)
    inserted = insertion(model, images, saliency, targets)
    torch.testing.assert_close(removed.curves[:, 0], p_image)
    torch.testing.assert_close(removed.curves[:, -1], p_zero)
    torch.testing.assert_close(inserted.curves[:, 0], p_blur)
    torch.testing.assert_close(inserted.curves[:, -1], p_image)


def test_known_endpoints_are_used_and_not_scored_again():
    model = fraction_model(6, 5)
    images = torch.ones(1, 3, 6, 5)
    saliency = torch.randn(1, 6, 5)
    seen: list[int] = []
    model.net.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[0]))
    full = deletion(model, images, saliency, [0], step=5, batch_size=4)
    assert sum(seen) == 7  # n + 1 points, n = 6
    seen.clear()
    known = deletion(
        model, images, saliency, [0], step=5, batch_size=4, endpoints=(torch.tensor([0.25]), torch.tensor([0.75]))
    )
    assert sum(seen) == 5
    assert known.curves[0, 0] == pytest.approx(0.25) and known.curves[0, -1] == pytest.approx(0.75)
    torch.testing.assert_close(known.curves[0, 1:-1], full.curves[0, 1:-1])
    seen.clear()
    only_last = insertion(model, images, saliency, [0], step=5, batch_size=4, endpoints=(None, torch.tensor([1.0])))
    assert sum(seen) == 6 and only_last.curves[0, -1] == pytest.approx(1.0)


def test_a_perfect_map_beats_its_reverse():
    weights = torch.zeros(10, 10)
    weights[2:5, 6:9] = 1  # the model only cares about 9 pixels
    model = fraction_model(10, 10, weights)
    images = torch.ones(1, 3, 10, 10)
    perfect = weights[None] + 0.01 * torch.rand(1, 10, 10)
    reverse = -perfect
    assert (
        float(deletion(model, images, perfect, [0]).auc) < 0.1 < 0.9 < float(deletion(model, images, reverse, [0]).auc)
    )
    blank = torch.zeros_like(images)
    assert float(insertion(model, images, perfect, [0], blurred=blank).auc) > 0.9
    assert float(insertion(model, images, reverse, [0], blurred=blank).auc) < 0.1


def naive_curve(model, start, finish, saliency, target, step):
    """One forward pass per step, pixels moved one by one in rank order."""
    height, width = saliency.shape
    order = sorted(range(height * width), key=lambda i: (-float(saliency.view(-1)[i]), i))
    steps = math.ceil(height * width / step)
    current = start.clone()
    values = []
    for i in range(steps + 1):
        if i > 0:
            for pixel in order[(i - 1) * step : i * step]:
                row, col = divmod(pixel, width)
                current[:, :, row, col] = finish[:, :, row, col]
        with torch.no_grad():
            values.append(float(model.score(current, torch.tensor([target]))[0]))
    return torch.tensor(values)


def test_batched_curves_equal_a_naive_loop_and_ignore_batch_size():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 4)
    )
    model = Classifier(net, name="small", classes=list("abcd"), input_size=(9, 11), mean=(0, 0, 0), std=(1, 1, 1))
    images = torch.randn(1, 3, 9, 11)
    saliency = torch.randint(0, 5, (1, 9, 11)).float()  # many ties: row-major order decides
    for step in (11, 7):
        removed = deletion(model, images, saliency, [2], step=step, batch_size=4)
        expected = naive_curve(model, images, torch.zeros_like(images), saliency[0], 2, step)
        torch.testing.assert_close(removed.curves[0], expected, atol=1e-5, rtol=1e-5)
        blurred = insertion_start(images)
        inserted = insertion(model, images, saliency, [2], step=step, batch_size=100)
        torch.testing.assert_close(
            inserted.curves[0], naive_curve(model, blurred, images, saliency[0], 2, step), atol=1e-5, rtol=1e-5
        )
        assert float(removed.auc[0]) == pytest.approx(float(auc(expected)), abs=1e-6)


def test_ties_are_ranked_in_row_major_order():
    ranks = pixel_ranks(torch.tensor([[1.0, 2.0, 2.0], [0.0, 2.0, 1.0]]))
    assert ranks.tolist() == [[3, 0, 1], [5, 2, 4]]


def test_blur_kernel_is_the_reference_gaussian_filter():
    from scipy.ndimage import gaussian_filter

    kernel = reference_blur_kernel()
    delta = np.zeros((11, 11))
    delta[5, 5] = 1
    np.testing.assert_allclose(kernel.numpy(), gaussian_filter(delta, 5), rtol=1e-6)
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-6)  # reflect mode keeps the mass
    image = torch.zeros(1, 3, 21, 21)
    image[0, 1, 10, 10] = 1
    blurred = insertion_start(image)
    torch.testing.assert_close(blurred[0, 1, 5:16, 5:16], kernel.flip(0).flip(1))
    assert float(blurred[0, 0].abs().sum()) == 0  # channels stay apart
    edge = insertion_start(torch.ones(1, 3, 21, 21))
    assert float(edge[0, 0, 0, 0]) < 0.5 and float(edge[0, 0, 10, 10]) == pytest.approx(1.0, abs=1e-5)  # zero padding


# -- pointing game ----------------------------------------------------------------------
def test_pointing_tolerance_is_strictly_less_than_15_pixels():
    truth = np.zeros((100, 100), dtype=bool)
    truth[40:60, 0:10] = True  # columns 0..9
    assert is_hit((50, 23), truth)  # 14 pixels right of column 9
    assert not is_hit((50, 24), truth)  # exactly 15: a miss
    assert not is_hit((69, 21), truth)  # (9, 12) from the corner (59, 9): distance 15
    assert is_hit((68, 20), truth)  # (9, 11): distance 14.2
    assert is_hit((45, 5), truth)  # inside


def test_voc_boxes_are_one_based_inclusive_and_unioned():
    mask = boxes_mask([(1, 1, 3, 2), (5, 4, 5, 4)], (6, 8))
    expected = np.zeros((6, 8), dtype=bool)
    expected[0:2, 0:3] = True
    expected[3, 4] = True
    np.testing.assert_array_equal(mask, expected)


def test_points_come_from_the_map_resized_to_the_image():
    saliency = torch.zeros(7, 7)
    saliency[6, 6] = 1
    point, constant = saliency_point(saliency, (70, 140))
    assert not constant and point[0] >= 60 and point[1] >= 120
    point, constant = saliency_point(torch.ones(5, 5), (30, 40))
    assert constant and point == (0, 0)
    tie = torch.zeros(4, 4)
    tie[1, 3] = tie[2, 0] = 1
    assert saliency_point(tie, (4, 4))[0] == (1, 3)  # first maximum in row-major order
    truth = np.zeros((70, 140), dtype=bool)
    truth[60:, 120:] = True
    assert point_and_score(saliency, truth).hit


def test_accuracy_is_the_mean_of_per_class_rates():
    trials = [("cat", True), ("cat", True), ("cat", False), ("dog", False), ("car", True)]
    accuracy, per_class = pointing_game(trials)
    assert per_class == {"car": 1.0, "cat": pytest.approx(2 / 3), "dog": 0.0}
    assert accuracy == pytest.approx((1 + 2 / 3 + 0) / 3)  # classes without samples are left out
    assert math.isnan(pointing_game([])[0])


def test_difficult_needs_a_distractor_and_a_small_target():
    small = np.zeros((10, 10), dtype=bool)
    small[:2, :2] = True
    large = np.ones((10, 10), dtype=bool)
    assert is_difficult(small, True) and not is_difficult(small, False) and not is_difficult(large, True)


def test_accuracy_is_vectorised_over_resamples():
    hits = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    counts = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.0]])
    np.testing.assert_allclose(accuracy(hits, counts), [(2 / 3 + 0) / 2, (1 + 0.5) / 2])
    assert math.isnan(float(accuracy(np.zeros(2), np.zeros(2))))
