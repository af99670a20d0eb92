"""Cheap evaluation runs and what tests compare between them."""

from __future__ import annotations

import csv

from rise_bench.evaluation.results import COLUMNS

from .paths import IMAGENET_SAMPLE

#: A cheap ImageNet run: 3 images, fast methods, 9-point curves.
FAST = dict(
    dataset="imagenet", root=str(IMAGENET_SAMPLE), limit=3, methods=["gradcam,gradient"], step=224 * 28, batch_size=9
)


def rows_of(path) -> list[tuple]:
    """Rows without run id and timing, sorted: what must match between runs."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        return sorted(tuple(r[c] for c in COLUMNS if c not in ("run_id", "seconds")) for r in reader)


def forbid_model_loading(monkeypatch, module) -> None:
    """Make ``module.load_model`` fail the test: what is checked must fail before any model loads."""

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(module, "load_model", no_model)
