"""Shared fixtures: the tiny region model, the real default model, the ImageNet sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from rise_bench.models import Classifier

from .helpers import IMAGENET_SAMPLE, make_region_model


@pytest.fixture(scope="session")
def region_model() -> Classifier:
    return make_region_model()


@pytest.fixture(scope="session")
def default_model() -> Classifier:
    """The packaged tf_efficientnet_lite0 (real ImageNet weights, offline)."""
    import rise_bench

    return rise_bench.load_model(device="cpu")


@pytest.fixture(scope="session")
def imagenet_sample() -> Path:
    if not (IMAGENET_SAMPLE / "labels.csv").exists():
        pytest.fail(f"shared data missing: {IMAGENET_SAMPLE}")
    return IMAGENET_SAMPLE
