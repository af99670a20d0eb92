"""Files: atomic writes, content hashes and safe file names.

Every summary, config and map is written through a temporary file in the same folder and
an ``os.replace``, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a stream to a temporary file that replaces ``path`` once the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def cache_dir() -> Path:
    """rise-bench's cache folder: ``$RISE_BENCH_CACHE``, else ``~/.cache/rise-bench``."""
    return Path(os.environ.get("RISE_BENCH_CACHE") or Path.home() / ".cache" / "rise-bench")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_file(path) as stream:
        stream.write(text)


def save_array_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` ``array`` to ``path`` through a temporary file and a rename."""
    with atomic_file(path, "wb") as stream:
        np.save(stream, array)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def short_hash(document: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-serialisable document (keys sorted)."""
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def method_stem(method: str) -> str:
    """A method's name as a file or folder name: ``:`` (adapters, wrappers) written as ``-``."""
    return method.replace(":", "-")


def safe_name(sample_id: str) -> str:
    """A file name for a sample id (ImageNet ids may hold a '/')."""
    return sample_id.replace("/", "__")
