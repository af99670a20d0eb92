"""Speed and memory of every method against the model's own passes (issue 4).

For one model, device and precision (or several precisions in one run) this prints, per
method: the time of the model's plain passes over the same number of inputs, the
method's time, their ratio, and the process's peak memory. The targets:

    rise                  <= 1.10 x N plain forward passes at the best batch size
    deletion+insertion    <= 1.10 x its 2(n+1) forward passes
    lime                  <= 1.20 x its samples' forward passes (SLIC and regression included)
    perturbation          <= 1.20 x its iterations' forward+backward passes
    rise memory           peak for N=8000 within 10% of N=1000 (each in a fresh process)
    bf16                  >= 2.3x (resnet50) / 1.8x (tf_efficientnet_lite0) faster than fp32

The "best batch size" is what ``--batch-size auto`` finds (the lowest forward time per
image); every method runs at it. Random weights are used unless --pretrained is given, so
resnet50 needs no download. Timings take the best of --repeats runs after a warm-up.

    python scripts/bench.py --model tf_efficientnet_lite0 --precision fp32 bf16 --out results/bench-cpu.md
    python scripts/bench.py --model resnet50 --device cuda --precision fp32 bf16 --out results/bench-cuda.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from rise_bench.batch_size import batch_timings
from rise_bench.explainers import create_explainer
from rise_bench.images import read_image
from rise_bench.metrics import deletion, insertion
from rise_bench.models import RANDOM_WEIGHTS, load_model

TARGETS = {"rise": 1.10, "deletion+insertion": 1.10, "lime": 1.20, "perturbation": 1.20}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(function, device: torch.device, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``function`` (after one warm-up call)."""
    function()
    best = float("inf")
    for _ in range(repeats):
        synchronise(device)
        started = time.perf_counter()
        function()
        synchronise(device)
        best = min(best, time.perf_counter() - started)
    return best


def forward_passes(model, count: int, batch_size: int, inputs: torch.Tensor) -> None:
    """``count`` plain forward passes of ``inputs[:batch]`` in batches of ``batch_size``."""
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            model(inputs[: min(batch_size, count - start)])


def forward_backward_passes(model, iterations: int, image: torch.Tensor, target: int) -> None:
    """``iterations`` forward+backward passes to the input of one image (what an optimiser step costs)."""
    for _ in range(iterations):
        x = image.clone().requires_grad_(True)
        model.scores(x)[:, target].sum().backward()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        extras = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "avx2") if f" {f}" in flags]
        cpu += f" ({', '.join(extras)})"
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"


def bench_precision(args, precision: str) -> list[dict]:
    """Rows (method, passes, forward s, method s, ratio, target, peak MB) for one precision."""
    weights = None if args.pretrained else RANDOM_WEIGHTS
    model = load_model(args.model, weights, device=args.device, precision=precision)
    device = model.device
    height, width = model.input_size
    if args.batch_size == "auto":
        timings = batch_timings(model, args.max_batch)
        batch = min(timings, key=timings.get)
        print(f"[{precision}] forward ms/image by batch size: " + ", ".join(f"{b}: {t * 1e3:.1f}" for b, t in timings.items()))
    else:
        batch = int(args.batch_size)
    print(f"[{precision}] batch size {batch}")
    image = model.transform(read_image(args.image))[None].to(device)
    with torch.inference_mode():
        target = int(model.scores(image).argmax())
    inputs = image.expand(max(batch, 1), -1, -1, -1).contiguous()
    rows: list[dict] = []

    def add(method: str, passes: str, reference: float, spent: float) -> None:
        row = {
            "precision": precision, "method": method, "passes": passes, "batch": batch,
            "forward_s": reference, "method_s": spent, "ratio": spent / reference,
            "target": TARGETS.get(method), "peak_mb": peak_memory_mb(device),
        }
        rows.append(row)
        mark = "" if row["target"] is None else ("  ok" if row["ratio"] <= row["target"] else "  MISSED")
        print(f"[{precision}] {method:20s} {passes:28s} forward {reference:8.3f}s  method {spent:8.3f}s  ratio {row['ratio']:.3f}{mark}", flush=True)

    def explain(name: str, **params):
        explainer = create_explainer(name, batch_size=batch, **params)
        return lambda: explainer.explain(model, image, [target])

    n = args.masks
    add("rise", f"{n} forward", best_time(lambda: forward_passes(model, n, batch, inputs), device, args.repeats),
        best_time(explain("rise", num_masks=n), device, args.repeats))

    saliency = torch.rand(1, height, width, device=device, generator=None)
    steps = -(-height * width // width)
    count = 2 * (steps + 1)

    def causal() -> None:
        deletion(model, image, saliency, [target], batch_size=batch)
        insertion(model, image, saliency, [target], batch_size=batch)

    add("deletion+insertion", f"2(n+1) = {count} forward", best_time(lambda: forward_passes(model, count, batch, inputs), device, args.repeats),
        best_time(causal, device, args.repeats))

    s = args.lime_samples
    add("lime", f"{s} forward", best_time(lambda: forward_passes(model, s, batch, inputs), device, args.repeats),
        best_time(explain("lime", num_samples=s), device, args.repeats))

    k = args.iterations
    add("perturbation", f"{k} forward+backward", best_time(lambda: forward_backward_passes(model, k, image, target), device, args.repeats),
        best_time(explain("perturbation", iterations=k), device, args.repeats))

    add("gradcam", "1 forward+backward", best_time(lambda: forward_backward_passes(model, 1, image, target), device, args.repeats),
        best_time(explain("gradcam"), device, args.repeats))
    add("gradient", "1 forward+backward", best_time(lambda: forward_backward_passes(model, 1, image, target), device, args.repeats),
        best_time(explain("gradient"), device, args.repeats))
    return rows


def memory_child(args) -> None:
    """Run RISE once with ``--memory-child N`` masks in this fresh process; print peak memory as JSON."""
    weights = None if args.pretrained else RANDOM_WEIGHTS
    precision = args.precision[0]
    model = load_model(args.model, weights, device=args.device, precision=precision)
    image = model.transform(read_image(args.image))[None].to(model.device)
    batch = int(args.batch_size) if args.batch_size != "auto" else 8
    create_explainer("rise", num_masks=8, batch_size=batch).explain(model, image, [0])
    loaded = peak_memory_mb(model.device)
    started = time.perf_counter()
    create_explainer("rise", num_masks=args.memory_child, batch_size=batch).explain(model, image, [0])
    seconds = time.perf_counter() - started
    print(json.dumps({"masks": args.memory_child, "loaded_mb": loaded, "peak_mb": peak_memory_mb(model.device), "seconds": seconds}))


def memory_rows(args, batch: int) -> list[dict]:
    results = []
    for masks in (1000, 8000):
        command = [sys.executable, __file__, "--memory-child", str(masks), "--model", args.model, "--device", args.device,
                   "--precision", args.precision[0], "--batch-size", str(batch), "--image", args.image]
        if args.pretrained:
            command.append("--pretrained")
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(output))
        print(f"[memory] RISE N={masks}: peak {results[-1]['peak_mb']:.0f} MB "
              f"(after loading and a warm-up: {results[-1]['loaded_mb']:.0f} MB), {results[-1]['seconds']:.1f}s", flush=True)
    return results


