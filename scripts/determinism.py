"""How deterministic are maps and AUCs? Across runs, batch sizes and thread counts, on real images.

For each image of the shared ImageNet sample: RISE maps with the same seed at several
``--batch-size`` values and thread counts, then the deletion and insertion AUCs of each
map scored at the same batch size and thread count. Prints the largest differences from
the reference setting (batch size 8, the default thread count) and whether two identical
runs gave the same bytes. README's "Determinism" paragraph quotes this table.

    python scripts/determinism.py --limit 8 --masks 1000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import rise_bench
from rise_bench.images import read_image
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion


def measure(
    model, images, targets, masks: int, batch: int, threads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(maps, deletion AUCs, insertion AUCs) with ``batch`` images per pass on ``threads`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        explainer = rise_bench.create_explainer("rise", num_masks=masks, seed=0)
        maps = torch.cat(
            [
                explainer.explain(model, images[i : i + 1], targets[i : i + 1], batch_size=batch)
                for i in range(len(images))
            ]
        )
        with torch.inference_mode():
            down = deletion(model, images, maps, targets, batch_size=batch).auc
            up = insertion(model, images, maps, targets, batch_size=batch).auc
        return maps, down, up
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/imagenet-sample")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--masks", type=int, default=1000)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()])
    args = parser.parse_args()
    model = rise_bench.load_model(device="cpu")
    files = sorted(Path(args.root).glob("*.JPEG"))[: args.limit]
    images = torch.stack([model.transform(read_image(f)) for f in files])
    with torch.inference_mode():
        targets = model.scores(images).argmax(1)
    default_threads = torch.get_num_threads()
    reference = measure(model, images, targets, args.masks, 8, default_threads)
    again = measure(model, images, targets, args.masks, 8, default_threads)
    same = all(torch.equal(a, b) for a, b in zip(reference, again, strict=True))
    print(f"{len(files)} images, RISE {args.masks} masks; reference: batch 8, {default_threads} threads")
    print(f"same settings twice: {'identical' if same else 'DIFFERENT'} maps and AUCs")
    print("| setting | max map diff | max map diff / map range | max deletion AUC diff | max insertion AUC diff |")
    print("|---|---|---|---|---|")
    span = float((reference[0].amax((1, 2)) - reference[0].amin((1, 2))).min())
    settings = [(b, default_threads) for b in args.batches if b != 8] + [
        (8, t) for t in args.threads if t != default_threads
    ]
    for batch, threads in settings:
        maps, down, up = measure(model, images, targets, args.masks, batch, threads)
        diff = float((maps - reference[0]).abs().max())
        print(
            f"| batch {batch}, {threads} thread(s) | {diff:.2e} | {diff / span:.2e} | "
            f"{float((down - reference[1]).abs().max()):.2e} | {float((up - reference[2]).abs().max()):.2e} |"
        )


if __name__ == "__main__":
    main()
