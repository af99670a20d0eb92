"""The ``explain`` job: explain one model's decision on image files with several methods.

For every image it writes, under ``OUT/<image name>/``: ``<method>.npy`` (the raw map,
``[H,W]`` float32 at the model's input resolution; ``:`` in a method's name is written
``-``, ``files.method_stem``), ``<method>.png`` (a heat-map
overlay at the original resolution), ``all-methods.png`` (the photograph and every
method side by side) and ``explanation.json`` (predictions, target, parameters, timings).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .explainers import Explainer
from .files import method_stem, save_array_atomic, write_atomic
from .images import overlay, read_image, resolve_image_path
from .models import Classifier, scores_only


@dataclass
class ImageResult:
    """What ``explain_image`` produced for one image."""

    source: str
    folder: Path
    top5: list[tuple[int, str, float]]
    target: int
    seconds: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def output_names(sources: Sequence[str]) -> list[str]:
    """A distinct folder name per image: its file stem, suffixed when stems repeat."""
    stems = [resolve_image_path(s).stem if not str(s).startswith("sample:") else str(s)[7:] for s in sources]
    names, seen = [], {}
    for stem in stems:
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(stem if count == 0 else f"{stem}-{count + 1}")
    return names


def top_predictions(model: Classifier, image: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
    """(index, name, probability) of the ``k`` most probable classes of one ``[3,H,W]`` image."""
    with torch.inference_mode(), scores_only(model):
        probabilities = model.scores(image[None], "softmax")[0]
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [(int(i), model.classes[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]


def side_by_side(image: Image.Image, maps: dict[str, np.ndarray], title: str, path: Path) -> None:
    """Save the photograph and one overlay per method in a row, with ``title`` above."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + len(maps)
    aspect = image.width / image.height
    figure, axes = plt.subplots(1, panels, figsize=(2.8 * aspect * panels, 3.3), squeeze=False)
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("image", fontsize=10)
    for axis, (method, saliency) in zip(axes[0, 1:], maps.items(), strict=True):
        axis.imshow(overlay(image, saliency))
        axis.set_title(method, fontsize=10)
    for axis in axes[0]:
        axis.axis("off")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def explain_image(
    model: Classifier,
    source: str,
    folder: Path,
    explainers: dict[str, Explainer],
    target: int | None = None,
    make_reporter: Callable[[str], Callable[[int, int], None]] | None = None,
    batch_size: int | None = None,
) -> ImageResult:
    """Explain one image with every explainer and write its files to ``folder``.

    Args:
        model: the classifier.
        source: image path or ``sample:NAME``.
        folder: output folder for this image (created).
        explainers: method name -> explainer.
        target: class index to explain; None: the model's top-1 class.
        make_reporter: makes a progress callback for a description.
        batch_size: images (or perturbed copies) per forward pass.

    Raises:
        ImageError: the image cannot be read.
    """
    image = read_image(source)
    tensor = model.transform(image).to(model.device)
    top5 = top_predictions(model, tensor)
    chosen = top5[0][0] if target is None else target
    result = ImageResult(source=str(source), folder=folder, top5=top5, target=chosen)
    folder.mkdir(parents=True, exist_ok=True)
    maps: dict[str, np.ndarray] = {}
    for method, explainer in explainers.items():
        reporter = make_reporter(f"{folder.name}: {method}") if make_reporter else None
        started = time.perf_counter()
        try:
            targets = torch.tensor([chosen], device=model.device)
            saliency = explainer.explain(model, tensor[None], targets, batch_size=batch_size, progress=reporter)
        finally:
            if reporter is not None and hasattr(reporter, "finish"):
                reporter.finish()
        result.seconds[method] = time.perf_counter() - started
        maps[method] = saliency[0].cpu().numpy().astype(np.float32)
        stem = method_stem(method)
        save_array_atomic(folder / f"{stem}.npy", maps[method])
        overlay(image, maps[method]).save(folder / f"{stem}.png")
        result.files += [folder / f"{stem}.npy", folder / f"{stem}.png"]
    probability = dict((i, p) for i, _, p in top5).get(chosen)
    if probability is None:
        with torch.inference_mode():
            probability = float(model.score(tensor[None], torch.tensor([chosen]), "softmax")[0])
    title = f"{model.name}: {model.classes[chosen]} ({probability:.1%})"
    if chosen != top5[0][0]:
        title += f"; predicted {top5[0][1]} ({top5[0][2]:.1%})"
    side_by_side(image, maps, title, folder / "all-methods.png")
    record = {
        "image": str(source),
        "model": model.name,
        "weights": model.weights,
        "precision": model.precision,
        "backend": model.backend,
        "input_size": list(model.input_size),
        "top5": [{"index": i, "class": n, "probability": p} for i, n, p in top5],
        "target": {"index": chosen, "class": model.classes[chosen], "probability": probability},
        "methods": {m: {"params": e.resolved_params(), "seconds": result.seconds[m]} for m, e in explainers.items()},
    }
    write_atomic(folder / "explanation.json", json.dumps(record, indent=2))
    result.files += [folder / "all-methods.png", folder / "explanation.json"]
    return result
