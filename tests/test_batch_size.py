"""--batch-size: parsing, the CPU default, the auto search and its cache."""

from __future__ import annotations

import json

import pytest

from rise_bench import batch_size as batch_size_module
from rise_bench.batch_size import (
    DEFAULT_CPU_BATCH_SIZE,
    batch_timings,
    find_batch_size,
    parse_batch_size,
    resolve_batch_size,
)
from rise_bench.errors import UsageError
from rise_bench.evaluation.config import RunConfig
from rise_bench.models import load_model

from .helpers import make_region_model


def test_parsing():
    assert parse_batch_size("16") == 16 and parse_batch_size(4) == 4
    assert parse_batch_size("Auto") == "auto" and parse_batch_size(None) is None
    for bad in ("0", "-3", "many", 0, "1.5"):
        with pytest.raises(UsageError, match="batch-size"):
            parse_batch_size(bad)
    assert RunConfig.from_sources(None, batch_size="32").batch_size == 32


def test_explicit_and_default_sizes_need_no_search(monkeypatch):
    monkeypatch.setattr(batch_size_module, "find_batch_size", lambda *a, **k: pytest.fail("searched"))
    model = make_region_model()
    assert resolve_batch_size(model, "12") == 12
    assert resolve_batch_size(model, None) == DEFAULT_CPU_BATCH_SIZE


def test_search_stops_at_the_limit_and_after_two_slower_sizes(monkeypatch):
    per_image = {1: 5.0, 2: 3.0, 4: 2.0, 8: 2.5, 16: 4.0, 32: 1.0}
    tried = []

    def fake(model, size):
        tried.append(size)
        return per_image[size]

    monkeypatch.setattr(batch_size_module, "time_per_image", fake)
    timings = batch_timings(make_region_model(), 64)
    assert tried == [1, 2, 4, 8, 16]  # 8 and 16 are both >10% slower than 4: stop
    assert min(timings, key=timings.get) == 4
    tried.clear()
    assert list(batch_timings(make_region_model(), 2)) == [1, 2]


def test_auto_measures_once_then_reads_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RISE_BENCH_CACHE", str(tmp_path))
    model = load_model("resnet18", "random", device="cpu")
    found = find_batch_size(model, limit=4)
    assert found in (1, 2, 4)
    stored = json.loads((tmp_path / "batch-sizes.json").read_text())
    assert list(stored.values()) == [found] and "resnet18" in next(iter(stored))
    monkeypatch.setattr(batch_size_module, "batch_timings", lambda *a, **k: pytest.fail("measured again"))
    assert resolve_batch_size(model, "auto") == found
