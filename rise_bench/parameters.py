"""Parameters of methods and metrics: frozen dataclasses with documented defaults.

A method or metric declares ``Params``, a frozen dataclass whose docstring documents
each field under ``Attributes:``; ``list-methods`` and ``list-metrics`` print those
texts. ``--param`` items override fields from the command line:

- ``OWNER.KEY=VALUE`` sets ``KEY`` of the method or metric ``OWNER`` (ignored when
  ``OWNER`` is not selected, an error when it has no such field);
- ``KEY=VALUE`` sets ``KEY`` of every selected method and metric that has it (an error
  when none has).

Values are converted to the field's annotated type (``bool``, ``int``, ``float``,
``str``, a ``Literal`` of choices, or one of these or ``None``, spelled ``none``), and
every value, from the command line or the Python API, is checked against that type
when the method or metric is built: a bad value fails before anything slow starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import UsageError, close_matches
from .files import short_hash

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Override:
    """One ``--param`` item: ``owner`` is None for an unqualified ``KEY=VALUE``."""

    owner: str | None
    key: str
    value: str
    text: str


def parse_overrides(items: Iterable[str]) -> list[Override]:
    """``KEY=VALUE`` / ``OWNER.KEY=VALUE`` strings as ``Override`` records.

    Raises:
        UsageError: an item without ``=`` or without a key.
    """
    overrides = []
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key or key.endswith("."):
            raise UsageError(f"malformed --param '{item}'; use KEY=VALUE or METHOD.KEY=VALUE")
        owner, dot, field_name = key.rpartition(".")
        overrides.append(Override(owner if dot else None, field_name, value.strip(), str(item)))
    return overrides


def field_names(params_class: type) -> list[str]:
    return [f.name for f in dataclasses.fields(params_class)]


def field_docs(params_class: type) -> dict[str, str]:
    """Field name -> its description from the ``Attributes:`` sections along the class's MRO."""
    docs: dict[str, str] = {}
    for klass in reversed(params_class.__mro__):
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
    return docs


def describe(params_class: type) -> list[tuple[str, Any, str]]:
    """(name, default, description) of each field."""
    docs = field_docs(params_class)
    return [(f.name, f.default, docs.get(f.name, "")) for f in dataclasses.fields(params_class)]


def _field_type(params_class: type, name: str) -> tuple[Any, bool]:
    """(base type, optional) of a field from its annotation (a ``Literal`` stays as it is)."""
    hint = typing.get_type_hints(params_class)[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else str), True
    return hint, False


def convert(params_class: type, name: str, text: str, owner: str) -> Any:
    """``text`` as a value of field ``name``'s type.

    Raises:
        UsageError: the text is not a valid value of that type.
    """
    kind, optional = _field_type(params_class, name)
    lowered = text.strip().lower()
    if optional and lowered in ("none", "null"):
        return None
    if typing.get_origin(kind) is typing.Literal:
        return text.strip()  # checked against the choices when the owner is built (check_values)
    if typing.get_origin(kind) is list:  # comma-separated items: areas=0.05,0.1
        (item,) = typing.get_args(kind)
        return [_convert_one(item, part, owner, name) for part in text.split(",") if part.strip()]
    return _convert_one(kind, text, owner, name)


def _convert_one(kind: Any, text: str, owner: str, name: str) -> Any:
    lowered = text.strip().lower()
    try:
        if kind is bool:
            if lowered not in _TRUE + _FALSE:
                raise ValueError(text)
            return lowered in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise UsageError(f"--param {owner}.{name}: '{text}' is not a valid {kind.__name__}") from None
    return text


