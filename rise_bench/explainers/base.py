"""The explainer contract.

Every method subclasses ``Explainer``, declares a frozen dataclass of parameters with
documented defaults, and registers under a name (``registry.py``)::

    @register_explainer("rise")
    class Rise(Explainer):
        Params = RiseParams
        quick_params = {"num_masks": 1000}   # --quick
        tiny_params = {"num_masks": 500}     # the registry-driven tests
        def _explain(self, model, images, targets, seeds, execution): ...

``explain(model, images[B,3,H,W], targets, seeds=None, *, batch_size=None, progress=None)``
returns float32 saliency at the input's resolution and device, raw (not normalised, not
clamped): ``[B,H,W]`` for ``targets`` of shape ``[B]`` and ``[B,T,H,W]`` for ``[B,T]``.
The batch size and the progress callback are execution knobs, call arguments that never
enter a method's identity (its parameters and their hash).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..errors import UsageError
from ..parameters import Configurable
from ..seeds import seeded_generator

#: A progress callback: (work units done so far, total units).
Progress = Callable[[int, int], None]
#: Images (or perturbed copies) per forward pass when the caller gives none.
DEFAULT_BATCH_SIZE = 8

__all__ = ["DEFAULT_BATCH_SIZE", "Execution", "Explainer", "ExplainerParams", "Progress", "chunks", "seeded_generator"]


@dataclass(frozen=True)
class ExplainerParams:
    """Parameters every method has: none (execution knobs are call arguments)."""


@dataclass(frozen=True)
class Execution:
    """How one ``explain`` call runs: its batch size and progress callback.

    Attributes:
        batch_size: images (or perturbed copies) per forward pass.
        progress: called with (done, total) work units, or None.
    """

    batch_size: int = DEFAULT_BATCH_SIZE
    progress: Progress | None = None

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


class Explainer(Configurable, ABC):
    """Base class of all saliency methods; see the module docstring for the contract."""

    kind: ClassVar[str] = "method"
    Params: ClassVar[type] = ExplainerParams
    #: Reduced settings for quick demos (``--quick``); the defaults stay the paper's.
    quick_params: ClassVar[dict[str, Any]] = {}
    #: Settings small enough for the tiny test models, yet meaningful there.
    tiny_params: ClassVar[dict[str, Any]] = {}
    #: A chance-level reference scored beside the methods, not a method itself.
    baseline: ClassVar[bool] = False
    #: Whether the method differentiates through the model (gradient, CAM and mask-learning methods);
    #: the others only need its scores (black-box methods).
    needs_gradients: ClassVar[bool] = False
    #: The library an adapter hands the work to (``captum``, ``pytorch-grad-cam``); "" for the native methods.
    #: ``--method all`` selects the native methods only.
    library: ClassVar[str] = ""
    #: Made and registered when first named (``smoothgrad:<method>``): not listed, not in ``--method all``.
    on_demand: ClassVar[bool] = False

    @property
    def seed(self) -> int | None:
        """The method's own ``seed`` parameter, or None when it draws nothing at random."""
        return getattr(self.params, "seed", None)

    def explain(
        self,
        model: Any,
        images: torch.Tensor,
        targets: torch.Tensor | Sequence[int] | Sequence[Sequence[int]],
        seeds: torch.Tensor | Sequence[int] | None = None,
        *,
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> torch.Tensor:
        """Saliency of ``targets`` for ``images``.

        Args:
            model: a ``Classifier`` (``scores``, ``score``, ``cam_layer``...).
            images: normalised ``[B,3,H,W]`` tensor; not modified.
            targets: ``[B]`` class indices, or ``[B,T]`` for T classes per image.
            seeds: ``[B]`` per-image seeds for stochastic methods; default: the
                method's ``seed`` parameter for every image.
            batch_size: images (or perturbed copies) per forward pass (default 8).
            progress: called with (done, total) as the work advances.

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
        if batch_size is not None and int(batch_size) < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        execution = Execution(int(batch_size or DEFAULT_BATCH_SIZE), progress)
        seed_tensor = self._seeds(batch, seeds)
        saliency = self._explain(model, images, target_tensor, seed_tensor, execution).detach().float()
        return saliency[:, 0] if single else saliency

    @abstractmethod
    def _explain(
        self, model: Any, images: torch.Tensor, targets: torch.Tensor, seeds: torch.Tensor, execution: Execution
    ) -> torch.Tensor:
        """``images [B,3,H,W]``, ``targets [B,T]``, ``seeds [B]`` -> ``[B,T,H,W]``."""

    def _seeds(self, batch: int, seeds: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
        if seeds is None:
            # Every image gets the method's seed, so a map does not depend on batching.
            return torch.full((batch,), int(self.seed or 0), dtype=torch.long)
        seed_tensor = torch.as_tensor(seeds, dtype=torch.long).view(-1).cpu()
        if seed_tensor.numel() != batch:
            raise UsageError(f"seeds must have one entry per image ({batch}), got {seed_tensor.numel()}")
        return seed_tensor


def chunks(total: int, size: int):
    """Yield ``(start, stop)`` ranges covering ``range(total)`` in pieces of ``size``."""
    size = max(1, int(size))
    for start in range(0, total, size):
        yield start, min(total, start + size)
