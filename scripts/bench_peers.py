"""rise-bench against every peer that does the same job, side by side in one run (issue 14).

``python scripts/bench.py --peers`` runs this (or ``python scripts/bench_peers.py``). On one
model, the same images, maps and settings, each job is timed for every peer and for
rise-bench on torch fp32, on its fastest fp32 backend and, where the CPU has bf16 units,
in bf16. Every side of a job runs once per repeat, in turn, and keeps its best time (a
shared machine drifts), so the ratios come from one run:

- RISE, N masks on one image: the RISE authors' ``RISE`` (a separate checkout given by
  ``--reference-rise PATH``, never copied here; its masks are made before the clock
  starts, ours inside it) against ``rise``;
- deletion + insertion at the RISE step (224 pixels) on ``--images`` images: the
  authors' ``CausalMetric.evaluate`` (both games) against ``deletion`` + ``insertion``;
  Quantus's ``PixelFlipping`` (deletion only) against ``deletion``;
- LIME, 1000 samples, SLIC 50 segments: ``lime_image`` against ``lime``;
- ROAD MoRF + LeRF over 9 fractions: pytorch-grad-cam's ROAD averages against ``road``.

The peers get the same eager PyTorch network (channels-last, as ours) with a softmax and
the run's batch size where they take one. A peer that is not installed, or the authors'
code without ``--reference-rise``, leaves its rows out and says so.

Goals on a CPU, fp32: at least 2x faster than every peer; bf16 with bf16 units: 4x.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rise_bench import backends
from rise_bench.evaluation.provenance import cpu_flags
from rise_bench.explainers import create_explainer
from rise_bench.images import read_image
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion
from rise_bench.metrics.road import road
from rise_bench.models import load_model

DATA = Path("../shared/data/imagenet-sample")
MARK_BEGIN, MARK_END = "<!-- peers: scripts/bench.py --peers -->", "<!-- /peers -->"


def interleaved(functions: dict[str, object], repeats: int) -> dict[str, float]:
    """Best wall time of each function over ``repeats`` rounds that call every function once, in turn."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


@contextlib.contextmanager
def silenced():
    """The peers' progress bars and prints (tqdm writes to stderr) kept out of the benchmark's output."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def cpu_only_cuda_calls(device: torch.device):
    """The RISE authors' code calls ``.cuda()`` everywhere; on a CPU run those calls return the tensor."""
    saved = torch.Tensor.cuda
    if device.type == "cpu":
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def reference_modules(path: Path | None):
    """The RISE authors' ``explanations`` and ``evaluation`` modules from a checkout, or None."""
    if path is None:
        return None
    sys.path.insert(0, str(path))
    try:
        import scipy.ndimage

        sys.modules.setdefault("scipy.ndimage.filters", scipy.ndimage)  # the 2018 import path, gone from SciPy
        return importlib.import_module("explanations"), importlib.import_module("evaluation")
    finally:
        sys.path.remove(str(path))


def optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def run(args) -> str:
    torch.manual_seed(0)
    device = torch.device(args.device)
    ours = {"torch fp32": load_model(args.model, device=device, backend="torch")}
    fastest = load_model(args.model, device=device, backend="auto")
    fp32_key = f"{fastest.backend} fp32"
    ours[fp32_key] = fastest  # on GPUs auto is torch: the same column
    bf16 = backends.cpu_has_bf16() if device.type == "cpu" else torch.cuda.is_bf16_supported()
    bf16_key = None
    if bf16:
        model = load_model(args.model, device=device, backend="auto", precision="bf16")
        bf16_key = model.backend if " bf16" in model.backend else f"{model.backend} bf16"
        ours[bf16_key] = model
    torch_model = ours["torch fp32"]

    def on_each(job):
        """``job(model)`` bound to each of our models: one timed side per column."""
        return {name: functools.partial(job, model) for name, model in ours.items()}

    softmax_net = nn.Sequential(torch_model.net, nn.Softmax(dim=1)).eval()
    files = sorted(DATA.glob("*.JPEG"))[: args.images]
    images = torch.stack([torch_model.transform(read_image(f)) for f in files]).to(device)
    with torch.inference_mode():
        targets = torch_model.scores(images).argmax(1)
    maps = create_explainer("gradcam").explain(torch_model, images, targets)
    batch = args.batch_size
    jobs: list[tuple[str, dict[str, object], dict[str, object]]] = []  # (job, peers, ours)
    missing: list[str] = []
    size = torch_model.input_size

    # RISE
    rise = create_explainer("rise", num_masks=args.masks)
    reference = reference_modules(args.reference_rise)
    peers = {}
    if reference is not None:
        explanations, evaluation = reference
        with cpu_only_cuda_calls(device), silenced():
            authors = explanations.RISE(softmax_net, size, gpu_batch=batch)
            np.random.seed(0)
            with tempfile.TemporaryDirectory() as folder:
                authors.generate_masks(args.masks, rise.params.grid_size, rise.params.keep_prob, f"{folder}/m.npy")

        def authors_rise():
            with torch.no_grad(), cpu_only_cuda_calls(device):
                authors(images[:1])

        peers["RISE authors' RISE"] = authors_rise
    else:
        missing.append("the RISE authors' code (pass --reference-rise PATH to a checkout of eclique/RISE)")
    jobs.append(
        (
            f"RISE, {args.masks} masks, 1 image",
            peers,
            on_each(lambda m: rise.explain(m, images[:1], targets[:1], batch_size=batch)),
        )
    )

    # deletion + insertion, and deletion alone, at the RISE step
    step = size[1]
    peers = {}
    if reference is not None:
        blur = evaluation.gkern(11, 5).to(device)

        def authors_causal():
            with torch.no_grad(), cpu_only_cuda_calls(device), silenced():
                for mode, substrate in (
                    ("del", torch.zeros_like),
                    ("ins", lambda x: nn.functional.conv2d(x, blur, padding=5)),
                ):
                    metric = evaluation.CausalMetric(softmax_net, mode, step, substrate)
                    metric.evaluate(images.cpu().clone(), maps.cpu().numpy(), len(images))

        peers["RISE authors' CausalMetric"] = authors_causal

    def causal(model):
        deletion(model, images, maps, targets, step=step, batch_size=batch)
        insertion(model, images, maps, targets, step=step, batch_size=batch)

    jobs.append(
        (
            f"deletion + insertion, step {step}, {len(images)} images",
            peers,
            on_each(causal),
        )
    )
    quantus = optional("quantus")
    if quantus is not None:
        flipping = quantus.PixelFlipping(
            features_in_step=step, perturb_baseline="black", disable_warnings=True, display_progressbar=False
        )

        def quantus_deletion():
            with torch.no_grad():
                flipping(
                    model=softmax_net[0], x_batch=images.cpu().numpy(), y_batch=targets.cpu().numpy(),
                    a_batch=maps[:, None].cpu().numpy(), device=str(device), softmax=True, channel_first=True,
                    batch_size=batch,
                )  # fmt: skip

        jobs.append(
            (
                f"deletion alone, step {step}, {len(images)} images",
                {"Quantus PixelFlipping": quantus_deletion},
                on_each(lambda m: deletion(m, images, maps, targets, step=step, batch_size=batch)),
            )
        )
    else:
        missing.append("Quantus (pip install quantus)")

    # LIME
    lime_ours = create_explainer("lime", num_samples=args.lime_samples)
    lime_image = optional("lime.lime_image")
    peers = {}
    if lime_image is not None:
        from lime.wrappers.scikit_image import SegmentationAlgorithm

        picture = torch_model.denormalise(images[0]).permute(1, 2, 0).clamp(0, 1).double().cpu().numpy()
        segmenter = SegmentationAlgorithm(
            "slic", n_segments=lime_ours.params.num_segments, compactness=lime_ours.params.compactness, start_label=0
        )

        def classify(batch_images: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(batch_images).float().permute(0, 3, 1, 2).to(device)
            with torch.inference_mode():
                return softmax_net(torch_model.normalise(x)).cpu().numpy()

        def lime_theirs():
            with silenced():
                lime_image.LimeImageExplainer(random_state=0).explain_instance(
                    picture, classify, labels=(int(targets[0]),), top_labels=None, num_samples=args.lime_samples,
                    batch_size=batch, segmentation_fn=segmenter,
                )  # fmt: skip

        peers["lime_image"] = lime_theirs
    else:
        missing.append("lime (pip install lime)")
    jobs.append(
        (
            f"LIME, {args.lime_samples} samples, 1 image",
            peers,
            on_each(lambda m: lime_ours.explain(m, images[:1], targets[:1], batch_size=batch)),
        )
    )

    # ROAD
    road_module = optional("pytorch_grad_cam.metrics.road")
    if road_module is not None:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

        def road_theirs():
            cams = maps.cpu().numpy()
            for index in range(len(images)):
                one, cam = images[index : index + 1], cams[index : index + 1]
                wanted = [ClassifierOutputSoftmaxTarget(int(targets[index]))]
                road_module.ROADLeastRelevantFirstAverage()(one, cam, wanted, torch_model.net)
                road_module.ROADMostRelevantFirstAverage()(one, cam, wanted, torch_model.net)

        jobs.append(
            (
                f"ROAD MoRF + LeRF, 9 fractions, {len(images)} images",
                {"pytorch-grad-cam ROAD": road_theirs},
                on_each(lambda m: road(m, images, maps, targets, batch_size=batch)),
            )
        )
    else:
        missing.append("pytorch-grad-cam (pip install grad-cam)")

    rows = []
    for job, peer_functions, our_functions in jobs:
        print(f"timing {job} ...", file=sys.stderr)
        times = interleaved({**peer_functions, **our_functions}, args.repeats)
        rows.append((job, {k: times[k] for k in peer_functions}, {k: times[k] for k in our_functions}))
    return markdown(args, rows, list(ours), missing, fp32_key, bf16_key)


def markdown(args, rows, our_columns: list[str], missing: list[str], fast32: str, bf16: str | None) -> str:
    from bench import machine_description

    lines = [
        MARK_BEGIN,
        "## rise-bench against its peers, side by side",
        "",
        f"`python scripts/bench.py --peers --reference-rise PATH --model {args.model} --images {args.images} "
        f"--masks {args.masks} --repeats {args.repeats}`: {time.strftime('%Y-%m-%d')}, "
        f"{machine_description(torch.device(args.device))}, CPU flags: {cpu_flags()}. "
        f"{args.model} with real weights, images from `{DATA}`, Grad-CAM maps, batch size {args.batch_size}, best of "
        f"{args.repeats} interleaved rounds. Seconds per job; a ratio is the peer's time over ours.",
        "",
        "| job | peer | peer s | "
        + " | ".join(f"ours {c} s" for c in our_columns)
        + " | "
        + " | ".join(f"speed-up, {c}" for c in our_columns[1:])
        + " |",
        "|---|---|---|" + "---|" * (2 * len(our_columns) - 1),
    ]
    for job, peers, ours in rows:
        for peer, seconds in (peers or {"(no peer)": float("nan")}).items():
            cells = [f"{ours[c]:.2f}" for c in our_columns]
            ratios = [f"**{seconds / ours[c]:.1f}x**" if seconds == seconds else "" for c in our_columns[1:]]
            lines.append(f"| {job} | {peer} | {seconds:.2f} | " + " | ".join(cells + ratios) + " |")
    goals = [f"fp32 ({fast32}): at least 2x faster than every peer"]
    if bf16:
        goals.append(f"bf16 ({bf16}): at least 4x")
    met = []
    for _, peers, ours in rows:
        for seconds in peers.values():
            met.append(seconds / ours[fast32] >= 2)
            if bf16:
                met.append(seconds / ours[bf16] >= 4)
    lines += ["", f"Goals: {'; '.join(goals)}: {sum(met)} of {len(met)} comparisons meet theirs."]
    if not bf16:
        lines.append("No bf16 units here (AVX-512-BF16 or AMX on CPUs): no bf16 column.")
    if missing:
        lines.append("Left out: " + "; ".join(missing) + ".")
    lines.append(MARK_END)
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Put ``section`` into ``path`` between its markers, replacing an older one, or after the title."""
    text = path.read_text() if path.is_file() else "# Benchmark\n"
    if MARK_BEGIN in text and MARK_END in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + section + rest.split(MARK_END, 1)[1]
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{section}\n{body}"
    path.write_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference-rise", type=Path, default=None, help="A checkout of github.com/eclique/RISE.")
    parser.add_argument("--images", type=int, default=2, help="Images for the metrics (peers batch over images).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU row (peers on the GPU too).")
    parser.add_argument("--masks", type=int, default=1000)
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    add_arguments(parser)
    args = parser.parse_args()
    section = run(args)
    print(section)
    if args.out:
        write_section(args.out, section)


if __name__ == "__main__":
    main()
