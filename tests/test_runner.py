"""The evaluate loop: rows, resume after an interruption, saved maps, configs, the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import tomllib
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.datasets.imagenet import ImageNetDataset
from rise_bench.errors import UsageError
from rise_bench.evaluation.config import RunConfig, to_toml
from rise_bench.evaluation.results import BASE_COLUMNS, COLUMNS
from rise_bench.evaluation.runner import evaluate

from .helpers import DATA, FAST, IMAGENET_SAMPLE, forbid_model_loading, rows_of

cli = CliRunner()


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
    # the explanation's cost: one forward pass per image for the gradient methods, none for the baselines
    passes = scored.groupby("method").forward_passes.unique()
    assert list(passes["gradcam"]) == [1] and list(passes["gradient"]) == [1] and list(passes["random"]) == [0]
    assert rows[rows.method == "classifier"].forward_passes.isna().all()
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
    original = ImageNetDataset.load
    calls = []

    def interrupt_on_third(self, sample_id):  # Ctrl-C while the third sample is read
        calls.append(sample_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, sample_id)

    monkeypatch.setattr(ImageNetDataset, "load", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        evaluate(RunConfig(**FAST, out=str(broken)), log=lambda line: None)
    monkeypatch.undo()
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
    evaluate(
        RunConfig(**{**FAST, "methods": ["all"]}, maps=str(first / "maps"), out=str(second), baselines=False),
        log=lambda line: None,
    )
    a = pd.read_csv(first / "results.csv").set_index(["sample_id", "method", "metric"]).value
    saved = pd.read_csv(second / "results.csv")
    assert saved[saved.method != "classifier"].forward_passes.isna().all()  # saved maps cost nothing we know of
    b = saved.set_index(["sample_id", "method", "metric"]).value
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), atol=1e-6)


def test_pointing_on_voc_with_an_imagenet_model(tmp_path):
    out = tmp_path / "voc"
    outcome = evaluate(
        RunConfig(dataset="voc", root=str(DATA / "voc"), limit=6, methods=["gradcam"], out=str(out)),
        log=lambda line: None,
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
    assert result.exit_code == 2 and "metric 'pointing' needs boxes or masks" in result.output
    images = tmp_path / "images"
    images.mkdir()
    for name in ("n01440764_tench.JPEG", "n01496331_electric_ray.JPEG"):
        shutil.copy(IMAGENET_SAMPLE / name, images / name)
    (images / "broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "run"
    result = cli.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "folder",
            "--root",
            str(images),
            "--method",
            "gradcam",
            "--step",
            str(224 * 56),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "broken.jpg: not an image file" in result.output and "Traceback" not in result.output
    assert "forward passes per image: gradcam 1" in result.output
    rows = pd.read_csv(out / "results.csv")
    assert set(rows.sample_id) == {"n01440764_tench.JPEG", "n01496331_electric_ray.JPEG"}
    assert "gradcam" in result.output and "deletion AUC (lower is better)" in result.output


def test_compare_tells_apart_one_method_run_with_two_settings(tmp_path):
    from rise_bench.reporting.summary import read_results

    row = ["r", "d", "s1", "m", "rise", "deletion", "cat", "all", 0.1]
    for name, params_hash, metric_params in (("small", "aaa", "m1"), ("large", "bbb", "m1"), ("coarse", "aaa", "m2")):
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame([row + [params_hash, 1.0, metric_params, 1000, "torch"]], columns=COLUMNS).to_csv(
            folder / "results.csv", index=False
        )
    combined = read_results([tmp_path / "small", tmp_path / "large", tmp_path / "coarse"])
    assert sorted(combined.method) == ["rise (coarse)", "rise (large)", "rise (small)"]
    same = read_results([tmp_path / "small", tmp_path / "small"])
    assert list(same.method) == ["rise"]  # the same rows twice are one result


def test_lime_seed_changes_its_maps_and_the_same_seed_gives_the_same_bytes(tmp_path):
    base = dict(
        dataset="imagenet",
        root=str(IMAGENET_SAMPLE),
        limit=1,
        methods=["lime"],
        metrics=["deletion"],
        step=224 * 56,
        baselines=False,
        params=["lime.num_samples=30"],
    )
    for name, seed in (("a", "0"), ("b", "5"), ("c", "5")):
        config = RunConfig(**{**base, "params": base["params"] + [f"lime.seed={seed}"]}, out=str(tmp_path / name))
        evaluate(config, log=lambda line: None)
    files = {name: (tmp_path / name / "maps" / "lime" / "n01440764_tench.npy").read_bytes() for name in "abc"}
    assert files["b"] == files["c"] and files["a"] != files["b"]
    default = tmp_path / "d"
    evaluate(RunConfig(**base, out=str(default)), log=lambda line: None)  # the method seed defaults to --seed 0
    assert (default / "maps" / "lime" / "n01440764_tench.npy").read_bytes() == files["a"]


def test_metric_parameters_reach_the_rows_and_step_is_their_shorthand(tmp_path):
    base = dict(dataset="imagenet", root=str(IMAGENET_SAMPLE), limit=1, methods=["gradcam"], baselines=False)
    evaluate(RunConfig(**base, step=224 * 28, out=str(tmp_path / "step")), log=lambda line: None)
    params = ["deletion.step=6272", "insertion.step=6272"]
    evaluate(RunConfig(**base, params=params, out=str(tmp_path / "param")), log=lambda line: None)
    first, second = (pd.read_csv(tmp_path / n / "results.csv", keep_default_na=False) for n in ("step", "param"))
    assert list(first.columns) == COLUMNS
    pd.testing.assert_frame_equal(first.drop(columns=["run_id", "seconds"]), second.drop(columns=["run_id", "seconds"]))
    scored = first[first.method == "gradcam"]
    assert scored.metric_params.str.len().eq(12).all() and scored.metric_params.nunique() == 2
    config = tomllib.loads((tmp_path / "step" / "config.toml").read_text())
    assert config["metric_params"]["deletion"]["step"] == 6272
    assert np.load(tmp_path / "step" / "curves" / "gradcam" / "n01440764_tench.npz")["deletion"].shape == (9,)
    with pytest.raises(UsageError, match="no selected method or metric has parameter 'stepp'"):
        evaluate(RunConfig(**base, params=["stepp=3"], out=str(tmp_path / "x")), log=lambda line: None)
    with pytest.raises(UsageError, match="unknown method or metric 'delition'"):
        evaluate(RunConfig(**base, params=["delition.step=3"], out=str(tmp_path / "x")), log=lambda line: None)


def test_a_results_file_of_the_previous_schema_is_read_and_resumed(tmp_path):
    from rise_bench.reporting.summary import read_results

    whole = tmp_path / "whole"
    evaluate(RunConfig(**FAST, out=str(whole)), log=lambda line: None)
    old = tmp_path / "old"
    old.mkdir()
    frame = pd.read_csv(whole / "results.csv", keep_default_na=False, dtype=str)
    first_two = frame[frame.sample_id.isin(frame.sample_id.unique()[:2])]
    first_two[BASE_COLUMNS].to_csv(old / "results.csv", index=False)  # as an earlier version wrote it
    assert read_results([old]).metric_params.eq("").all()
    outcome = evaluate(RunConfig(**FAST, out=str(old), resume=True), log=lambda line: None)
    assert outcome.samples_skipped == 2 and outcome.samples_done == 1
    resumed = pd.read_csv(old / "results.csv", keep_default_na=False)
    assert list(resumed.columns) == COLUMNS and len(resumed) == len(frame)
    assert [tuple(r) for r in resumed[BASE_COLUMNS[2:9]].itertuples(index=False)] == [
        tuple(r)
        for r in pd.read_csv(whole / "results.csv", keep_default_na=False)[BASE_COLUMNS[2:9]].itertuples(index=False)
    ]


def test_maps_with_nan_or_inf_are_flagged_invalid_and_never_scored(tmp_path, monkeypatch):
    saved = tmp_path / "saved"
    ids = ["n01440764_tench", "n01496331_electric_ray", "n01530575_brambling"]
    (saved / "mine").mkdir(parents=True)
    good = np.random.default_rng(0).random((224, 224)).astype(np.float32)
    for sample_id, bad in zip(ids, [np.nan, np.inf, None], strict=True):
        array = good.copy()
        if bad is not None:
            array[5, 7] = bad
        np.save(saved / "mine" / f"{sample_id}.npy", array)
    out = tmp_path / "maps"
    base = {**FAST, "methods": ["mine"], "baselines": False}
    evaluate(RunConfig(**base, maps=str(saved), out=str(out)), log=lambda line: None)
    rows = pd.read_csv(out / "results.csv")
    mine = rows[rows.method == "mine"]
    invalid = mine[mine.subset == "invalid"]
    assert sorted(invalid.sample_id) == sorted(ids[:2] * 2) and invalid.value.eq(1).all()
    assert set(mine[mine.subset == "all"].sample_id) == {ids[2]}  # only the finite map is scored
    summary = pd.read_csv(out / "summary.csv").set_index(["method", "metric", "subset"])
    assert summary.loc[("mine", "deletion", "invalid"), "value"] == 2
    assert summary.loc[("mine", "deletion", "all"), "n"] == 1
    args = ["evaluate", "--dataset", "imagenet", "--root", str(IMAGENET_SAMPLE), "--limit", "3", "--method", "mine"]
    result = cli.invoke(app, [*args, "--maps", str(saved), "--no-baselines", "--quiet", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "maps holding NaN or inf were not scored (samples per method): mine (2)" in result.output

    from rise_bench.explainers.gradient import Gradient

    original = Gradient._explain

    def broken(self, model, images, targets, seeds, execution):
        maps = original(self, model, images, targets, seeds, execution)
        return maps.fill_(float("nan"))

    monkeypatch.setattr(Gradient, "_explain", broken)
    out = tmp_path / "method"
    evaluate(RunConfig(**{**FAST, "limit": 1}, out=str(out)), log=lambda line: None)
    rows = pd.read_csv(out / "results.csv")
    gradient = rows[rows.method == "gradient"]
    assert list(gradient.subset) == ["invalid", "invalid"] and set(gradient.metric) == {"deletion", "insertion"}
    assert (rows[rows.method == "gradcam"].subset == "all").all()


@pytest.mark.parametrize(
    "text, message",
    [
        ('limit = "two"', "config key 'limit' = 'two': expected an integer or none"),
        ("quick = 1", "config key 'quick' = 1: expected true or false"),
        ('methods = ["rise", 3]', "config key 'methods' = ['rise', 3]: expected a list of text"),
        ("sample = 0", "config key 'sample' = 0: expected an integer of at least 1"),
        ("seed = 1.5", "config key 'seed' = 1.5: expected an integer"),
    ],
)
def test_config_values_are_type_checked(tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    with pytest.raises(UsageError) as error:
        RunConfig.from_sources(path)
    assert str(error.value) == message
    result = cli.invoke(app, ["evaluate", "--config", str(path)])
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}"


def test_a_bad_parameter_value_fails_before_the_model_loads(tmp_path, monkeypatch):
    import rise_bench.evaluation.runner as runner

    forbid_model_loading(monkeypatch, runner)
    args = ["--dataset", "imagenet", "--root", str(IMAGENET_SAMPLE), "--method", "gradcam", "--out", str(tmp_path)]
    result = cli.invoke(app, ["evaluate", *args, "--param", "gradcam.score=bogus"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: gradcam.score: 'bogus' is not one of softmax, sigmoid, logit"
    result = cli.invoke(app, ["evaluate", *args, "--param", "rise.num_masks=many", "--method", "rise"])
    assert result.exit_code == 2 and "'many' is not a valid int" in result.output


def test_a_run_whose_every_sample_fails_ends_in_one_line_per_sample(tmp_path):
    saved = tmp_path / "saved" / "mine"
    saved.mkdir(parents=True)
    ids = ["n01440764_tench", "n01496331_electric_ray"]
    for sample_id in ids:
        np.save(saved / f"{sample_id}.npy", np.zeros((2, 3, 4, 5), np.float32))  # no map has this shape
    args = ["evaluate", "--dataset", "imagenet", "--root", str(IMAGENET_SAMPLE), "--limit", "2", "--method", "mine"]
    args += ["--maps", str(saved.parent), "--no-baselines", "--quiet", "--out", str(tmp_path / "out")]
    result = cli.invoke(app, args)
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("expected [H,W] or [T,H,W]" in line for line in errors)
    assert "2 sample(s) failed" in result.output
    assert "no results to summarise" in result.output and "summary of" not in result.output  # no empty table


class Recorder:
    """A progress-reporter factory that records what each reporter heard."""

    def __init__(self) -> None:
        self.calls: dict[str, list] = {}

    def __call__(self, description: str, quiet_for: float = 0.0):
        calls = self.calls.setdefault(description, [])

        class Reporter:
            def __call__(self, done, total):
                calls.append((done, total))

            def skip(self, done, total):
                calls.append(("skip", done, total))

            def finish(self):
                calls.append("finish")

        return Reporter()


def test_progress_shows_the_total_at_once_a_bar_per_method_and_skips_resumed_samples(tmp_path):
    out = tmp_path / "run"
    recorder, told = Recorder(), []
    evaluate(
        RunConfig(**{**FAST, "limit": 2}, out=str(out)), make_reporter=recorder, log=told.append, status=told.append
    )
    run = recorder.calls["evaluate imagenet"]
    assert run[0] == (0, 2) and run[-2:] == [(2, 2), "finish"]
    assert told[0] == "loading model tf_efficientnet_lite0 ..."
    assert told[1] == "scoring backend: torch (the gradient-free passes)"  # the suite pins torch (conftest.py)
    assert told[2].startswith("evaluating 2 samples x 4 methods")
    nested = recorder.calls["  gradcam on n01440764_tench"]
    assert nested[-2] == (1, 1) and nested[-1] == "finish"  # Grad-CAM's own progress, then removed
    again = Recorder()
    evaluate(RunConfig(**{**FAST, "limit": 3}, out=str(out), resume=True), make_reporter=again, log=told.append)
    assert again.calls["evaluate imagenet"][:4] == [(0, 3), ("skip", 1, 3), ("skip", 2, 3), (3, 3)]


def test_the_eta_counts_only_the_samples_evaluated(monkeypatch):
    from rise_bench import console

    clock = iter([0.0, 0.0, 0.0, 10.0])
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    lines = []
    monkeypatch.setattr(console.err_console, "print", lambda text, **kw: lines.append(str(text)))
    reporter = console.Reporter("evaluate", "plain")  # started at 0
    reporter.skip(2, 4)  # two samples resumed at once (the clock restarts at 0)
    reporter(3, 4)  # one sample evaluated in 10 s: one left, eta 10 s
    assert lines[-1] == "evaluate: 3/4 (75%, 10.0s, eta 10s)"


def test_presets_pin_a_protocol_and_the_command_line_still_wins(tmp_path):
    config = RunConfig.from_sources(preset="rise2018", root="val")
    assert (config.dataset, config.model, config.weights, config.step, config.limit) == (
        "imagenet", "resnet50", "IMAGENET1K_V1", 1792, 10000,
    )  # fmt: skip
    assert config.metrics == ["deletion", "insertion"] and config.target == "top1"
    overridden = RunConfig.from_sources(preset="rise2018", model="tf_efficientnet_lite0", limit=3)
    assert overridden.model == "tf_efficientnet_lite0" and overridden.limit == 3
    path = tmp_path / "run.toml"
    path.write_text('preset = "torchray2019"\nsplit = "trainval"\n')
    from_file = RunConfig.from_sources(path)
    assert (from_file.dataset, from_file.split, from_file.metrics) == ("voc", "trainval", ["pointing"])
    with pytest.raises(UsageError, match="unknown preset 'rise2019' \\(did you mean: rise2018"):
        RunConfig.from_sources(preset="rise2019")
    args = ["evaluate", "--preset", "rise2018", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
    result = cli.invoke(app, args)
    assert result.exit_code == 1 and "deletion 0.10483, insertion 0.77192" in result.output
    assert "Those numbers need torchvision's resnet50" in result.output
