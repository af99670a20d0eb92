"""ROAD MoRF + LeRF over 9 fractions: rise-bench against pytorch-grad-cam, side by side (issue 12).

On the same images, maps (Grad-CAM of the model) and model, one run alternates:

- ``pytorch-grad-cam``: ``ROADMostRelevantFirstAverage`` and ``ROADLeastRelevantFirstAverage``
  over the percentiles 10..90 (what ``ROADCombined`` calls): one sparse direct solve per
  image, fraction and order on the host, then the model;
- ``rise-bench``: ``road.road`` (both orders, 9 fractions, imputations solved and scored
  ``--batch-size`` at a time).

It prints the best wall time per image of each side over ``--repeats`` alternated runs and
their ratio (goal: rise-bench >= 10x faster), the same for the imputation alone (the 18
noise-free imputations of one image), and the largest difference between the two
imputations (the fidelity test asks for 1e-4).

    python scripts/bench_road.py --images 3 --repeats 3 --out results/road-speed-cpu.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from bench import machine_description, paired_times

from rise_bench.explainers import create_explainer
from rise_bench.images import read_image
from rise_bench.metrics.imputation import solve_linear_imputation
from rise_bench.metrics.road import LERF, MORF, removal_masks, road, road_fractions
from rise_bench.models import load_model

DATA = Path("../shared/data/imagenet-sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    try:
        from pytorch_grad_cam.metrics.road import (
            NoisyLinearImputer,
            ROADLeastRelevantFirstAverage,
            ROADMostRelevantFirstAverage,
        )
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    except ImportError:
        sys.exit("this benchmark needs pytorch-grad-cam: pip install grad-cam")

    device = torch.device(args.device)
    model = load_model(args.model, device=device)
    files = sorted(DATA.glob("*.JPEG"))[: args.images]
    if not files:
        sys.exit(f"no images under {DATA}")
    images = torch.stack([model.transform(read_image(f)) for f in files]).to(device)
    with torch.inference_mode():
        targets = model.scores(images).argmax(1)
    maps = create_explainer("gradcam").explain(model, images, targets).detach()
    count = len(files)

    def theirs() -> None:
        cams, wanted = maps.cpu().numpy(), [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
        for index in range(count):  # their imputer takes one image at a time in any case
            one = images[index : index + 1]
            lerf = ROADLeastRelevantFirstAverage()(one, cams[index : index + 1], wanted[index : index + 1], model.net)
            morf = ROADMostRelevantFirstAverage()(one, cams[index : index + 1], wanted[index : index + 1], model.net)
            float((lerf - morf)[0])

    def ours() -> None:
        road(model, images, maps, targets, batch_size=args.batch_size)

    fractions = road_fractions(9)
    masks = [torch.cat([removal_masks(m, fractions, o) for o in (MORF, LERF)]) for m in maps]

    def their_imputation() -> list[torch.Tensor]:
        imputer = NoisyLinearImputer(noise=0)
        return [torch.stack([imputer(images[i].cpu(), (~m).float().cpu()) for m in masks[i]]) for i in range(count)]

    def our_imputation() -> list[torch.Tensor]:
        out = []
        for index in range(count):
            removed = masks[index][:, None].expand(-1, 3, -1, -1)
            planes = images[index].expand(len(removed), -1, -1, -1).reshape(-1, *images.shape[2:])
            out.append(solve_linear_imputation(planes, removed.reshape(planes.shape)).view(removed.shape))
        return out

    pairs = zip(our_imputation(), their_imputation(), strict=True)
    difference = max(float((a.cpu() - b).abs().max()) for a, b in pairs)
    metric_times = paired_times(theirs, ours, device, args.repeats)
    imputation_times = paired_times(their_imputation, our_imputation, device, args.repeats)
    rows = [
        ("ROAD MoRF + LeRF, 9 fractions, with the model", *metric_times),
        ("the 18 imputations alone (noise 0)", *imputation_times),
    ]
    lines = [
        f"Machine: {machine_description(device)}; model {args.model}; {count} images of {DATA.name} with their "
        f"Grad-CAM maps; best of {args.repeats} alternated runs; batch size {args.batch_size}.",
        "",
        "| per image | pytorch-grad-cam (s) | rise-bench (s) | speed-up |",
        "|---|---|---|---|",
        *(f"| {name} | {a / count:.3f} | {b / count:.3f} | {a / b:.1f}x |" for name, a, b in rows),
        "",
        f"Largest difference between the two imputations: {difference:.1e} (normalised units).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"# ROAD speed: rise-bench against pytorch-grad-cam\n\n{text}\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
