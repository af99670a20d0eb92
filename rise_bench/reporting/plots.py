"""Pictures of runs: mean curves per method, and a gallery of maps side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pandas as pd

from ..errors import RiseBenchError
from ..evaluation.artifacts import map_files, read_curves, read_sidecar
from ..evaluation.results import CLASSIFIER
from ..explainers.registry import is_baseline
from ..files import safe_name
from ..images import normalise_for_display, overlay, read_image
from .summary import base_method, baselines_last, metric_of

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: What each entry draws: entry -> its (run folder, method folder name) pairs (``summary.entries``).
Entries = Mapping[str, Sequence[tuple[Path, str]]]


def plot_curves(entries: Entries, path: Path | BinaryIO, image_format: str | None = None) -> bool:
    """Mean curves per entry (a method of a model, data set and settings), one panel per metric with curves.

    ``path`` is a file or a binary stream (then say ``image_format``, e.g. ``svg``); False when there is nothing
    to draw.
    """
    curves: dict[str, dict[str, list[np.ndarray]]] = {}
    for entry, places in entries.items():
        for run, method in places:
            for metric, items in read_curves(run, method).items():
                curves.setdefault(metric, {}).setdefault(entry, []).extend(items)
    if not curves:
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), squeeze=False)
    for axis, (metric, by_entry) in zip(axes[0], curves.items(), strict=True):
        kind = metric_of(metric)
        for entry in baselines_last(list(by_entry)):
            items = by_entry[entry]
            length = min(len(c) for c in items)
            mean = np.mean([c[:length] for c in items], axis=0)
            style = "--" if is_baseline(base_method(entry)) else "-"
            score = np.mean([kind.curve_score(c) for c in items])
            label = f"{entry} ({kind.curve_score_name} {score:.3f}, n={len(items)})"
            axis.plot(kind.curve_points(length), mean, style, label=label)
        axis.set_title(kind.header())
        axis.set_xlabel(kind.curve_label or "")
        axis.set_ylabel("probability of the target")
        axis.set_ylim(0, 1)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format=image_format)
    plt.close(figure)
    return True


def sample_scores(rows: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """(entry, sample file stem) -> metric -> the sample's value (the mean over its targets, subset ``all``)."""
    scored = rows[(rows.method != CLASSIFIER) & (rows.subset == "all")]
    means = scored.groupby(["method", "sample_id", "metric"], sort=False)["value"].mean()
    found: dict[tuple[str, str], dict[str, float]] = {}
    for (entry, sample, metric), value in means.items():
        found.setdefault((entry, safe_name(sample)), {})[metric] = float(value)
    return found


def gallery_notes(rows: pd.DataFrame) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """What the gallery writes beside the maps, from the results rows.

    Returns:
        (entry, sample file stem) -> the sample's scores (``deletion 0.12, insertion 0.65``),
        and sample file stem -> the label of the samples the model got wrong.
    """
    scores = {key: ", ".join(f"{m} {v:.2f}" for m, v in values.items()) for key, values in sample_scores(rows).items()}
    classifier = rows[(rows.method == CLASSIFIER) & (rows.metric == "top1") & (rows.value == 0)]
    wrong = {safe_name(record.sample_id): record.target for record in classifier.itertuples()}
    return scores, wrong


def maps_by_sample(entries: Entries) -> dict[str, dict[str, Path]]:
    """Sample file stem -> entry -> its maps file (the first run that has it), samples in data-set order."""
    maps: dict[str, dict[str, Path]] = {}
    for entry, places in entries.items():
        for run, method in places:
            for stem, file in map_files(run, method).items():
                maps.setdefault(stem, {}).setdefault(entry, file)
    return maps


def sample_image(maps_file: Path) -> tuple[Image.Image | None, str]:
    """The photograph a maps file was made from (None when it cannot be read) and its first target's name."""
    sidecar = read_sidecar(maps_file.with_suffix(".json"))
    try:
        image = read_image(sidecar.get("image", ""))
    except RiseBenchError:
        image = None
    return image, (sidecar.get("targets") or [""])[0]


