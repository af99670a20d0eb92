"""User-facing errors: one line, no traceback, a non-zero exit from the CLI."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RiseBenchError(Exception):
    """An error caused by the user's input or environment, shown as one line.

    Attributes:
        exit_code: 1 for a failed run (bad file, missing weights), 2 for bad usage
            (unknown name, malformed option).
    """

    exit_code = 1


class UsageError(RiseBenchError):
    """Bad usage: an unknown name or a malformed option (exit code 2)."""

    exit_code = 2


class ModelError(RiseBenchError):
    """A model cannot be built or its weights cannot be loaded."""


class ImageError(RiseBenchError):
    """An image file is missing, unreadable, truncated or too small."""


class DatasetError(RiseBenchError):
    """A data set is missing, empty or malformed."""


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' (did you mean: a, b?)' for the closest choices, or ''."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    if not found:
        found = [c for c in choices if name.lower() in c.lower()][:n]
    else:
        found = [lowered[f] for f in found]
    return f" (did you mean: {', '.join(found)}?)" if found else ""
