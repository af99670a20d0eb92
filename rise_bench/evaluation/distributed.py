"""Scale-out: one evaluation split into shards, one process (rank) per shard.

Two ways in, the same files out:

- ``torchrun --nproc-per-node K [--nnodes N --rdzv-...] -m rise_bench evaluate ...``:
  the shard is (RANK, WORLD_SIZE) from torchrun's environment; a process group is set up
  (gloo on CPU, nccl on GPU with one GPU per rank, ``cuda:LOCAL_RANK``).
- ``rise-bench evaluate --shard I/N``: shard I (0-based) of N, no process group; run the
  N processes however you like (a job array, several terminals, several machines on a
  shared file system).

Shard I takes samples ``I, I+N, I+2N, ...`` of the ordered sample list (deterministic,
disjoint, balanced) and writes ``OUT/parts/results-I-of-N.csv``; ``--resume`` continues
that part. A shard that reaches the end of its samples writes
``OUT/parts/results-I-of-N.done`` (JSON: its sample ids in order, its failures). Once
every part has its ``.done`` file the parts are merged into ``OUT/results.csv`` in the
single-process order, followed by ``summary.csv`` and the plots: under torchrun rank 0
waits for the ``.done`` files (polling the file system: no collective operation, so ranks
may finish hours apart without hitting the process group's timeout); with ``--shard``
whichever shard finishes last merges. ``rise-bench merge OUT`` does the same by hand, e.g.
after a crashed shard was re-run alone.

Each shard also keeps ``OUT/parts/progress-I-of-N.json`` up to date, from which rank 0
shows the progress and ETA of the whole run. Maps and curves are one file per sample,
so shards never write the same file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import tomllib
import torch

from ..errors import RiseBenchError, UsageError
from ..files import write_atomic
from .results import COLUMNS, read_rows, write_rows

PARTS = "parts"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``; ``torchrun`` tells whether a process group backs it."""

    index: int = 0
    count: int = 1
    torchrun: bool = False
    local_rank: int = 0

    @property
    def split(self) -> bool:
        return self.count > 1

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, ids: list[str]) -> list[str]:
        """This shard's share of the ordered sample ids: every ``count``-th from ``index``."""
        return ids[self.index :: self.count]

    def part(self, out: Path) -> Path:
        return out / PARTS / f"results-{self.index}-of-{self.count}.csv"

    def marker(self, out: Path) -> Path:
        return self.part(out).with_suffix(".done")

    def progress_file(self, out: Path) -> Path:
        return out / PARTS / f"progress-{self.index}-of-{self.count}.json"


def parse_shard(text: str | None) -> Shard | None:
    """``I/N`` (0 <= I < N) -> ``Shard``; None passes through.

    Raises:
        UsageError: not of that form.
    """
    if text is None:
        return None
    index, slash, count = str(text).partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        shard = None
    if not slash or shard is None or not 0 <= shard.index < shard.count:
        raise UsageError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got '{text}'")
    return shard


def torchrun_shard() -> Shard | None:
    """The shard torchrun assigned (from RANK, WORLD_SIZE, LOCAL_RANK), or None outside torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return Shard(rank, world, torchrun=True, local_rank=int(os.environ.get("LOCAL_RANK", rank)))


def choose_shard(option: str | None) -> Shard:
    """``--shard`` if given, else torchrun's, else the whole run as one shard."""
    from_option = parse_shard(option)
    from_torchrun = torchrun_shard()
    if from_option is not None and from_torchrun is not None and from_torchrun.count > 1:
        raise UsageError("--shard cannot be combined with torchrun, which assigns the shards itself")
    return from_option or from_torchrun or Shard()


def rank_device(shard: Shard, device: str) -> str:
    """One GPU per rank under torchrun: ``auto``/``cuda`` become ``cuda:LOCAL_RANK`` when CUDA is there."""
    if shard.torchrun and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{shard.local_rank % torch.cuda.device_count()}"
    return device


def start_process_group(shard: Shard, device: torch.device, timeout_hours: float = 48.0) -> bool:
    """Join torchrun's process group (nccl for CUDA, gloo otherwise); True when this call made it.

    The timeout is generous because the only collective is a barrier at the start (all
    ranks have loaded their model); the end of the run needs none (see the module).
    """
    import torch.distributed as dist

    if not shard.torchrun or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=timedelta(hours=timeout_hours))
    dist.barrier()
    return True