def plot_gallery(entries: Entries, path: Path, count: int = 4, rows: pd.DataFrame | None = None) -> bool:
    """A grid of maps: one row per sample (up to ``count``, those most entries have first), one column per entry.

    Maps are overlaid in the jet colour map (red: most salient; a colour bar says so),
    scaled for display only (``images.normalise_for_display``). With the results
    ``rows``, each map is captioned with its sample's scores and a misclassified sample's
    row says what was predicted and what the label is.
    """
    maps = maps_by_sample(entries)
    columns = baselines_last([e for e in entries if any(e in per for per in maps.values())])
    samples = sorted(maps, key=lambda s: -len(maps[s]))[:count]  # stable: dataset order among equals
    if not samples:
        return False
    scores, wrong = gallery_notes(rows) if rows is not None else ({}, {})
    plt = _pyplot()
    from matplotlib.cm import ScalarMappable

    size = (2.2 * (len(columns) + 1) + 0.8, 2.4 * len(samples))
    figure, axes = plt.subplots(len(samples), len(columns) + 1, figsize=size, squeeze=False)
    for row, sample in enumerate(samples):
        image, target = sample_image(next(iter(maps[sample].values())))
        if image is not None:
            axes[row, 0].imshow(image)
        title = f"{sample}\npredicted {target}, label {wrong[sample]}" if sample in wrong else f"{sample}\n{target}"
        axes[row, 0].set_title(title, fontsize=7, color="darkred" if sample in wrong else "black")
        for column, entry in enumerate(columns, 1):
            axis = axes[row, column]
            if row == 0:
                axis.set_title(entry, fontsize=8)
            if entry not in maps[sample]:
                axis.text(0.5, 0.5, "no map", ha="center", va="center", fontsize=8)
                continue
            saliency = np.load(maps[sample][entry])[0]
            axis.imshow(overlay(image, saliency) if image is not None else normalise_for_display(saliency), cmap="jet")
            if (entry, sample) in scores:
                axis.text(
                    0.5, -0.04, scores[(entry, sample)], transform=axis.transAxes, ha="center", va="top", fontsize=6
                )
    for axis in axes.ravel():
        axis.axis("off")
    figure.tight_layout(rect=(0, 0, 0.93, 1))
    bar = figure.add_axes((0.945, 0.15, 0.015, 0.7))
    colours = figure.colorbar(ScalarMappable(cmap="jet"), cax=bar, ticks=[0, 1])
    colours.ax.set_yticklabels(["low", "high"], fontsize=7)
    colours.set_label("saliency (red = high; scaled per map)", fontsize=7)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


def depth_curves(rows: pd.DataFrame) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Per metric with per-depth subsets (``Metric.detail_prefix``), per entry: (step, mean similarity) in order."""
    found: dict[str, dict[str, list[tuple[str, float]]]] = {}
    scored = rows[rows.method != CLASSIFIER]
    for metric in dict.fromkeys(scored.metric):
        prefix = metric_of(metric).detail_prefix
        if prefix is None:
            continue
        mine = scored[(scored.metric == metric) & scored.subset.str.startswith(prefix)]
        means = mine.groupby(["method", "subset"], sort=False)["value"].mean()
        for (entry, subset), value in means.items():
            found.setdefault(metric, {}).setdefault(entry, []).append((subset, float(value)))
    for by_entry in found.values():
        for entry, points in by_entry.items():
            by_entry[entry] = sorted(points, key=lambda point: int(point[0][len("step") :].split(":")[0]))
    return found


def plot_depth_curves(rows: pd.DataFrame, path: Path | BinaryIO, image_format: str | None = None) -> bool:
    """Similarity versus randomisation depth, one line per entry, one panel per metric (none: False).

    ``path`` and ``image_format`` as ``plot_curves``.
    """
    curves = depth_curves(rows)
    if not curves:
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(6.0 * len(curves), 4.4), squeeze=False)
    for axis, (metric, by_entry) in zip(axes[0], curves.items(), strict=True):
        for entry in baselines_last(list(by_entry)):
            labels, values = zip(*by_entry[entry], strict=True)
            style = "--" if is_baseline(base_method(entry)) else "-o"
            axis.plot(range(len(values)), values, style, label=entry, markersize=3)
        axis.set_xticks(range(len(labels)))
        axis.set_xticklabels([label.split(":", 1)[1] for label in labels], rotation=60, fontsize=7)
        axis.set_title(metric_of(metric).header(), fontsize=9)
        axis.set_xlabel("layers re-initialised down to (cascading from the logits)")
        axis.set_ylabel("similarity to the original map")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format=image_format)
    plt.close(figure)
    return True
