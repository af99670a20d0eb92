"""Pictures of runs: mean curves per method, and a gallery of maps side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import RiseBenchError
from ..evaluation.artifacts import map_files, read_curves, read_sidecar
from ..explainers.registry import is_baseline
from ..images import overlay, read_image
from ..metrics.curves import auc
from .summary import base_method, baselines_last, metric_of


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: What each entry draws: entry -> its (run folder, method folder name) pairs (``summary.entries``).
Entries = Mapping[str, Sequence[tuple[Path, str]]]


def plot_curves(entries: Entries, path: Path) -> bool:
    """Mean curves per entry (a method of a model, data set and settings), one panel per metric with curves."""
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
            label = f"{entry} (AUC {np.mean([float(auc(c)) for c in items]):.3f}, n={len(items)})"
            axis.plot(np.linspace(0, 1, length), mean, style, label=label)
        axis.set_title(kind.header())
        axis.set_xlabel(kind.curve_label or "")
        axis.set_ylabel("probability of the target")
        axis.set_ylim(0, 1)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_gallery(entries: Entries, path: Path, count: int = 4) -> bool:
    """A grid of maps: one row per sample (up to ``count``, those most entries have first), one column per entry."""
    maps: dict[str, dict[str, Path]] = {}  # sample -> entry -> file
    for entry, places in entries.items():
        for run, method in places:
            for stem, file in map_files(run, method).items():
                maps.setdefault(stem, {}).setdefault(entry, file)
    columns = baselines_last([e for e in entries if any(e in per for per in maps.values())])
    samples = sorted(maps, key=lambda s: -len(maps[s]))[:count]  # stable: dataset order among equals
    if not samples:
        return False
    plt = _pyplot()
    size = (2.2 * (len(columns) + 1), 2.2 * len(samples))
    figure, axes = plt.subplots(len(samples), len(columns) + 1, figsize=size, squeeze=False)
    for row, sample in enumerate(samples):
        sidecar = read_sidecar(next(iter(maps[sample].values())).with_suffix(".json"))
        try:
            image = read_image(sidecar.get("image", ""))
        except RiseBenchError:
            image = None
        if image is not None:
            axes[row, 0].imshow(image)
        axes[row, 0].set_title(f"{sample}\n{(sidecar.get('targets') or [''])[0]}", fontsize=7)
        for column, entry in enumerate(columns, 1):
            if row == 0:
                axes[row, column].set_title(entry, fontsize=8)
            if entry not in maps[sample]:
                axes[row, column].text(0.5, 0.5, "no map", ha="center", va="center", fontsize=8)
                continue
            saliency = np.load(maps[sample][entry])[0]
            axes[row, column].imshow(overlay(image, saliency) if image is not None else saliency)
    for axis in axes.ravel():
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True
