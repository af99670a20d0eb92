"""The Captum and pytorch-grad-cam adapters give what the libraries give for the same call, on a real image."""

from __future__ import annotations

import sys

import numpy
import pytest
import torch

import rise_bench
from rise_bench.errors import UsageError
from rise_bench.explainers import explainer_class
from rise_bench.explainers.registry import expand_methods
from rise_bench.images import read_image

from .helpers import IMAGENET_SAMPLE, texture_images

#: Cheapest settings that still exercise each Captum method on a 224 x 224 image.
CAPTUM_CHEAP = {
    "IntegratedGradients": {"n_steps": 4},
    "Saliency": {},
    "InputXGradient": {},
    "GuidedBackprop": {},
    "Deconvolution": {},
    "DeepLift": {},
    "DeepLiftShap": {},
    "GradientShap": {"n_samples": 2},
    "Occlusion": {"window": 56, "stride": 56},
    "FeatureAblation": {"num_segments": 20},
    "ShapleyValueSampling": {"n_samples": 1, "num_segments": 20},
    "KernelShap": {"n_samples": 16, "num_segments": 20},
    "Lime": {"n_samples": 16, "num_segments": 20},
    "LayerGradCam": {},
}
TARGET = 10  # brambling


@pytest.fixture(scope="module")
def brambling(default_model):
    return default_model.transform(read_image(IMAGENET_SAMPLE / "n01530575_brambling.JPEG"))[None]


def direct_captum_call(name: str, model, image: torch.Tensor, params) -> torch.Tensor:
    """Captum called by hand, without the adapter: the reference the adapter must equal exactly."""
    import captum.attr as attr

    from rise_bench.explainers.lime import superpixels

    class Scores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return model.scores(x, params.score)

    forward = Scores()
    zero = torch.zeros_like(image)
    black = model.normalise(torch.zeros_like(image))
    mask = superpixels(model.denormalise(image[0]), getattr(params, "num_segments", 50), 10.0)[None, None]
    calls = {
        "IntegratedGradients": lambda: attr.IntegratedGradients(forward).attribute(
            image, baselines=zero, target=TARGET, n_steps=params.n_steps, internal_batch_size=16
        ),
        "Saliency": lambda: attr.Saliency(forward).attribute(image, target=TARGET),
        "InputXGradient": lambda: attr.InputXGradient(forward).attribute(image, target=TARGET),
        "GuidedBackprop": lambda: attr.GuidedBackprop(forward).attribute(image, target=TARGET),
        "Deconvolution": lambda: attr.Deconvolution(forward).attribute(image, target=TARGET),
        "DeepLift": lambda: attr.DeepLift(forward).attribute(image, baselines=zero, target=TARGET),
        "DeepLiftShap": lambda: attr.DeepLiftShap(forward).attribute(
            image, baselines=torch.cat([zero, black]), target=TARGET
        ),
        "GradientShap": lambda: attr.GradientShap(forward).attribute(
            image, baselines=torch.cat([zero, black]), target=TARGET, n_samples=params.n_samples
        ),
        "Occlusion": lambda: attr.Occlusion(forward).attribute(
            image,
            sliding_window_shapes=(3, 56, 56),
            strides=(3, 56, 56),
            baselines=zero,
            target=TARGET,
            perturbations_per_eval=16,
        ),  # fmt: skip
        "FeatureAblation": lambda: attr.FeatureAblation(forward).attribute(
            image, baselines=zero, target=TARGET, feature_mask=mask, perturbations_per_eval=16
        ),
        "ShapleyValueSampling": lambda: attr.ShapleyValueSampling(forward).attribute(
            image, baselines=zero, target=TARGET, feature_mask=mask, n_samples=1, perturbations_per_eval=16
        ),
        "KernelShap": lambda: attr.KernelShap(forward).attribute(
            image, baselines=zero, target=TARGET, feature_mask=mask, n_samples=16, perturbations_per_eval=16
        ),
        "Lime": lambda: attr.Lime(forward).attribute(
            image, baselines=zero, target=TARGET, feature_mask=mask, n_samples=16, perturbations_per_eval=16
        ),
        "LayerGradCam": lambda: attr.LayerGradCam(forward, model.cam_layer).attribute(image, target=TARGET),
    }
    torch.manual_seed(0)  # the adapter seeds the global RNGs with the image's seed (0 here)
    numpy.random.seed(0)
    return calls[name]()


@pytest.mark.parametrize("name", list(CAPTUM_CHEAP))
def test_captum_adapter_equals_captum(name, default_model, brambling):
    adapter = rise_bench.create_explainer(f"captum:{name}", **CAPTUM_CHEAP[name])
    raw = adapter.attribute(default_model, brambling, TARGET, seed=0, batch_size=16)
    expected = direct_captum_call(name, default_model, brambling, adapter.params)
    assert torch.equal(raw, expected)
    saliency = adapter.explain(default_model, brambling, [TARGET], seeds=[0], batch_size=16)[0]
    if name == "LayerGradCam":  # its own convention: one channel at the layer's resolution, upsampled
        assert raw.shape[1] == 1 and raw.shape[-1] < brambling.shape[-1]
        upsampled = torch.nn.functional.interpolate(raw, size=(224, 224), mode="bilinear", align_corners=False)
        torch.testing.assert_close(saliency, upsampled[0, 0])
    else:  # the documented reduction: sum of absolute values over channels
        torch.testing.assert_close(saliency, raw[0].abs().sum(0))


