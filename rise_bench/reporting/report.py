"""One self-contained HTML page per run or comparison: ``rise-bench report RUN... --out report.html``.

The page is rendered by Jinja2 from ``templates/report.html.j2`` (autoescaped: names and
paths from results files can hold any text). Everything is inlined, so it opens from a
``file://`` URL or an e-mail attachment with no network: charts are matplotlib SVG (text
kept as text, so they stay small and sharp), the gallery's thumbnails JPEG data URIs, the
per-image curves a JSON block drawn as SVG by a short inline script, which also sorts,
filters and pages the gallery. Matplotlib rather than a JavaScript plotting library: the
page needs no 3 MB library inlined, and the pictures are the ones the run folder holds.

What the page shows, for every (data set, model) and entry as ``compare`` keeps them
apart: provenance, the summary table (mean, bootstrap CI, rank, paired Wilcoxon p against
the best, which way is better; baselines set apart), the metric reliability table, mean
curves per metric, randomisation similarity against depth, per-class pointing accuracy,
and a gallery with one row per image and one column per entry.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tomllib

from ..errors import RiseBenchError
from ..evaluation.artifacts import curves_path
from ..evaluation.results import CLASSIFIER
from ..files import safe_name, write_atomic
from ..images import normalise_for_display, overlay
from .compare import comparison_table
from .plots import gallery_notes, maps_by_sample, plot_curves, plot_depth_curves, sample_image, sample_scores
from .reliability import RELIABILITY_MEANING, reliability_table
from .summary import baselines_last, entries, forward_passes, is_baseline_entry, metric_of, read_results, summarise
from .tables import column_header, estimate_text, small_n_note

#: Side of the gallery's thumbnails (pixels) and their JPEG quality: about 5 kB each.
THUMBNAIL, JPEG_QUALITY = 160, 80
#: Images in the gallery at most (the page stays small); the rest are counted.
GALLERY_LIMIT = 200
#: Okabe-Ito's 8 colours (told apart with every common colour-vision deficiency), then 8 of Paul Tol's darker
#: ones: the default run now has 10 entries, and colours must not repeat before 16.
PALETTE = [
    *("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"),
    *("#882255", "#117733", "#332288", "#999933", "#AA4499", "#44AA99", "#661100", "#888888"),
]
#: The run settings the provenance section lists.
SETTINGS_SHOWN = ("dataset", "model", "methods", "metrics", "quick", "step", "target", "seed", "precision", "device")
#: The heat map of the overlays: perceptually uniform and colour-blind safe.
HEAT_MAP = "inferno"


@dataclass
class Cell:
    """One entry's map of one image."""

    entry: str
    src: str
    alt: str
    key: str  # "stem|entry": where its curves and scores are
    scores: str = ""


@dataclass
class GalleryRow:
    """One image of the gallery: its thumbnail, caption (target, or prediction and label when wrong) and maps."""

    stem: str  # the sample's file stem: what the scores and curves are keyed by
    sample: str
    src: str
    alt: str
    caption: str
    wrong: bool
    cells: list[Cell | None] = field(default_factory=list)


def data_uri(image, quality: int = JPEG_QUALITY) -> str:
    """A PIL image as a JPEG data URI."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def svg_of(draw: Callable[[io.BytesIO], bool]) -> str | None:
    """The SVG a plotting function draws into a buffer (text as text, colour-blind-safe colours), or None."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "axes.prop_cycle": matplotlib.cycler(color=PALETTE)}):
        if not draw(buffer):
            return None
    text = buffer.getvalue().decode("utf-8")
    text = text[text.index("<svg") :]  # drop the XML prologue and doctype: the SVG sits inside HTML
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # and the creation date: same run, same page


def provenance(sources: Sequence[str]) -> list[dict]:
    """Per run folder: what ``config.toml`` says of the model, data, settings, versions and hardware."""
    found = []
    for source in dict.fromkeys(sources):
        run = Path(source).parent
        try:
            document = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            document = {}
        config = document.get("config", {})
        prov = document.get("provenance", {})
        found.append(
            {
                "run": str(run),
                "run_id": document.get("run_id", ""),
                "samples": document.get("samples", ""),
                "settings": {k: config[k] for k in SETTINGS_SHOWN if k in config}
                | ({"scoring backend": prov["backend"]} if prov.get("backend") else {}),
                "weights": prov.get("weights", {}),
                "versions": prov.get("versions", {}),
                "hardware": prov.get("hardware", {}),
                "commit": prov.get("git_commit", ""),
            }
        )
    return found


