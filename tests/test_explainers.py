"""The method registry, and each method against analytic answers (the contract: ``test_contracts.py``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rise_bench
from rise_bench.errors import UsageError
from rise_bench.explainers import create_explainers, explainer_class, list_baselines, register_explainer
from rise_bench.explainers.registry import expand_methods
from rise_bench.models import Classifier

from .helpers import TINY_SIZE, linear_model, texture_images

METHODS = ["rise", "gradcam", "gradient", "lime", "perturbation", "extremal", "hsic", "sobol"]


def test_registry_lists_the_methods_then_the_baselines():
    assert rise_bench.list_explainers(adapters=False) == METHODS + ["center", "random"]
    assert rise_bench.list_explainers(baselines=False, adapters=False) == METHODS
    assert list_baselines() == ["center", "random"]
    adapters = [n for n in rise_bench.list_explainers(baselines=False) if n not in METHODS]
    assert "captum:IntegratedGradients" in adapters and "grad-cam:ScoreCAM" in adapters
    assert rise_bench.list_explainers()[-2:] == ["center", "random"]
    assert all(explainer_class(name).baseline for name in list_baselines())


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_explainer("rise")(type("Other", (rise_bench.explainers.Explainer,), {}))


def test_unknown_method_and_parameter_are_usage_errors():
    with pytest.raises(UsageError, match="did you mean: rise"):
        rise_bench.create_explainer("rsie")
    with pytest.raises(UsageError, match="num_masks"):
        rise_bench.create_explainer("rise", num_mask=10)
    with pytest.raises(UsageError, match="no selected method"):
        create_explainers(["gradcam"], ["num_masks=10"])
    with pytest.raises(UsageError, match="did you mean: num_masks"):
        create_explainers(["gradcam"], ["rise.num_mask=10"])
    assert set(create_explainers(["gradcam"], ["rise.num_masks=10"])) == {"gradcam"}
    with pytest.raises(UsageError, match="unknown method 'deletion'"):
        create_explainers(["gradcam"], ["deletion.step=10"])  # metric parameters belong to evaluate


def test_method_lists_and_overrides():
    assert expand_methods(["rise,gradcam", "rise", "lime"]) == ["rise", "gradcam", "lime"]
    assert expand_methods(["all"]) == METHODS  # neither baselines nor adapters are selected by all
    assert expand_methods(["center"]) == ["center"]
    explainers = create_explainers(["rise,lime"], ["rise.num_masks=12", "seed=3"], quick=True)
    assert explainers["rise"].params.num_masks == 12
    assert explainers["rise"].params.seed == 3 and explainers["lime"].params.seed == 3
    assert explainers["lime"].params.num_samples == 300  # quick preset
    assert create_explainers(["lime"], seed=7)["lime"].params.seed == 7  # the run's seed is the default
    assert rise_bench.create_explainer("rise").params.num_masks == 4000  # paper default


def test_the_batch_size_is_a_call_argument_not_a_parameter(region_model):
    with pytest.raises(UsageError, match="unknown parameter"):
        rise_bench.create_explainer("rise", batch_size=4)
    rise = rise_bench.create_explainer("rise", num_masks=20)
    sizes = []
    hook = region_model.net.register_forward_hook(lambda module, args, output: sizes.append(args[0].shape[0]))
    try:
        rise.explain(region_model, texture_images(1), [0], batch_size=6)
    finally:
        hook.remove()
    assert sizes == [6, 6, 6, 2]
    seen = []
    rise.explain(
        region_model, texture_images(1), [0], batch_size=10, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(10, 20), (20, 20)]


def test_smoothgrad_seeds_are_per_image(region_model):
    images = texture_images(1, seed=4)
    explainer = create_explainers(["smoothgrad:gradient"], ["samples=6"])["smoothgrad:gradient"]
    assert torch.equal(
        explainer.explain(region_model, images, [0], seeds=[1]), explainer.explain(region_model, images, [0], seeds=[1])
    )
    assert not torch.equal(
        explainer.explain(region_model, images, [0], seeds=[1]), explainer.explain(region_model, images, [0], seeds=[2])
    )


# -- analytic answers ------------------------------------------------------------------
def test_gradient_of_a_linear_model_is_its_weights():
    model, weight = linear_model()
    images = torch.rand(2, 3, 6, 9)
    targets = torch.tensor([2, 0])
    vanilla = rise_bench.create_explainer("gradient").explain(model, images, targets)
    torch.testing.assert_close(vanilla, weight[targets].abs().amax(dim=1))
    expand_methods(["smoothgrad:gradient"])  # registers the wrapper
    smooth = rise_bench.create_explainer("smoothgrad:gradient", samples=5).explain(model, images, targets)
    torch.testing.assert_close(smooth, weight[targets].abs().amax(dim=1), atol=1e-5, rtol=1e-5)
    times_input = rise_bench.create_explainer("gradient", input_x_gradient=True).explain(model, images, targets)
    torch.testing.assert_close(times_input, (weight[targets] * images).abs().amax(dim=1))


def test_gradcam_equals_a_hand_computation():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model = Classifier(
        net, name="small", classes=["a", "b", "c"], input_size=(12, 16), mean=(0, 0, 0), std=(1, 1, 1), cam_layer=net[1]
    )
    images = torch.randn(2, 3, 12, 16)
    targets = torch.tensor([1, 2])
    saliency = rise_bench.create_explainer("gradcam").explain(model, images, targets)
    with torch.no_grad():
        features = torch.relu(conv(images))  # [2,4,6,8]
        area = features.shape[2] * features.shape[3]
        # d logit_c / d A_k(i,j) = W[c,k] / area everywhere, so alpha_k = W[c,k] / area.
        alphas = net[4].weight[targets] / area
        cam = torch.relu((alphas[:, :, None, None] * features).sum(1, keepdim=True))
        expected = nn.functional.interpolate(cam, size=(12, 16), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(saliency, expected, atol=1e-6, rtol=1e-5)


def test_rise_masks_follow_the_reference_construction():
    from rise_bench.explainers.rise import RiseMasks, RiseParams

    params = RiseParams(num_masks=64, grid_size=4, keep_prob=0.3, seed=1)
    masks = RiseMasks(params, (30, 20), torch.device("cpu"))
    batch = masks.batch(0, 64)
    assert batch.shape == (64, 30, 20)
    assert float(batch.min()) >= 0 and float(batch.max()) <= 1 + 1e-6
    assert abs(float(batch.mean()) - 0.3) < 0.06
    torch.testing.assert_close(masks.batch(10, 20), batch[10:20])
    # mask 0 is its grid upsampled to (s+1)*cell and cropped at its shift
    cell = (8, 5)
    grid = masks.grids[0][None, None]
    upsampled = nn.functional.interpolate(grid, size=(5 * cell[0], 5 * cell[1]), mode="bilinear", align_corners=False)[
        0, 0
    ]
    dy, dx = masks.shifts[0]
    torch.testing.assert_close(batch[0], upsampled[dy : dy + 30, dx : dx + 20])


def test_rise_saliency_is_the_score_weighted_mask_mean(region_model):
    from rise_bench.explainers.rise import RiseMasks, RiseParams

    params = RiseParams(num_masks=40, seed=2)
    images = texture_images(1, seed=5)
    saliency = rise_bench.create_explainer("rise", num_masks=40, seed=2).explain(region_model, images, [0])
    masks = RiseMasks(params, TINY_SIZE, torch.device("cpu")).batch(0, 40)
    with torch.no_grad():
        scores = torch.stack([region_model.score(images * m, torch.tensor([0]))[0] for m in masks])
    expected = (scores[:, None, None] * masks).sum(0) / (40 * 0.5)
    torch.testing.assert_close(saliency[0], expected, atol=1e-5, rtol=1e-5)


def test_weighted_ridge_matches_the_closed_form():
    from rise_bench.explainers.lime import weighted_ridge

    generator = torch.Generator().manual_seed(0)
    features = torch.randint(0, 2, (50, 6), generator=generator).double()
    values = features @ torch.tensor([[1.0], [-2.0], [0.5], [0.0], [3.0], [1.0]], dtype=torch.float64) + 0.7
    weights = torch.rand(50, generator=generator, dtype=torch.float64)
    coefficients = weighted_ridge(features, values, weights, alpha=1e-9)
    torch.testing.assert_close(
        coefficients[:, 0], torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 1.0], dtype=torch.float64), atol=1e-6, rtol=0
    )
    shrunk = weighted_ridge(features, values, weights, alpha=10.0)
    assert float(shrunk.abs().sum()) < float(coefficients.abs().sum())


def test_perturbation_jitter_shifts_with_edge_padding():
    from rise_bench.explainers.perturbation import shift_images

    images = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    offsets = torch.tensor([[2, 2], [0, 3]])  # no shift; content 2 down and 1 left (jitter 2)
    shifted = shift_images(images, offsets, jitter=2)
    assert torch.equal(shifted[0], images[0])
    rows = (torch.arange(5) - 2).clamp(min=0)
    cols = (torch.arange(6) + 1).clamp(max=5)
    assert torch.equal(shifted[1], images[1][:, rows][:, :, cols])


def test_perturbation_mask_upsampling_as_matrices_equals_interpolate_and_blur():
    explainer = rise_bench.create_explainer("perturbation", mask_size=6, mask_blur_sigma=3.0)
    masks = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    direct = explainer.upsample_direct(masks, (40, 50))
    torch.testing.assert_close(explainer.upsample(masks, (40, 50)), direct, atol=1e-5, rtol=1e-5)
    # the gradient reaching the mask is the same too
    weights = torch.randn(3, 1, 40, 50)
    grads = []
    for function in (explainer.upsample_direct, explainer.upsample):
        leaf = masks.clone().requires_grad_(True)
        (function(leaf, (40, 50)) * weights).sum().backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)


def test_gradient_runs_in_fp32_under_bf16_autocast():
    from .helpers import make_region_model

    images = texture_images(2, seed=3)
    full = make_region_model()
    half = make_region_model()
    half.precision = "bf16"
    expected = rise_bench.create_explainer("gradient").explain(full, images, [0, 0])
    got = rise_bench.create_explainer("gradient").explain(half, images, [0, 0])
    torch.testing.assert_close(got, expected)
    assert half.precision == "bf16"
    with half.full_precision():
        assert half.precision == "fp32"


def test_baselines_ignore_the_model_and_follow_their_seed(region_model):
    from rise_bench.explainers.baselines import center_map

    images = texture_images(2, seed=6)
    center = rise_bench.create_explainer("center").explain(region_model, images, [[0, 1], [1, 0]])
    assert center.shape == (2, 2, *TINY_SIZE) and torch.equal(center[1, 0], center_map(TINY_SIZE))
    assert divmod(int(center_map((31, 41)).argmax()), 41) == (15, 20)
    random = rise_bench.create_explainer("random")
    first, again, other = (random.explain(region_model, images[:1], [0], seeds=[s]) for s in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, other)
