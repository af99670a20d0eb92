"""rise-bench: a benchmark for image saliency methods.

Public API::

    import rise_bench
    model = rise_bench.load_model()                      # tf_efficientnet_lite0, offline
    explainer = rise_bench.create_explainer("rise", num_masks=1000)
    saliency = explainer.explain(model, images, targets)  # [B,H,W] or [B,T,H,W]

The names are imported on first use (PEP 562), so that ``rise-bench --help`` and usage
errors answer without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "Classifier": "rise_bench.models",
    "load_model": "rise_bench.models",
    "create_explainer": "rise_bench.explainers",
    "list_explainers": "rise_bench.explainers",
    "register_explainer": "rise_bench.explainers",
}

__all__ = ["Classifier", "create_explainer", "list_explainers", "load_model", "register_explainer", "__version__"]
assert set(__all__) == {*_EXPORTS, "__version__"}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .explainers import create_explainer, list_explainers, register_explainer
    from .models import Classifier, load_model


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rise_bench' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