def test_captum_noise_tunnel_is_captums(default_model, brambling):
    import captum.attr as attr

    adapter = rise_bench.create_explainer("captum:Saliency", noise_tunnel="smoothgrad", nt_samples=3, stdevs=0.2)
    raw = adapter.attribute(default_model, brambling, TARGET, seed=4)
    torch.manual_seed(4)
    expected = attr.NoiseTunnel(attr.Saliency(lambda x: default_model.scores(x, "logit"))).attribute(
        brambling, nt_type="smoothgrad", nt_samples=3, stdevs=0.2, target=TARGET
    )
    assert torch.equal(raw, expected)
    other = adapter.attribute(default_model, brambling, TARGET, seed=5)
    assert not torch.equal(raw, other)


def correlation(first, second) -> float:
    pair = torch.stack([torch.as_tensor(first).flatten(), torch.as_tensor(second).flatten()])
    return float(torch.corrcoef(pair)[0, 1])


def direct_grad_cam(name: str, model, images: torch.Tensor, targets: list[int], **settings):
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return model.scores(x, "logit")

    cam = getattr(pytorch_grad_cam, name)(
        model=Logits(), target_layers=[model.cam_layer], reshape_transform=model.cam_reshape
    )
    for key, value in settings.items():
        setattr(cam, key, value)
    with cam:
        chosen = [ClassifierOutputTarget(t) for t in targets]
        return cam(input_tensor=images.clone().requires_grad_(True), targets=chosen)


@pytest.mark.parametrize("name", ["GradCAM", "HiResCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "EigenCAM"])
def test_grad_cam_adapter_equals_the_library_on_the_real_model(name, default_model, brambling):
    ours = rise_bench.create_explainer(f"grad-cam:{name}").explain(default_model, brambling, [TARGET])[0]
    expected = direct_grad_cam(name, default_model, brambling, [TARGET])[0]
    assert ours.shape == (224, 224) and correlation(ours, expected) > 0.999


@pytest.mark.parametrize("name", ["ScoreCAM", "AblationCAM", "FullGrad", "EigenGradCAM"])
def test_grad_cam_adapter_equals_the_library_on_the_tiny_model(name, region_model):
    images = texture_images(2, seed=3)
    ours = rise_bench.create_explainer(f"grad-cam:{name}").explain(region_model, images, [0, 0], batch_size=3)
    expected = direct_grad_cam(name, region_model, images, [0, 0], batch_size=3)
    for index in range(2):
        assert correlation(ours[index], expected[index]) > 0.999


def test_grad_cam_adapter_reshapes_vit_tokens(tmp_path):
    import timm

    path = tmp_path / "vit.pt"
    torch.manual_seed(0)
    torch.save(timm.create_model("vit_tiny_patch16_224").state_dict(), path)
    model = rise_bench.load_model("vit_tiny_patch16_224", weights=path, device="cpu")
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    ours = rise_bench.create_explainer("grad-cam:GradCAM").explain(model, images, [3])[0]
    expected = direct_grad_cam("GradCAM", model, images, [3])[0]
    assert ours.shape == (224, 224) and float(ours.std()) > 0
    assert correlation(ours, expected) > 0.999
    # without the token reshape the library could not read a [B, tokens, C] activation as a map
    assert model.cam_reshape is not None


MISSING = [("captum:Saliency", "captum", "captum"), ("grad-cam:GradCAM", "pytorch_grad_cam", "grad-cam")]


@pytest.mark.parametrize(("name", "module", "extra"), MISSING)
def test_an_adapter_without_its_library_names_the_extra(name, module, extra, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from rise_bench.cli import app

    monkeypatch.setitem(sys.modules, module, None)  # a blocked import, as when the extra is not installed
    with pytest.raises(UsageError, match=rf'pip install "rise-bench\[{extra}\]"'):
        expand_methods([f"rise,{name}"])
    with pytest.raises(UsageError, match=rf'pip install "rise-bench\[{extra}\]"'):
        expand_methods([f"smoothgrad:{name}"])  # a wrapped adapter says the same
    image = IMAGENET_SAMPLE / "n01530575_brambling.JPEG"
    result = CliRunner().invoke(app, ["explain", str(image), "--method", name, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"rise-bench[{extra}]" in lines[0] and "Traceback" not in result.output


def test_explain_writes_adapter_maps_under_names_without_colons(tmp_path):
    from typer.testing import CliRunner

    from rise_bench.cli import app

    image = IMAGENET_SAMPLE / "n01530575_brambling.JPEG"
    result = CliRunner().invoke(app, ["explain", str(image), "--method", "captum:Saliency", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = tmp_path / "n01530575_brambling" / "captum-Saliency.npy"
    assert saved.is_file() and not list(tmp_path.rglob("*:*"))


def test_adapter_names_are_listed_and_kept_out_of_all():
    assert explainer_class("captum:IntegratedGradients").library == "captum"
    assert explainer_class("grad-cam:ScoreCAM").library == "pytorch-grad-cam"
    everything = expand_methods(["all"])
    assert not any(":" in name for name in everything)
    with pytest.raises(UsageError, match="did you mean: captum:IntegratedGradients"):
        expand_methods(["captum:IntegratedGradient"])
