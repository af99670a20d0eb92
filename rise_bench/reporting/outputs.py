"""What a finished run folder gets: ``summary.csv``, ``curves.png`` and ``gallery.png``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .plots import plot_curves, plot_gallery
from .summary import summarise_file


def write_outputs(out: Path, seed: int = 0, log: Callable[[str], None] | None = None) -> list[Path]:
    """Summarise ``OUT/results.csv`` into ``OUT/summary.csv`` and draw the plots; returns the pictures made.

    ``log`` hears of malformed rows left out of the summary.
    """
    summarise_file(out / "results.csv", out / "summary.csv", seed=seed, log=log)
    made = (("curves.png", plot_curves), ("gallery.png", plot_gallery))
    return [out / name for name, plot in made if plot([out], out / name)]
