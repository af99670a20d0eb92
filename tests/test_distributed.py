"""Split runs: --shard I/N and torchrun give the single-process results once merged."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.errors import RiseBenchError, UsageError
from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.distributed import Shard, merge_parts, parse_shard
from rise_bench.evaluation.results import COLUMNS
from rise_bench.evaluation.runner import evaluate

from .helpers import IMAGENET_SAMPLE, ROOT

#: 4 ImageNet images, RISE with few masks and Grad-CAM, 9-point curves.
SMALL = dict(
    dataset="imagenet",
    root=str(IMAGENET_SAMPLE),
    limit=4,
    methods=["gradcam,rise"],
    params=["rise.num_masks=16"],
    step=224 * 28,
    batch_size=9,
)
CLI_SMALL = [
    "--dataset",
    "imagenet",
    "--root",
    str(IMAGENET_SAMPLE),
    "--limit",
    "4",
    "--method",
    "gradcam,rise",
    "--param",
    "rise.num_masks=16",
    "--step",
    str(224 * 28),
    "--batch-size",
    "9",
    "--quiet",
]

cli = CliRunner()


def keyed_values(path) -> dict[tuple, float]:
    """(sample, model, method, metric, target, subset, params_hash) -> value; asserts keys are unique."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    keys = [tuple(r[c] for c in COLUMNS if c not in ("run_id", "value", "seconds", "dataset")) for r in rows]
    assert len(keys) == len(set(keys)), "duplicate rows"
    return {key: float(r["value"]) for key, r in zip(keys, rows, strict=True)}


def sample_order(path) -> list[str]:
    with open(path, newline="") as handle:
        seen: list[str] = []
        for row in csv.DictReader(handle):
            if row["sample_id"] not in seen:
                seen.append(row["sample_id"])
    return seen


def assert_same_results(single, merged) -> None:
    expected, got = keyed_values(single), keyed_values(merged)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert sample_order(merged) == sample_order(single)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    evaluate(RunConfig(**SMALL, out=str(out)), log=lambda line: None)
    return out / "results.csv"


def test_shard_parsing_and_shares():
    assert parse_shard("1/3") == Shard(1, 3)
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)
    ids = [f"s{i}" for i in range(10)]
    shares = [Shard(i, 3).take(ids) for i in range(3)]
    assert sorted(sum(shares, [])) == sorted(ids)
    assert shares[0] == ["s0", "s3", "s6", "s9"] and shares[2] == ["s2", "s5", "s8"]


def test_shards_merge_into_the_single_process_results(tmp_path, single_run):
    out = tmp_path / "split"
    first = evaluate(RunConfig(**SMALL, out=str(out), shard="0/2"), log=lambda line: None)
    assert not first.merged and not (out / "results.csv").exists()
    assert first.samples_done == 2  # samples 0 and 2 of 4
    second = evaluate(RunConfig(**SMALL, out=str(out), shard="1/2"), log=lambda line: None)
    assert second.merged and (out / "summary.csv").is_file()
    assert_same_results(single_run, out / "results.csv")


def test_a_crashed_shard_is_rerun_alone_then_merged(tmp_path, single_run):
    out = tmp_path / "crash"
    for index in (0, 1):
        evaluate(RunConfig(**SMALL, out=str(out), shard=f"{index}/2"), log=lambda line: None)
    # shard 1 "crashed" after its first sample: its marker and later rows are gone
    part = Shard(1, 2).part(out)
    lines = part.read_text().splitlines(keepends=True)
    first_sample = lines[1].split(",")[2]
    part.write_text("".join(line for line in lines if line == lines[0] or line.split(",")[2] == first_sample))
    Shard(1, 2).marker(out).unlink()
    (out / "results.csv").unlink()
    with pytest.raises(RiseBenchError, match="shard\\(s\\) 1/2 have not finished"):
        merge_parts(out)
    result = cli.invoke(app, ["merge", str(out)])
    assert result.exit_code == 1 and "1/2" in result.output
    rerun = evaluate(RunConfig(**SMALL, out=str(out), shard="1/2", resume=True), log=lambda line: None)
    assert rerun.samples_skipped == 1 and rerun.samples_done == 1 and rerun.merged
    assert_same_results(single_run, out / "results.csv")
    (out / "results.csv").unlink()
    result = cli.invoke(app, ["merge", str(out)])
    assert result.exit_code == 0, result.output
    assert_same_results(single_run, out / "results.csv")


def rank_process(out, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` writing to ``out`` (read from /proc), or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if str(out).encode() in command and f"RANK={rank}".encode() in environ and b"rise_bench" in command:
            return int(entry)
    return None


def test_a_killed_torchrun_rank_is_recovered_by_the_same_command_with_resume(tmp_path):
    """torchrun (two gloo ranks) stops the healthy rank when one dies; the same command with --resume resumes
    every shard, and the merged results equal one process's."""
    import json
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [*CLI_SMALL, "--limit", "6", "--param", "rise.num_masks=150"]  # 3 samples per rank, ~1 s each
    single, split = tmp_path / "one", tmp_path / "two"
    subprocess.run(
        [sys.executable, "-m", "rise_bench", "evaluate", *args, "--out", str(single)],
        check=True, env=env, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m"]
    command += ["rise_bench", "evaluate", *args, "--out", str(split)]
    launched = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = Shard(1, 2).progress_file(split)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and launched.poll() is None:
        try:
            if json.loads(progress.read_text())["done"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    pid = rank_process(split, 1)
    assert pid is not None and launched.poll() is None, "rank 1 finished before it could be killed"
    os.kill(pid, signal.SIGKILL)
    launched.communicate(timeout=120)
    assert launched.returncode != 0 and not (split / "results.csv").exists()
    assert not Shard(1, 2).marker(split).exists()
    result = cli.invoke(app, ["merge", str(split)])  # says which shards and how
    assert result.exit_code == 1 and "run the same torchrun command again with --resume" in result.output
    again = subprocess.run([*command, "--resume"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in (split / "parts").glob("*.done")) == ["results-0-of-2.done", "results-1-of-2.done"]
    assert_same_results(single / "results.csv", split / "results.csv")  # torchrun equals one process
    assert (split / "summary.csv").is_file()
