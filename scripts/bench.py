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
resnet50 needs no download. Timings take the best of --repeats runs.

    python scripts/bench.py --model tf_efficientnet_lite0 --precision fp32 bf16 --out results/bench-cpu.md
    python scripts/bench.py --model resnet50 --device cuda --precision fp32 bf16 --out results/bench-cuda.md

``--peers`` instead times rise-bench against the RISE authors' code, lime, Quantus and
pytorch-grad-cam on the same work, on each scoring backend (``bench_peers.py``):

    python scripts/bench.py --peers --reference-rise ../RISE --out results/bench-cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from rise_bench.batch_size import batch_timings, synchronise
from rise_bench.explainers import create_explainer
from rise_bench.images import read_image
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion
from rise_bench.models import RANDOM_WEIGHTS, load_model

TARGETS = {"rise": 1.10, "deletion+insertion": 1.10, "lime": 1.20, "perturbation": 1.20}


def wall_time(function, device: torch.device) -> float:
    synchronise(device)
    started = time.perf_counter()
    function()
    synchronise(device)
    return time.perf_counter() - started


def paired_times(reference, method, device: torch.device, repeats: int) -> tuple[float, float]:
    """Best wall times of ``reference`` and ``method``, measured alternately ``repeats`` times.

    Alternating keeps slow drifts of a shared machine's speed out of the ratio.
    """
    best_reference = best_method = float("inf")
    for _ in range(repeats):
        best_reference = min(best_reference, wall_time(reference, device))
        best_method = min(best_method, wall_time(method, device))
    return best_reference, best_method


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
    """Peak of the process so far: GPU memory allocated on CUDA, else the largest resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_memory_mb(device)


def peak_during(function, device: torch.device) -> tuple[float, float]:
    """(memory before, peak memory while ``function`` runs): CUDA's peak counter, or RSS sampled every 5 ms."""
    before = current_memory_mb(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        function()
        return before, torch.cuda.max_memory_allocated(device) / 2**20
    peak = [before]
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], current_memory_mb(device))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        function()
    finally:
        running.clear()
        sampler.join()
    return before, max(peak[0], current_memory_mb(device))


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
        note = f"{precision} forward ms/image by batch size: " + ", ".join(
            f"{b}: {t * 1e3:.1f}" for b, t in timings.items()
        )
        args.batch_notes.append(f"{note}; best {batch}")
        print(f"[{precision}] {note}")
    else:
        batch = int(args.batch_size)
    print(f"[{precision}] batch size {batch}")
    image = model.transform(read_image(args.image))[None].to(device)
    with torch.inference_mode():
        target = int(model.scores(image).argmax())
    inputs = image.expand(max(batch, 1), -1, -1, -1).contiguous()
    forward_passes(model, 2 * batch, batch, inputs)  # warm-up
    rows: list[dict] = []

    def add(method: str, passes: str, reference_function, method_function) -> None:
        reference, spent = paired_times(reference_function, method_function, device, args.repeats)
        row = {
            "precision": precision,
            "method": method,
            "passes": passes,
            "batch": batch,
            "forward_s": reference,
            "method_s": spent,
            "ratio": spent / reference,
            "target": TARGETS.get(method),
            "peak_mb": peak_memory_mb(device),
        }
        rows.append(row)
        mark = "" if row["target"] is None else ("  ok" if row["ratio"] <= row["target"] else "  MISSED")
        print(
            f"[{precision}] {method:20s} {passes:28s} forward {reference:8.3f}s  method {spent:8.3f}s  "
            f"ratio {row['ratio']:.3f}{mark}",
            flush=True,
        )

    def explain(name: str, **params):
        explainer = create_explainer(name, **params)
        return lambda: explainer.explain(model, image, [target], batch_size=batch)

    n = args.masks
    add("rise", f"{n} forward", lambda: forward_passes(model, n, batch, inputs), explain("rise", num_masks=n))

    saliency = torch.rand(1, height, width, device=device, generator=None)
    step = args.step or width
    steps = -(-height * width // step)
    count = 2 * (steps + 1)

    def causal() -> None:
        deletion(model, image, saliency, [target], step=step, batch_size=batch)
        insertion(model, image, saliency, [target], step=step, batch_size=batch)

    add("deletion+insertion", f"2(n+1) = {count} forward", lambda: forward_passes(model, count, batch, inputs), causal)

    s = args.lime_samples
    add("lime", f"{s} forward", lambda: forward_passes(model, s, batch, inputs), explain("lime", num_samples=s))

    k = args.iterations
    add(
        "perturbation",
        f"{k} forward+backward",
        lambda: forward_backward_passes(model, k, image, target),
        explain("perturbation", iterations=k),
    )
    add("gradcam", "1 forward+backward", lambda: forward_backward_passes(model, 1, image, target), explain("gradcam"))
    add("gradient", "1 forward+backward", lambda: forward_backward_passes(model, 1, image, target), explain("gradient"))
    return rows


def memory_child(args) -> None:
    """Run RISE once with ``--memory-child N`` masks in this fresh process; print peak memory as JSON."""
    weights = None if args.pretrained else RANDOM_WEIGHTS
    precision = args.precision[0]
    model = load_model(args.model, weights, device=args.device, precision=precision)
    image = model.transform(read_image(args.image))[None].to(model.device)
    batch = int(args.batch_size) if args.batch_size != "auto" else 8
    create_explainer("rise", num_masks=2 * batch).explain(model, image, [0], batch_size=batch)  # warm-up
    explainer = create_explainer("rise", num_masks=args.memory_child)
    started = time.perf_counter()
    before, peak = peak_during(lambda: explainer.explain(model, image, [0], batch_size=batch), model.device)
    seconds = time.perf_counter() - started
    print(json.dumps({"masks": args.memory_child, "loaded_mb": before, "peak_mb": peak, "seconds": seconds}))


def memory_rows(args, batch: int) -> list[dict]:
    results = []
    for masks in (1000, 8000):
        command = [
            sys.executable,
            __file__,
            "--memory-child",
            str(masks),
            "--model",
            args.model,
            "--device",
            args.device,
            "--precision",
            args.precision[0],
            "--batch-size",
            str(batch),
            "--image",
            args.image,
        ]
        if args.pretrained:
            command.append("--pretrained")
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(output))
        print(
            f"[memory] RISE N={masks}: peak {results[-1]['peak_mb']:.0f} MB during the call "
            f"(before it, model loaded and warm: {results[-1]['loaded_mb']:.0f} MB), {results[-1]['seconds']:.1f}s",
            flush=True,
        )
    return results


