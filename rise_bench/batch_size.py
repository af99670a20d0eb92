"""``--batch-size auto``: the batch size at which the model scores images fastest.

Every method spends its time in the model's forward passes, so the best batch size is the
one with the lowest time per image for plain forward passes on this model, device,
precision, scoring backend (``backends.py``: the gradient-free passes are timed on it) and
thread count. ``find_batch_size`` tries 1, 2, 4, ... (stopping once larger
batches are clearly slower, or at the first out-of-memory error) and remembers the answer
in ``~/.cache/rise-bench/batch-sizes.json`` (``RISE_BENCH_CACHE`` moves that folder), so
only the first run on a machine pays for the search (a few seconds).

The default (no ``--batch-size``) is ``DEFAULT_CPU_BATCH_SIZE`` on CPUs, where small
batches are usually fastest and a fixed value keeps runs reproducible, and ``auto`` on
accelerators.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .errors import UsageError
from .files import cache_dir, write_atomic
from .models import scores_only

#: Batch size used on CPUs when none is given.
DEFAULT_CPU_BATCH_SIZE = 8
#: Largest batch size tried on CPUs and on accelerators.
MAX_CPU_BATCH_SIZE = 64
MAX_ACCELERATOR_BATCH_SIZE = 512
AUTO = "auto"


def parse_batch_size(value: int | str | None) -> int | str | None:
    """A batch size from the command line or a config: a positive integer, ``auto`` or None.

    Raises:
        UsageError: anything else.
    """
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        if value is not None and value < 1:
            raise UsageError(f"--batch-size must be >= 1 or 'auto', got {value}")
        return value
    text = str(value).strip().lower()
    if text == AUTO:
        return AUTO
    try:
        number = int(text)
    except ValueError:
        raise UsageError(f"--batch-size must be a positive integer or 'auto', got '{value}'") from None
    return parse_batch_size(number)


def resolve_batch_size(model, value: int | str | None, log=None) -> int:
    """The batch size to use with ``model``: ``value`` itself, or found when ``auto``/None (see module)."""
    value = parse_batch_size(value)
    if isinstance(value, int):
        return value
    if value is None and model.device.type == "cpu":
        return DEFAULT_CPU_BATCH_SIZE
    return find_batch_size(model, log=log)


def _cache_file() -> Path:
    return cache_dir() / "batch-sizes.json"


def _cache_key(model) -> str:
    device = model.device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    height, width = model.input_size
    backend = getattr(model, "backend", "torch").replace(" ", "-")  # each backend has its own best size
    return (
        f"{model.name}|{model.precision}|{backend}|{where}|threads={threads}|{height}x{width}|torch={torch.__version__}"
    )


def synchronise(device: torch.device) -> None:
    """Wait for the device's queued work, so that wall-clock timings mean something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_per_image(model, batch_size: int, min_seconds: float = 0.3, repeats: int = 3) -> float:
    """Best seconds per image of plain forward passes at ``batch_size`` (after one warm-up)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, *model.input_size, generator=generator).to(model.device)
    best = float("inf")
    with torch.inference_mode(), scores_only(model):  # time the backend the gradient-free passes use
        model(images)
        synchronise(model.device)
        spent, runs = 0.0, 0
        while runs < repeats or spent < min_seconds:
            started = time.perf_counter()
            model(images)
            synchronise(model.device)
            elapsed = time.perf_counter() - started
            best = min(best, elapsed)
            spent += elapsed
            runs += 1
            if runs >= 20:
                break
    return best / batch_size


def find_batch_size(model, *, log=None, limit: int | None = None) -> int:
    """The power of two with the lowest forward time per image on ``model``'s device (cached)."""
    key = _cache_key(model)
    cache = _cache_file()
    try:
        stored = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        stored = {}
    if isinstance(stored.get(key), int):
        return stored[key]
    if log is not None:
        log(f"finding the fastest batch size for {model.name} on {model.device} (once per machine)")
    largest = limit or (MAX_CPU_BATCH_SIZE if model.device.type == "cpu" else MAX_ACCELERATOR_BATCH_SIZE)
    timings = batch_timings(model, largest)
    best = min(timings, key=timings.get)
    stored[key] = best
    try:
        write_atomic(cache, json.dumps(stored, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home only costs the search next time
    return best


def batch_timings(model, largest: int) -> dict[int, float]:
    """Seconds per image at 1, 2, 4, ... ``largest``; stops after two sizes 10% slower than the best, or out of "
    "memory."""
    timings: dict[int, float] = {}
    size, worse = 1, 0
    while size <= largest:
        try:
            timings[size] = time_per_image(model, size)
        except torch.OutOfMemoryError:
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            break
        best = min(timings.values())
        worse = worse + 1 if timings[size] > 1.1 * best else 0
        if worse >= 2:
            break
        size *= 2
    if not timings:
        raise UsageError(f"model {model.name} does not fit on {model.device} even one image at a time")
    return timings
