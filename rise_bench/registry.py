"""A registry of named classes: how methods and metrics are enrolled, found and listed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from .errors import UsageError, close_matches
from .parameters import Configurable, Override, chosen_params, field_names

T = TypeVar("T", bound=Configurable)


class Registry(Generic[T]):
    """Name -> class, in registration order.

    Args:
        kind: what the members are called in messages ("method", "metric").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator adding a class under ``name``.

        Raises:
            ValueError: ``name`` is already registered.
        """

        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f"{self.kind} '{name}' is already registered by {self._classes[name].__name__}")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._classes)

    def classes(self) -> dict[str, type[T]]:
        return dict(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``.

        Raises:
            UsageError: no member has that name (with the closest names).
        """
        if name not in self._classes:
            choices = ", ".join(self._classes)
            raise UsageError(f"unknown {self.kind} '{name}'{close_matches(name, self._classes)}; choose from {choices}")
        return self._classes[name]

    def expand(self, items: Iterable[str], everything: Sequence[str]) -> list[str]:
        """Names from repeatable, comma-separated options; ``all`` stands for ``everything``.

        Raises:
            UsageError: an unknown name, or nothing selected.
        """
        names: list[str] = []
        for item in items:
            for name in (part.strip() for part in str(item).split(",")):
                if not name:
                    continue
                chosen = list(everything) if name == "all" else [self.get(name).name]
                names += [n for n in chosen if n not in names]
        if not names:
            raise UsageError(f"no {self.kind} selected; use --{self.kind} NAME or --{self.kind} all")
        return names

    def create(
        self,
        names: Sequence[str],
        overrides: Sequence[Override] = (),
        presets: Callable[[type[T]], dict[str, Any]] | None = None,
        common: dict[str, Any] | None = None,
    ) -> dict[str, T]:
        """Instances of ``names``: each class's preset, then ``common`` values it has, then the overrides."""
        created = {}
        for name in names:
            cls = self.get(name)
            fields = set(field_names(cls.Params))
            params = dict(presets(cls)) if presets else {}
            params.update({k: v for k, v in (common or {}).items() if k in fields and v is not None})
            params.update(chosen_params(cls, overrides))
            created[name] = cls(**params)
        return created
