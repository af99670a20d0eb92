"""Methods from outside the package, without forking it.

- **Installed packages** declare an entry point in the group ``rise_bench.explainers``
  (``myexp = mypkg.module:MyExplainer``); every such class is registered under the entry
  point's name when the package of methods is imported, so ``list-methods``, ``explain``
  and ``evaluate`` (``--method all`` included) know it.
- **A local file**, for a quick experiment: ``--method path/to/file.py:ClassName`` imports
  the file and registers the class under its own ``name`` attribute.

Either way the class subclasses ``Explainer``. A plugin that fails to load is reported in
one line and left out; it never stops the tool.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from ..console import warn
from ..errors import UsageError
from .base import Explainer
from .registry import EXPLAINERS, METHOD_RESOLVERS, register_explainer

GROUP = "rise_bench.explainers"


def _checked(cls: object, origin: str) -> type[Explainer]:
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise UsageError(f"{origin} is not a rise_bench Explainer subclass")
    return cls


def load_entry_points() -> list[str]:
    """Register the classes of the ``rise_bench.explainers`` entry points; returns the names added."""
    added = []
    for point in metadata.entry_points(group=GROUP):
        if point.name in EXPLAINERS:
            continue
        try:
            cls = _checked(point.load(), f"entry point '{point.name}' ({point.value})")
            register_explainer(point.name)(cls)
        except Exception as exc:  # noqa: BLE001 - a broken third-party package must not break the tool
            warn(f"method plugin '{point.name}' ({point.value}) not loaded: {exc}")
            continue
        added.append(point.name)
    return added


def is_file_plugin(item: str) -> bool:
    """Whether a ``--method`` item names a class in a Python file (``path/to/file.py:ClassName``)."""
    path, sep, _ = item.rpartition(":")
    return bool(sep) and path.endswith(".py")


def load_file_plugin(item: str) -> str:
    """Import ``path/to/file.py:ClassName`` and register the class under its ``name``; returns that name.

    Raises:
        UsageError: the file is missing or fails to import, the class is missing, is not an
            ``Explainer``, has no ``name``, or its name belongs to another method.
    """
    path_text, _, class_name = item.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"method file {path} not found")
    module_name = f"rise_bench_plugin_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be imported as a Python module")
    module = sys.modules.get(module_name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - any error of foreign code: one line, not a traceback
            raise UsageError(f"{path} failed to import: {type(exc).__name__}: {exc}") from None
        sys.modules[module_name] = module
    if not hasattr(module, class_name):
        raise UsageError(f"{path} has no class '{class_name}'")
    cls = _checked(getattr(module, class_name), f"{item}")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{item}: give the class a 'name' attribute, the method's name in results and on disk")
    if name in EXPLAINERS:
        if EXPLAINERS.get(name) is not cls:
            raise UsageError(f"{item}: the name '{name}' belongs to another method")
        return name
    register_explainer(name)(cls)
    return name


def resolve_methods(items: list[str]) -> list[str]:
    """``--method`` items with each ``file.py:Class`` replaced by the name it registers."""
    resolved = []
    for item in items:
        parts = [part.strip() for part in str(item).split(",")]
        resolved.append(",".join(load_file_plugin(p) if is_file_plugin(p) else p for p in parts))
    return resolved


METHOD_RESOLVERS.append(resolve_methods)
