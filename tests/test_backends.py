"""The fast scoring backends agree with PyTorch: OpenVINO and ONNX Runtime against torch fp32 on real images.

The rest of the suite pins ``RISE_BENCH_BACKEND=torch`` (conftest.py); these tests name
the backends. The model is exported once per test session (into the session's cache).
"""

from __future__ import annotations

import copy
import warnings

import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
from typer.testing import CliRunner

import rise_bench
from rise_bench import backends
from rise_bench.batch_size import _cache_key
from rise_bench.cli import app
from rise_bench.datasets.labels import load_labelmap
from rise_bench.errors import UsageError
from rise_bench.explainers import create_explainer
from rise_bench.explainers.gradcam import GradCam
from rise_bench.images import read_image
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion
from rise_bench.models import MappedClassifier

from .helpers import IMAGENET_SAMPLE, TINY_SIZE, make_region_model, texture_images

FAST = (backends.OPENVINO, backends.ONNXRUNTIME)
IMAGES = sorted(IMAGENET_SAMPLE.glob("*.JPEG"))[:4]
BF16_UNITS = backends.cpu_has_bf16()


@pytest.fixture(scope="module")
def fast_models():
    """tf_efficientnet_lite0 on each fast backend, fp32 (one export, shared through the cache)."""
    return {name: rise_bench.load_model(device="cpu", backend=name) for name in FAST}


@pytest.fixture(scope="module")
def images(default_model):
    return torch.stack([default_model.transform(read_image(path)) for path in IMAGES])


@pytest.fixture(scope="module")
def gradcam_maps(default_model, images):
    with torch.inference_mode():
        targets = default_model.scores(images).argmax(1)
    return GradCam().explain(default_model, images, targets), targets


def scores_of(model, images, kind="softmax"):
    with torch.inference_mode(), model.scores_only():
        return model.scores(images, kind)


def test_the_suite_pins_torch(default_model):
    assert default_model.backend == "torch" and default_model.scoring.scorer is None


@pytest.mark.parametrize("name", FAST)
def test_probabilities_agree_with_torch(name, fast_models, default_model, images):
    model = fast_models[name]
    assert model.backend == name
    expected = scores_of(default_model, images)
    for kind in ("softmax", "sigmoid", "logit"):
        got = scores_of(model, images, kind)
        reference = scores_of(default_model, images, kind)
        assert torch.allclose(got, reference, atol=1e-4 if kind != "logit" else 1e-3), kind
    assert float((scores_of(model, images) - expected).abs().max()) < 1e-4
    # outside scores_only() the passes are PyTorch's, bit for bit
    with torch.inference_mode():
        assert torch.equal(model.scores(images), default_model.scores(images))


@pytest.mark.parametrize("name", FAST)
def test_mapped_classifiers_score_as_with_torch(name, fast_models, default_model, images):
    class_map = load_labelmap("voc")
    mapped_fast = MappedClassifier(fast_models[name], class_map)
    mapped_torch = MappedClassifier(default_model, class_map)
    assert mapped_fast.backend == name
    for kind in ("softmax", "logit"):
        got, expected = scores_of(mapped_fast, images, kind), scores_of(mapped_torch, images, kind)
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-3), kind


@pytest.mark.parametrize("name", FAST)
def test_rise_maps_rank_like_torch(name, fast_models, default_model, images):
    rise = create_explainer("rise", num_masks=400)
    with torch.inference_mode():
        target = default_model.scores(images[:1]).argmax(1)
    expected = rise.explain(default_model, images[:1], target, batch_size=16)
    passes = fast_models[name].pass_counter.count
    got = rise.explain(fast_models[name], images[:1], target, batch_size=16)
    assert fast_models[name].pass_counter.count - passes == 400  # counted as with torch
    assert spearmanr(got.flatten().numpy(), expected.flatten().numpy()).statistic > 0.999


def mean_aucs(model, images, maps, targets) -> tuple[float, float]:
    removed = deletion(model, images, maps, targets, step=1792, batch_size=16).auc.mean()
    inserted = insertion(model, images, maps, targets, step=1792, batch_size=16).auc.mean()
    return float(removed), float(inserted)


