"""Try the bad inputs a user meets, and count tracebacks, wrong outcomes and lost rows.

Builds a corpus of bad files in a temporary folder (broken images, malformed VOC and COCO
annotations, NaN maps, garbled results files, bad configs and options), runs each case
through the command line in-process and prints one table row per case:

- **traceback**: the command ended in an exception instead of a one-line error;
- **wrong outcome**: the exit code differs from the expected one, or the expected text
  (the problem named) is missing from the output;
- **rows lost**: samples that should have been scored have no rows in ``results.csv``.

    python scripts/probe_bad_inputs.py            # prints the table and the totals
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.evaluation.results import COLUMNS, parse_results

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IMAGENET = DATA / "imagenet-sample"
VOC = DATA / "voc" / "VOCdevkit" / "VOC2007"
COCO = DATA / "coco"
#: A cheap evaluation: deletion on 9 points, the two baselines.
CHEAP = ["--method", "center", "--no-baselines", "--metric", "deletion", "--step", str(224 * 28), "--quiet"]
CHEAP_POINTING = ["--method", "center", "--no-baselines", "--quiet"]


@dataclass
class Case:
    """One bad input: the command, what must happen, and which samples must keep their rows."""

    name: str
    args: Callable[[Path], list[str]]
    exit_code: int
    says: str = ""
    samples: set[str] | None = None  # samples that must have rows in OUT/results.csv
    results: Callable[[Path], Path] = field(default=lambda work: work / "out" / "results.csv")


def image_folder(work: Path, extra: dict[str, bytes]) -> Path:
    """Two good ImageNet photos plus ``extra`` files."""
    folder = work / "images"
    folder.mkdir()
    for name in ("n01440764_tench.JPEG", "n01496331_electric_ray.JPEG"):
        shutil.copy(IMAGENET / name, folder / name)
    for name, data in extra.items():
        (folder / name).write_bytes(data)
    return folder


GOOD = {"n01440764_tench.JPEG", "n01496331_electric_ray.JPEG"}


def voc_layout(work: Path, objects: list[tuple[str, tuple]], xml: str | None = None) -> Path:
    """A VOC layout with two real images: ``a`` (as annotated in VOC) and ``x`` holding ``objects``."""
    base = work / "VOC2007"
    for folder in ("ImageSets/Main", "Annotations", "JPEGImages"):
        (base / folder).mkdir(parents=True)
    shutil.copy(VOC / "JPEGImages/000068.jpg", base / "JPEGImages/x.jpg")
    shutil.copy(VOC / "JPEGImages/000175.jpg", base / "JPEGImages/a.jpg")
    shutil.copy(VOC / "Annotations/000175.xml", base / "Annotations/a.xml")
    (base / "ImageSets/Main/test.txt").write_text("x\na\n")
    nodes = []
    for name, box in objects:
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=False))
        nodes.append(f"<object><name>{name}</name><bndbox>{inner}</bndbox></object>")
    (base / "Annotations/x.xml").write_text(xml if xml is not None else f"<annotation>{''.join(nodes)}</annotation>")
    return base


def coco_layout(work: Path, edit: Callable[[dict], None]) -> Path:
    """The shared COCO sample's first three images, annotations changed by ``edit``."""
    document = json.loads((COCO / "annotations/instances_train2017.json").read_text())
    first = sorted(i["id"] for i in document["images"])[:3]
    document["images"] = [i for i in document["images"] if i["id"] in first]
    document["annotations"] = [a for a in document["annotations"] if a["image_id"] in first]
    edit(document)
    (work / "coco" / "annotations").mkdir(parents=True)
    (work / "coco/annotations/instances_train2017.json").write_text(json.dumps(document))
    (work / "coco/train2017").symlink_to(COCO / "train2017")
    return work / "coco"