def summary_tables(rows: pd.DataFrame, seed: int) -> list[dict]:
    """Per (data set, model): headers and rows of value [CI], rank and p against the best, and each entry's
    forward passes per image when its rows record them; baselines last."""
    table = comparison_table(rows, seed)
    passes = forward_passes(rows)
    out = []
    for (dataset, model), group in table.groupby(["dataset", "model"], sort=False):
        columns = list(dict.fromkeys(zip(group.metric, group.subset, strict=True)))
        body = []
        for entry in baselines_last(dict.fromkeys(group.method)):
            mine = group[group.method == entry]
            cells = []
            for metric, subset in columns:
                match = mine[(mine.metric == metric) & (mine.subset == subset)]
                if match.empty:
                    cells.append({"text": "", "detail": "", "best": False})
                    continue
                r = match.iloc[0]
                rank = "" if math.isnan(r["rank"]) else int(r["rank"])
                detail = "best" if rank == 1 else ("no rank" if rank == "" else f"#{rank}")
                if not math.isnan(r.diff_vs_best):
                    ci = "" if math.isnan(r.diff_low) else f" [{r.diff_low:+.3f}, {r.diff_high:+.3f}]"
                    detail += f", {r.diff_vs_best:+.3f}{ci} vs best"
                if not math.isnan(r.p_vs_best):
                    detail += f", p={r.p_vs_best:.2g}"
                cells.append({"text": estimate_text(r["mean"], r.ci_low, r.ci_high), "detail": detail,
                              "best": rank == 1})  # fmt: skip
            cost = f"{passes[entry]:,.0f}" if entry in passes else ""
            body.append({"entry": entry, "baseline": is_baseline_entry(entry), "cells": cells, "passes": cost})
        out.append(
            {
                "dataset": dataset,
                "model": model,
                "headers": [column_header(m, s) for m, s in columns],
                "passes": any(row["passes"] for row in body),
                "rows": body,
                "note": small_n_note(group.n),
                "notes": sorted({f"{r.method}, {r.metric}: {r.note}." for r in group.itertuples() if r.note}),
            }
        )
    return out


def class_tables(summary: pd.DataFrame) -> list[dict]:
    """Per metric with a per-class breakdown (pointing): classes x entries."""
    rows = summary[(summary["class"] != "all") & (summary.subset == "all")]
    out = []
    for metric, group in rows.groupby("metric", sort=False):
        entries_ = baselines_last(dict.fromkeys(group.method))
        grid = group.pivot_table(index="class", columns="method", values="value", aggfunc="first")
        counts = group.groupby("class")["n"].max()
        body = [
            {"name": name, "n": int(counts[name]),
             "cells": ["" if pd.isna(grid.at[name, e]) else f"{grid.at[name, e]:.3f}" for e in entries_]}
            for name in grid.index
        ]  # fmt: skip
        out.append({"header": metric_of(metric).header(), "entries": entries_, "rows": body})
    return out


