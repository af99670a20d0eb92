"""A results file that a crash cannot garble: incomplete rows, empty files, foreign files, malformed rows."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.errors import RiseBenchError
from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.results import COLUMNS, parse_results, read_frame
from rise_bench.evaluation.runner import evaluate
from rise_bench.reporting.summary import read_results

from .helpers import FAST, IMAGENET_SAMPLE, forbid_model_loading, rows_of

cli = CliRunner()


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted run's results file."""
    out = tmp_path_factory.mktemp("whole") / "run"
    evaluate(RunConfig(**FAST, out=str(out)), log=lambda line: None)
    return out / "results.csv"


def resume(out, lines: list[str]):
    return evaluate(RunConfig(**FAST, out=str(out), resume=True), log=lines.append)


@pytest.mark.parametrize("where", ["inside the last sample", "inside a middle sample", "right after a row"])
def test_resume_onto_an_incomplete_last_row_drops_its_sample_and_equals_a_whole_run(tmp_path, whole, where):
    data = whole.read_bytes()
    starts = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")][:-1]  # where each row starts
    rows = [line.split(",")[2] for line in whole.read_text().splitlines()[1:]]
    second = rows.index(rows[-1])  # first row of the last sample
    cut = {
        "inside the last sample": starts[second + 1] + 17,  # a complete row of the last sample, then a fragment
        "inside a middle sample": starts[2] + 40,
        "right after a row": starts[second] + 5,  # the fragment is the first row of the last sample
    }[where]
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.csv").write_bytes(data[:cut])
    lines: list[str] = []
    outcome = resume(out, lines)
    assert rows_of(out / "results.csv") == rows_of(whole)
    dropped = list(out.glob("results.csv.dropped-*"))
    assert len(dropped) == 1 and dropped[0].read_bytes().startswith(data[: starts[0]])  # the header, then the lines
    assert data[starts[0] : cut].endswith(dropped[0].read_bytes()[starts[0] :])  # exactly the dropped tail
    assert sum("dropped" in line for line in lines) == 1
    assert outcome.samples_done >= 1 and not outcome.failures


def test_a_zero_byte_or_cut_header_file_is_resumable(tmp_path, whole):
    for name, text in (("empty", ""), ("cut-header", "run_id,data")):
        out = tmp_path / name
        out.mkdir()
        (out / "results.csv").write_text(text)
        outcome = resume(out, [])
        assert outcome.samples_done == 3 and not outcome.failures
        assert rows_of(out / "results.csv") == rows_of(whole)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe\x00r\x00u\x00n", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
        (b"name,age\nann,3\n", "not a rise-bench results file"),
    ],
)
def test_resume_onto_a_foreign_file_is_one_line_before_the_model_loads(tmp_path, monkeypatch, content, message):
    import rise_bench.evaluation.runner as runner

    forbid_model_loading(monkeypatch, runner)
    (tmp_path / "results.csv").write_bytes(content)
    args = ["evaluate", "--dataset", "imagenet", "--root", str(IMAGENET_SAMPLE), "--limit", "1"]
    result = cli.invoke(app, [*args, "--out", str(tmp_path), "--resume", "--quiet"])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (tmp_path / "results.csv").read_bytes() == content  # left as it was


def corrupt(whole, tmp_path):
    """A copy of the results with one value garbled and one row missing cells."""
    lines = whole.read_text().splitlines(keepends=True)
    scored = [i for i, line in enumerate(lines) if ",deletion," in line and ",gradcam," in line]
    first, second = scored[0], scored[1]
    cells = lines[first].rstrip("\r\n").split(",")
    cells[COLUMNS.index("value")] = "0.5x"
    lines[first] = ",".join(cells) + "\r\n"
    lines[second] = ",".join(lines[second].split(",")[:6]) + "\r\n"
    path = tmp_path / "corrupt.csv"
    path.write_text("".join(lines))
    return path, {first + 1, second + 1}


def test_readers_skip_malformed_rows_and_say_how_many(tmp_path, whole):
    path, numbers = corrupt(whole, tmp_path)
    parsed = parse_results(path)
    assert {line.number for line in parsed.malformed} == numbers
    told: list[str] = []
    frame = read_frame(path, told.append)
    assert len(frame) == len(read_frame(whole)) - 2
    assert told == [parsed.malformed_message()] and "skipped 2 malformed row(s)" in told[0]
    with pytest.warns(RuntimeWarning, match="skipped 2 malformed"):
        read_results([path])
    result = cli.invoke(app, ["compare", str(path), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "skipped 2 malformed row(s)" in result.output
    kept = frame[(frame.method == "gradcam") & (frame.metric == "deletion")]
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv").set_index(["method", "metric", "subset"])
    assert len(kept) == 1  # the two corrupted rows were gradcam's deletion rows of two samples
    assert table.loc[("gradcam", "deletion", "all"), "mean"] == pytest.approx(kept.value.mean())
    assert table.loc[("gradcam", "deletion", "all"), "n"] == 1


def test_compare_on_a_header_only_or_empty_file_exits_1(tmp_path):
    for name, text in (("header.csv", ",".join(COLUMNS) + "\r\n"), ("empty.csv", "")):
        (tmp_path / name).write_text(text)
        result = cli.invoke(app, ["compare", str(tmp_path / name), "--out", str(tmp_path / "cmp")])
        assert result.exit_code == 1 and "holds no result rows" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_file_with_malformed_rows_is_not_merged_silently(tmp_path, whole):
    from rise_bench.evaluation.results import read_rows

    path, _ = corrupt(whole, tmp_path)
    with pytest.raises(RiseBenchError, match="found 2 malformed row"):
        read_rows(path)
