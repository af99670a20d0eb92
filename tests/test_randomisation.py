"""Model-randomisation sanity check (Adebayo et al. 2018): steps, seeded resets, known answers on real models."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import torch
import torchvision

from rise_bench.console import Reporter
from rise_bench.errors import UsageError
from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.runner import evaluate
from rise_bench.metrics.randomisation import cascading_randomisation, randomisation_steps, reset_modules

from .helpers import IMAGENET_SAMPLE


def checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def test_steps_go_from_the_head_down_through_the_stages_to_the_stem(default_model):
    names = [name for name, _ in randomisation_steps(default_model.net)]
    assert names == ["head", *[f"blocks.{i}" for i in range(6, -1, -1)], "stem"]
    resnet = torchvision.models.resnet18()
    assert [name for name, _ in randomisation_steps(resnet)] == ["head", "layer4", "layer3", "layer2", "layer1", "stem"]


def test_resets_are_seeded_and_leave_the_global_rng_and_the_original_alone(default_model):
    before, state = checksum(default_model), torch.random.get_rng_state()
    first = [checksum(m) for _, _, m in cascading_randomisation(default_model, seed=3)][-1]
    again = [checksum(m) for _, _, m in cascading_randomisation(default_model, seed=3)][-1]
    other = [checksum(m) for _, _, m in cascading_randomisation(default_model, seed=4)][-1]
    assert first == again != other
    assert checksum(default_model) == before and torch.equal(torch.random.get_rng_state(), state)
    layer = torch.nn.BatchNorm2d(3)
    layer.running_mean.fill_(5.0)
    reset_modules([layer], seed=0)
    assert layer.running_mean.abs().max() == 0  # batch-norm statistics are reset too


@pytest.fixture(scope="module")
def randomised_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("randomisation") / "run"
    config = RunConfig(
        dataset="imagenet", root=str(IMAGENET_SAMPLE), limit=1, methods=["gradcam"],
        metrics=["randomisation_spearman", "randomisation_ssim"], out=str(out),
    )  # fmt: skip
    described = []

    def make_reporter(description, quiet_for=0.0):
        described.append(description)
        return Reporter(description, "quiet")

    evaluate(config, make_reporter, log=lambda line: None)
    (out / "reporters.txt").write_text("\n".join(described))
    return out


def test_each_re_explanation_reports_its_progress(randomised_run):
    described = (randomised_run / "reporters.txt").read_text().splitlines()
    again = [d for d in described if "re-explanation" in d and d.startswith("  gradcam on")]
    assert len(again) == 9 and again[-1].endswith("re-explanation 9")  # one per depth, shared by both statistics


def test_center_ignores_the_model_and_gradcam_does_not(randomised_run):
    rows = pd.read_csv(randomised_run / "results.csv")
    center = rows[(rows.method == "center") & (rows.metric == "randomisation_spearman")]
    assert len(center) == 10 and (center.value - 1).abs().max() < 1e-9  # 9 steps and the headline, all 1
    ssim = rows[(rows.method == "center") & (rows.metric == "randomisation_ssim")]
    assert len(ssim) == 10 and (ssim.value - 1).abs().max() < 1e-9
    gradcam = rows[(rows.method == "gradcam") & (rows.metric == "randomisation_spearman")]
    headline = gradcam[gradcam.subset == "all"].value
    constant = gradcam[gradcam.subset == "constant"]
    assert (len(headline) and headline.iloc[0] < 0.5) or len(constant), gradcam  # destroyed model, other map
    steps = gradcam[gradcam.subset.str.startswith("step")]
    assert steps.subset.iloc[0] == "step1:head"
    summary = pd.read_csv(randomised_run / "summary.csv")
    shown = summary[(summary.metric == "randomisation_spearman") & (summary.method == "center")]
    assert "all" in set(shown.subset) and any(s.startswith("step") for s in shown.subset)


def test_saved_maps_cannot_be_randomised(tmp_path):
    with pytest.raises(UsageError, match="cannot score saved maps"):
        evaluate(
            RunConfig(
                dataset="samples", metrics=["randomisation_spearman"], maps=str(tmp_path), out=str(tmp_path / "o")
            ),
            log=lambda line: None,
        )


def test_compare_draws_similarity_versus_depth(randomised_run, tmp_path):
    from typer.testing import CliRunner

    from rise_bench.cli import app
    from rise_bench.reporting.plots import depth_curves
    from rise_bench.reporting.summary import read_results

    curves = depth_curves(read_results([randomised_run]))
    center = curves["randomisation_spearman"]["center"]
    assert [step for step, _ in center][:2] == ["step1:head", "step2:blocks.6"] and len(center) == 9
    assert all(abs(value - 1) < 1e-9 for _, value in center)
    assert (randomised_run / "randomisation.png").is_file()
    result = CliRunner().invoke(app, ["compare", str(randomised_run), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0 and (tmp_path / "cmp" / "randomisation.png").is_file()
