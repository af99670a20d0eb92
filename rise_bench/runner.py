"""The evaluate loop: samples x methods (+ baselines) x metrics -> long-format rows.

Per sample: one forward pass (the image's prediction and target, plus the curve
endpoints every method shares), one explanation per method covering every target of the
sample, then the metrics. Rows are appended to
``OUT/results.csv`` and flushed after every sample, so an interrupted run loses at most
the sample in flight; ``--resume`` skips (sample, model, method, metric, params_hash)
keys already there. Maps go to ``OUT/maps/<method>/<sample_id>.npy`` (``[T,H,W]`` float32
at the model's input resolution, with ``<sample_id>.json`` naming the T targets), curves
to ``OUT/curves/<method>/<sample_id>.npz``. ``OUT/config.toml`` holds the resolved
configuration and provenance; ``OUT/summary.csv`` the summary (written atomically).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import RunConfig, provenance, to_toml, write_atomic
from .datasets import Dataset, Sample, open_dataset
from .datasets.labels import class_map_for
from .distributed import (
    Shard, choose_shard, merge_parts, missing_shards, overall_progress, rank_device, start_process_group,
    stop_process_group, wait_for_shards, write_marker, write_progress,
)
from .errors import RiseBenchError, UsageError
from .explainers.base import Explainer, create_explainers
from .metrics import METRICS, baseline_map, deletion, insertion, insertion_start, is_difficult, point_and_score
from .metrics.baselines import BASELINES
from .batch_size import resolve_batch_size
from .models import Classifier, MappedClassifier, load_model

#: Columns of ``results.csv``.
COLUMNS = ["run_id", "dataset", "sample_id", "model", "method", "metric", "target", "subset", "value", "params_hash", "seconds"]
#: Pseudo-method of the rows about the classifier itself (top-1 accuracy, target = label).
CLASSIFIER = "classifier"


def sample_seed(seed: int, sample_id: str) -> int:
    """A per-sample seed from (seed, sample id): independent of batching, order and sharding."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()
    return int(digest[:15], 16)


@dataclass
class Method:
    """Something that yields maps: an explainer, a baseline or a folder of saved maps."""

    name: str
    params_hash: str
    explainer: Explainer | None = None
    maps_dir: Path | None = None

    def maps(self, model: Classifier, image: torch.Tensor, targets: list[int], names: list[str], sample: Sample, seed: int) -> torch.Tensor:
        """``[T,H,W]`` maps of ``targets`` for one normalised ``[1,3,H,W]`` image."""
        size = tuple(image.shape[-2:])
        if self.explainer is not None:
            return self.explainer.explain(model, image, torch.tensor([targets], device=image.device), seeds=[seed])[0]
        if self.maps_dir is not None:
            return load_saved_maps(self.maps_dir / self.name, sample.id, names, size).to(image.device)
        return baseline_map(self.name, size, seed, image.device)[None].expand(len(targets), -1, -1)