#: Of the sample's first three COCO images, 25 holds only a giraffe, which has no ImageNet
#: counterpart in the class map: it has no pointing rows in a clean run either.
def coco_first(document: dict) -> list[dict]:
    first = min(i["id"] for i in document["images"])
    return [a for a in document["annotations"] if a["image_id"] == first]


def saved_maps(work: Path, value: float | None, shape=(224, 224)) -> Path:
    """Maps of method ``mine`` for two images; the first holds ``value`` at one pixel."""
    folder = work / "maps" / "mine"
    folder.mkdir(parents=True)
    for index, name in enumerate(sorted(GOOD)):
        array = np.random.default_rng(index).random(shape).astype(np.float32)
        if value is not None and index == 0:
            array.flat[37] = value
        np.save(folder / Path(name).name.replace("/", "__"), array)
    return work / "maps"


def voc_eval(work: Path, objects: list[tuple[str, tuple]], xml: str | None = None) -> list[str]:
    """Pointing on a VOC layout whose image ``x`` holds ``objects`` (see ``voc_layout``)."""
    return ev(
        "--dataset", "voc", "--root", str(voc_layout(work, objects, xml)), *CHEAP_POINTING, "--out", str(work / "out")
    )


def coco_eval(work: Path, edit: Callable[[dict], None]) -> list[str]:
    """Pointing on the COCO sample's first three images, annotations changed by ``edit``."""
    root = coco_layout(work, edit)
    return ev(
        "--dataset", "coco", "--root", str(root), "--split", "train2017", *CHEAP_POINTING, "--out", str(work / "out")
    )


def maps_eval(work: Path, maps: Path) -> list[str]:
    """Deletion of the saved maps of method ``mine`` on the two good photos."""
    folder = image_folder(work, {})
    args = ["--dataset", "folder", "--root", str(folder), "--maps", str(maps), "--method", "mine", *CHEAP[2:]]
    return ev(*args, "--out", str(work / "out"))


def results_file(work: Path, text: str | bytes) -> Path:
    path = work / "results.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def a_run(work: Path) -> Path:
    """A finished cheap run of the two good photos (its results file is cut and garbled by cases)."""
    folder = image_folder(work, {})
    out = work / "out"
    CliRunner().invoke(app, ["evaluate", "--dataset", "folder", "--root", str(folder), *CHEAP, "--out", str(out)])
    return out / "results.csv"


def truncated_run(work: Path, keep: float) -> list[str]:
    path = a_run(work)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return [
        "evaluate",
        "--dataset",
        "folder",
        "--root",
        str(work / "images"),
        *CHEAP,
        "--out",
        str(work / "out"),
        "--resume",
    ]


def resume_onto(work: Path, data: bytes) -> list[str]:
    (work / "out").mkdir()
    (work / "out" / "results.csv").write_bytes(data)
    return ev(
        "--dataset", "folder", "--root", str(image_folder(work, {})), *CHEAP, "--out", str(work / "out"), "--resume"
    )


def broken_coco(work: Path) -> Path:
    (work / "coco" / "annotations").mkdir(parents=True)
    (work / "coco" / "train2017").mkdir()
    (work / "coco/annotations/instances_train2017.json").write_text("{not json")
    return work / "coco"


def config(work: Path, text: str) -> list[str]:
    (work / "run.toml").write_text(text)
    return ["evaluate", "--config", str(work / "run.toml"), "--out", str(work / "out")]


def header() -> str:
    return ",".join(COLUMNS) + "\r\n"


def ev(*args: str) -> list[str]:
    return ["evaluate", *args]


def folder_eval(work: Path, extra: dict[str, bytes]) -> list[str]:
    return ev("--dataset", "folder", "--root", str(image_folder(work, extra)), *CHEAP, "--out", str(work / "out"))


def png_bytes(size: tuple[int, int]) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="PNG")
    return buffer.getvalue()


