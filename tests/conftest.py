"""Shared fixtures: the tiny region model, the real default model, the ImageNet sample."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rise_bench.models import Classifier

from .helpers import IMAGENET_SAMPLE, make_region_model

# The tests pin PyTorch in fp32 (the README's promise for reference values); tests/test_backends.py asks for the fast
# backends by name. One cache per test session: the ONNX exports happen once, and a developer's cache is left alone.
os.environ["RISE_BENCH_BACKEND"] = "torch"
os.environ["RISE_BENCH_CACHE"] = tempfile.mkdtemp(prefix="rise-bench-test-cache-")
atexit.register(shutil.rmtree, os.environ["RISE_BENCH_CACHE"], ignore_errors=True)


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
