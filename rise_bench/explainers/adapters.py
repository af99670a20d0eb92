"""What the adapters to other libraries share (``captum_adapter.py``, ``grad_cam_adapter.py``).

- ``ScoreModule``: the model as an ``nn.Module`` whose output is ``model.scores(x, kind)``,
  handed to the library, so mapped VOC/COCO classifiers and every score kind work through
  the adapters as through the native methods (hooks on the network's layers still fire).
- ``library_available``: whether a library can be imported, without importing it (the
  adapters import their library lazily, when a map is asked for).
- ``require_library``: the ``--method`` resolver that turns an adapter name whose library
  is missing into one line naming the extra to install.
- ``seeded_global_rng``: the libraries draw from the global RNGs (torch's, NumPy's); the adapters seed a
  forked copy of it per image, so maps are reproducible and the caller's RNG untouched.
"""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from .registry import METHOD_RESOLVERS


class ScoreModule(nn.Module):
    """``forward(x) = model.scores(x, kind)``: a classifier's scores of one kind as a module."""

    def __init__(self, model, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.scores(x, self.kind)


def library_available(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path and not blocked), without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked import (sys.modules[name] = None) raises ValueError
        return False


def require_library(prefix: str, module: str, extra: str) -> None:
    """Register a ``--method`` resolver: a ``PREFIX...`` item without ``module`` is one line naming ``extra``."""

    def resolve(items: list[str]) -> list[str]:
        for item in items:
            for part in str(item).split(","):
                if part.strip().startswith(prefix) and not library_available(module):
                    raise UsageError(
                        f"method '{part.strip()}' needs the {module} library: pip install \"rise-bench[{extra}]\""
                    )
        return items

    METHOD_RESOLVERS.insert(0, resolve)


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device):
    """The global RNGs seeded with ``seed`` inside and restored after: torch's (CPU, and ``device`` when it is a GPU)
    and NumPy's (Captum's GradientShap draws its baselines and points there)."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed) % 2**63)
            np.random.seed(int(seed) % 2**32)
            yield
    finally:
        np.random.set_state(numpy_state)
