"""The results schema: columns, a typed row, the writer, resume keys and the reader.

``results.csv`` is long-format: one row per (sample, method, metric, target, subset)::

    run_id, dataset, sample_id, model, method, metric, target, subset, value, params_hash, seconds, metric_params

``params_hash`` is a short hash of the method's resolved parameters, ``metric_params``
of the metric's; ``seconds`` is the time the method took to explain the sample. Rows of
the pseudo-method ``classifier`` describe the model itself (``top1``: the prediction
equals the label; ``target_is_label``: the explained class is the label).

The schema grows by appending optional columns: the writer always writes the full
current header; readers accept any file whose first columns are ``BASE_COLUMNS`` and fill
the optional columns it lacks (a file of an older version stays readable, and resuming
it rewrites it once with the full header). Resume keys are (sample, model, method,
metric, params_hash, metric_params); a row written before ``metric_params`` existed
matches any metric parameters, as its version did.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import pandas as pd

from ..errors import RiseBenchError
from ..files import write_atomic

#: The columns every results file starts with.
BASE_COLUMNS = [
    "run_id",
    "dataset",
    "sample_id",
    "model",
    "method",
    "metric",
    "target",
    "subset",
    "value",
    "params_hash",
    "seconds",
]
#: Optional columns, appended in this order, and the value that fills them in older files.
OPTIONAL_COLUMNS = {"metric_params": ""}
COLUMNS = BASE_COLUMNS + list(OPTIONAL_COLUMNS)
#: What a finished result is keyed by (for --resume and compare).
RESUME_KEY = ("sample_id", "model", "method", "metric", "params_hash", "metric_params")
#: Columns read as text (the rest: value and seconds, as numbers).
TEXT_COLUMNS = [c for c in COLUMNS if c not in ("value", "seconds")]

#: Pseudo-method of the rows about the classifier itself, and its statistics.
CLASSIFIER = "classifier"
CLASSIFIER_METRICS = ("top1", "target_is_label")


@dataclass(frozen=True)
class ResultRow:
    """One row of ``results.csv`` (the fields are ``COLUMNS``, in order)."""

    run_id: str
    dataset: str
    sample_id: str
    model: str
    method: str
    metric: str
    target: str
    subset: str
    value: float
    params_hash: str
    seconds: float
    metric_params: str = ""

    def cells(self) -> list:
        return list(astuple(self))


assert [f.name for f in fields(ResultRow)] == COLUMNS  # the row and the header are one schema


def check_header(header: Sequence[str] | None, path: Path | str) -> list[str]:
    """The header if it is a results file's (today's or an older version's), else a RiseBenchError."""
    header = list(header or [])
    known = (
        header[: len(BASE_COLUMNS)] == BASE_COLUMNS
        and header[len(BASE_COLUMNS) :] == COLUMNS[len(BASE_COLUMNS) : len(header)]
    )
    if not known:
        raise RiseBenchError(f"{path} is not a rise-bench results file (columns {header})")
    return header


def _filled(row: dict[str, str]) -> dict[str, str]:
    for name, fill in OPTIONAL_COLUMNS.items():
        if row.get(name) is None:
            row[name] = fill
    return row


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a results file as dicts of text, optional columns filled.

    Raises:
        RiseBenchError: the file is not a results file.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        check_header(reader.fieldnames, path)
        return [_filled(row) for row in reader]


def read_frame(path: Path) -> pd.DataFrame:
    """A results file as a DataFrame with every current column (text keys, numeric values).

    Raises:
        RiseBenchError: the file is missing, unreadable or not a results file.
    """
    path = Path(path)
    if not path.is_file():
        raise RiseBenchError(f"results file '{path}' does not exist")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RiseBenchError(f"'{path}' is not a results file ({exc})") from None
    check_header(list(frame.columns), path)
    for name, fill in OPTIONAL_COLUMNS.items():
        if name not in frame.columns:
            frame[name] = fill
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame["seconds"] = pd.to_numeric(frame["seconds"], errors="coerce")
    return frame[COLUMNS]


class FinishedKeys:
    """The resume keys of the rows already in a results file."""

    def __init__(self, rows: Iterable[dict[str, str]] = ()) -> None:
        self.keys = {tuple(row[c] for c in RESUME_KEY) for row in rows}

    @classmethod
    def of(cls, path: Path) -> FinishedKeys:
        return cls(read_rows(path)) if path.exists() and path.stat().st_size > 0 else cls()

    def __contains__(self, key: tuple) -> bool:
        # a row from before metric_params existed matches any metric parameters
        return key in self.keys or (*key[:-1], "") in self.keys


def write_rows(path: Path, rows: Iterable[Sequence]) -> None:
    """Write a whole results file (the current header, then ``rows``) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


class ResultWriter:
    """Appends rows to a results file, flushing and syncing after every sample.

    A new file gets the current header; an existing one of an older version is first
    rewritten (atomically) with the current header and its rows filled.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists() and path.stat().st_size > 0:
            with open(path, newline="") as handle:
                header = check_header(next(csv.reader(handle), None), path)
            if header != COLUMNS:
                write_rows(path, ([row[c] for c in COLUMNS] for row in read_rows(path)))
            self.stream = open(path, "a", newline="")  # closed by close()
            self.writer = csv.writer(self.stream)
        else:
            self.stream = open(path, "w", newline="")  # closed by close()
            self.writer = csv.writer(self.stream)
            self.writer.writerow(COLUMNS)
            self.stream.flush()

    def write(self, rows: Sequence[ResultRow]) -> None:
        self.writer.writerows(row.cells() for row in rows)
        self.stream.flush()
        os.fsync(self.stream.fileno())

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