def markdown(args, rows: list[dict], memory: list[dict], description: str) -> str:
    lines = [
        f"# Benchmark: {args.model} on {args.device}",
        "",
        f"Machine: {description}.",
        f"Command: `python scripts/bench.py {' '.join(sys.argv[1:])}`, {time.strftime('%Y-%m-%d')}.",
        f"Weights: {'pretrained' if args.pretrained else 'random'}; one {args.image} image; reference and method "
        f"timed alternately {args.repeats} times, best of each, after a warm-up forward.",
        "The forward column times the model's own passes over the same number of inputs at the same batch size.",
        *[f"- {note}" for note in args.batch_notes],
        "",
        "| precision | method | passes | batch | forward s | method s | ratio | target | process peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = (
            "" if r["target"] is None else f"<= {r['target']:.2f} {'met' if r['ratio'] <= r['target'] else 'MISSED'}"
        )
        lines.append(
            f"| {r['precision']} | {r['method']} | {r['passes']} | {r['batch']} | {r['forward_s']:.3f} "
            f"| {r['method_s']:.3f} | {r['ratio']:.3f} | {target} | {r['peak_mb']:.0f} |"
        )
    precisions = sorted({r["precision"] for r in rows})
    if "fp32" in precisions and "bf16" in precisions:
        lines += [
            "",
            "bf16 against fp32 (method time, both at their own best batch size):",
            "",
            "| method | fp32 s | bf16 s | speed-up |",
            "|---|---|---|---|",
        ]
        for method in ("rise", "deletion+insertion"):
            fp32 = next(r for r in rows if r["precision"] == "fp32" and r["method"] == method)
            bf16 = next(r for r in rows if r["precision"] == "bf16" and r["method"] == method)
            lines.append(
                f"| {method} | {fp32['method_s']:.3f} | {bf16['method_s']:.3f} "
                f"| {fp32['method_s'] / bf16['method_s']:.2f}x |"
            )
    if memory:
        low, high = memory
        growth = high["peak_mb"] / low["peak_mb"] - 1
        lines += [
            "",
            f"RISE peak memory ({args.precision[0]}, fresh process each): N=1000 {low['peak_mb']:.0f} MB, "
            f"N=8000 {high['peak_mb']:.0f} MB: {growth:+.1%} "
            f"(target within 10%: {'met' if abs(growth) <= 0.10 else 'MISSED'}). "
            f"Growth during the call, above the loaded and warm model: {low['peak_mb'] - low['loaded_mb']:.0f} MB "
            f"and {high['peak_mb'] - high['loaded_mb']:.0f} MB "
            f"({'GPU memory allocated' if args.device.startswith('cuda') else 'resident set sampled every 5 ms'}).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if "--peers" in sys.argv:  # rise-bench against the other libraries: bench_peers.py
        sys.argv.remove("--peers")
        import bench_peers

        bench_peers.main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument(
        "--pretrained", action="store_true", help="The library's pretrained weights instead of random ones."
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--batch-size", default="auto", help="An integer, or auto (the fastest plain forward).")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="Largest batch size auto tries (default 64 on CPU, 512 elsewhere)."
    )
    parser.add_argument("--masks", type=int, default=1000)
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument(
        "--step", type=int, default=None, help="Deletion/insertion pixels per step (default: the width, n = 224)."
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Alternating timings of the reference and the method; the best of each is kept.",
    )
    parser.add_argument("--image", default="sample:chelsea")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-memory", action="store_true", help="Skip the RISE N=8000 memory row.")
    parser.add_argument("--out", default=None, help="Write the table as Markdown here.")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.batch_notes = []
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