@pytest.mark.parametrize("name", FAST)
def test_deletion_and_insertion_agree_in_fp32(name, fast_models, default_model, images, gradcam_maps):
    maps, targets = gradcam_maps
    expected = mean_aucs(default_model, images, maps, targets)
    got = mean_aucs(fast_models[name], images, maps, targets)
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-3


@pytest.mark.skipif(not BF16_UNITS, reason="this CPU has no bf16 units (AVX-512-BF16 or AMX): bf16 would be emulated")
def test_openvino_bf16_agrees_within_a_hundredth(default_model, images, gradcam_maps):
    model = rise_bench.load_model(device="cpu", backend="openvino", precision="bf16")
    assert model.backend == "openvino bf16" and model.scoring.scorer.precision == "bf16"
    maps, targets = gradcam_maps
    expected = mean_aucs(default_model, images, maps, targets)
    got = mean_aucs(model, images, maps, targets)
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 0.01
    assert got != expected  # it really ran in bf16


def test_bf16_without_bf16_units_warns_and_runs_fp32(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    heard = []
    model = rise_bench.load_model(device="cpu", backend="torch", precision="bf16", log=heard.append)
    assert model.precision == "fp32" and model.backend == "torch"
    assert len(heard) == 1 and "no bf16 units" in heard[0] and "fp32" in heard[0]
    with pytest.warns(RuntimeWarning, match="no bf16 units"):  # the Python API, with no log, warns
        rise_bench.load_model(device="cpu", backend="torch", precision="bf16")
    chosen = backends.resolve_precision("auto", torch.device("cpu"), backends.OPENVINO)
    assert (chosen.torch, chosen.backend) == ("fp32", "fp32")
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    chosen = backends.resolve_precision("auto", torch.device("cpu"), backends.OPENVINO)
    assert (chosen.torch, chosen.backend) == ("fp32", "bf16")
    chosen = backends.resolve_precision("bf16", torch.device("cpu"), backends.ONNXRUNTIME)
    assert chosen.backend == "fp32" and "onnxruntime" in chosen.note
    with pytest.raises(UsageError, match="unknown precision"):
        backends.resolve_precision("fp8", torch.device("cpu"), backends.TORCH)


def test_auto_order_is_fixed(monkeypatch):
    assert backends.candidates("auto", torch.device("cpu")) == ("openvino", "onnxruntime", "torch")
    assert backends.candidates("auto", torch.device("meta")) == ("torch",)  # GPUs (any accelerator): torch
    monkeypatch.setattr(backends, "installed", lambda name: name != "openvino")
    assert backends.candidates("auto", torch.device("cpu")) == ("onnxruntime", "torch")
    with pytest.raises(UsageError, match="pip install openvino"):
        backends.candidates("openvino", torch.device("cpu"))
    with pytest.raises(UsageError, match="unknown backend 'tensorrt'"):
        backends.check_backend("tensorrt")


def test_export_cache_is_reused_and_rebuilt_when_the_weights_change(tmp_path, monkeypatch):
    monkeypatch.setenv("RISE_BENCH_CACHE", str(tmp_path))
    net = make_region_model().net
    heard = []
    first = backends.export_onnx(net, "region", TINY_SIZE, heard.append)
    stamp = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "onnx" and len(heard) == 1
    assert backends.export_onnx(net, "region", TINY_SIZE, heard.append) == first
    assert first.stat().st_mtime_ns == stamp and len(heard) == 1  # reused: no second export
    with torch.no_grad():
        net.head.bias[0] += 1.0
    second = backends.export_onnx(net, "region", TINY_SIZE, heard.append)
    assert second != first and len(heard) == 2 and first.is_file()
    assert not list((tmp_path / "onnx").glob(".*.tmp"))  # written through a temporary file
    images = texture_images(3)
    scorer = backends.make_scorer("openvino", second, torch.device("cpu"), "fp32")
    with torch.no_grad():
        assert torch.allclose(scorer(images), net(images), atol=1e-5)


class OddNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.fft.fft2(self.conv(x)).abs().mean((2, 3)))  # no ONNX translation of fft2