def stop_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def write_progress(shard: Shard, out: Path, done: int, total: int) -> None:
    payload = {"done": done, "total": total, "updated": time.time()}
    write_atomic(shard.progress_file(out), json.dumps(payload))


def overall_progress(out: Path, count: int) -> int:
    """Samples done, summed over every shard's progress file."""
    done = 0
    for index in range(count):
        try:
            done += int(json.loads(Shard(index, count).progress_file(out).read_text()).get("done", 0))
        except (OSError, ValueError):
            continue
    return done


def write_marker(shard: Shard, out: Path, ids: list[str], failures: list[str], skipped_classes: dict[str, int]) -> None:
    payload = {
        "shard": shard.index,
        "count": shard.count,
        "samples": ids,
        "failures": failures,
        "skipped_classes": skipped_classes,
        "finished": time.time(),
    }
    write_atomic(shard.marker(out), json.dumps(payload))


def part_counts(out: Path) -> set[int]:
    """The shard counts N of the part files in ``OUT/parts``."""
    folder = out / PARTS
    counts = set()
    for path in folder.glob("results-*-of-*.csv") if folder.is_dir() else []:
        try:
            counts.add(int(path.stem.rsplit("-of-", 1)[1]))
        except (IndexError, ValueError):
            continue
    return counts


def missing_shards(out: Path, count: int) -> list[int]:
    return [i for i in range(count) if not Shard(i, count).marker(out).is_file()]


def wait_for_shards(out: Path, count: int, poll_seconds: float = 5.0, log=None) -> None:
    """Block until every shard's ``.done`` file exists (file-system polling, no collective)."""
    told = False
    while missing := missing_shards(out, count):
        if log is not None and not told:
            log(f"waiting for shard(s) {', '.join(f'{i}/{count}' for i in missing)} to finish")
            told = True
        time.sleep(poll_seconds)


