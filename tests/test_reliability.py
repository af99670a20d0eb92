"""Metric reliability (Tomsett et al. 2020): known answers for alpha, inter-method and internal consistency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.evaluation.results import ResultRow, write_rows
from rise_bench.reporting.reliability import krippendorff_alpha, rank_methods, reliability_table
from rise_bench.reporting.summary import read_results

cli = CliRunner()


def test_alpha_is_one_for_agreeing_images_negative_for_reversed_and_near_zero_at_random():
    same = np.tile([1.0, 2.0, 3.0, 4.0], (12, 1))
    assert krippendorff_alpha(same) == pytest.approx(1.0)
    reversed_half = np.vstack([same[:6], same[:6, ::-1]])
    assert krippendorff_alpha(reversed_half) < 0
    rng = np.random.default_rng(0)
    random = np.array([rng.permutation(4) + 1.0 for _ in range(400)])
    assert abs(krippendorff_alpha(random)) < 0.05


def test_ranks_follow_each_metrics_direction():
    scores = pd.DataFrame({"a": [0.1, 0.5], "b": [0.2, 0.4]})
    np.testing.assert_array_equal(rank_methods(scores, higher_is_better=False), [[1, 2], [2, 1]])
    np.testing.assert_array_equal(rank_methods(scores, higher_is_better=True), [[2, 1], [1, 2]])


def run_file(folder, values: dict[tuple[str, str], list[float]]):
    rows = [
        ResultRow("r", "imagenet", f"s{i:02d}", "lite0", method, metric, "cat", "all", v, "h", 1.0, "m")
        for (method, metric), numbers in values.items()
        for i, v in enumerate(numbers)
    ]
    folder.mkdir(parents=True)
    write_rows(folder / "results.csv", [row.cells() for row in rows])
    return folder


def test_reliability_of_a_consistent_run(tmp_path):
    base = np.linspace(0.1, 0.5, 12)  # per-image difficulty, shared by every method
    values = {
        ("rise", "deletion"): base,
        ("gradcam", "deletion"): base + 0.1,  # always worse than rise on deletion
        ("gradient", "deletion"): base + 0.2,
        ("rise", "insertion"): 0.9 - base,  # and in the same order on insertion (higher is better)
        ("gradcam", "insertion"): 0.8 - base,
        ("gradient", "insertion"): 0.7 - base,
        ("random", "deletion"): 0.3 + 0 * base,  # a baseline: left out by default
        ("random", "insertion"): 0.3 + 0 * base,
    }
    rows = read_results([run_file(tmp_path / "run", values)])
    table = reliability_table(rows).set_index(["statistic", "metric", "pair"])
    assert table.loc[("inter-rater alpha", "deletion", ""), "value"] == pytest.approx(1.0)
    assert table.loc[("inter-method spearman", "deletion", "rise / gradcam"), "value"] == pytest.approx(1.0)
    assert table.loc[("internal consistency", "deletion / insertion", ""), "value"] == pytest.approx(1.0)
    assert not any("random" in pair for pair in table.index.get_level_values("pair"))
    assert table.n.eq(12).all()
    with_baselines = reliability_table(rows, baselines=True)
    assert any("random" in pair for pair in with_baselines.pair)
    few = read_results([run_file(tmp_path / "few", {k: v[:9] for k, v in values.items()})])
    assert reliability_table(few).empty  # fewer than 10 shared samples
    alone = read_results([run_file(tmp_path / "alone", {k: v for k, v in values.items() if k[0] == "rise"})])
    assert reliability_table(alone).empty  # one method: nothing to rank


def test_compare_writes_and_explains_the_reliability_table(tmp_path):
    rng = np.random.default_rng(1)
    values = {(m, "deletion"): rng.random(12) for m in ("rise", "gradcam", "gradient")}
    run = run_file(tmp_path / "run", values)
    result = cli.invoke(app, ["compare", str(run), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "cmp" / "reliability.csv")
    alpha = table[table.statistic == "inter-rater alpha"]
    assert len(alpha) == 1 and alpha.ci_low.iloc[0] <= alpha.value.iloc[0] <= alpha.ci_high.iloc[0]
    assert "Inter-rater alpha near 1" in result.output and "| inter-rater alpha | deletion |" in result.output
