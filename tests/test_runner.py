"""The evaluate loop: rows, resume after an interruption, saved maps, configs, the CLI."""

from __future__ import annotations

import csv
import shutil
import tomllib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rise_bench import runner as runner_module
from rise_bench.cli import app
from rise_bench.config import RunConfig, to_toml
from rise_bench.errors import UsageError
from rise_bench.runner import COLUMNS, evaluate

from .conftest import DATA, IMAGENET_SAMPLE

#: A cheap ImageNet run: 3 images, fast methods, 9-point curves.
FAST = dict(dataset="imagenet", root=str(IMAGENET_SAMPLE), limit=3, methods=["gradcam,gradient"], step=224 * 28, batch_size=9)

cli = CliRunner()


def rows_of(path) -> list[tuple]:
    """Rows without run id and timing, sorted: what must match between runs."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        rows = [tuple(r[c] for c in COLUMNS if c not in ("run_id", "seconds")) for r in reader]
    return sorted(rows)


def test_rows_maps_curves_config_and_summary(tmp_path):
    out = tmp_path / "run"
    outcome = evaluate(RunConfig(**FAST, out=str(out)), log=lambda line: None)
    assert outcome.samples_done == 3 and not outcome.failures
    rows = pd.read_csv(out / "results.csv")
    methods = {"gradcam", "gradient", "center", "random"}
    assert set(rows.method) == methods | {"classifier"}
    scored = rows[rows.method != "classifier"]
    assert len(scored) == 3 * 4 * 2 and set(scored.metric) == {"deletion", "insertion"}
    assert scored.value.between(0, 1).all()
    saliency = np.load(out / "maps" / "gradcam" / "n01440764_tench.npy")
    assert saliency.shape == (1, 224, 224)
    curves = np.load(out / "curves" / "gradcam" / "n01440764_tench.npz")
    assert curves["deletion"].shape == (9,) and curves["insertion"].shape == (9,)
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["config"]["dataset"] == "imagenet" and config["config"]["step"] == 224 * 28
    assert len(config["provenance"]["weights"]["sha256"]) == 64
    assert {"torch", "timm", "rise-bench"} <= set(config["provenance"]["versions"])
    assert config["provenance"]["threads"] >= 1
    summary = pd.read_csv(out / "summary.csv")
    top1 = summary[(summary.method == "classifier") & (summary.metric == "top1")]
    correct = rows[(rows.method == "classifier") & (rows.metric == "top1")]
    assert len(correct) == 3 and float(top1.value.iloc[0]) == pytest.approx(correct.value.mean())
    assert set(summary[summary.method == "gradcam"].metric) == {"deletion", "insertion"}


def test_an_interrupted_run_resumes_to_the_same_rows(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    evaluate(RunConfig(**FAST, out=str(whole)), log=lambda line: None)
    broken = tmp_path / "broken"
    original = runner_module.Evaluation._evaluate_sample
    calls = []

    def interrupt_on_third(self, sample, methods, run_id, outcome):
        calls.append(sample.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, sample, methods, run_id, outcome)

    monkeypatch.setattr(runner_module.Evaluation, "_evaluate_sample", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        evaluate(RunConfig(**FAST, out=str(broken)), log=lambda line: None)
    monkeypatch.setattr(runner_module.Evaluation, "_evaluate_sample", original)
    assert len({r[1] for r in rows_of(broken / "results.csv")}) == 2  # two samples kept
    with pytest.raises(UsageError, match="--resume"):
        evaluate(RunConfig(**FAST, out=str(broken)), log=lambda line: None)
    outcome = evaluate(RunConfig(**FAST, out=str(broken), resume=True), log=lambda line: None)
    assert outcome.samples_skipped == 2 and outcome.samples_done == 1
    assert rows_of(broken / "results.csv") == rows_of(whole / "results.csv")
    again = evaluate(RunConfig(**FAST, out=str(broken), resume=True), log=lambda line: None)
    assert again.samples_done == 0 and rows_of(broken / "results.csv") == rows_of(whole / "results.csv")


def test_saved_maps_score_like_the_run_that_made_them(tmp_path):
    first = tmp_path / "first"
    evaluate(RunConfig(**FAST, out=str(first), baselines=False), log=lambda line: None)
    second = tmp_path / "second"
    evaluate(RunConfig(**{**FAST, "methods": ["all"]}, maps=str(first / "maps"), out=str(second), baselines=False), log=lambda line: None)
    a = pd.read_csv(first / "results.csv").set_index(["sample_id", "method", "metric"]).value
    b = pd.read_csv(second / "results.csv").set_index(["sample_id", "method", "metric"]).value
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), atol=1e-6)


def test_pointing_on_voc_with_an_imagenet_model(tmp_path):
    out = tmp_path / "voc"
    outcome = evaluate(
        RunConfig(dataset="voc", root=str(DATA / "voc"), limit=6, methods=["gradcam"], out=str(out)), log=lambda line: None
    )
    assert outcome.skipped_classes.get("person", 0) >= 1
    rows = pd.read_csv(out / "results.csv")
    assert set(rows.metric) == {"pointing"} and set(rows.subset) <= {"all", "difficult"}
    assert "person" not in set(rows.target)
    assert rows.value.isin([0.0, 1.0]).all()
    summary = pd.read_csv(out / "summary.csv")
    center = summary[(summary.method == "center") & (summary["class"] == "all") & (summary.subset == "all")]
    assert len(center) == 1


def test_config_files_and_cli_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(to_toml({"dataset": "voc", "root": "somewhere", "limit": 3, "params": {"rise.num_masks": 10}}))
    config = RunConfig.from_sources(path, limit=5, params=["seed=2"])
    assert config.dataset == "voc" and config.limit == 5 and config.params == ["rise.num_masks=10", "seed=2"]
    path.write_text('datset = "voc"\n')
    with pytest.raises(UsageError, match="did you mean: dataset"):
        RunConfig.from_sources(path)


def test_cli_evaluate_errors_and_a_missing_image(tmp_path):
    result = cli.invoke(app, ["evaluate", "--dataset", "vocc", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "did you mean: voc" in result.output
    result = cli.invoke(app, ["evaluate", "--dataset", "samples", "--metric", "pointing", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "pointing game needs boxes" in result.output
    images = tmp_path / "images"
    images.mkdir()
    for name in ("n01440764_tench.JPEG", "n01496331_electric_ray.JPEG"):
        shutil.copy(IMAGENET_SAMPLE / name, images / name)
    (images / "broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "run"
    result = cli.invoke(app, ["evaluate", "--dataset", "folder", "--root", str(images), "--method", "gradcam", "--step", str(224 * 56), "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "broken.jpg: not an image file" in result.output and "Traceback" not in result.output
    rows = pd.read_csv(out / "results.csv")
    assert set(rows.sample_id) == {"n01440764_tench.JPEG", "n01496331_electric_ray.JPEG"}
    assert "gradcam" in result.output and "deletion AUC (lower is better)" in result.output


def test_compare_tells_apart_one_method_run_with_two_settings(tmp_path):
    from rise_bench.report import read_results

    rows = [["r", "d", "s1", "m", "rise", "deletion", "cat", "all", 0.1, "aaa", 1.0]]
    for name, params_hash in (("small", "aaa"), ("large", "bbb")):
        folder = tmp_path / name
        folder.mkdir()
        frame = pd.DataFrame([row[:9] + [params_hash, 1.0] for row in rows], columns=COLUMNS)
        frame.to_csv(folder / "results.csv", index=False)
    combined = read_results([tmp_path / "small", tmp_path / "large"])
    assert sorted(combined.method) == ["rise (large)", "rise (small)"]
