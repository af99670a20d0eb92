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

A row is whole only when it ends with a line terminator and parses: readers skip
malformed rows and say how many (``read_frame``), and ``--resume`` first drops them with
every row of their sample (``repair``), so that the next row is never glued onto a
fragment.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
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
OPTIONAL_COLUMNS = {"metric_params": "", "forward_passes": "", "backend": ""}
COLUMNS = BASE_COLUMNS + list(OPTIONAL_COLUMNS)
#: What a finished result is keyed by (for --resume and compare).
RESUME_KEY = ("sample_id", "model", "method", "metric", "params_hash", "metric_params")

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
    #: Images the explanation sent through the model (its cost); empty for saved maps and classifier rows.
    forward_passes: int | str = ""
    #: What ran the gradient-free passes (``torch``, ``openvino``, ``onnxruntime bf16``...; ``backends.py``);
    #: an execution knob, not part of the key.
    backend: str = ""

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


#: Columns a row cannot do without.
KEY_COLUMNS = ("sample_id", "model", "method", "metric", "subset")


@dataclass
class Line:
    """One physical line of a results file after the header.

    Attributes:
        number: 1-based line number in the file.
        text: the raw text, line terminator included (none for an incomplete last line).
        cells: the CSV cells.
        row: the row as a dict (optional columns filled), or None when the line is malformed.
        problem: why the line is malformed ('' when it is not).
    """

    number: int
    text: str
    cells: list[str]
    row: dict[str, str] | None
    problem: str = ""

    @property
    def sample(self) -> str | None:
        """The sample id, when the line holds it for sure (a complete third cell)."""
        if self.row is not None:
            return self.row["sample_id"]
        return self.cells[2] if len(self.cells) > 3 else None


@dataclass
class ResultsText:
    """A results file read line by line: its header, its well-formed rows and what is not.

    A row is complete only if it ends with a line terminator; one that does not (the
    tail of a write cut short by a full disk, a copy or a power loss) is malformed, as
    is a row with the wrong number of cells, a value or time that is not a finite number,
    or an empty key column.
    """

    path: Path
    header: list[str] | None
    header_text: str
    lines: list[Line]

    @property
    def rows(self) -> list[dict[str, str]]:
        return [line.row for line in self.lines if line.row is not None]

    @property
    def malformed(self) -> list[Line]:
        return [line for line in self.lines if line.row is None]

    def malformed_message(self) -> str:
        """One line naming how many rows were skipped and why (the first few)."""
        bad = self.malformed
        shown = "; ".join(f"line {line.number}: {line.problem}" for line in bad[:3])
        more = f"; {len(bad) - 3} more" if len(bad) > 3 else ""
        return f"skipped {len(bad)} malformed row(s) of {self.path} ({shown}{more})"


def _split_lines(text: str) -> list[str]:
    """Physical lines, each with its terminator; the last one lacks it when the file was cut short."""
    lines = text.split("\n")
    pieces = [line + "\n" for line in lines[:-1]]
    return pieces + ([lines[-1]] if lines[-1] else [])


def _parse_line(number: int, text: str, header: list[str]) -> Line:
    cells = next(csv.reader([text]), [])
    line = Line(number, text, cells, None)
    if not text.endswith("\n"):
        line.problem = "incomplete (no line terminator)"
    elif len(cells) != len(header):
        line.problem = f"{len(cells)} cells, expected {len(header)}"
    else:
        row = _filled(dict(zip(header, cells, strict=True)))
        empty = [c for c in KEY_COLUMNS if not row[c]]
        numbers = {c: row[c] for c in ("value", "seconds")}
        if empty:
            line.problem = f"empty {', '.join(empty)}"
        elif not all(_is_finite_number(v) for v in numbers.values()):
            line.problem = "not a number: " + ", ".join(
                f"{c} '{v}'" for c, v in numbers.items() if not _is_finite_number(v)
            )
        else:
            line.row = row
    return line


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _text(data: bytes, path: Path) -> str:
    """Bytes of a results file as text, or a RiseBenchError saying it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RiseBenchError(f"{path} is not a rise-bench results file (not UTF-8 text)") from None
    if "\x00" in text:
        raise RiseBenchError(f"{path} is not a rise-bench results file (it holds NUL bytes)")
    return text


def _header(first_line: str, path: Path) -> list[str] | None:
    """The header of a file's first line, or None when it was cut short (no line terminator)."""
    if not first_line.endswith("\n"):
        return None
    try:
        return check_header(next(csv.reader([first_line]), None), path)
    except csv.Error:
        raise RiseBenchError(f"{path} is not a rise-bench results file (not CSV)") from None


