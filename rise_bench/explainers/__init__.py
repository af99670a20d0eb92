"""Saliency methods and baselines behind one contract (``base.py``); importing registers them all.

Every module of the package is imported with it, which registers its methods: a new
method is one new file (plus its tests; the registry-driven ones enrol it by themselves).
Methods of other packages come in through ``plugins.py`` (entry points, or a file named
on the command line).
"""

import importlib
import pkgutil

from .base import Execution, Explainer, ExplainerParams
from .registry import (
    create_explainer,
    create_explainers,
    explainer_class,
    is_baseline,
    list_baselines,
    list_explainers,
    register_explainer,
)

__all__ = [
    "Execution",
    "Explainer",
    "ExplainerParams",
    "create_explainer",
    "create_explainers",
    "explainer_class",
    "is_baseline",
    "list_baselines",
    "list_explainers",
    "register_explainer",
]

#: Registration order is the order of listings and of ``--method all``: these first, then any other module
#: of the package alphabetically (a new method is one new file), the baselines last.
_FIRST = ("rise", "gradcam", "gradient", "lime", "perturbation")
_HELPERS = ("base", "registry", "baselines", "plugins", "masking", "mask_optimisation", "adapters")
_found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and m.name not in _HELPERS)
for _module in [*(m for m in _FIRST if m in _found), *(m for m in _found if m not in _FIRST), "baselines"]:
    importlib.import_module(f"{__name__}.{_module}")

# Methods of installed packages (entry points), then --method path/to/file.py:ClassName (plugins.py).
from .plugins import load_entry_points  # noqa: E402

load_entry_points()