def launcher(out: Path) -> str:
    """How a split run was started, from its ``config.toml``: ``torchrun``, ``shard`` or '' (unknown)."""
    try:
        return str(tomllib.loads((out / "config.toml").read_text()).get("config", {}).get("launcher", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return ""


def resume_advice(out: Path, count: int, missing: list[int]) -> str:
    """Which shards have not finished, and exactly how to resume them.

    When one torchrun rank dies, torchrun stops the others too, so every unfinished shard
    needs resuming: the same torchrun command with ``--resume`` does that (each rank
    continues its own part). Shards run by hand are resumed one by one.
    """
    shards = ", ".join(f"{i}/{count}" for i in missing)
    how = {
        "torchrun": "run the same torchrun command again with --resume (every rank resumes its own shard)",
        "shard": "re-run " + "; ".join(f"evaluate ... --shard {i}/{count} --resume" for i in missing),
    }.get(
        launcher(out),
        "under torchrun, run the same command again with --resume; with --shard, re-run "
        + "; ".join(f"--shard {i}/{count} --resume" for i in missing),
    )
    return f"shard(s) {shards} have not finished; to resume them, {how}; the last to finish merges"


def merge_parts(out: Path, count: int | None = None) -> dict[str, int]:
    """Merge ``OUT/parts/results-*-of-N.csv`` into ``OUT/results.csv`` in single-process order.

    Returns:
        The classes skipped (no counterpart in the class map) and how often, summed over
        the shards' ``.done`` files.

    Raises:
        RiseBenchError: no parts, parts of several shard counts, or a shard not finished.
    """
    counts = part_counts(out) if count is None else {count}
    if not counts:
        raise RiseBenchError(f"{out / PARTS} holds no part files (results-I-of-N.csv) to merge")
    if len(counts) > 1:
        raise RiseBenchError(f"{out / PARTS} mixes runs split {' and '.join(map(str, sorted(counts)))} ways; keep one")
    count = counts.pop()
    missing = missing_shards(out, count)
    if missing:
        raise RiseBenchError(resume_advice(out, count, missing))
    markers = [json.loads(Shard(i, count).marker(out).read_text()) for i in range(count)]
    rows_by_sample: dict[str, list[list[str]]] = {}
    for index in range(count):
        for row in read_rows(Shard(index, count).part(out)):
            rows_by_sample.setdefault(row["sample_id"], []).append([row[c] for c in COLUMNS])
    total = sum(len(m["samples"]) for m in markers)
    order = [markers[k % count]["samples"][k // count] for k in range(total)]
    lines = [row for sample_id in order for row in rows_by_sample.pop(sample_id, [])]
    lines += [row for rows in rows_by_sample.values() for row in rows]  # rows of samples no marker lists
    write_rows(out / "results.csv", lines)
    skipped: dict[str, int] = {}
    for marker in markers:
        for name, times in marker.get("skipped_classes", {}).items():
            skipped[name] = skipped.get(name, 0) + int(times)
    return skipped


class ShardSession:
    """One process's part of an evaluation: its samples, its results file, its progress, its end.

    The runner calls it in three places: ``open`` (the device, the process group, the
    results path, stale markers), ``progress`` (this shard's bar, and on shard 0 the whole
    run's) and ``finish`` (the ``.done`` marker, then waiting or merging); ``close`` leaves
    the process group, also after an error.

    Args:
        option: ``--shard I/N`` or None (torchrun's environment, else one shard).
        out: the run's output folder.
    """

    def __init__(self, option: str | None, out: Path) -> None:
        self.shard = choose_shard(option)
        self.out = out
        self.owns_group = False
        self.reporters: list = []

    @property
    def lead(self) -> bool:
        """Shard 0: it writes the run's config and shows the whole run's progress."""
        return self.shard.index == 0

    def take(self, ids: Sequence[str]) -> list[str]:
        return self.shard.take(list(ids))

    def results_path(self) -> Path:
        """This shard's results file: ``OUT/results.csv``, or its part when the run is split."""
        return self.shard.part(self.out) if self.shard.split else self.out / "results.csv"

    def device(self, requested: str) -> str:
        return rank_device(self.shard, requested)

    def open(self, device: torch.device, resume: bool, make_reporter: Callable | None, description: str) -> Path:
        """Join the process group, check the output folder, and return this shard's results file.

        Raises:
            UsageError: the folder holds a run of another kind, or results exist without ``resume``.
        """
        shard, out = self.shard, self.out
        self.owns_group = start_process_group(shard, device)
        out.mkdir(parents=True, exist_ok=True)
        results = self.results_path()
        if shard.split and (out / "results.csv").exists() and not (out / PARTS).is_dir():
            raise UsageError(f"{out} holds a single-process run; give a sharded run another --out")
        if results.exists() and results.stat().st_size > 0 and not resume:
            raise UsageError(f"{results} already exists; pass --resume to continue it or choose another --out")
        results.parent.mkdir(parents=True, exist_ok=True)
        if shard.split:
            shard.marker(out).unlink(missing_ok=True)  # done again only once this run reaches the end
        if make_reporter is not None:
            label = f" shard {shard.label}" if shard.split else ""
            self.reporters = [make_reporter(f"{description}{label}")]
            if shard.split and self.lead:
                self.reporters.append(make_reporter(f"{description} all {shard.count} shards"))
        return results

    def progress(self, done: int, total: int, whole: int, skipped: bool = False) -> None:
        """``done`` of this shard's ``total`` samples; ``whole`` is the run's sample count.

        ``skipped``: the samples so far were finished by an earlier run (``--resume``), so
        the ETA leaves them out.
        """
        if self.shard.split:
            write_progress(self.shard, self.out, done, total)
        if self.reporters and skipped:
            self.reporters[0].skip(done, total)
        elif self.reporters:
            self.reporters[0](done, total)
        if len(self.reporters) > 1:
            self.reporters[1](overall_progress(self.out, self.shard.count), whole)

    def finish(
        self, ids: list[str], failures: list[str], skipped: dict[str, int], log=None
    ) -> tuple[bool, dict[str, int]]:
        """Mark this shard done and merge when it is the one to: (merged, skipped classes of the whole run).

        A single process is merged by definition; under torchrun rank 0 waits for the
        other ranks' markers and merges; with ``--shard`` the last shard to finish merges.
        """
        self._remove_reporters()
        shard = self.shard
        if not shard.split:
            return True, skipped
        write_marker(shard, self.out, ids, failures, skipped)
        if shard.torchrun and self.lead:
            wait_for_shards(self.out, shard.count, log=log)
        elif shard.torchrun or missing_shards(self.out, shard.count):
            return False, skipped
        return True, merge_parts(self.out, shard.count)

    def close(self) -> None:
        """Leave the process group (when this session joined it) and remove the progress bars."""
        self._remove_reporters()
        if self.owns_group:
            stop_process_group()
            self.owns_group = False

    def _remove_reporters(self) -> None:
        for reporter in self.reporters:
            if hasattr(reporter, "finish"):
                reporter.finish()
        self.reporters = []
