"""An ONNX file as a black-box classifier: scores, and nothing else.

``--model path/to/model.onnx`` runs a deployed model with no PyTorch code: the file is
compiled by OpenVINO or ONNX Runtime (``backends.py``) behind ``OnnxNet``, a module with
no parameters whose ``forward`` maps normalised ``[B,3,H,W]`` images to logits. No
gradient flows through it and it has no layers to hook, so only the gradient-free methods
(RISE, LIME, Sobol, HSIC) and metrics work on it; the runner says so for the others.

What the file does not say comes from the command line (``--input-size``, ``--mean``,
``--std``, ``--classes``); what it says is read from its input shape and its metadata
(``metadata_props`` keys ``mean``, ``std``, ``classes``, one name per line, and
``interpolation``). With neither, the normalisation is ImageNet's and 1000 outputs are
ImageNet-1k's classes, each said in one line. A file whose outputs are probabilities
(non-negative, summing to 1) is read as such: its logits are their logarithms.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import backends
from .errors import ModelError, UsageError

#: The normalisation assumed when neither the file nor the command line gives one.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class OnnxInfo:
    """What is known of an ONNX classifier: input size, normalisation, classes and output count."""

    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    num_classes: int
    classes: list[str] | None


class OnnxNet(nn.Module):
    """A compiled ONNX file as a module: ``forward(x) -> logits``, without gradients."""

    def __init__(self, scorer: backends.Scorer, probabilities: bool = False) -> None:
        super().__init__()
        self.scorer = scorer
        self.probabilities = probabilities
        self.register_buffer("anchor", torch.zeros(0), persistent=False)  # carries the device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise UsageError("an ONNX model is a black box: no gradient flows through it")
        out = self.scorer(x)
        return out.clamp_min(1e-30).log() if self.probabilities else out

    def __deepcopy__(self, memo):
        raise UsageError("an ONNX model cannot be copied and changed (model randomisation needs a PyTorch model)")


def _triple(values: Sequence[float] | str, what: str) -> tuple[float, float, float]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be three numbers like 0.5,0.5,0.5, got {values!r}") from None
    if len(numbers) != 3 or (what == "--std" and min(numbers) <= 0):
        raise UsageError(f"{what} must be three numbers like 0.5,0.5,0.5 (std > 0), got {values!r}")
    return numbers  # type: ignore[return-value]


def _size(value: int | Sequence[int] | str) -> tuple[int, int]:
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()]
    if isinstance(value, int):
        value = [value]
    try:
        numbers = [int(v) for v in value]
    except (TypeError, ValueError):
        raise UsageError(f"--input-size must be N or H,W, got {value!r}") from None
    if len(numbers) not in (1, 2) or min(numbers) < 8:
        raise UsageError(f"--input-size must be N or H,W with sides >= 8, got {value!r}")
    return (numbers[0], numbers[-1])


def _class_names(classes: str | os.PathLike | Sequence[str]) -> list[str]:
    if isinstance(classes, (str, os.PathLike)):
        path = Path(classes)
        if not path.is_file():
            raise UsageError(f"classes file '{path}' does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read classes file '{path}': {exc}") from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names:
            raise UsageError(f"classes file '{path}' holds no names (one per line)")
        return names
    return [str(name) for name in classes]


def _read_graph(path: Path):
    """(input dims, output dims, metadata) of an ONNX file; a dim is an int or None when dynamic."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise many types for a bad file
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(f"cannot read ONNX file '{path}': {detail}") from None
    initialisers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialisers]
    if len(inputs) != 1 or not model.graph.output:
        raise ModelError(f"ONNX file '{path}' must have one image input and an output, has {len(inputs)} inputs")

    def dims(value) -> list[int | None]:
        shape = value.type.tensor_type.shape
        return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]

    metadata = {prop.key: prop.value for prop in model.metadata_props}
    return dims(inputs[0]), dims(model.graph.output[0]), metadata


def open_onnx_model(
    path: str | os.PathLike,
    device: torch.device,
    backend: str,
    precision: str,
    input_size: int | Sequence[int] | str | None = None,
    mean: Sequence[float] | str | None = None,
    std: Sequence[float] | str | None = None,
    classes: str | os.PathLike | Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[OnnxNet, OnnxInfo]:
    """Compile an ONNX classifier for ``device`` on ``backend`` (``auto``: OpenVINO, then ONNX Runtime).

    Raises:
        ModelError: a missing or unreadable file, or one that is not an image classifier.
        UsageError: options that contradict the file, or no engine installed.
    """
    say = log or (lambda line: None)
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX file '{path}' does not exist")
    engines = backends.candidates(backend, device, onnx_file=True)
    if not engines:
        raise UsageError(f"an ONNX model needs openvino or onnxruntime: {backends.INSTALL[backends.OPENVINO]}")
    input_dims, output_dims, metadata = _read_graph(path)
    if len(input_dims) != 4 or input_dims[1] not in (3, None):
        raise ModelError(f"ONNX file '{path}' takes input of shape {input_dims}, not [batch, 3, height, width]")
    fixed = tuple(input_dims[2:]) if None not in input_dims[2:] else None
    if input_size is not None:
        size = _size(input_size)
        if fixed is not None and size != fixed:
            raise UsageError(f"--input-size {size[0]},{size[1]} contradicts the file's input {fixed[0]}x{fixed[1]}")
    elif fixed is not None:
        size = (int(fixed[0]), int(fixed[1]))
    elif "input_size" in metadata:
        size = _size(metadata["input_size"])
    else:
        raise UsageError(f"ONNX file '{path}' does not fix its input size: pass --input-size (e.g. 224)")
    normalisation = []
    for value, key, flag, default in ((mean, "mean", "--mean", IMAGENET_MEAN), (std, "std", "--std", IMAGENET_STD)):
        if value is None and key in metadata:
            value = metadata[key]
        normalisation.append(default if value is None else _triple(value, flag))
    if mean is None and std is None and "mean" not in metadata and "std" not in metadata:
        say("the ONNX file carries no normalisation: using ImageNet's mean and std (set --mean and --std)")
    if classes is None and "classes" in metadata:
        classes = [line.strip() for line in metadata["classes"].splitlines() if line.strip()]
    names = _class_names(classes) if classes is not None else None

    resolved = backends.resolve_precision(precision, device, engines[0])
    if resolved.note:
        say(resolved.note)
    scorer = backends.make_scorer(engines[0], path, device, resolved.backend, input_dims[0])
    blank = torch.zeros(1, 3, *size, device=device)
    try:
        with torch.inference_mode():
            outputs = scorer(blank)
    except Exception as exc:  # noqa: BLE001 - the engines raise their own types for a bad graph
        raise ModelError(f"ONNX file '{path}' does not run on a 1x3x{size[0]}x{size[1]} image: {exc}") from None
    count = int(outputs.shape[1])
    if names is not None and len(names) != count:
        raise UsageError(f"{len(names)} class names for a model with {count} outputs")
    probabilities = bool((outputs >= 0).all()) and bool(((outputs.sum(1) - 1).abs() < 1e-3).all())
    if probabilities:
        say("the ONNX model outputs probabilities: scores are read from them directly")
    info = OnnxInfo(
        input_size=size,
        mean=normalisation[0],
        std=normalisation[1],
        interpolation=metadata.get("interpolation", "bilinear"),
        num_classes=count,
        classes=names,
    )
    return OnnxNet(scorer, probabilities), info
