"""Quality per forward pass: insertion and deletion AUC of the black-box methods against their cost.

On the first N images of ../shared/data/imagenet-sample (sorted by file name) with the
default model, each image's predicted class is explained by:

- RISE at 500, 1000, 2000 and 4000 masks. Mask i depends only on (seed, i), so the four
  maps come from one 4000-mask pass: the running sums after 500, 1000, 2000 and 4000 masks
  (checked against ``rise`` itself on the first image);
- adaptive RISE (``rise`` with ``tolerance`` 0.1 and 0.05, a check every 250 masks, 4000
  masks at most), run as the method;
- Sobol at N = 8, 16, 32 and HSIC at 750 and 1500 masks, run as the methods.

Every map is scored by deletion and insertion (the library's functions, ``--step`` pixels
per step), and the forward passes each explanation cost are counted by the model. Rows
are appended to ``OUT/rows.csv`` as they are made, so an interrupted run resumes where it
stopped. The table (mean and bootstrap 95% CI per setting, and each setting's paired
insertion difference from RISE-4000) goes to ``OUT.md`` and the plot to ``OUT.png``.

    python scripts/quality_per_pass.py --limit 25 --out results/quality-per-pass
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import rise_bench
from rise_bench.images import read_image
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion
from rise_bench.reporting.compare import paired_difference
from rise_bench.reporting.summary import bootstrap

RISE_PREFIXES = (500, 1000, 2000, 4000)
COLUMNS = ["image", "setting", "family", "forward_passes", "seconds", "deletion", "insertion"]


def settings(tolerances: list[float], check_every: int) -> list[tuple[str, str, dict]]:
    """(label, method, parameters) of every setting explained by running the method itself."""
    adaptive = {"num_masks": 4000, "check_every": check_every}
    return [
        *((f"adaptive RISE tol {t}", "rise", {**adaptive, "tolerance": t}) for t in tolerances),
        ("Sobol N=8", "sobol", {"num_designs": 8}),
        ("Sobol N=16", "sobol", {"num_designs": 16}),
        ("Sobol N=32", "sobol", {"num_designs": 32}),
        ("HSIC 750", "hsic", {"num_masks": 750}),
        ("HSIC 1500", "hsic", {"num_masks": 1500}),
    ]


def rise_prefix_maps(model, image, target, batch_size) -> tuple[dict[int, torch.Tensor], float]:
    """RISE maps after 500, 1000, 2000 and 4000 masks from one pass over 4000 masks, and the seconds it took."""
    explainer = rise_bench.create_explainer("rise", num_masks=max(RISE_PREFIXES))
    execution = rise_bench.explainers.Execution(batch_size)
    started = time.perf_counter()
    running = explainer.running_maps(model, image[0], torch.tensor([target]), RISE_PREFIXES, execution)
    maps = {stop: saliency.view(image.shape[-2:]).clone() for stop, saliency in running}
    return maps, time.perf_counter() - started


def score(model, image, saliency, target, step, batch_size) -> tuple[float, float]:
    options = {"step": step, "batch_size": batch_size}
    low = deletion(model, image, saliency[None], [target], **options).auc
    high = insertion(model, image, saliency[None], [target], **options).auc
    return float(low[0]), float(high[0])


def run(args) -> pd.DataFrame:
    model = rise_bench.load_model(device=args.device)
    files = sorted(Path(args.root).glob("*.JPEG"))[: args.limit]
    if not files:
        raise SystemExit(f"no *.JPEG images under {args.root}")
    rows_path = Path(str(args.out) + "-rows.csv")
    done = set()
    if rows_path.is_file():
        previous = pd.read_csv(rows_path)
        done = set(zip(previous.image, previous.setting, strict=True))
    else:
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        with rows_path.open("w", newline="") as handle:
            csv.writer(handle).writerow(COLUMNS)
    checked = False
    for number, file in enumerate(files, 1):
        image = model.transform(read_image(file))[None].to(model.device)
        with torch.inference_mode():
            target = int(model(image).argmax())
        new_rows = []
        if any((file.stem, f"RISE {n}") not in done for n in RISE_PREFIXES):
            maps, seconds = rise_prefix_maps(model, image, target, args.batch_size)
            if not checked:  # the prefix maps are RISE's own
                direct = rise_bench.create_explainer("rise", num_masks=1000).explain(
                    model, image, [target], batch_size=args.batch_size
                )[0]
                torch.testing.assert_close(maps[1000], direct, atol=1e-5, rtol=1e-4)
                checked = True
            for count in RISE_PREFIXES:
                low, high = score(model, image, maps[count], target, args.step, args.batch_size)
                new_rows.append([file.stem, f"RISE {count}", "RISE", count, seconds * count / 4000, low, high])
        for label, method, params in settings(args.tolerance, args.check_every):
            if (file.stem, label) in done:
                continue
            explainer = rise_bench.create_explainer(method, **params)
            before, started = model.pass_counter.count, time.perf_counter()
            saliency = explainer.explain(model, image, [target], batch_size=args.batch_size)[0]
            seconds = time.perf_counter() - started
            passes = model.pass_counter.count - before
            low, high = score(model, image, saliency, target, args.step, args.batch_size)
            family = "adaptive RISE" if method == "rise" else method.upper() if method == "hsic" else "Sobol"
            new_rows.append([file.stem, label, family, passes, seconds, low, high])
        with rows_path.open("a", newline="") as handle:
            csv.writer(handle).writerows(new_rows)
        print(f"{number}/{len(files)} {file.stem}: {len(new_rows)} settings", flush=True)
    return pd.read_csv(rows_path)


def ci(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    return bootstrap(values[:, None], lambda totals: totals[..., 0] / len(values), seed)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    order = list(dict.fromkeys(rows.setting))
    reference = rows[rows.setting == "RISE 4000"].set_index("image").insertion
    out = []
    for setting in order:
        group = rows[rows.setting == setting]
        deletion_low, deletion_high = ci(group.deletion.to_numpy())
        insertion_low, insertion_high = ci(group.insertion.to_numpy())
        difference, low, high = paired_difference(group.set_index("image").insertion, reference)
        out.append(
            {
                "setting": setting,
                "family": group.family.iloc[0],
                "passes": group.forward_passes.mean(),
                "passes_max": group.forward_passes.max(),
                "seconds": group.seconds.mean(),
                "insertion": group.insertion.mean(),
                "insertion_ci": f"[{insertion_low:.3f}, {insertion_high:.3f}]",
                "deletion": group.deletion.mean(),
                "deletion_ci": f"[{deletion_low:.3f}, {deletion_high:.3f}]",
                "vs_rise4000": difference,
                "vs_rise4000_ci": f"[{low:+.3f}, {high:+.3f}]",
                "matches": bool(low <= 0 <= high or low > 0) if setting != "RISE 4000" else None,
                "n": len(group),
            }
        )
    return pd.DataFrame(out)


def plot(summary: pd.DataFrame, rows: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    markers = {"RISE": "o", "adaptive RISE": "*", "Sobol": "s", "HSIC": "^"}
    for axis, metric in zip(axes[:2], ("insertion", "deletion"), strict=True):
        for family, group in summary.groupby("family", sort=False):
            lows, highs = [], []
            for setting in group.setting:
                low, high = ci(rows[rows.setting == setting][metric].to_numpy())
                lows.append(low)
                highs.append(high)
            means = group[metric].to_numpy()
            errors = np.array([means - np.array(lows), np.array(highs) - means])
            axis.errorbar(group.passes, means, yerr=errors, marker=markers.get(family, "o"), capsize=3, label=family)
        axis.set_xscale("log")
        axis.set_xlabel("forward passes per image (log scale)")
        better = "higher" if metric == "insertion" else "lower"
        axis.set_title(f"{metric} AUC ({better} is better), mean and 95% CI")
        axis.grid(alpha=0.3)
    axes[0].legend()
    # the goal's test: each setting's paired insertion difference from RISE-4000, over the same images
    axis = axes[2]
    for family, group in summary[summary.setting != "RISE 4000"].groupby("family", sort=False):
        intervals = np.array([[float(v) for v in text.strip("[]").split(",")] for text in group.vs_rise4000_ci])
        means = group.vs_rise4000.to_numpy()
        errors = np.array([means - intervals[:, 0], intervals[:, 1] - means])
        marker = markers.get(family, "o")
        axis.errorbar(group.passes, means, yerr=errors, marker=marker, capsize=3, ls="none", label=family)
    axis.axhline(0, color="black", lw=0.8)
    axis.axvline(1000, color="grey", ls="--", lw=0.8)
    axis.text(1000, axis.get_ylim()[1], " a quarter of RISE-4000's passes", va="top", fontsize=8, color="grey")
    axis.set_xscale("log")
    axis.set_xlabel("forward passes per image (log scale)")
    axis.set_title("insertion minus RISE-4000's, paired, 95% CI")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write_markdown(summary: pd.DataFrame, args, path: Path, cpu: str) -> None:
    lines = [
        "# Quality per forward pass",
        "",
        f"`python scripts/quality_per_pass.py --limit {args.limit} --step {args.step}`: the first {args.limit} "
        f"images of `{args.root}`, default model (tf_efficientnet_lite0), each image's predicted class; "
        f"deletion and insertion with {args.step} pixels per step; adaptive RISE checks every {args.check_every} "
        f"masks. CPU: {cpu}. The seconds are wall time on a shared machine (other jobs ran beside the first "
        "images), and RISE-500 to -2000's are RISE-4000's pro rata (one pass makes all four): compare passes.",
        "",
        "| setting | forward passes (mean, max) | s / image | insertion AUC [95% CI] | deletion AUC [95% CI] "
        "| insertion minus RISE-4000 [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples():
        lines.append(
            f"| {row.setting} | {row.passes:.0f} ({row.passes_max:.0f}) | {row.seconds:.1f} | "
            f"{row.insertion:.3f} {row.insertion_ci} | {row.deletion:.3f} {row.deletion_ci} | "
            + ("reference" if row.setting == "RISE 4000" else f"{row.vs_rise4000:+.3f} {row.vs_rise4000_ci}")
            + " |"
        )
    path.write_text("\n".join(lines) + "\n")


def cpu_description() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    chosen = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {torch.get_num_threads()} threads, flags {' '.join(chosen)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/imagenet-sample")
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--step", type=int, default=224 * 4, help="pixels per deletion/insertion step")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--tolerance", type=lambda text: [float(t) for t in text.split(",")], default=[0.1, 0.05],
        help="adaptive RISE's tolerances, comma-separated",
    )  # fmt: skip
    parser.add_argument("--check-every", type=int, default=250, help="adaptive RISE's masks between checks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="results/quality-per-pass")
    args = parser.parse_args()
    rows = run(args)
    summary = table(rows)
    out = Path(args.out)
    write_markdown(summary, args, out.with_suffix(".md"), cpu_description())
    plot(summary, rows, out.with_suffix(".png"))
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
