"""The CI regression gate: re-run configs/ci.toml and compare with results/ci-baseline.csv."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from rise_bench.cli import app

from .helpers import ROOT

runner = CliRunner()


def test_ci_config_reproduces_the_committed_baseline(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's data path is relative to the project root
    out = tmp_path / "ci"
    result = runner.invoke(app, ["evaluate", "--config", "configs/ci.toml", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    baseline = ROOT / "results" / "ci-baseline.csv"
    result = runner.invoke(app, ["compare", str(out), "--baseline", str(baseline), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "no result moved beyond tolerance" in result.output
    assert (tmp_path / "cmp" / "compare.md").exists() and (tmp_path / "cmp" / "curves.png").exists()

    perturbed = pd.read_csv(baseline, dtype={"sample_id": str})
    chosen = (perturbed.method == "rise") & (perturbed.metric == "deletion")
    perturbed.loc[chosen, "value"] += 0.05
    perturbed = perturbed[~((perturbed.method == "gradcam") & (perturbed.metric == "insertion"))]
    perturbed_path = tmp_path / "perturbed.csv"
    perturbed.to_csv(perturbed_path, index=False)
    result = runner.invoke(
        app,
        [
            "compare",
            str(out),
            "--baseline",
            str(perturbed_path),
            "--tolerance",
            "0.02",
            "--out",
            str(tmp_path / "cmp2"),
        ],
    )
    assert result.exit_code == 1
    assert "regression: rise deletion" in result.output
    assert "gradcam insertion" not in result.output  # only in the run, not the baseline: not a regression
    assert result.output.count("regression:") == 1
