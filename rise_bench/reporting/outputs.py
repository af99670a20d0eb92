"""What a finished run folder gets: ``summary.csv``, ``reliability.csv``, the plots and ``report.html``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..files import write_atomic
from .plots import plot_curves, plot_depth_curves, plot_gallery
from .reliability import reliability_table
from .report import write_report
from .summary import entries, read_results, summarise


def write_outputs(out: Path, seed: int = 0, log: Callable[[str], None] | None = None) -> list[Path]:
    """Summarise ``OUT/results.csv`` into ``OUT/summary.csv``, draw the plots and write the HTML report.

    Returns the pictures made, the report last.

    ``log`` hears of malformed rows left out of the summary.
    """
    rows = read_results([out / "results.csv"], log, allow_empty=True)
    write_atomic(out / "summary.csv", summarise(rows, seed).to_csv(index=False))
    write_atomic(out / "reliability.csv", reliability_table(rows, seed).to_csv(index=False))
    drawn = entries(rows)
    made = [out / "curves.png"] if plot_curves(drawn, out / "curves.png") else []
    made += [out / "randomisation.png"] if plot_depth_curves(rows, out / "randomisation.png") else []
    made += [out / "gallery.png"] if plot_gallery(drawn, out / "gallery.png", rows=rows) else []
    report = write_report(rows, out / "report.html", seed)
    return made + ([report] if report is not None else [])