def load_saved_maps(folder: Path, sample_id: str, names: list[str], size: tuple[int, int]) -> torch.Tensor:
    """Maps of ``names`` from ``folder/<sample_id>.npy`` resized to ``size``.

    The file holds ``[H,W]`` (one map for every target) or ``[T,H,W]``; a sidecar
    ``<sample_id>.json`` with ``{"targets": [...]}`` picks slices by name, otherwise the
    slices are taken in order.

    Raises:
        RiseBenchError: the file is missing, unreadable or has the wrong shape.
    """
    path = folder / f"{_safe(sample_id)}.npy"
    if not path.is_file():
        raise RiseBenchError(f"{path}: saliency map missing")
    try:
        array = np.load(path, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise RiseBenchError(f"{path}: unreadable map ({exc})") from None
    if array.ndim == 2:
        array = np.repeat(array[None], len(names), axis=0)
    sidecar = path.with_suffix(".json")
    if array.ndim == 3 and sidecar.is_file():
        stored = json.loads(sidecar.read_text()).get("targets", [])
        missing = [n for n in names if n not in stored]
        if missing:
            raise RiseBenchError(f"{path}: no map for target(s) {', '.join(missing)} (has {', '.join(stored)})")
        array = array[[stored.index(n) for n in names]]
    if array.ndim != 3 or array.shape[0] < len(names):
        raise RiseBenchError(f"{path}: expected [H,W] or [T,H,W] with T >= {len(names)}, got {list(array.shape)}")
    tensor = torch.from_numpy(array[: len(names)])
    if tuple(tensor.shape[-2:]) != tuple(size):
        tensor = F.interpolate(tensor[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return tensor


def _safe(sample_id: str) -> str:
    """A file name for a sample id (ImageNet ids may hold a '/')."""
    return sample_id.replace("/", "__")


@dataclass
class RunOutcome:
    """What ``evaluate`` did."""

    out: Path
    samples_done: int = 0
    samples_skipped: int = 0
    failures: list[str] = field(default_factory=list)
    skipped_classes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pictures: list[Path] = field(default_factory=list)
    shard: Shard = field(default_factory=Shard)
    merged: bool = True


class ResultWriter:
    """Appends rows to ``results.csv``, flushing and syncing after every sample."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self.stream = open(path, "a", newline="")
        self.writer = csv.writer(self.stream)
        if new:
            self.writer.writerow(COLUMNS)
            self.stream.flush()

    def write(self, rows: list[list]) -> None:
        self.writer.writerows(rows)
        self.stream.flush()
        os.fsync(self.stream.fileno())

    def close(self) -> None:
        self.stream.close()


def finished_keys(path: Path) -> set[tuple[str, str, str, str, str]]:
    """(sample_id, model, method, metric, params_hash) of every row in an existing results.csv."""
    if not path.exists():
        return set()
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != COLUMNS:
            raise RiseBenchError(f"{path} is not a rise-bench results file (columns {reader.fieldnames})")
        return {(r["sample_id"], r["model"], r["method"], r["metric"], r["params_hash"]) for r in reader}


def default_metrics(dataset: Dataset) -> list[str]:
    return ["pointing"] if dataset.label_space in ("voc", "coco") else ["deletion", "insertion"]


def build_methods(config: RunConfig, batch_size: int | None = None) -> list[Method]:
    """The methods of a run: explainers (or saved maps), then the baselines."""
    if config.maps is not None:
        folder = Path(config.maps)
        if not folder.is_dir():
            raise UsageError(f"--maps folder '{folder}' does not exist")
        names = [m for m in config.methods if m != "all"] or sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not names:
            raise UsageError(f"--maps folder '{folder}' has no <method>/ subfolders")
        tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
        methods = [Method(name, f"maps-{tag}", maps_dir=folder) for name in names]
    else:
        explainers = create_explainers(config.methods, config.params, quick=config.quick, batch_size=batch_size, seed=config.seed)
        methods = [Method(name, e.params_hash(), explainer=e) for name, e in explainers.items()]
    if config.baselines:
        methods += [Method(name, f"baseline-{name}") for name in BASELINES if name not in {m.name for m in methods}]
    return methods


class Evaluation:
    """One evaluation run; ``run()`` does the work (see the module docstring)."""

    def __init__(self, config: RunConfig, make_reporter: Callable[[str], Callable[[int, int], None]] | None = None, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.log = log
        self.make_reporter = make_reporter
        self.metrics = list(config.metrics) if config.metrics else None
        if config.target not in ("top1", "label"):
            raise UsageError(f"--target must be top1 or label, got '{config.target}'")
        build_methods(config)  # bad methods or parameters fail before anything slow
        self.dataset = open_dataset(config.dataset, config.root, config.split, download=config.download)
        self.dataset.subset(config.limit, config.ids, config.sample, config.seed)
        self.shard = choose_shard(config.shard)
        self.sample_ids = self.shard.take(list(self.dataset.ids))
        self.metrics = self.metrics or default_metrics(self.dataset)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise UsageError(f"unknown metric '{unknown[0]}'; choose from {', '.join(METRICS)}")
        if "pointing" in self.metrics and self.dataset.label_space not in ("voc", "coco"):
            raise UsageError(f"the pointing game needs boxes or masks: data set '{self.dataset.name}' has none (use voc or coco)")
        self.model = load_model(config.model, config.weights, device=rank_device(self.shard, config.device), precision=config.precision)
        self.batch_size = resolve_batch_size(self.model, config.batch_size, log=log)
        self.methods = build_methods(config, self.batch_size)
        self.pointing_model, self.skippable = self._pointing_model()
        self.out = Path(config.out)
        self.owns_group = start_process_group(self.shard, self.model.device)

    def _pointing_model(self) -> tuple[Classifier | None, set[int]]:
        """The classifier over the data set's classes, and the classes it cannot score."""
        if "pointing" not in self.metrics:
            return None, set()
        classes = self.dataset.classes
        if self.model.num_classes == len(classes) and self.model.num_classes != 1000:
            self.model.classes = list(classes)  # a checkpoint trained on this label space
            return self.model, set()
        if self.model.num_classes != 1000:
            raise UsageError(
                f"model '{self.model.name}' has {self.model.num_classes} classes; pointing on "
                f"{self.dataset.name} needs its {len(classes)} classes or an ImageNet-1k model"
            )
        mapping = class_map_for(self.dataset.label_space, classes, self.config.labelmap)
        unmapped = {i for i, name in enumerate(classes) if not mapping[name]}
        return MappedClassifier(self.model, mapping), unmapped

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> RunOutcome:
        config = self.config
        shard = self.shard
        self.out.mkdir(parents=True, exist_ok=True)
        results = shard.part(self.out) if shard.split else self.out / "results.csv"
        if shard.split and (self.out / "results.csv").exists() and not (self.out / "parts").is_dir():
            raise UsageError(f"{self.out} holds a single-process run; give a sharded run another --out")
        if results.exists() and results.stat().st_size > 0 and not config.resume:
            raise UsageError(f"{results} already exists; pass --resume to continue it or choose another --out")
        results.parent.mkdir(parents=True, exist_ok=True)
        if shard.split:
            shard.marker(self.out).unlink(missing_ok=True)  # done again only once this run reaches the end
        done = finished_keys(results) if config.resume else set()
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        if shard.index == 0:
            self._write_config(run_id)
        outcome = RunOutcome(out=self.out, shard=shard)
        writer = ResultWriter(results)
        reporters = self._reporters()
        started = time.perf_counter()
        try:
            total = len(self.sample_ids)
            for position, sample_id in enumerate(self.sample_ids, 1):
                wanted = [m for m in self.methods if not self._finished(done, sample_id, m)]
                if not wanted:
                    outcome.samples_skipped += 1
                else:
                    try:
                        sample = self.dataset.load(sample_id)
                        rows = self._evaluate_sample(sample, wanted, run_id, outcome)
                    except RiseBenchError as exc:
                        outcome.failures.append(str(exc))
                        self.log(f"error: {exc}")
                    else:
                        writer.write(rows)
                        outcome.samples_done += 1
                self._report(reporters, position, total)
            if shard.split:
                write_marker(shard, self.out, self.sample_ids, outcome.failures, outcome.skipped_classes)
        finally:
            writer.close()
            for reporter in reporters:
                if hasattr(reporter, "finish"):
                    reporter.finish()
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _reporters(self) -> list:
        """This shard's progress bar, and on shard 0 of a split run one for the whole run."""
        if self.make_reporter is None:
            return []
        name = self.dataset.name
        if not self.shard.split:
            return [self.make_reporter(f"evaluate {name}")]
        reporters = [self.make_reporter(f"evaluate {name} shard {self.shard.label}")]
        if self.shard.index == 0:
            reporters.append(self.make_reporter(f"evaluate {name} all {self.shard.count} shards"))
        return reporters

    def _report(self, reporters: list, position: int, total: int) -> None:
        if self.shard.split:
            write_progress(self.shard, self.out, position, total)
        if reporters:
            reporters[0](position, total)
        if len(reporters) > 1:
            reporters[1](overall_progress(self.out, self.shard.count), len(self.dataset))

    def _finished(self, done: set, sample_id: str, method: Method) -> bool:
        return all((sample_id, self.model.name, method.name, metric, method.params_hash) in done for metric in self.metrics)

    def _write_config(self, run_id: str) -> None:
        resolved = self.config.as_dict()
        resolved["metrics"] = self.metrics
        resolved["model"] = self.model.name
        resolved["methods"] = [m.name for m in self.methods]
        resolved["batch_size"] = self.batch_size
        resolved["shard"] = None
        resolved["shards"] = self.shard.count
        document = {
            "run_id": run_id,
            "config": resolved,
            "samples": len(self.dataset),
            "method_params": {
                m.name: {**(m.explainer.resolved_params() if m.explainer else {}), "params_hash": m.params_hash}
                for m in self.methods
            },
            "provenance": provenance(self.model, self.model.device),
        }
        write_atomic(self.out / "config.toml", to_toml(document))

    def _evaluate_sample(self, sample: Sample, methods: list[Method], run_id: str, outcome: RunOutcome) -> list[list]:
        config, model = self.config, self.model
        device = model.device
        image = model.transform(sample.image)[None].to(device)
        seed = sample_seed(config.seed, sample.id)
        causal = [m for m in self.metrics if m in ("deletion", "insertion")]
        # one forward pass per sample: the image (prediction, target, first deletion and last
        # insertion point) and, for the curves, the deletion substrate and the insertion start
        blurred = insertion_start(image) if causal else None
        scored = torch.cat([image, torch.zeros_like(image), blurred]) if causal else image
        with torch.inference_mode():
            all_probabilities = model.scores(scored, "softmax")
        probabilities = all_probabilities[0]
        top1 = int(probabilities.argmax())
        label = sample.labels[0] if sample.labels and self.dataset.label_space == "imagenet" else None
        base = [run_id, self.dataset.name, sample.id, model.name]
        rows: list[list] = []
        if label is not None:
            label_name = model.classes[label]
            rows.append(base + [CLASSIFIER, "top1", label_name, "all", float(top1 == label), "", 0.0])

        # targets: the causal metrics' class in the model's space, the pointing classes in the data set's
        causal_target = label if (config.target == "label" and label is not None) else top1
        if causal:
            image_score, substrate_score, blurred_score = all_probabilities[:, causal_target].split(1)
            deletion_ends = (image_score, substrate_score)
            insertion_ends = (blurred_score, image_score)
            if label is not None:
                rows.append(base + [CLASSIFIER, "target_is_label", label_name, "all", float(causal_target == label), "", 0.0])
        pointing_targets: list[int] = []
        if "pointing" in self.metrics:
            present = sample.pointing_labels()
            for cls in present:
                if cls in self.skippable:
                    name = self.dataset.classes[cls]
                    outcome.skipped_classes[name] = outcome.skipped_classes.get(name, 0) + 1
                else:
                    pointing_targets.append(cls)

        for method in methods:
            started = time.perf_counter()
            maps: list[torch.Tensor] = []
            names: list[str] = []
            if causal:
                names.append(model.classes[causal_target])
                maps.append(method.maps(model, image, [causal_target], names[-1:], sample, seed))
            if pointing_targets:
                point_names = [self.dataset.classes[c] for c in pointing_targets]
                names += point_names
                maps.append(method.maps(self.pointing_model, image, pointing_targets, point_names, sample, seed))
            if not maps:
                continue
            saliency = torch.cat(maps).float()
            seconds = time.perf_counter() - started
            self._save_maps(method.name, sample, saliency, names)
            tail = [method.params_hash, round(seconds, 4)]
            prefix = base + [method.name]
            if causal:
                curves = {}
                target = torch.tensor([causal_target], device=device)
                if "deletion" in causal:
                    result = deletion(model, image, saliency[:1], target, step=config.step, batch_size=self.batch_size, endpoints=deletion_ends)
                    rows.append(prefix + ["deletion", names[0], "all", float(result.auc[0])] + tail)
                    curves["deletion"] = result.curves[0].cpu().numpy()
                if "insertion" in causal:
                    result = insertion(
                        model, image, saliency[:1], target, step=config.step, batch_size=self.batch_size,
                        blurred=blurred, endpoints=insertion_ends,
                    )
                    rows.append(prefix + ["insertion", names[0], "all", float(result.auc[0])] + tail)
                    curves["insertion"] = result.curves[0].cpu().numpy()
                folder = self.out / "curves" / method.name
                folder.mkdir(parents=True, exist_ok=True)
                np.savez(folder / f"{_safe(sample.id)}.npz", **curves)
            if pointing_targets:
                offset = 1 if causal else 0
                present = sample.pointing_labels()
                for column, cls in enumerate(pointing_targets):
                    truth = sample.ground_truth(cls)
                    trial = point_and_score(saliency[offset + column].cpu(), truth)
                    name = self.dataset.classes[cls]
                    rows.append(prefix + ["pointing", name, "all", float(trial.hit)] + tail)
                    if is_difficult(truth, len(present) > 1):
                        rows.append(prefix + ["pointing", name, "difficult", float(trial.hit)] + tail)
                    if trial.constant:
                        rows.append(prefix + ["pointing", name, "constant", 1.0] + tail)
        return rows

    def _save_maps(self, method: str, sample: Sample, saliency: torch.Tensor, names: list[str]) -> None:
        folder = self.out / "maps" / method
        folder.mkdir(parents=True, exist_ok=True)
        stem = _safe(sample.id)
        np.save(folder / f"{stem}.npy", saliency.cpu().numpy().astype(np.float32))
        sidecar = {"targets": names, "sample_id": sample.id, "image": sample.meta.get("file", "")}
        (folder / f"{stem}.json").write_text(json.dumps(sidecar))


def evaluate(config: RunConfig, make_reporter=None, log: Callable[[str], None] = print) -> RunOutcome:
    """Run an evaluation (see ``Evaluation``); write ``summary.csv``, ``curves.png`` and ``gallery.png`` beside the results.

    A shard of a split run (``rise_bench.distributed``) merges the parts first when it is
    rank 0 under torchrun (after waiting for the others) or the last ``--shard`` to finish;
    otherwise it returns with ``merged`` False.
    """
    evaluation = Evaluation(config, make_reporter, log)
    try:
        outcome = evaluation.run()
        shard = outcome.shard
        if shard.split:
            if shard.torchrun and shard.index == 0:
                wait_for_shards(outcome.out, shard.count, log=log)
            elif shard.torchrun or missing_shards(outcome.out, shard.count):
                outcome.merged = False
                return outcome
            outcome.skipped_classes = merge_parts(outcome.out, shard.count)
    finally:
        if evaluation.owns_group:
            stop_process_group()
    return finish_outputs(outcome, config.seed)


def finish_outputs(outcome: RunOutcome, seed: int = 0) -> RunOutcome:
    """``summary.csv``, ``curves.png`` and ``gallery.png`` from ``OUT/results.csv``."""
    from .report import plot_curves, plot_gallery, summarise_file

    summarise_file(outcome.out / "results.csv", outcome.out / "summary.csv", seed=seed)
    outcome.pictures = [
        outcome.out / name
        for name, plot in (("curves.png", plot_curves), ("gallery.png", plot_gallery))
        if plot([outcome.out], outcome.out / name)
    ]
    return outcome