def parse_results(path: Path) -> ResultsText:
    """Read a results file line by line (see ``ResultsText``); an empty file has no header and no rows.

    Raises:
        RiseBenchError: the file is missing, not UTF-8 text, or its header is not a results file's.
    """
    path = Path(path)
    try:
        pieces = _split_lines(_text(path.read_bytes(), path))
    except OSError as exc:
        raise RiseBenchError(f"results file '{path}' cannot be read ({exc.strerror or exc})") from None
    header = _header(pieces[0], path) if pieces else None
    if header is None:  # empty, or cut short inside the header
        return ResultsText(path, None, "", [Line(1, pieces[0], [], None, "incomplete header")] if pieces else [])
    try:
        lines = [_parse_line(number, piece, header) for number, piece in enumerate(pieces[1:], 2)]
    except csv.Error as exc:
        raise RiseBenchError(f"{path} is not a rise-bench results file (not CSV: {exc})") from None
    return ResultsText(path, header, pieces[0], lines)


def read_header(path: Path) -> list[str] | None:
    """A results file's header from its first line alone (None: empty, or cut short inside the header).

    Raises:
        RiseBenchError: the first line is not UTF-8 text or not a results file's header.
    """
    with open(path, "rb") as stream:
        return _header(_text(stream.readline(), path), path)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a whole results file as dicts of text, optional columns filled.

    Raises:
        RiseBenchError: the file is not a results file, or holds malformed rows (resume repairs them).
    """
    parsed = parse_results(path)
    if parsed.malformed:
        raise RiseBenchError(parsed.malformed_message().replace("skipped", "found") + "; evaluate --resume repairs it")
    return parsed.rows


def read_frame(path: Path, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """A results file as a DataFrame with every current column (text keys, numeric values).

    Malformed rows (see ``ResultsText``) are left out, and ``log`` (default: a warning)
    is told how many and why: a number is never computed from them silently.

    Raises:
        RiseBenchError: the file is missing, unreadable or not a results file.
    """
    path = Path(path)
    if not path.is_file():
        raise RiseBenchError(f"results file '{path}' does not exist")
    parsed = parse_results(path)
    if parsed.malformed:
        message = parsed.malformed_message()
        if log is None:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        else:
            log(message)
    frame = pd.DataFrame(parsed.rows, columns=COLUMNS)
    frame["value"] = pd.to_numeric(frame["value"])
    frame["seconds"] = pd.to_numeric(frame["seconds"])
    frame["forward_passes"] = pd.to_numeric(frame["forward_passes"], errors="coerce")
    return frame


def repair(path: Path, log: Callable[[str], None]) -> ResultsText:
    """Make a results file safe to append to before ``--resume``; returns what it then holds.

    A sample's rows are written together, so a sample is complete or absent: a malformed
    row (an incomplete last line, above all) is dropped with every row of the samples it
    may belong to (the sample it names, and those of the rows on either side of it). The
    dropped lines are saved to ``<file>.dropped-<time>`` and one line says so; the
    samples are evaluated again. A file cut short inside its header becomes empty (the
    writer writes the header again).
    """
    parsed = parse_results(path)
    bad = parsed.malformed
    if not bad:
        return parsed
    doomed: set[str] = set()
    lines = parsed.lines
    for position, line in enumerate(lines):
        if line.row is not None:
            continue
        neighbours = [lines[i].sample for i in (position - 1, position + 1) if 0 <= i < len(lines)]
        doomed |= {s for s in [line.sample, *neighbours] if s is not None}
    dropped = [line for line in lines if line.row is None or line.sample in doomed]
    kept = [line for line in lines if line.row is not None and line.sample not in doomed]
    saved = path.with_name(f"{path.name}.dropped-{time.strftime('%Y%m%d-%H%M%S')}")
    write_atomic(saved, parsed.header_text + "".join(line.text for line in dropped))
    write_atomic(path, parsed.header_text + "".join(line.text for line in kept))
    samples = f" and every row of sample(s) {', '.join(sorted(doomed))}" if doomed else ""
    log(
        f"{path}: dropped {len(bad)} malformed row(s) ({bad[-1].problem} at line {bad[-1].number}){samples}: "
        f"{len(dropped)} line(s) saved to {saved}; those samples are evaluated again"
    )
    return ResultsText(path, parsed.header, parsed.header_text, kept)


class FinishedKeys:
    """The resume keys of the rows already in a results file."""

    def __init__(self, rows: Iterable[dict[str, str]] = ()) -> None:
        self.keys = {tuple(row[c] for c in RESUME_KEY) for row in rows}

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
        header = read_header(path) if path.exists() else None
        if header is not None:
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
