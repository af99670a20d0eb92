"""compare keeps apart what is not comparable: models, data sets, settings; it pairs only shared samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.evaluation.artifacts import save_curves
from rise_bench.evaluation.results import ResultRow, write_rows
from rise_bench.reporting.compare import comparison_table, paired_difference
from rise_bench.reporting.summary import entries, read_results

cli = CliRunner()


def write_run(folder, model: str, dataset: str, values: dict[str, list[float]], first: int = 0) -> None:
    """A results file: per method, one deletion value per sample ``s<first+i>``."""
    rows = []
    for method, numbers in values.items():
        for index, value in enumerate(numbers, first):
            rows.append(
                ResultRow("r", dataset, f"s{index}", model, method, "deletion", "cat", "all", value, "h", 1.0, "m")
            )
    folder.mkdir(parents=True)
    write_rows(folder / "results.csv", [row.cells() for row in rows])


def test_runs_of_two_models_are_two_rows_per_method(tmp_path):
    write_run(tmp_path / "a", "lite0", "imagenet", {"rise": [0.1, 0.2, 0.3], "gradcam": [0.2, 0.3, 0.4]})
    write_run(tmp_path / "b", "lite1", "imagenet", {"rise": [0.5, 0.6, 0.7], "gradcam": [0.1, 0.1, 0.1]})
    rows = read_results([tmp_path / "a", tmp_path / "b"])
    table = comparison_table(rows).set_index("method")
    assert table.loc["rise [lite0]", "mean"] == pytest.approx(0.2) and table.loc[
        "rise [lite1]", "mean"
    ] == pytest.approx(0.6)
    assert table.loc["rise [lite1]", "model"] == "lite1" and table.n.eq(3).all()
    assert table.loc["rise [lite0]", "rank"] == 1 and table.loc["gradcam [lite1]", "rank"] == 1  # ranked per model
    result = cli.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert header.startswith("| method | model |") and "dataset" not in header  # only what differs
    assert result.output.count("| rise [lite") == 2
    assert "n=3: intervals are not meaningful." in result.output


def test_samples_pair_only_within_a_data_set_and_too_few_shared_gives_no_rank(tmp_path):
    write_run(tmp_path / "photos", "lite0", "samples", {"rise": [0.1, 0.2], "gradcam": [0.4, 0.5]})
    write_run(tmp_path / "imagenet", "lite0", "imagenet", {"rise": [0.3, 0.3, 0.3]})
    write_run(tmp_path / "other", "lite0", "imagenet", {"gradcam": [0.2, 0.2]}, first=2)  # shares one sample
    rows = read_results([tmp_path / n for n in ("photos", "imagenet", "other")])
    table = comparison_table(rows).set_index("method")
    assert table.loc["rise [samples]", "n"] == 2 and table.loc["rise [imagenet]", "n"] == 3  # never pooled to 5
    assert table.loc["rise [samples]", "rank"] == 1 and table.loc["gradcam [samples]", "rank"] == 2
    assert table.loc["gradcam [imagenet]", "rank"] == 1  # the best of its data set
    assert math.isnan(table.loc["rise [imagenet]", "rank"]) and math.isnan(table.loc["rise [imagenet]", "p_vs_best"])
    assert table.loc["rise [imagenet]", "note"] == "1 sample(s) shared with gradcam [imagenet]: no rank or test"


def test_curves_and_gallery_keep_runs_apart(tmp_path):
    for name, model, value in (("a", "lite0", 0.1), ("b", "lite1", 0.9)):
        write_run(tmp_path / name, model, "imagenet", {"rise": [value, value]})
        for sample in ("s0", "s1"):
            save_curves(tmp_path / name, "rise", sample, {"deletion": np.full(5, value)})
            (tmp_path / name / "maps" / "rise").mkdir(parents=True, exist_ok=True)
            np.save(tmp_path / name / "maps" / "rise" / f"{sample}.npy", np.full((1, 8, 8), value, np.float32))
    drawn = entries(read_results([tmp_path / "a", tmp_path / "b"]))
    assert drawn == {"rise [lite0]": [(tmp_path / "a", "rise")], "rise [lite1]": [(tmp_path / "b", "rise")]}
    result = cli.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0 and (tmp_path / "cmp" / "curves.png").is_file()
    assert (tmp_path / "cmp" / "gallery.png").is_file()
    from rise_bench.reporting import plots

    lines = {}

    def record(drawn, path):  # the curves a picture would draw: one mean line per entry
        for entry, places in drawn.items():
            for run, method in places:
                lines.setdefault(entry, []).extend(plots.read_curves(run, method)["deletion"])
        return True

    record(drawn, None)
    assert {entry: float(np.mean(c)) for entry, c in lines.items()} == pytest.approx(
        {"rise [lite0]": 0.1, "rise [lite1]": 0.9}
    )
    assert pd.read_csv(tmp_path / "cmp" / "compare.csv").model.tolist() == ["lite0", "lite1"]


def summary_of(values: dict[str, float], metric: str = "deletion", n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        [[m, metric, "all", "all", v, v - 0.01, v + 0.01, n] for m, v in values.items()],
        columns=["method", "metric", "subset", "class", "value", "ci_low", "ci_high", "n"],
    )


def test_a_baseline_beating_methods_gets_one_sentence():
    from rise_bench.reporting.tables import baseline_note, small_n_note

    note = baseline_note(summary_of({"rise": 0.26, "gradient": 0.08, "random": 0.10}))
    assert note.startswith("Note: the baseline random beats rise on deletion.") and "When a baseline wins" in note
    assert note.count(". ") == 2  # one sentence of fact, one of explanation
    assert baseline_note(summary_of({"rise": 0.05, "random": 0.10})) == ""
    assert baseline_note(summary_of({"rise": 0.7, "center": 0.6}, metric="insertion")) == ""
    assert small_n_note([2, 3]) == "n=2: intervals are not meaningful." and small_n_note([5, 9]) == ""


def test_gallery_notes_give_scores_and_predicted_versus_label():
    from rise_bench.reporting.plots import gallery_notes

    rows = pd.DataFrame(
        [
            ["rise", "a/b", "deletion", "cat", "all", 0.125],
            ["rise", "a/b", "insertion", "cat", "all", 0.5],
            ["classifier", "a/b", "top1", "tabby", "all", 0.0],
            ["classifier", "c", "top1", "dog", "all", 1.0],
        ],
        columns=["method", "sample_id", "metric", "target", "subset", "value"],
    )
    scores, wrong = gallery_notes(rows)
    assert scores == {("rise", "a__b"): "deletion 0.12, insertion 0.50"}
    assert wrong == {"a__b": "tabby"}


def test_the_demo_chooses_its_photographs_by_the_rule_in_its_config(tmp_path):
    import tomllib

    from rise_bench.evaluation.config import RunConfig
    from rise_bench.evaluation.runner import evaluate

    from .helpers import ROOT

    config = tomllib.loads((ROOT / "configs" / "quick.toml").read_text())
    assert config["min_confidence"] == 0.3 and "limit" not in config and "ids" not in config
    out = tmp_path / "demo"
    outcome = evaluate(
        RunConfig(
            dataset="samples", min_confidence=0.3, methods=["center"], baselines=False, step=224 * 56, out=str(out)
        ),
        log=lambda line: None,
    )
    rows = pd.read_csv(out / "results.csv")
    kept = set(rows.sample_id)
    assert outcome.samples_unconfident == 1 and "astronaut" not in kept  # lite0: 'bobsled' at 0.19
    assert kept == {"chelsea", "coffee", "rocket", "motorcycle"}


def test_the_difference_from_the_best_is_paired_on_shared_samples(tmp_path):
    values = [0.3, 0.1, 0.5, 0.2, 0.4]
    write_run(tmp_path / "a", "m", "imagenet", {"rise": values, "gradcam": [v + 0.1 for v in values]})
    table = comparison_table(read_results([tmp_path / "a"])).set_index("method")
    assert math.isnan(table.loc["rise", "diff_vs_best"])  # the best itself
    shift = table.loc["gradcam", ["diff_vs_best", "diff_low", "diff_high"]].to_numpy(dtype=float)
    assert shift == pytest.approx([0.1, 0.1, 0.1])  # a constant shift: the CI has no width
    assert all(math.isnan(v) for v in paired_difference(pd.Series([1.0], ["x"]), pd.Series([0.0], ["y"])))
