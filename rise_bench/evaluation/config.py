"""Run configuration for ``evaluate``: TOML files and command-line overrides.

A config file holds the same keys as the command-line options (``dataset``, ``root``,
``methods``, ``metrics``, ``limit``...) at the top level and method and metric parameters
in a ``[params]`` table (``"rise.num_masks" = 1000``, ``"deletion.step" = 1792``). Options
given on the command line win.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ..batch_size import parse_batch_size
from ..errors import UsageError, close_matches
from ..parameters import fits_type, type_name
from .presets import preset


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
        metrics: metric names or ``all`` (see ``list-metrics``; default: the localisation
            metrics on data sets with boxes or masks, the others elsewhere).
        params: method and metric parameter overrides, ``OWNER.KEY=VALUE`` or ``KEY=VALUE``.
        quick: start from the methods' reduced ``quick_params``.
        maps: score precomputed maps ``MAPS/<method>/<sample_id>.npy`` instead of explaining.
        out: output folder.
        resume: skip results already in ``OUT/results.csv`` (see ``results.py`` for the key).
        limit, ids, sample: subset: first N, ids from a file, seeded random N.
        min_confidence: keep only the samples whose top-1 softmax probability (on the
            unperturbed image) is at least this; a rule fixed before the run, applied
            before any method runs (None: every sample).
        batch_size: images per forward pass, ``auto``, or None (8 on CPUs, auto elsewhere;
            see ``rise_bench.batch_size``).
        device, precision, seed: as for ``explain``.
        backend: what runs the gradient-free passes: auto, torch, openvino or onnxruntime
            (None: ``$RISE_BENCH_BACKEND`` or auto; ``rise_bench.backends``). An execution
            knob: results on other backends keep their keys.
        input_size, mean, std, classes: for an ONNX ``model`` that does not carry them
            (``rise_bench.onnx_model``).
        target: ``top1`` (the model's prediction, the paper's choice) or ``label``.
        step: shorthand for the ``step`` parameter of every selected metric that has one
            (deletion and insertion: pixels per step; default: the input width).
        labelmap: ImageNet class map for VOC/COCO pointing (default: the bundled one).
        baselines: also score the registered baselines (``list-methods``).
        download: let torchvision download VOC 2007 (online users).
        shard: ``I/N``: evaluate shard I of N and merge when all are done
            (``rise_bench.distributed``; torchrun sets it itself).
        preset: a published protocol whose settings fill the configuration first
            (``presets.py``: ``rise2018``, ``torchray2019``).
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
    min_confidence: float | None = None
    batch_size: int | str | None = None
    device: str = "auto"
    precision: str = "fp32"
    backend: str | None = None
    input_size: int | str | None = None
    mean: list[float] | str | None = None
    std: list[float] | str | None = None
    classes: str | None = None
    seed: int = 0
    target: str = "top1"
    step: int | None = None
    labelmap: str | None = None
    baselines: bool = True
    download: bool = False
    shard: str | None = None
    preset: str | None = None

    @classmethod
    def from_sources(cls, path: str | Path | None = None, **overrides: Any) -> RunConfig:
        """Defaults, then a ``preset``'s values, then the TOML file at ``path``, then ``overrides`` that are not None.

        Relative paths inside a config file (``root``, ``ids``, ``maps``, ``weights``) are
        relative to the current folder, like the command line's.

        Raises:
            UsageError: unreadable file or unknown key.
        """
        values: dict[str, Any] = {}
        if path is not None:
            values = _read_toml(Path(path))
        chosen = overrides.get("preset") or values.get("preset")
        if chosen is not None:  # the preset first: the config file and the command line win
            values = {**preset(str(chosen)).values, **values}
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
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            check_value(key, value, hints[key])
        values["batch_size"] = parse_batch_size(values.get("batch_size"))
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Keys whose integer must be at least 1.
POSITIVE = ("limit", "sample", "step")


def check_value(key: str, value: Any, hint: Any) -> None:
    """Check a config value against its field's type (and range).

    Raises:
        UsageError: naming the key, the value and the expected type.
    """
    if not fits_type(value, hint):
        raise UsageError(f"config key '{key}' = {value!r}: expected {type_name(hint)}")
    if key in POSITIVE and value is not None and value < 1:
        raise UsageError(f"config key '{key}' = {value!r}: expected an integer of at least 1")
    if key == "min_confidence" and value is not None and not 0 <= value <= 1:
        raise UsageError(f"config key '{key}' = {value!r}: expected a probability between 0 and 1")


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


def to_toml(document: dict[str, Any]) -> str:
    """A document as TOML (through tomli-w); None values, which TOML cannot hold, are left out."""
    import tomli_w

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value if v is not None]
        return value

    return tomli_w.dumps(clean(document))
