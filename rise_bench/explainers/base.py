"""The explainer contract and the registry of methods.

Every method subclasses ``Explainer``, declares a frozen dataclass of parameters with
documented defaults, and registers under a name::

    @register_explainer("rise")
    class Rise(Explainer):
        Params = RiseParams
        def _explain(self, model, images, targets, seeds): ...

``explain(model, images[B,3,H,W], targets, seeds=None)`` returns float32 saliency at the
input's resolution and device, raw (not normalised, not clamped): ``[B,H,W]`` for
``targets`` of shape ``[B]`` and ``[B,T,H,W]`` for ``[B,T]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..errors import UsageError, close_matches

#: A progress callback: (work units done so far, total units).
Progress = Callable[[int, int], None]

_REGISTRY: dict[str, type[Explainer]] = {}


@dataclass(frozen=True)
class ExplainerParams:
    """Parameters every method has.

    Attributes:
        batch_size: images (or perturbed copies) per forward pass.
    """

    batch_size: int = 8


class Explainer(ABC):
    """Base class of all saliency methods; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[ExplainerParams]] = ExplainerParams
    #: Reduced settings for quick demos (``--quick``); the defaults stay the paper's.
    quick_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        names = {f.name for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise UsageError(
                f"unknown parameter(s) {', '.join(unknown)} for method '{self.name}'; "
                f"it takes {', '.join(sorted(names))}"
            )
        try:
            self.params = self.Params(**params)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"bad parameters for method '{self.name}': {exc}") from None
        self.progress: Progress | None = None

    # -- contract ---------------------------------------------------------------------
    def explain(
        self,
        model: Any,
        images: torch.Tensor,
        targets: torch.Tensor | Sequence[int] | Sequence[Sequence[int]],
        seeds: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Saliency of ``targets`` for ``images``.

        Args:
            model: a ``Classifier`` (``scores``, ``score``, ``cam_layer``...).
            images: normalised ``[B,3,H,W]`` tensor; not modified.
            targets: ``[B]`` class indices, or ``[B,T]`` for T classes per image.
            seeds: ``[B]`` per-image seeds for stochastic methods; default: the
                method's ``seed`` parameter for every image.

        Returns:
            float32 ``[B,H,W]`` (or ``[B,T,H,W]``) on ``images.device``.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise UsageError(f"images must be [B,3,H,W], got {list(images.shape)}")
        batch = images.shape[0]
        images = images.detach()
        if images.is_inference():  # tensors made under inference_mode cannot enter autograd
            images = images.clone()
        target_tensor = torch.as_tensor(targets, device=images.device).long().clone()
        single = target_tensor.dim() == 1
        if target_tensor.dim() == 0 or target_tensor.dim() > 2 or target_tensor.shape[0] != batch:
            raise UsageError(f"targets must be [B] or [B,T] with B={batch}, got {list(target_tensor.shape)}")
        if single:
            target_tensor = target_tensor[:, None]
        seed_tensor = self._seeds(batch, seeds)
        saliency = self._explain(model, images, target_tensor, seed_tensor).detach().float()
        return saliency[:, 0] if single else saliency

    @abstractmethod
    def _explain(
        self, model: Any, images: torch.Tensor, targets: torch.Tensor, seeds: torch.Tensor
    ) -> torch.Tensor:
        """``images [B,3,H,W]``, ``targets [B,T]``, ``seeds [B]`` -> ``[B,T,H,W]``."""

    # -- helpers ----------------------------------------------------------------------
    def _seeds(self, batch: int, seeds: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
        if seeds is None:
            # Every image gets the method's seed, so a map does not depend on batching.
            return torch.full((batch,), int(getattr(self.params, "seed", 0)), dtype=torch.long)
        seed_tensor = torch.as_tensor(seeds, dtype=torch.long).view(-1).cpu()
        if seed_tensor.numel() != batch:
            raise UsageError(f"seeds must have one entry per image ({batch}), got {seed_tensor.numel()}")
        return seed_tensor

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def resolved_params(self) -> dict[str, Any]:
        """The parameters as a plain dict (saved with every result)."""
        return dataclasses.asdict(self.params)

    def params_hash(self) -> str:
        """Short stable hash of the method name and its parameters, ``batch_size`` excluded."""
        params = {k: v for k, v in self.resolved_params().items() if k != "batch_size"}
        text = json.dumps({"method": self.name, "params": params}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def register_explainer(name: str) -> Callable[[type[Explainer]], type[Explainer]]:
    """Class decorator adding an explainer to the registry under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorate(cls: type[Explainer]) -> type[Explainer]:
        if name in _REGISTRY:
            raise ValueError(f"explainer '{name}' is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_explainers() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def explainer_class(name: str) -> type[Explainer]:
    """The class registered as ``name``.

    Raises:
        UsageError: no method has that name (with close matches).
    """
    if name not in _REGISTRY:
        raise UsageError(
            f"unknown method '{name}'{close_matches(name, _REGISTRY)}; choose from {', '.join(_REGISTRY)}"
        )
    return _REGISTRY[name]


def create_explainer(name: str, **params: Any) -> Explainer:
    """Instantiate the method ``name`` with ``params`` (others keep their defaults)."""
    return explainer_class(name)(**params)


def chunks(total: int, size: int):
    """Yield ``(start, stop)`` ranges covering ``range(total)`` in pieces of ``size``."""
    size = max(1, int(size))
    for start in range(0, total, size):
        yield start, min(total, start + size)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A local ``torch.Generator`` on ``device`` seeded with ``seed`` (global RNG untouched)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return generator


def describe_params(cls: type[Explainer]) -> list[tuple[str, Any, str]]:
    """(name, default, description) of each parameter, descriptions from the docstrings."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.Params.__mro__):
        text = klass.__doc__ or ""
        if "Attributes:" not in text:
            continue
        current = None
        for line in text.split("Attributes:", 1)[1].splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            head, sep, rest = stripped.partition(":")
            if sep and head.isidentifier() and " " not in head:
                current = head
                docs[current] = rest.strip()
            elif current:
                docs[current] += " " + stripped
    return [(f.name, f.default, docs.get(f.name, "")) for f in dataclasses.fields(cls.Params)]


def parse_param_overrides(method: str, items: Sequence[str]) -> dict[str, Any]:
    """Parameters for ``method`` from ``KEY=VALUE`` or ``METHOD.KEY=VALUE`` strings.

    ``KEY=VALUE`` applies to every method that has the parameter; values are converted
    to the parameter's type.

    Raises:
        UsageError: malformed item, or a key that no selected method has.
    """
    cls = explainer_class(method)
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"malformed --param '{item}'; use KEY=VALUE or METHOD.KEY=VALUE")
        key = key.strip()
        if "." in key:
            owner, key = key.split(".", 1)
            owner_fields = {f.name for f in dataclasses.fields(explainer_class(owner).Params)}
            if key not in owner_fields:
                raise UsageError(f"method '{owner}' has no parameter '{key}'{close_matches(key, owner_fields)}")
            if owner != method:
                continue
        elif key not in fields:
            continue
        params[key] = _convert(fields[key], value.strip(), method)
    return params


def _convert(field: dataclasses.Field, value: str, method: str) -> Any:
    kind = type(field.default)
    try:
        if kind is bool:
            lowered = value.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes", "on")
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise UsageError(f"--param {method}.{field.name}: '{value}' is not a valid {kind.__name__}") from None
    return value


def expand_methods(names: Sequence[str]) -> list[str]:
    """Method names from repeatable, comma-separated options; ``all`` means every method.

    Raises:
        UsageError: an unknown method name.
    """
    methods: list[str] = []
    for item in names:
        for name in (part.strip() for part in str(item).split(",")):
            if not name:
                continue
            chosen = list_explainers() if name == "all" else [explainer_class(name).name]
            methods += [m for m in chosen if m not in methods]
    if not methods:
        raise UsageError("no method selected; use --method NAME or --method all")
    return methods


def create_explainers(
    names: Sequence[str], overrides: Sequence[str] = (), quick: bool = False, **common: Any
) -> dict[str, Explainer]:
    """Explainers for ``names`` (see ``expand_methods``) with ``--param`` overrides.

    Args:
        names: method names or comma lists; ``all`` for every method.
        overrides: ``KEY=VALUE`` / ``METHOD.KEY=VALUE`` strings (see ``parse_param_overrides``).
        quick: start from each method's ``quick_params`` instead of the paper defaults.
        common: parameters given to every method that has them (``batch_size``, ``seed``).

    Raises:
        UsageError: unknown method or parameter, or a bad value.
    """
    methods = expand_methods(names)
    used: set[str] = set()
    explainers = {}
    for method in methods:
        cls = explainer_class(method)
        fields = {f.name for f in dataclasses.fields(cls.Params)}
        params = dict(cls.quick_params) if quick else {}
        params.update({k: v for k, v in common.items() if k in fields and v is not None})
        chosen = parse_param_overrides(method, overrides)
        used |= {f"{method}.{k}" for k in chosen} | set(chosen)
        params.update(chosen)
        explainers[method] = cls(**params)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if "." not in key and key not in used:
            raise UsageError(f"--param '{item}': no selected method has parameter '{key}'")
    return explainers