JPEG = (IMAGENET / "n02124075_Egyptian_cat.JPEG").read_bytes()
CASES = [
    # -- explain: images and names
    Case("explain: missing file", lambda w: ["explain", str(w / "no.jpg"), "--quiet"], 1, "no.jpg"),
    Case("explain: a folder", lambda w: ["explain", str(w), "--quiet"], 1, "probe-"),
    Case("explain: text file", lambda w: ["explain", str(results_file(w, "hello")), "--quiet"], 1, "not an image"),
    Case(
        "explain: truncated JPEG", lambda w: ["explain", str(results_file(w, JPEG[:2000])), "--quiet"], 1, "results.csv"
    ),
    Case("explain: 0-byte image", lambda w: ["explain", str(results_file(w, b"")), "--quiet"], 1, "results.csv"),
    Case(
        "explain: path with [brackets]", lambda w: ["explain", str(w / "[raw]" / "x.jpg"), "--quiet"], 1, "[raw]/x.jpg"
    ),
    Case(
        "explain: unknown model", lambda w: ["explain", "--model", "resnet05", "--quiet"], 2, "did you mean: resnet50"
    ),
    Case(
        "explain: unknown method", lambda w: ["explain", "--method", "gradcamm", "--quiet"], 2, "did you mean: gradcam"
    ),
    Case("explain: unknown class", lambda w: ["explain", "--target", "tabbby", "--quiet"], 2, "tabby"),
    Case("explain: class index out of range", lambda w: ["explain", "--target", "5000", "--quiet"], 2, "5000"),
    Case(
        "explain: malformed --param", lambda w: ["explain", "-p", "rise.num_masks", "--quiet"], 2, "malformed --param"
    ),
    Case(
        "explain: non-integer parameter",
        lambda w: ["explain", "-p", "rise.num_masks=many", "--quiet"],
        2,
        "not a valid int",
    ),
    Case("explain: bad score kind", lambda w: ["explain", "-p", "gradcam.score=bogus", "--quiet"], 2, "not one of"),
    Case("explain: unknown parameter", lambda w: ["explain", "-p", "rise.num_mask=3", "--quiet"], 2, "num_masks"),
    Case("explain: bad precision", lambda w: ["explain", "--precision", "fp8", "--quiet"], 2, "precision"),
    Case("explain: batch size 0", lambda w: ["explain", "--batch-size", "0", "--quiet"], 2, "batch-size"),
    Case("explain: batch size text", lambda w: ["explain", "--batch-size", "many", "--quiet"], 2, "batch-size"),
    Case("explain: unknown device", lambda w: ["explain", "--device", "tpu", "--quiet"], 2, "tpu"),
    Case(
        "explain: missing weights file", lambda w: ["explain", "--weights", str(w / "no.pth"), "--quiet"], 1, "no.pth"
    ),
    Case(
        "explain: garbage weights file",
        lambda w: ["explain", "--weights", str(results_file(w, b"xx")), "--quiet"],
        1,
        "results.csv",
    ),
    # -- evaluate: data sets
    Case(
        "evaluate: unknown data set", lambda w: ev("--dataset", "vocc", "--out", str(w / "out")), 2, "did you mean: voc"
    ),
    Case(
        "evaluate: missing root",
        lambda w: ev("--dataset", "voc", "--root", str(w / "none"), "--out", str(w / "out")),
        1,
        "does not exist",
    ),
    Case(
        "evaluate: empty image folder",
        lambda w: ev("--dataset", "folder", "--root", str(w), "--out", str(w / "out")),
        1,
        "no image",
    ),
    Case(
        "evaluate: missing VOC split",
        lambda w: ev("--dataset", "voc", "--root", str(voc_layout(w, [])), "--split", "val", "--out", str(w / "out")),
        1,
        "split 'val'",
    ),
    Case(
        "evaluate: corrupt image among good ones",
        lambda w: folder_eval(w, {"broken.jpg": b"garbage"}),
        1,
        "broken.jpg",
        GOOD,
    ),
    Case(
        "evaluate: truncated image among good ones",
        lambda w: folder_eval(w, {"cut.jpg": JPEG[:3000]}),
        1,
        "cut.jpg",
        GOOD,
    ),
    Case(
        "evaluate: 1x1 image among good ones",
        lambda w: folder_eval(w, {"dot.png": png_bytes((1, 1))}),
        1,
        "dot.png",
        GOOD,
    ),
    Case(
        "evaluate: VOC inverted box",
        lambda w: voc_eval(w, [("dog", (50, 60, 10, 90)), ("cat", (1, 1, 100, 100))]),
        0,
        "object 1 (dog) is inverted",
        {"x", "a"},
    ),
    Case(
        "evaluate: VOC box outside the image",
        lambda w: voc_eval(w, [("cat", (900, 900, 990, 990)), ("cat", (1, 1, 50, 50))]),
        0,
        "wholly outside",
        {"x", "a"},
    ),
    Case(
        "evaluate: VOC box partly outside",
        lambda w: voc_eval(w, [("cat", (-50, -50, 80, 80))]),
        0,
        "",
        {"x", "a"},
    ),
    Case(
        "evaluate: VOC box with text",
        lambda w: voc_eval(w, [("cat", ("a", 1, 2, 3)), ("cat", (1, 1, 50, 50))]),
        0,
        "malformed bndbox",
        {"x", "a"},
    ),
    Case(
        "evaluate: VOC unknown class",
        lambda w: voc_eval(w, [("unicorn", (1, 1, 50, 50)), ("cat", (1, 1, 50, 50))]),
        0,
        "unknown VOC class 'unicorn'",
        {"x", "a"},
    ),
    Case(
        "evaluate: VOC malformed XML",
        lambda w: voc_eval(w, [], "<annotation><object>"),
        1,
        "malformed XML",
        {"a"},
    ),
    Case(
        "evaluate: VOC no valid object",
        lambda w: voc_eval(w, [("cat", ("a",))]),
        1,
        "none of its 1 object",
        {"a"},
    ),
    Case(
        "evaluate: COCO unknown category",
        lambda w: coco_eval(w, lambda d: coco_first(d)[0].update(category_id=999)),
        0,
        "category_id 999",
        {"9", "30"},
    ),
    Case(
        "evaluate: COCO all annotations bad",
        lambda w: coco_eval(w, lambda d: [a.update(category_id=999) for a in coco_first(d)]),
        1,
        "is valid",
        {"30"},
    ),
    Case(
        "evaluate: COCO malformed bbox",
        lambda w: coco_eval(w, lambda d: coco_first(d)[0].update(bbox="x")),
        0,
        "malformed bbox",
        {"9", "30"},
    ),
    Case(
        "evaluate: COCO malformed segmentation",
        lambda w: coco_eval(w, lambda d: coco_first(d)[0].update(segmentation=[[1, 2]])),
        0,
        "annotation",
        {"9", "30"},
    ),
    Case(
        "evaluate: COCO json not json",
        lambda w: ev(
            "--dataset", "coco", "--root", str(broken_coco(w)), "--split", "train2017", "--out", str(w / "out")
        ),
        1,
        "malformed",
    ),
    Case(
        "evaluate: ids file missing",
        lambda w: ev(
            "--dataset", "imagenet", "--root", str(IMAGENET), "--ids", str(w / "ids.txt"), "--out", str(w / "out")
        ),
        1,
        "ids.txt",
    ),
    Case(
        "evaluate: unknown id",
        lambda w: ev(
            "--dataset",
            "imagenet",
            "--root",
            str(IMAGENET),
            "--ids",
            str(results_file(w, "nope\n")),
            "--out",
            str(w / "out"),
        ),
        1,
        "nope",
    ),
    Case("evaluate: --limit 0", lambda w: ev("--limit", "0", "--out", str(w / "out")), 2, "--limit"),
    Case("evaluate: --shard 3/2", lambda w: ev("--shard", "3/2", "--out", str(w / "out")), 2, "--shard"),
    Case(
        "evaluate: unknown metric",
        lambda w: ev("--metric", "delition", "--out", str(w / "out")),
        2,
        "did you mean: deletion",
    ),
    Case(
        "evaluate: pointing without boxes",
        lambda w: ev("--metric", "pointing", "--out", str(w / "out")),
        2,
        "needs boxes or masks",
    ),
    Case(
        "evaluate: unknown --param owner", lambda w: ev("-p", "delition.step=3", "--out", str(w / "out")), 2, "delition"
    ),
    Case(
        "evaluate: bad gradcam.score",
        lambda w: ev("--method", "gradcam", "-p", "gradcam.score=bogus", "--out", str(w / "out")),
        2,
        "gradcam.score",
    ),
    Case("evaluate: bad --target", lambda w: ev("--target", "best", "--out", str(w / "out")), 2, "--target"),
    Case(
        "evaluate: missing labelmap",
        lambda w: ev(
            "--dataset",
            "voc",
            "--root",
            str(voc_layout(w, [("cat", (1, 1, 9, 9))])),
            "--labelmap",
            str(w / "map.toml"),
            "--out",
            str(w / "out"),
        ),
        1,
        "map.toml",
    ),
    # -- evaluate: configs
    Case("config: missing file", lambda w: ["evaluate", "--config", str(w / "no.toml")], 2, "no.toml"),
    Case("config: not TOML", lambda w: config(w, "limit = = 3"), 2, "not valid TOML"),
    Case("config: unknown key", lambda w: config(w, "datset = 'voc'"), 2, "did you mean: dataset"),
    Case("config: limit = 'two'", lambda w: config(w, 'limit = "two"'), 2, "config key 'limit' = 'two'"),
    Case("config: methods list with a number", lambda w: config(w, 'methods = ["rise", 3]'), 2, "config key 'methods'"),
    Case("config: quick = 1", lambda w: config(w, "quick = 1"), 2, "config key 'quick'"),
    Case("config: [params] not a table", lambda w: config(w, "params = 3"), 2, "[params] must be a table"),
    Case(
        "config: bad parameter value", lambda w: config(w, '[params]\n"rise.num_masks" = "many"'), 2, "not a valid int"
    ),
    # -- evaluate: saved maps
    Case(
        "maps: folder missing",
        lambda w: maps_eval(w, w / "nomaps"),
        2,
        "nomaps",
    ),
    Case(
        "maps: NaN map",
        lambda w: maps_eval(w, saved_maps(w, np.nan)),
        0,
        "NaN or inf",
        GOOD,
    ),
    Case(
        "maps: inf map",
        lambda w: maps_eval(w, saved_maps(w, np.inf)),
        0,
        "NaN or inf",
        GOOD,
    ),
    Case(
        "maps: wrong shape",
        lambda w: maps_eval(w, saved_maps(w, None, (2, 3, 4, 5))),
        1,
        "expected [H,W]",
    ),
    # -- evaluate: results files
    Case(
        "results: exists without --resume",
        lambda w: (a_run(w), ev("--dataset", "folder", "--root", str(w / "images"), *CHEAP, "--out", str(w / "out")))[
            1
        ],
        2,
        "--resume",
        GOOD,
    ),
    Case("resume: last row cut short", lambda w: truncated_run(w, 0.9), 0, "dropped", GOOD),
    Case("resume: cut inside the first sample", lambda w: truncated_run(w, 0.3), 0, "dropped", GOOD),
    Case("resume: cut inside the header", lambda w: truncated_run(w, 0.02), 0, "", GOOD),
    Case("resume: 0-byte file", lambda w: truncated_run(w, 0.0), 0, "", GOOD),
    Case("resume: not UTF-8", lambda w: resume_onto(w, b"\xff\xfe\x00"), 1, "not UTF-8"),
    Case("resume: another CSV", lambda w: resume_onto(w, b"a,b\n1,2\n"), 1, "not a rise-bench results file"),
    # -- compare and merge
    Case(
        "compare: missing file", lambda w: ["compare", str(w / "no.csv"), "--out", str(w / "cmp")], 1, "does not exist"
    ),
    Case(
        "compare: header only",
        lambda w: ["compare", str(results_file(w, header())), "--out", str(w / "cmp")],
        1,
        "holds no result rows",
    ),
    Case(
        "compare: empty file",
        lambda w: ["compare", str(results_file(w, "")), "--out", str(w / "cmp")],
        1,
        "holds no result rows",
    ),
    Case(
        "compare: not UTF-8",
        lambda w: ["compare", str(results_file(w, b"\xff\xfe")), "--out", str(w / "cmp")],
        1,
        "not UTF-8",
    ),
    Case(
        "compare: another CSV",
        lambda w: ["compare", str(results_file(w, "a,b\n1,2\n")), "--out", str(w / "cmp")],
        1,
        "not a rise-bench results file",
    ),
    Case(
        "compare: a garbled value",
        lambda w: ["compare", str(garble(a_run(w))), "--out", str(w / "cmp")],
        0,
        "skipped 1 malformed row",
    ),
    Case(
        "compare: --baseline missing",
        lambda w: ["compare", str(a_run(w)), "--baseline", str(w / "no.csv"), "--out", str(w / "cmp")],
        1,
        "no.csv",
    ),
    Case("merge: no parts", lambda w: ["merge", str(w)], 1, "no part files"),
]