def test_an_unexportable_model_falls_back_to_torch_in_one_line(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("RISE_BENCH_CACHE", str(tmp_path))
    heard = []
    scorer, chosen = backends.attach_backend(
        OddNet().eval(), "odd", TINY_SIZE, torch.device("cpu"), "auto", "fp32", heard.append
    )
    assert scorer is None and chosen.backend == "fp32"
    assert len(heard) == 1 and heard[0].startswith("cannot export odd to ONNX (") and "scoring with torch" in heard[0]
    assert "\n" not in heard[0] and "fft" in heard[0]
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""  # the exporter's dump of the graph is not shown
    assert not list((tmp_path / "onnx").iterdir())  # no half-written export left behind


def test_an_export_that_disagrees_with_torch_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("RISE_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(backends, "agreement", lambda *args: 0.5)
    heard = []
    scorer, _ = backends.attach_backend(
        make_region_model().net, "region", TINY_SIZE, torch.device("cpu"), "openvino", "fp32", heard.append
    )
    assert scorer is None and "disagrees with torch" in heard[-1]


def test_a_copy_of_the_model_scores_with_torch(fast_models):
    """Model randomisation changes a copy's weights: the copy must not keep the original's export."""
    copied = copy.deepcopy(fast_models["openvino"])
    assert copied.scoring.scorer is None and copied.backend == "torch"
    assert fast_models["openvino"].backend == "openvino"


def test_batch_sizes_are_cached_per_backend(fast_models, default_model):
    keys = {_cache_key(model) for model in (default_model, *fast_models.values())}
    assert len(keys) == 3 and any("|openvino|" in key for key in keys)


def static_export(net: nn.Module, path, batch: int) -> None:
    """An ONNX file with a fixed batch size, as some deployed models are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(batch, 3, *TINY_SIZE),), str(path), dynamo=False, input_names=["input"])


def test_a_fixed_batch_onnx_file_scores_any_batch(tmp_path):
    net = make_region_model().net
    path = tmp_path / "fixed.onnx"
    static_export(net, path, batch=2)
    images = texture_images(5)
    for engine in FAST:
        scorer = backends.make_scorer(engine, path, torch.device("cpu"), "fp32", fixed_batch=2)
        with torch.no_grad():
            assert torch.allclose(scorer(images), net(images), atol=1e-5), engine


# -- ONNX files as black boxes ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, default_model):
    """tf_efficientnet_lite0 exported here, carrying its normalisation in the file's metadata."""
    import onnx

    exported = backends.export_onnx(default_model.net, default_model.name, default_model.input_size)
    model = onnx.load(str(exported))
    carried = {
        "mean": ",".join(map(str, default_model.mean)),
        "std": ",".join(map(str, default_model.std)),
        "interpolation": default_model.interpolation,
    }
    for key, value in carried.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path_factory.mktemp("onnx") / "lite0.onnx"
    onnx.save(model, str(path))
    return path


def test_an_onnx_file_is_a_black_box_classifier(onnx_file, default_model, images):
    heard = []
    model = rise_bench.load_model(str(onnx_file), device="cpu", backend="auto", log=heard.append)
    assert not model.differentiable and model.cam_layer is None and heard == []
    assert model.input_size == default_model.input_size and model.classes == default_model.classes
    assert model.mean == pytest.approx(default_model.mean) and model.backend == "openvino"
    assert torch.allclose(model.transform(read_image(IMAGES[0])), images[0])
    with torch.inference_mode():  # all its passes are the backend's
        assert torch.allclose(model.scores(images), default_model.scores(images), atol=1e-4)
    with pytest.raises(UsageError, match="black box"):
        model(images[:1].clone().requires_grad_(True))


def test_an_onnx_file_with_probabilities_and_class_names(tmp_path):
    net = nn.Sequential(make_region_model().net, nn.Softmax(dim=1))
    path = tmp_path / "probabilities.onnx"
    static_export(net, path, batch=1)
    (tmp_path / "classes.txt").write_text("inside\noutside\n")
    heard = []
    model = rise_bench.load_model(
        str(path), device="cpu", backend="onnxruntime", mean=(0, 0, 0), std=(1, 1, 1),
        classes=tmp_path / "classes.txt", log=heard.append,
    )  # fmt: skip
    assert model.classes == ["inside", "outside"] and model.input_size == TINY_SIZE and model.backend == "onnxruntime"
    assert any("probabilities" in line for line in heard)
    images = texture_images(3)
    with torch.inference_mode():
        assert torch.allclose(model.scores(images), net(images), atol=1e-5)
    with pytest.raises(UsageError, match="3 class names for a model with 2 outputs"):
        rise_bench.load_model(str(path), backend="onnxruntime", classes=["a", "b", "c"], log=heard.append)
    with pytest.raises(UsageError, match="contradicts"):
        rise_bench.load_model(str(path), backend="onnxruntime", input_size=224, log=heard.append)
    with pytest.raises(UsageError, match="not torch"):
        rise_bench.load_model(str(path), backend="torch")
    with pytest.raises(UsageError, match="describe an ONNX file"):
        rise_bench.load_model("tf_efficientnet_lite0", input_size=224)


def test_a_broken_onnx_file_is_one_line(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all")
    runner = CliRunner()
    result = runner.invoke(app, ["explain", "sample:chelsea", "--model", str(broken), "--method", "rise"])
    assert result.exit_code != 0 and "cannot read ONNX file" in result.output
    assert "Traceback" not in result.output


def test_gradient_methods_on_an_onnx_file_name_the_ones_that_work(onnx_file):
    result = CliRunner().invoke(app, ["explain", "sample:chelsea", "--model", str(onnx_file), "--method", "gradcam"])
    assert result.exit_code == 2
    assert "gradcam needs gradients" in result.output and "rise, lime, hsic, sobol" in result.output


def test_an_onnx_file_runs_through_evaluate(onnx_file, tmp_path):
    out = tmp_path / "run"
    arguments = [
        "evaluate", "--dataset", "imagenet", "--root", str(IMAGENET_SAMPLE), "--limit", "2", "--model",
        str(onnx_file), "--backend", "auto", "--method", "rise", "--param", "rise.num_masks=120", "--metric",
        "deletion", "--step", "3584", "--no-baselines", "--out", str(out), "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    scored = rows[rows.method == "rise"]
    assert len(scored) == 2 and set(scored.backend) == {"openvino"} and set(scored.model) == {"lite0.onnx"}
    assert scored.value.between(0, 1).all() and (scored.forward_passes == 120).all()
    assert 'backend = "openvino"' in (out / "config.toml").read_text()
    assert "scoring backend: openvino" in result.output


def test_method_all_on_an_onnx_file_is_the_gradient_free_methods():
    from rise_bench.explainers.registry import expand_methods

    chosen = expand_methods(["all"], gradient_free=True)
    assert chosen == ["rise", "lime", "hsic", "sobol"]
    assert set(chosen) == {n for n in expand_methods(["all"]) if not create_explainer(n).needs_gradients}
    with pytest.raises(UsageError, match="'randomisation_ssim' changes the model's weights"):
        from rise_bench.metrics.base import select_metrics

        select_metrics(["randomisation_ssim"], False, "imagenet", black_box=True)


def test_compare_says_when_runs_differ_in_backend(tmp_path):
    from rise_bench.reporting.compare import backend_note
    from rise_bench.reporting.summary import read_results

    frames = []
    header = "run_id,dataset,sample_id,model,method,metric,target,subset,value,params_hash,seconds,metric_params,"
    for run, backend in (("a", "openvino"), ("b", "torch")):
        folder = tmp_path / run
        folder.mkdir()
        (folder / "results.csv").write_text(
            header + "forward_passes,backend\n"
            f"r,imagenet,s1,m,rise,deletion,t,all,0.1,h,1.0,mp,100,{backend}\n"
            f"r,imagenet,s2,m,rise,deletion,t,all,0.2,h,1.0,mp,100,{backend}\n"
        )
        frames.append(folder)
    note = backend_note(read_results(frames))
    assert "different backends" in note and "openvino" in note and "torch" in note
    assert backend_note(read_results(frames[:1])) == ""