def gallery(
    rows: pd.DataFrame, limit: int
) -> tuple[list[str], list[GalleryRow], dict[str, dict[str, float]], dict[str, dict], int]:
    """Entries (columns), rows (up to ``limit`` images, data-set order), scores and curves by ``stem|entry``,
    and how many images were left out."""
    places = entries(rows)
    by_sample = maps_by_sample(places)
    columns = baselines_last([e for e in places if any(e in per for per in by_sample.values())])
    ids = {safe_name(s): s for s in dict.fromkeys(rows.sample_id)}
    order = [stem for stem in ids if stem in by_sample]
    values = sample_scores(rows)
    captions, wrong = gallery_notes(rows)
    out, scores, curves = [], {}, {}
    for stem in order[:limit]:
        sample = ids[stem]
        image, target = sample_image(next(iter(by_sample[stem].values())))
        if image is not None:
            image.thumbnail((THUMBNAIL, THUMBNAIL))
        caption = f"predicted {target}, label {wrong[stem]}" if stem in wrong else target
        row = GalleryRow(stem, sample, data_uri(image) if image else "", f"{sample}: {caption}", caption, stem in wrong)
        for entry in columns:
            if entry not in by_sample[stem]:
                row.cells.append(None)
                continue
            file = by_sample[stem][entry]
            saliency = np.load(file)[0]
            if image is not None:
                picture = overlay(image, saliency, cmap=HEAT_MAP)
            else:
                from PIL import Image

                heat = (normalise_for_display(saliency) * 255).astype(np.uint8)
                picture = Image.fromarray(heat).resize((THUMBNAIL, THUMBNAIL))
            key = f"{stem}|{entry}"
            alt = f"{entry} on {sample} (target {target})"
            row.cells.append(Cell(entry, data_uri(picture), alt, key, captions.get((entry, stem), "")))
            scores[key] = {m: round(v, 4) for m, v in values.get((entry, stem), {}).items() if math.isfinite(v)}
            curve_file = curves_path(file.parents[2], file.parent.name, stem)
            if curve_file.is_file():
                with np.load(curve_file) as data:
                    curves[key] = {
                        m: {"x": [round(float(v), 4) for v in metric_of(m).curve_points(len(data[m]))],
                            "y": [round(float(v), 4) for v in data[m]]}
                        for m in data.files
                    }  # fmt: skip
        out.append(row)
    return columns, out, scores, curves, max(0, len(order) - limit)


def report_context(rows: pd.DataFrame, seed: int = 0, limit: int = GALLERY_LIMIT, baselines: bool = False) -> dict:
    """Everything the template shows, from results rows (``summary.read_results``); ``baselines``: rank the
    baselines too in the reliability statistics (``compare --reliability-baselines``)."""
    summary = summarise(rows, seed)
    reliability = reliability_table(rows, seed, baselines=baselines)
    drawn = entries(rows)
    columns, gallery_rows, scores, curves, left_out = gallery(rows, limit)
    scored = rows[rows.method != CLASSIFIER]
    metrics = list(dict.fromkeys(scored[scored.subset == "all"].metric))
    return {
        "title": "rise-bench report: " + ", ".join(dict.fromkeys(Path(s).parent.name for s in rows.source)),
        "runs": provenance(list(rows.source)),
        "tables": summary_tables(rows, seed),
        "reliability": [
            {
                "statistic": r.statistic,
                "metric": r.metric,
                "pair": r.pair if isinstance(r.pair, str) else "",
                "value": f"{r.value:.2f}",
                "ci": "" if math.isnan(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]",
                "n": r.n,
            }
            for r in reliability.itertuples()
        ],  # fmt: skip
        "reliability_meaning": RELIABILITY_MEANING,
        "curves_svg": svg_of(lambda buffer: plot_curves(drawn, buffer, image_format="svg")),
        "depth_svg": svg_of(lambda buffer: plot_depth_curves(rows, buffer, image_format="svg")),
        "classes": class_tables(summary),
        "columns": columns,
        "gallery": gallery_rows,
        "left_out": left_out,
        "metrics": [
            {"name": m, "higher": metric_of(m).higher_is_better(), "header": metric_of(m).header()} for m in metrics
        ],  # fmt: skip
        "data_json": json.dumps({"scores": scores, "curves": curves}, separators=(",", ":")).replace("</", "<\\/"),
        "palette": PALETTE,
    }


def render(context: dict) -> str:
    """The page from its context (``report_context``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("rise_bench.reporting", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    return environment.get_template("report.html.j2").render(**context)


def write_report(
    rows: pd.DataFrame, out: Path, seed: int = 0, limit: int = GALLERY_LIMIT, baselines: bool = False
) -> Path | None:
    """Write the HTML report of results ``rows`` (``summary.read_results``) to ``out``; None when no method has rows.

    ``limit`` and ``baselines`` as ``report_context``.
    """
    if rows.empty or (rows.method == CLASSIFIER).all():
        return None
    write_atomic(out, render(report_context(rows, seed, limit, baselines)))
    return out


def report_runs(
    paths: Sequence[str | Path],
    out: Path,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    limit: int = GALLERY_LIMIT,
) -> Path:
    """Write the HTML report of one or more runs (folders or ``results.csv`` files) to ``out``.

    Raises:
        RiseBenchError: a run is missing, is not a results file, or holds no method's rows.
    """
    written = write_report(read_results(paths, log), out, seed, limit)
    if written is None:
        raise RiseBenchError(f"no method's results to report in {', '.join(map(str, paths))}")
    return written
