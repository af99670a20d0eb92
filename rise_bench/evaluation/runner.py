"""The evaluate loop: for each sample, for each map source, the maps; for each metric, ``score``.

Per sample: one forward pass over the image and every metric's reference images (the
prediction, the target and the curve endpoints every method shares), each metric's
``prepare`` once, then for every source one explanation per label space covering all
the targets the metrics ask for, then each metric's ``score``. Rows are appended to the
results file and flushed after every sample, so an interrupted run loses at most the
sample in flight; ``--resume`` first repairs a file cut short, then skips finished keys
(``results.py``). A map holding NaN or inf is never scored: each metric gets one row of
subset ``invalid`` (value 1) instead. Maps and curves go to ``maps/`` and ``curves/``
(``artifacts.py``); ``config.toml`` holds the resolved configuration and provenance;
``summary.csv`` and the plots are written at the end.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..batch_size import resolve_batch_size
from ..datasets import Sample, open_dataset
from ..datasets.labels import classifier_for
from ..errors import RiseBenchError, UsageError
from ..explainers.registry import EXPLAINERS
from ..files import write_atomic
from ..metrics.base import INVALID, SampleContext, Score, Scores, list_metrics, metric_class, select_metrics
from ..models import is_onnx_file, load_model
from ..parameters import Override, check_overrides, parse_overrides, unused_overrides
from ..reporting.outputs import write_outputs
from .artifacts import save_curves, save_maps
from .config import RunConfig, to_toml
from .distributed import Shard, ShardSession
from .provenance import provenance
from .results import CLASSIFIER, FinishedKeys, ResultRow, ResultWriter, read_header, repair
from .sources import Explanations, MapSource, build_sources


@dataclass
class RunOutcome:
    """What ``evaluate`` did."""

    out: Path
    samples_done: int = 0
    samples_skipped: int = 0
    #: Samples left out by ``min_confidence`` (top-1 probability below it).
    samples_unconfident: int = 0
    failures: list[str] = field(default_factory=list)
    skipped_classes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pictures: list[Path] = field(default_factory=list)
    shard: Shard = field(default_factory=Shard)
    merged: bool = True


class Evaluation:
    """One evaluation run; ``run()`` does the work (see the module docstring)."""

    def __init__(
        self,
        config: RunConfig,
        make_reporter=None,
        log: Callable[[str], None] = print,
        status: Callable[[str], None] | None = None,
    ) -> None:
        self.config, self.log, self.make_reporter = config, log, make_reporter
        self.status = status or (lambda line: None)
        if config.target not in ("top1", "label"):
            raise UsageError(f"--target must be top1 or label, got '{config.target}'")
        overrides = parse_overrides(config.params)
        self.dataset = open_dataset(config.dataset, config.root, config.split, download=config.download)
        self.dataset.subset(config.limit, config.ids, config.sample, config.seed)
        self.dataset.warn = log
        step = [Override(None, "step", str(config.step), "--step")] if config.step is not None else []  # shorthand
        self.metrics = select_metrics(
            config.metrics, self.dataset.localised, self.dataset.name, overrides + step, is_onnx_file(config.model)
        )
        for name, metric in self.metrics.items():
            if metric.re_explains and config.maps:
                raise UsageError(f"metric '{name}' re-explains with the method: it cannot score saved maps (--maps)")
        self.sources = build_sources(
            config.methods,
            overrides,
            quick=config.quick,
            seed=config.seed,
            baselines=config.baselines,
            maps=config.maps,
            gradient_free=is_onnx_file(config.model),
        )
        owners = {**EXPLAINERS.classes(), **{name: metric_class(name) for name in list_metrics()}}
        selected = [s.name for s in self.sources] + list(self.metrics)
        check_overrides(overrides, owners, selected, "method or metric")
        if unused := unused_overrides(overrides, selected, "method or metric"):
            log(f"warning: {unused}")
        self.out = Path(config.out)
        self.session = ShardSession(config.shard, self.out)
        self.sample_ids = self.session.take(self.dataset.ids)
        if config.resume and self.session.results_path().exists():
            read_header(self.session.results_path())  # not a results file: say so before the model loads
        self.status(f"loading model {config.model or 'tf_efficientnet_lite0'} ...")
        self.model = load_model(
            config.model, config.weights, device=self.session.device(config.device), precision=config.precision,
            backend=config.backend, input_size=config.input_size, mean=config.mean, std=config.std,
            classes=config.classes, log=log,
        )  # fmt: skip
        self.status(f"scoring backend: {self.model.backend} (the gradient-free passes)")
        self.batch_size = resolve_batch_size(self.model, config.batch_size, log=log)
        self.annotated_model, self.scorable = None, frozenset()
        if any(m.needs_ground_truth for m in self.metrics.values()):
            self.annotated_model, self.scorable = classifier_for(self.model, self.dataset, config.labelmap)

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> RunOutcome:
        config, session = self.config, self.session
        results = session.open(self.model.device, config.resume, self.make_reporter, f"evaluate {self.dataset.name}")
        done = FinishedKeys(repair(results, self.log).rows) if config.resume and results.exists() else FinishedKeys()
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        if session.lead:
            self._write_config(run_id)
        outcome = RunOutcome(out=self.out, shard=session.shard)
        started = time.perf_counter()
        self.status(
            f"evaluating {len(self.sample_ids)} samples x {len(self.sources)} methods "
            f"({', '.join(s.name for s in self.sources)}) with {', '.join(self.metrics)} on {self.model.name}"
        )
        session.progress(0, len(self.sample_ids), len(self.dataset))  # the total at once
        with ResultWriter(results) as writer:
            for position, sample_id in enumerate(self.sample_ids, 1):
                wanted = [s for s in self.sources if not self._finished(done, sample_id, s)]
                if not wanted:
                    outcome.samples_skipped += 1
                    session.progress(
                        position, len(self.sample_ids), len(self.dataset), skipped=not outcome.samples_done
                    )
                    continue
                try:
                    writer.write(self._evaluate_sample(self.dataset.load(sample_id), wanted, run_id, outcome))
                    outcome.samples_done += 1
                except RiseBenchError as exc:
                    outcome.failures.append(str(exc))
                    self.log(f"error: {exc}")
                session.progress(position, len(self.sample_ids), len(self.dataset))
        outcome.seconds = time.perf_counter() - started
        outcome.merged, outcome.skipped_classes = session.finish(
            self.sample_ids, outcome.failures, outcome.skipped_classes, log=self.log
        )
        return outcome

    def _finished(self, done: FinishedKeys, sample_id: str, source: MapSource) -> bool:
        return all(
            (sample_id, self.model.name, source.name, name, source.params_hash, metric.params_hash()) in done
            for name, metric in self.metrics.items()
        )

    def _write_config(self, run_id: str) -> None:
        resolved = self.config.as_dict() | {
            "metrics": list(self.metrics),
            "model": self.model.name,
            "methods": [s.name for s in self.sources],
            "batch_size": self.batch_size,
            "shard": None,
            "shards": self.session.shard.count,
            "launcher": "torchrun" if self.session.shard.torchrun else ("shard" if self.session.shard.split else ""),
        }
        document = {
            "run_id": run_id,
            "config": resolved,
            "samples": len(self.dataset),
            "method_params": {s.name: {**s.resolved_params(), "params_hash": s.params_hash} for s in self.sources},
            "metric_params": {
                n: {**m.resolved_params(), "metric_params": m.params_hash()} for n, m in self.metrics.items()
            },
            "provenance": provenance(self.model, self.model.device),
        }
        write_atomic(self.out / "config.toml", to_toml(document))

    def _evaluate_sample(
        self, sample: Sample, sources: list[MapSource], run_id: str, outcome: RunOutcome
    ) -> list[ResultRow]:
        context = SampleContext.build(
            sample, self.model.transform(sample.image)[None].to(self.model.device), self.model, self.metrics.values(),
            label=sample.labels[0] if sample.labels and self.dataset.label_space == "imagenet" else None,
            explain_label=self.config.target == "label", annotated_model=self.annotated_model,
            classes=self.dataset.classes, scorable=self.scorable,
        )  # fmt: skip
        if self.config.min_confidence is not None and float(context.probabilities.max()) < self.config.min_confidence:
            outcome.samples_unconfident += 1
            return []
        prepared = {name: metric.prepare(context) for name, metric in self.metrics.items()}
        for name in (name for preparation in prepared.values() for name in preparation.skipped):
            outcome.skipped_classes[name] = outcome.skipped_classes.get(name, 0) + 1
        rows = self._classifier_rows(run_id, context)
        explanations = Explanations(prepared.values())
        for source in sources if explanations else []:
            started = time.perf_counter()
            passes_before = self.model.pass_counter.count
            reporter = (
                self.make_reporter(f"  {source.name} on {sample.id}", quiet_for=10.0) if self.make_reporter else None
            )
            try:
                maps = explanations.explain(source, context.image, sample, self.batch_size, reporter)
            finally:
                if reporter is not None:
                    reporter.finish()
            seconds = round(time.perf_counter() - started, 4)
            passes = self.model.pass_counter.count - passes_before if source.counts_passes else ""
            saliency = torch.cat(list(maps.values()))
            save_maps(self.out, source.name, sample.id, saliency, explanations.names, sample.meta.get("file", ""))
            curves = {}
            # one callable per source and sample, shared by the metrics that re-explain (they may share work)
            explain = self._explain_again(source, sample)
            for name, metric in self.metrics.items():
                if not prepared[name].targets:
                    continue
                chosen = explanations.select(maps, prepared[name])
                if not torch.isfinite(chosen).all():  # never scored: one flag row per metric
                    broken = next(
                        n for n, m in zip(prepared[name].names, chosen, strict=True) if not m.isfinite().all()
                    )
                    scores = Scores([Score(broken, 1.0, INVALID)])
                else:
                    scores = metric.score(
                        prepared[name],
                        chosen,
                        batch_size=self.batch_size,
                        explain=explain if metric.re_explains else None,
                    )
                head = (run_id, self.dataset.name, sample.id, self.model.name, source.name, name)
                tail = (source.params_hash, seconds, metric.params_hash(), passes, self.model.backend)
                rows += [ResultRow(*head, score.target, score.subset, score.value, *tail) for score in scores.rows]
                if scores.curve is not None:
                    curves[name] = scores.curve
            if curves:
                save_curves(self.out, source.name, sample.id, curves)
        return rows

    def _explain_again(self, source: MapSource, sample: Sample):
        """The source's ``explain`` callable for re-explaining metrics, each call with its own progress line
        (a re-explanation by RISE takes as long as the first one), or None when the source cannot re-explain."""
        explain = source.explain_function(sample, self.batch_size)
        if explain is None or self.make_reporter is None:
            return explain
        calls = itertools.count(1)

        def explain_with_progress(model, images, targets):
            description = f"  {source.name} on {sample.id}, re-explanation {next(calls)}"
            reporter = self.make_reporter(description, quiet_for=10.0)
            try:
                return explain(model, images, targets, progress=reporter)
            finally:
                reporter.finish()

        return explain_with_progress

    def _classifier_rows(self, run_id: str, context: SampleContext) -> list[ResultRow]:
        """Rows about the model itself: top-1 equals the label, and (for prediction-based metrics) the target does."""
        label = context.label
        if label is None:
            return []
        name = self.model.classes[label]
        base = (run_id, self.dataset.name, context.sample.id, self.model.name, CLASSIFIER)
        top1 = int(context.probabilities.argmax())
        rows = [ResultRow(*base, "top1", name, "all", float(top1 == label), "", 0.0)]
        if any(not m.needs_ground_truth for m in self.metrics.values()):
            rows.append(ResultRow(*base, "target_is_label", name, "all", float(context.target == label), "", 0.0))
        return rows


def evaluate(
    config: RunConfig,
    make_reporter=None,
    log: Callable[[str], None] = print,
    status: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run an evaluation (see ``Evaluation``); write ``summary.csv`` and the plots once the results are whole.

    ``make_reporter(description, quiet_for=0)`` makes progress reporters (the run's bar and
    a nested one per method and sample), ``log`` hears warnings and per-sample errors, and
    ``status`` what the run is doing before its first sample (loading the model...).

    A shard of a split run (``distributed.py``) merges the parts first when it is rank 0
    under torchrun (after waiting for the others) or the last ``--shard`` to finish;
    otherwise it returns with ``merged`` False.
    """
    evaluation = Evaluation(config, make_reporter, log, status)
    try:
        outcome = evaluation.run()
    finally:
        evaluation.session.close()
    if outcome.merged:
        outcome.pictures = write_outputs(outcome.out, config.seed, log)
    return outcome
