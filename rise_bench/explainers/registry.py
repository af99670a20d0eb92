"""The registry of saliency methods and baselines: register, create, list, ``--param``, presets.

``@register_explainer("name")`` enrols a class; ``create_explainer(name, **params)``
builds one; ``list_explainers()`` names them all. Baselines (``center``, ``random``) are
registered explainers flagged ``baseline``: ``--method all`` leaves them out and an
evaluation scores them beside the methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import UsageError
from ..parameters import check_overrides, parse_overrides
from ..registry import Registry
from .base import Explainer

EXPLAINERS: Registry[Explainer] = Registry("method")

register_explainer = EXPLAINERS.register

#: Rewrites of ``--method`` items before their names are looked up (``plugins.py`` adds the loader of
#: ``path/to/file.py:ClassName`` items).
METHOD_RESOLVERS: list[Callable[[list[str]], list[str]]] = []


def list_explainers(baselines: bool = True, adapters: bool = True) -> list[str]:
    """Registered names in registration order: the methods (adapters to other libraries last, unless False),
    then (unless False) the baselines."""
    classes = {name: cls for name, cls in EXPLAINERS.classes().items() if not cls.on_demand}
    native = [n for n, c in classes.items() if not c.baseline and not c.library]
    adapted = [n for n, c in classes.items() if not c.baseline and c.library] if adapters else []
    return native + adapted + (list_baselines() if baselines else [])


def list_baselines() -> list[str]:
    """Names of the registered baselines."""
    return [n for n, c in EXPLAINERS.classes().items() if c.baseline]


def is_baseline(name: str) -> bool:
    """Whether ``name`` is a registered baseline (unregistered names are not)."""
    return name in EXPLAINERS and EXPLAINERS.get(name).baseline


def explainer_class(name: str) -> type[Explainer]:
    """The class registered as ``name``.

    Raises:
        UsageError: no method has that name (with close matches).
    """
    return EXPLAINERS.get(name)


def create_explainer(name: str, **params: Any) -> Explainer:
    """Instantiate the method ``name`` with ``params`` (others keep their defaults)."""
    return explainer_class(name)(**params)


def gradient_free_methods(adapters: bool = True) -> list[str]:
    """The methods that need only a model's scores (``needs_gradients`` False): those an ONNX model supports."""
    return [n for n in list_explainers(baselines=False, adapters=adapters) if not EXPLAINERS.get(n).needs_gradients]


def expand_methods(names: Sequence[str], gradient_free: bool = False) -> list[str]:
    """Method names from repeatable, comma-separated options; ``all`` means every native method (no baselines,
    no adapters to other libraries: those are named one by one).

    With ``gradient_free`` (a model without gradients, such as an ONNX file), ``all`` means
    every native gradient-free method, and naming another method is an error.

    Raises:
        UsageError: an unknown method name, or one that needs gradients when ``gradient_free``.
    """
    items = list(names)
    for resolve in METHOD_RESOLVERS:
        items = resolve(items)
    everything = gradient_free_methods(adapters=False) if gradient_free else None
    methods = EXPLAINERS.expand(items, everything or list_explainers(baselines=False, adapters=False))
    if gradient_free:
        needing = [m for m in methods if EXPLAINERS.get(m).needs_gradients]
        if needing:
            raise UsageError(
                f"{', '.join(needing)} need{'s' if len(needing) == 1 else ''} gradients, which an ONNX model does "
                f"not give; methods that work on it: {', '.join(gradient_free_methods())}"
            )
    return methods


def create_explainers(
    names: Sequence[str],
    overrides: Sequence[str] = (),
    quick: bool = False,
    seed: int | None = None,
    validate: bool = True,
    gradient_free: bool = False,
) -> dict[str, Explainer]:
    """Explainers for ``names`` (see ``expand_methods``) with ``--param`` overrides.

    Args:
        names: method names or comma lists; ``all`` for every method.
        overrides: ``KEY=VALUE`` / ``METHOD.KEY=VALUE`` strings (see ``rise_bench.parameters``).
        quick: start from each method's ``quick_params`` instead of the paper defaults.
        seed: the run's seed: the default of every method's ``seed`` parameter.
        validate: check the overrides against the methods (off when the caller checked
            them against methods and metrics together).
        gradient_free: the model gives no gradients (see ``expand_methods``).

    Raises:
        UsageError: unknown method or parameter, or a bad value.
    """
    methods = expand_methods(names, gradient_free)
    parsed = parse_overrides(overrides)
    if validate:
        check_overrides(parsed, EXPLAINERS.classes(), methods, "method")
    presets = (lambda cls: cls.quick_params) if quick else None
    return EXPLAINERS.create(methods, parsed, presets=presets, common={"seed": seed})
