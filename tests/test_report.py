"""The self-contained HTML report: its data, its size, the command, and a real browser opening it."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rise_bench.cli import app
from rise_bench.evaluation.artifacts import save_curves, save_maps
from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.results import COLUMNS
from rise_bench.evaluation.runner import evaluate
from rise_bench.reporting.report import report_context, report_runs
from rise_bench.reporting.summary import read_results

from .helpers import FAST, IMAGENET_SAMPLE

CHROMIUM = Path("/usr/bin/chromium")
METHODS = ["rise", "gradcam", "gradient", "lime", "perturbation", "center", "random"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A real run: 3 ImageNet images, Grad-CAM, gradients and the baselines, deletion and insertion."""
    out = tmp_path_factory.mktemp("report") / "run"
    evaluate(RunConfig(**FAST, out=str(out)), log=lambda line: None)
    return out


def test_evaluate_writes_the_report_and_it_holds_every_entry_and_image(small_run):
    assert (small_run / "report.html").is_file()
    context = report_context(read_results([small_run]))
    (table,) = context["tables"]
    entries = [row["entry"] for row in table["rows"]]
    assert entries == ["gradcam", "gradient", "center", "random"]  # baselines last, and flagged
    assert [row["baseline"] for row in table["rows"]] == [False, False, True, True]
    assert len(table["headers"]) == 2 and "lower is better" in table["headers"][0]
    assert table["passes"] and [row["passes"] for row in table["rows"]] == ["1", "1", "0", "0"]  # the cost column
    assert context["columns"] == entries
    assert len(context["gallery"]) == 3 and all(len(row.cells) == 4 for row in context["gallery"])
    data = json.loads(context["data_json"])
    cell = context["gallery"][0].cells[0]
    assert set(data["curves"][cell.key]) == {"deletion", "insertion"}
    assert set(data["scores"][cell.key]) == {"deletion", "insertion"}
    assert cell.src.startswith("data:image/jpeg;base64,") and "deletion" in cell.scores
    assert context["curves_svg"].startswith("<svg")
    page = (small_run / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)|<link|@import|url\((?!#)""", page)  # nothing to fetch


def test_report_command_writes_beside_the_run_and_refuses_a_missing_one(small_run, tmp_path):
    from typer.testing import CliRunner

    copy = tmp_path / "copy"
    shutil.copytree(small_run, copy)
    (copy / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").is_file() and f"report: {copy / 'report.html'}" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def synthetic_run(out: Path, images: int, methods: list[str]) -> None:
    """Results, maps and curves of ``images`` real photographs x ``methods``, with random values."""
    rng = np.random.default_rng(0)
    files = sorted(IMAGENET_SAMPLE.glob("*.JPEG"))[:images]
    lines = [",".join(COLUMNS)]
    for file in files:
        sample = file.stem
        for method in methods:
            maps = rng.random((1, 224, 224), dtype=np.float32)
            save_maps(out, method, sample, torch.from_numpy(maps), ["label"], str(file))
            save_curves(out, method, sample, {"deletion": rng.random(29), "insertion": rng.random(29)})
            for metric in ("deletion", "insertion"):
                lines.append(f"r,imagenet,{sample},m,{method},{metric},label,all,{rng.random():.4f},h,0.1,p,100,torch")
    (out / "results.csv").write_text("\n".join(lines) + "\n")


def test_a_100_image_7_method_report_stays_under_15_mb(tmp_path):
    synthetic_run(tmp_path, 100, METHODS)
    page = report_runs([tmp_path], tmp_path / "report.html")
    size = page.stat().st_size
    assert 1_000_000 < size < 15 * 2**20, size
    text = page.read_text()
    assert text.count('<button class="map"') == 700


def browser_path() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser test runs in CI")


def test_the_report_works_in_a_real_browser(small_run, tmp_path):
    executable = browser_path()
    from playwright.sync_api import sync_playwright

    page_file = small_run / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            errors, requests = [], []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            assert errors == []
            assert requests == [page_file.as_uri()]  # the file itself, nothing else
            decoded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            assert len(decoded) == 3 * 5 and all(decoded)  # 3 photographs and their 4 maps each
            methods = page.locator("table.summary tbody tr:not(.separator) th").all_inner_texts()
            assert methods == ["gradcam", "gradient", "center", "random"]
            assert page.locator("#curves-panel svg").count() == 0
            page.locator("button.map").first.click()
            page.wait_for_selector("#curves-panel svg polyline")
            assert page.locator("#curves-panel svg").count() == 2  # deletion and insertion
            assert page.locator("#curves-panel polyline").count() == 2 * 4  # every entry, the clicked one solid
            page.select_option("#sort-metric", "deletion")
            page.select_option("#sort-a", "gradient")
            first = page.locator("#gallery tbody tr").first.get_attribute("data-sample")
            data = json.loads(page.locator("#report-data").inner_text())["scores"]
            samples = [key.split("|")[0] for key in data if key.endswith("|gradient")]
            assert len(samples) == 3
            assert first == min(samples, key=lambda s: data[f"{s}|gradient"]["deletion"])  # lower is better: first
            page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
            assert (tmp_path / "report.png").stat().st_size > 10_000
            assert errors == []
        finally:
            browser.close()


def test_pointing_gets_a_per_class_table_with_a_column_per_entry():
    import pandas as pd

    from rise_bench.reporting.report import class_tables

    summary = pd.DataFrame(
        [
            ["gradcam", "pointing", "all", "all", 0.8, 0.7, 0.9, 10],
            ["gradcam", "pointing", "all", "cat", 1.0, math.nan, math.nan, 4],
            ["gradcam", "pointing", "all", "dog", 0.5, math.nan, math.nan, 6],
            ["center", "pointing", "all", "cat", 0.25, math.nan, math.nan, 4],
        ],
        columns=["method", "metric", "subset", "class", "value", "ci_low", "ci_high", "n"],
    )
    (table,) = class_tables(summary)
    assert table["entries"] == ["gradcam", "center"] and "higher is better" in table["header"]
    assert [(r["name"], r["n"], r["cells"]) for r in table["rows"]] == [
        ("cat", 4, ["1.000", "0.250"]),
        ("dog", 6, ["0.500", ""]),
    ]


def test_entries_get_distinct_colours_up_to_sixteen():
    from rise_bench.explainers import list_explainers
    from rise_bench.reporting.report import PALETTE

    default_run = list_explainers(adapters=False)  # the entries of configs/quick.toml: 10 today
    assert len(default_run) <= len(PALETTE) and len(set(PALETTE)) == len(PALETTE) >= 16