def markdown(args, rows: list[dict], memory: list[dict], description: str) -> str:
    lines = [
        f"# Benchmark: {args.model} on {args.device}",
        "",
        f"Machine: {description}.",
        f"Command: `python scripts/bench.py {' '.join(sys.argv[1:])}`, {time.strftime('%Y-%m-%d')}.",
        f"Weights: {'pretrained' if args.pretrained else 'random'}; one {args.image} image; best of {args.repeats} runs after a warm-up.",
        "The forward column times the model's own passes over the same number of inputs at the same batch size.",
        "",
        "| precision | method | passes | batch | forward s | method s | ratio | target | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = "" if r["target"] is None else f"<= {r['target']:.2f} {'met' if r['ratio'] <= r['target'] else 'MISSED'}"
        lines.append(f"| {r['precision']} | {r['method']} | {r['passes']} | {r['batch']} | {r['forward_s']:.3f} | {r['method_s']:.3f} | {r['ratio']:.3f} | {target} | {r['peak_mb']:.0f} |")
    precisions = sorted({r["precision"] for r in rows})
    if "fp32" in precisions and "bf16" in precisions:
        lines += ["", "bf16 against fp32 (method time, both at their own best batch size):", "",
                  "| method | fp32 s | bf16 s | speed-up |", "|---|---|---|---|"]
        for method in ("rise", "deletion+insertion"):
            fp32 = next(r for r in rows if r["precision"] == "fp32" and r["method"] == method)
            bf16 = next(r for r in rows if r["precision"] == "bf16" and r["method"] == method)
            lines.append(f"| {method} | {fp32['method_s']:.3f} | {bf16['method_s']:.3f} | {fp32['method_s'] / bf16['method_s']:.2f}x |")
    if memory:
        low, high = memory
        growth = high["peak_mb"] / low["peak_mb"] - 1
        lines += ["", f"RISE peak memory ({args.precision[0]}, fresh process each): N=1000 {low['peak_mb']:.0f} MB, "
                  f"N=8000 {high['peak_mb']:.0f} MB: {growth:+.1%} (target within 10%: {'met' if abs(growth) <= 0.10 else 'MISSED'}). "
                  f"Above the model loaded and warmed up: {low['peak_mb'] - low['loaded_mb']:.0f} MB and {high['peak_mb'] - high['loaded_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--pretrained", action="store_true", help="The library's pretrained weights instead of random ones.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--batch-size", default="auto", help="An integer, or auto (the fastest plain forward).")
    parser.add_argument("--max-batch", type=int, default=None, help="Largest batch size auto tries (default 64 on CPU, 512 elsewhere).")
    parser.add_argument("--masks", type=int, default=1000)
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image", default="sample:chelsea")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-memory", action="store_true", help="Skip the RISE N=8000 memory row.")
    parser.add_argument("--out", default=None, help="Write the table as Markdown here.")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args)
        return
    if args.max_batch is None:
        args.max_batch = 64 if args.device == "cpu" else 512
    device = torch.device(args.device)
    description = machine_description(device)
    print(description)
    rows: list[dict] = []
    for precision in args.precision:
        rows += bench_precision(args, precision)
    memory = [] if args.no_memory else memory_rows(args, rows[0]["batch"])
    text = markdown(args, rows, memory, description)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
