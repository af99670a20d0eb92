"""Pictures of runs: mean curves per method, and a gallery of maps side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import RiseBenchError
from ..evaluation.artifacts import map_files, read_curves, read_sidecar
from ..explainers.registry import is_baseline
from ..images import overlay, read_image
from ..metrics.curves import auc
from .summary import baselines_last, metric_of


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(runs: Sequence[Path], path: Path) -> bool:
    """Mean curves per method, one panel per metric with curves, from the runs' ``curves/`` folders."""
    curves = read_curves(runs)
    if not curves:
        return False
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), squeeze=False)
    for axis, (metric, by_method) in zip(axes[0], curves.items(), strict=True):
        kind = metric_of(metric)
        for method in baselines_last(sorted(by_method)):
            items = by_method[method]
            length = min(len(c) for c in items)
            mean = np.mean([c[:length] for c in items], axis=0)
            style = "--" if is_baseline(method) else "-"
            label = f"{method} (AUC {np.mean([float(auc(c)) for c in items]):.3f})"
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


def plot_gallery(runs: Sequence[Path], path: Path, count: int = 4) -> bool:
    """A grid of maps: one row per sample (up to ``count``), one column per method."""
    maps = map_files(runs)
    methods = baselines_last(sorted(dict.fromkeys(m for per in maps.values() for m in per)))
    samples = [s for s in maps if len(maps[s]) == len(methods)][:count]
    if not samples:
        return False
    plt = _pyplot()
    size = (2.2 * (len(methods) + 1), 2.2 * len(samples))
    figure, axes = plt.subplots(len(samples), len(methods) + 1, figsize=size, squeeze=False)
    for row, sample in enumerate(samples):
        sidecar = read_sidecar(maps[sample][methods[0]].with_suffix(".json"))
        try:
            image = read_image(sidecar.get("image", ""))
        except RiseBenchError:
            image = None
        if image is not None:
            axes[row, 0].imshow(image)
        axes[row, 0].set_title(f"{sample}\n{(sidecar.get('targets') or [''])[0]}", fontsize=7)
        for column, method in enumerate(methods, 1):
            saliency = np.load(maps[sample][method])[0]
            axes[row, column].imshow(overlay(image, saliency) if image is not None else saliency)
            if row == 0:
                axes[row, column].set_title(method, fontsize=9)
    for axis in axes.ravel():
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True