def fits_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type ``hint``: unions, ``None``, lists, ``Literal`` choices,
    and ``int``/``float`` that are not ``bool`` (an int is a valid float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits_type(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(fits_type(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    return isinstance(value, origin or hint) if isinstance(origin or hint, type) else True


def type_name(hint: Any) -> str:
    """``hint`` in words, for messages: ``an integer or none``, ``a list of text``, ``one of a, b``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is list:
        return f"a list of {type_name(args[0])}"
    names = {type(None): "none", str: "text", int: "an integer", bool: "true or false", float: "a number"}
    return names.get(hint, str(hint))


def check_values(params_class: type, values: Mapping[str, Any], owner: str) -> None:
    """Every value fits its field's annotated type (``fits_type``; choices of a ``Literal`` included).

    Raises:
        UsageError: naming the owner, the parameter, the value and what it takes.
    """
    hints = typing.get_type_hints(params_class)
    for name, value in values.items():
        if fits_type(value, hints[name]):
            continue
        kind, _ = _field_type(params_class, name)
        if typing.get_origin(kind) is typing.Literal:
            raise UsageError(f"{owner}.{name}: '{value}' is not {type_name(kind)}")
        raise UsageError(f"{owner}.{name}: {value!r} is not a valid {getattr(kind, '__name__', kind)}")


class Configurable:
    """A method or metric: a registered name and a frozen ``Params`` dataclass.

    Attributes:
        params: the resolved parameters (an instance of ``Params``).
    """

    name: ClassVar[str] = ""
    #: What the registry calls its members ("method", "metric"), for messages and hashes.
    kind: ClassVar[str] = ""
    Params: ClassVar[type] = type(None)

    def __init__(self, **params: Any) -> None:
        names = field_names(self.Params)
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise UsageError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.kind} '{self.name}'"
                f"{close_matches(unknown[0], names)}; it takes {', '.join(sorted(names)) or 'none'}"
            )
        check_values(self.Params, params, self.name)
        try:
            self.params = self.Params(**params)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"bad parameters for {self.kind} '{self.name}': {exc}") from None
        self._hash = short_hash({self.kind: self.name, "params": self.resolved_params()})  # params are frozen

    def resolved_params(self) -> dict[str, Any]:
        """The parameters as a plain dict (saved with every result)."""
        return dataclasses.asdict(self.params)

    def params_hash(self) -> str:
        """Short stable hash of the name and the resolved parameters (computed once: they are frozen)."""
        return self._hash

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def chosen_params(cls: type[Configurable], overrides: Sequence[Override]) -> dict[str, Any]:
    """The values ``overrides`` give ``cls``: its qualified items and the unqualified keys it has."""
    names = set(field_names(cls.Params))
    chosen = {}
    for item in overrides:
        if (item.owner == cls.name or item.owner is None) and item.key in names:
            chosen[item.key] = convert(cls.Params, item.key, item.value, cls.name)
    return chosen


def check_overrides(
    overrides: Sequence[Override], known: Mapping[str, type[Configurable]], selected: Iterable[str], what: str
) -> None:
    """Every qualified item names a known owner and one of its fields; every unqualified one fits a selected owner.

    Args:
        overrides: parsed ``--param`` items.
        known: every registered name -> class (methods, and metrics where they can be named).
        selected: the names in use.
        what: how the selected owners are called in the message ("method", "method or metric").

    Raises:
        UsageError: naming the item and the closest names.
    """
    selected = list(selected)
    for item in overrides:
        if item.owner is not None:
            if item.owner not in known:
                raise UsageError(
                    f"--param '{item.text}': unknown {what} '{item.owner}'{close_matches(item.owner, known)}; "
                    f"choose from {', '.join(known)}"
                )
            cls = known[item.owner]
            names = field_names(cls.Params)
            if item.key not in names:
                raise UsageError(
                    f"{cls.kind} '{item.owner}' has no parameter '{item.key}'{close_matches(item.key, names)}"
                )
        elif not any(item.key in field_names(known[name].Params) for name in selected):
            raise UsageError(f"--param '{item.text}': no selected {what} has parameter '{item.key}'")


def unused_overrides(overrides: Sequence[Override], selected: Iterable[str], what: str) -> str:
    """One warning line for qualified ``--param`` items whose owner is not selected (they change nothing), or ''."""
    selected = set(selected)
    unused = [item for item in overrides if item.owner is not None and item.owner not in selected]
    if not unused:
        return ""
    owners = ", ".join(dict.fromkeys(item.owner for item in unused))
    effect = "it has" if len(unused) == 1 else "they have"
    return f"--param {', '.join(i.text for i in unused)}: {what} {owners} not selected, so {effect} no effect"