def garble(path: Path) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[1].split(",")
    cells[COLUMNS.index("value")] = "0.4o"
    lines[1] = ",".join(cells)
    path.write_text("".join(lines))
    return path


def rows_of(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    try:
        return {row["sample_id"] for row in parse_results(path).rows}
    except Exception:  # noqa: BLE001 - a garbled file has lost every row
        return set()


def main() -> int:
    runner = CliRunner()
    totals = {"cases": 0, "tracebacks": 0, "wrong": 0, "lost": 0}
    print("| case | exit (expected) | one line | traceback | wrong outcome | rows lost |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        with tempfile.TemporaryDirectory(prefix="probe-") as folder:
            work = Path(folder)
            started = time.perf_counter()
            result = runner.invoke(app, case.args(work))
            traceback = (result.exception is not None and not isinstance(result.exception, SystemExit)) or (
                "Traceback" in result.output
            )
            errors = [line for line in result.output.splitlines() if line.startswith("error:")]
            wrong = result.exit_code != case.exit_code or (case.says not in result.output)
            lost = len(case.samples - rows_of(case.results(work))) if case.samples else 0
            one_line = "yes" if len(errors) <= 1 else f"no ({len(errors)})"
        totals["cases"] += 1
        totals["tracebacks"] += traceback
        totals["wrong"] += wrong
        totals["lost"] += lost
        flag = lambda b: "**yes**" if b else "no"  # noqa: E731
        print(
            f"| {case.name} | {result.exit_code} ({case.exit_code}) | {one_line} | {flag(traceback)} | {flag(wrong)} "
            f"| {lost} |  <!-- {time.perf_counter() - started:.1f}s -->"
        )
        if traceback or wrong:
            print(f"    output: {result.output.strip()[-300:]!r} {result.exception!r}", file=sys.stderr)
    print(
        f"\n{totals['cases']} inputs: {totals['tracebacks']} tracebacks, {totals['wrong']} wrong outcomes, "
        f"{totals['lost']} rows lost"
    )
    return int(any(totals[k] for k in ("tracebacks", "wrong", "lost")))


if __name__ == "__main__":
    sys.exit(main())
