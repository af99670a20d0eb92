"""Do bf16 deletion/insertion AUCs agree with fp32? (issue 4: within 0.01 on the shared ImageNet sample)

Runs the same evaluation twice, ``--precision fp32`` and ``--precision bf16`` (maps and
curves each computed in that precision), and prints per method and metric the two mean
AUCs, their difference, the largest per-image difference and the two wall times.

    python scripts/bf16_agreement.py --root ../shared/data/imagenet-sample --limit 25 --device cuda
    python scripts/bf16_agreement.py --limit 4 --step 1792 --param rise.num_masks=100 --batch-size 8   # slow CPUs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.runner import evaluate


def run(args, precision: str) -> tuple[pd.DataFrame, float]:
    out = Path(args.out) / precision
    config = RunConfig(
        dataset="imagenet",
        root=args.root,
        limit=args.limit,
        methods=args.methods,
        metrics=["deletion", "insertion"],
        params=args.param,
        model=args.model,
        device=args.device,
        precision=precision,
        batch_size=args.batch_size,
        step=args.step,
        out=str(out),
        resume=True,
    )
    started = time.perf_counter()
    evaluate(config, log=print)
    rows = pd.read_csv(out / "results.csv")
    return rows[rows.metric.isin(["deletion", "insertion"])], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/imagenet-sample")
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--model", default=None)
    parser.add_argument("--methods", nargs="+", default=["rise", "gradcam", "gradient"])
    parser.add_argument("--param", nargs="*", default=["rise.num_masks=1000"])
    parser.add_argument(
        "--step", type=int, default=None, help="Pixels per deletion/insertion step (default: the width)."
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--out", default="runs/bf16-agreement")
    args = parser.parse_args()
    full, full_seconds = run(args, "fp32")
    half, half_seconds = run(args, "bf16")
    key = ["sample_id", "method", "metric"]
    joined = full[key + ["value"]].merge(half[key + ["value"]], on=key, suffixes=("_fp32", "_bf16"))
    joined["difference"] = joined.value_bf16 - joined.value_fp32
    table = (
        joined.groupby(["method", "metric"])
        .agg(
            fp32=("value_fp32", "mean"),
            bf16=("value_bf16", "mean"),
            mean_difference=("difference", "mean"),
            largest_image_difference=("difference", lambda d: d.abs().max()),
            n=("difference", "size"),
        )
        .reset_index()
    )
    table["within_0.01"] = table.mean_difference.abs() <= 0.01
    print(f"fp32 run {full_seconds:.0f}s, bf16 run {half_seconds:.0f}s (speed-up {full_seconds / half_seconds:.2f}x)")
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
