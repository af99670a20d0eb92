"""Scoring backends: the model's gradient-free forward passes on OpenVINO or ONNX Runtime.

Every black-box method (RISE, LIME, Sobol, HSIC) and every causal metric (deletion,
insertion, ROAD) is a stream of forward passes that need scores and nothing else. Those
passes can run on an inference engine several times faster than eager PyTorch on a CPU,
while everything that differentiates (gradient methods, Grad-CAM, meaningful and
extremal perturbation, the Captum and pytorch-grad-cam adapters) stays on PyTorch.

- ``export_onnx`` exports a network once with ``torch.onnx.export`` (dynamic batch) into
  ``~/.cache/rise-bench/onnx`` (``RISE_BENCH_CACHE`` moves it), keyed by model name,
  a hash of the weights, input size and exporter version, written atomically.
- ``OpenVinoScorer`` and ``OnnxRuntimeScorer`` compile such a file for the run's device
  and precision and map a ``[B,3,H,W]`` tensor to float32 logits, like the network.
- ``attach_backend`` gives a classifier its scorer (``auto``: OpenVINO, then ONNX
  Runtime, then torch on CPUs; torch on CUDA and MPS), checks it against torch on two
  images, and falls back to torch with one line when the model cannot be exported.
- ``resolve_precision`` decides what ``--precision`` means here: bf16 only where the CPU
  has bf16 units (AVX-512-BF16 or AMX); elsewhere it would be emulated, 10x slower.

The classifier sends a pass to its scorer only inside ``Classifier.scores_only()``: the
code that knows it needs no gradients and no hooks says so (``masking.masked_scores``,
LIME's sampling, the causal curves, ROAD).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import UsageError
from .files import atomic_file, cache_dir, short_hash

TORCH = "torch"
OPENVINO = "openvino"
ONNXRUNTIME = "onnxruntime"
AUTO = "auto"
#: Engines for the gradient-free passes, and what ``auto`` tries on a CPU, in order.
BACKENDS = (TORCH, OPENVINO, ONNXRUNTIME)
AUTO_ORDER_CPU = (OPENVINO, ONNXRUNTIME, TORCH)
#: ``--backend`` when none is given: ``auto``, or this environment variable (the tests pin ``torch``).
BACKEND_ENV = "RISE_BENCH_BACKEND"
#: How to install each engine.
INSTALL = {OPENVINO: "pip install openvino", ONNXRUNTIME: 'pip install "rise-bench[fast]"'}
PRECISION_CHOICES = ("fp32", "bf16", "auto")
#: Largest |logit difference| from torch, relative to the largest |logit|, that an fp32 export may show.
EXPORT_TOLERANCE = 1e-3


class ExportError(Exception):
    """The network could not be exported to ONNX (the run goes on with torch)."""


def default_backend() -> str:
    return os.environ.get(BACKEND_ENV, "").strip().lower() or AUTO


def check_backend(name: str) -> str:
    name = (name or AUTO).strip().lower()
    if name != AUTO and name not in BACKENDS:
        raise UsageError(f"unknown backend '{name}'; use {', '.join((AUTO, *BACKENDS))}")
    return name


def installed(backend: str) -> bool:
    import importlib.util

    return backend == TORCH or importlib.util.find_spec(backend) is not None


def require(backend: str) -> None:
    if not installed(backend):
        raise UsageError(f"backend '{backend}' is not installed: {INSTALL[backend]}")


# -- precision ------------------------------------------------------------------------
def cpuinfo_field(name: str) -> str | None:
    """The first ``name`` line of ``/proc/cpuinfo`` (None where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    return set((cpuinfo_field("flags") or "").split())


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX-512-BF16 or AMX); elsewhere bf16 is emulated."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Precision:
    """What ``--precision`` resolved to: PyTorch's passes and the backend's, and why, if it differs."""

    torch: str
    backend: str
    note: str = ""


def resolve_precision(requested: str, device: torch.device, backend: str) -> Precision:
    """``fp32``, ``bf16`` or ``auto`` on ``device`` with ``backend`` (already resolved, not ``auto``).

    bf16 runs where it is fast: on CPUs with bf16 units (PyTorch's autocast, OpenVINO's
    bf16 inference; ONNX Runtime has no bf16 CPU kernels and stays fp32), and as autocast
    on GPUs. ``auto`` picks bf16 only where it is measured both fast and within 0.01 AUC
    of fp32: OpenVINO's passes on a CPU with bf16 units (PyTorch's stay fp32).
    """
    requested = (requested or "fp32").strip().lower()
    if requested not in PRECISION_CHOICES:
        raise UsageError(f"unknown precision '{requested}'; use {', '.join(PRECISION_CHOICES)}")
    native = device.type != "cpu" or cpu_has_bf16()
    if requested == "auto":
        fast = device.type == "cpu" and backend == OPENVINO and cpu_has_bf16()
        return Precision("fp32", "bf16" if fast else "fp32")
    if requested == "fp32":
        return Precision("fp32", "fp32")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return Precision("fp32", "fp32", "this GPU has no bf16 support; running fp32")
    if not native:
        return Precision(
            "fp32",
            "fp32",
            "this CPU has no bf16 units (AVX-512-BF16 or AMX), where bf16 is emulated and about 10x slower; "
            "running fp32",
        )
    if backend == ONNXRUNTIME:
        return Precision("bf16", "fp32", "onnxruntime has no bf16 inference here; its passes run fp32")
    return Precision("bf16", "bf16")


# -- export ---------------------------------------------------------------------------
def weights_digest(net: nn.Module) -> str:
    """SHA-256 of a network's parameters and buffers (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def exporter_version() -> str:
    return f"torch-{torch.__version__}-onnx-export"


def export_path(name: str, net: nn.Module, input_size: tuple[int, int]) -> Path:
    """Where ``export_onnx`` keeps ``net``'s export: one file per (name, weights, input size, exporter)."""
    key = short_hash([name, weights_digest(net), list(input_size), exporter_version()], 16)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"
    return cache_dir() / "onnx" / f"{stem}-{input_size[0]}x{input_size[1]}-{key}.onnx"


def export_onnx(net: nn.Module, name: str, input_size: tuple[int, int], log: Callable[[str], None] | None = None):
    """``net`` as an ONNX file with a dynamic batch, from the cache or exported now (a second or two).

    Raises:
        ExportError: ``torch.onnx.export`` failed on this network.
    """
    path = export_path(name, net, input_size)
    if path.is_file():
        return path
    if log is not None:
        log(f"exporting {name} to ONNX for the fast backend (once; cached in {path.parent})")
    device = next(iter(net.parameters()), torch.zeros(())).device
    example = torch.zeros(2, 3, *input_size, device=device)
    try:
        with atomic_file(path, "wb") as stream, warnings.catch_warnings(), quiet_output():
            warnings.simplefilter("ignore")
            _export(net, example, stream)
    except Exception as exc:  # noqa: BLE001 - the exporters raise many types; any of them means "not exportable"
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        raise ExportError(lines[0][:160]) from None
    return path


@contextlib.contextmanager
def quiet_output():
    """Silence what the exporters print (progress lines, a dump of the graph on failure), Python's and C++'s."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [(descriptor, os.dup(descriptor)) for descriptor in (1, 2)]
    except OSError:  # no file descriptors to redirect (an embedded interpreter): only Python's streams
        saved = []
    sink = open(os.devnull, "w")
    try:
        for descriptor, _ in saved:
            os.dup2(sink.fileno(), descriptor)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for descriptor, copy in saved:
            os.dup2(copy, descriptor)
            os.close(copy)
        sink.close()


def _export(net: nn.Module, example: torch.Tensor, stream) -> None:
    """The TorchScript-based exporter first (a second for most classifiers), then the dynamo one."""
    common = {"input_names": ["input"], "output_names": ["logits"], "do_constant_folding": True}
    with torch.no_grad():
        try:
            torch.onnx.export(
                net,
                (example,),
                stream,
                dynamo=False,
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                **common,
            )
            return
        except TypeError:  # a torch without the TorchScript exporter
            pass
        stream.seek(0)
        stream.truncate()
        batch = torch.export.Dim("batch", min=1, max=65536)
        program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes=({0: batch},), **common)
        program.save(stream.name)


# -- scorers --------------------------------------------------------------------------
def _as_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


class Scorer:
    """A compiled ONNX network: ``scorer(x [B,3,H,W]) -> float32 logits [B,K]`` on ``x``'s device.

    ``fixed_batch`` is the batch size a file was exported with when it is not dynamic:
    batches are then cut (and the last one padded) to that size.
    """

    name = ""

    def __init__(self, precision: str, fixed_batch: int | None = None) -> None:
        self.precision = precision
        self.fixed_batch = fixed_batch

    def describe(self) -> str:
        return self.name + (" bf16" if self.precision == "bf16" else "")

    def _run(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = _as_numpy(x)
        if self.fixed_batch is None or len(array) == self.fixed_batch:
            out = self._run(array)
        else:
            pieces = []
            for start in range(0, len(array), self.fixed_batch):
                piece = array[start : start + self.fixed_batch]
                missing = self.fixed_batch - len(piece)
                if missing:
                    piece = np.concatenate([piece, np.repeat(piece[-1:], missing, axis=0)])
                pieces.append(self._run(piece)[: self.fixed_batch - missing])
            out = np.concatenate(pieces)
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True)).reshape(len(array), -1).to(x.device)


class OpenVinoScorer(Scorer):
    """OpenVINO's CPU plugin, fp32 (``INFERENCE_PRECISION_HINT`` f32: on CPUs with bf16 units its default is
    bf16) or bf16.

    Compiled for throughput: OpenVINO picks a number of streams for the cores, and each
    batch is split among that many asynchronous requests (on 2 cores, 2 streams scored
    lite0 15-20% faster than one stream with 2 threads).
    """

    name = OPENVINO

    def __init__(self, path: Path, precision: str, fixed_batch: int | None = None) -> None:
        super().__init__(precision, fixed_batch)
        import openvino

        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        }
        self.compiled = openvino.Core().compile_model(str(path), "CPU", config)
        self.streams = 1 if fixed_batch else max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.queue = openvino.AsyncInferQueue(self.compiled, self.streams)
        self.queue.set_callback(self._collect)
        self.results: dict[int, np.ndarray] = {}

    def _collect(self, request, index: int) -> None:
        self.results[index] = request.get_output_tensor(0).data.copy()

    def _run(self, array: np.ndarray) -> np.ndarray:
        parts = np.array_split(array, min(self.streams, len(array)))
        self.results = {}
        for index, part in enumerate(parts):
            self.queue.start_async({0: part}, index)
        self.queue.wait_all()
        return np.concatenate([self.results[index] for index in range(len(parts))])


class OnnxRuntimeScorer(Scorer):
    """ONNX Runtime's CPU execution provider (CUDA's when the run is on a GPU and onnxruntime-gpu is installed)."""

    name = ONNXRUNTIME

    def __init__(self, path: Path, device: torch.device, fixed_batch: int | None = None) -> None:
        super().__init__("fp32", fixed_batch)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise UsageError("onnxruntime here has no CUDA provider: pip install onnxruntime-gpu, or --device cpu")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.input = self.session.get_inputs()[0].name

    def _run(self, array: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: array})[0]


def make_scorer(backend: str, path: Path, device: torch.device, precision: str, fixed_batch: int | None = None):
    """A ``Scorer`` of ``backend`` for the ONNX file ``path``."""
    require(backend)
    if backend == OPENVINO:
        if device.type != "cpu":
            raise UsageError(f"backend openvino runs on the CPU here, not on {device}; use --backend torch")
        return OpenVinoScorer(path, precision, fixed_batch)
    if backend == ONNXRUNTIME:
        return OnnxRuntimeScorer(path, device, fixed_batch)
    raise UsageError(f"backend '{backend}' cannot run an ONNX file")


def candidates(requested: str, device: torch.device, onnx_file: bool = False) -> tuple[str, ...]:
    """Backends to try for ``requested`` on ``device``: ``auto`` is OpenVINO, ONNX Runtime, torch on CPUs and
    torch on CUDA and MPS (a fixed order, not a timing at run time).

    For an ``onnx_file`` (which torch cannot run), ``auto`` is OpenVINO then ONNX Runtime
    on CPUs and ONNX Runtime elsewhere, and ``torch`` is an error.
    """
    requested = check_backend(requested)
    if onnx_file and requested == TORCH:
        raise UsageError("an ONNX model runs on openvino or onnxruntime, not torch: use --backend auto")
    if requested != AUTO:
        require(requested)
        return (requested,)
    if onnx_file:
        order = AUTO_ORDER_CPU if device.type == "cpu" else (ONNXRUNTIME,)
        return tuple(b for b in order if b != TORCH and installed(b))
    if device.type != "cpu":
        return (TORCH,)
    return tuple(b for b in AUTO_ORDER_CPU if installed(b))


def agreement(scorer: Scorer, net: nn.Module, input_size: tuple[int, int], device: torch.device) -> float:
    """Largest |logit difference| between ``scorer`` and ``net`` on two fixed random images, relative to the
    largest |logit|."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, *input_size, generator=generator).to(device)
    with torch.inference_mode():
        expected = net(images).float()
        got = scorer(images)
    scale = float(expected.abs().max().clamp_min(1.0))
    return float((got - expected).abs().max()) / scale


def attach_backend(
    net: nn.Module,
    name: str,
    input_size: tuple[int, int],
    device: torch.device,
    requested: str,
    precision: str,
    log: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Scorer | None, Precision]:
    """The scorer for ``net``'s gradient-free passes (None for torch) and the precisions the run uses.

    Tries ``candidates(requested, device)`` in order. A network that cannot be exported,
    or whose export disagrees with torch, gets one line (to ``log``) and torch; it never
    fails the run. ``progress`` hears that an export is being made.

    Raises:
        UsageError: an explicitly named backend is not installed or cannot run on ``device``;
            an unknown precision.
    """
    say = log or (lambda line: None)
    for backend in candidates(requested, device):
        if backend == TORCH:
            break
        try:
            path = export_onnx(net, name, input_size, progress)
        except ExportError as exc:
            say(f"cannot export {name} to ONNX ({exc}); scoring with torch")
            break
        checked = make_scorer(backend, path, device, "fp32")
        error = agreement(checked, net, input_size, device)
        if error > EXPORT_TOLERANCE:
            say(f"the ONNX export of {name} disagrees with torch on {backend} ({error:.1e}); scoring with torch")
            break
        chosen = resolve_precision(precision, device, backend)
        scorer = checked if chosen.backend == "fp32" else make_scorer(backend, path, device, chosen.backend)
        return scorer, chosen
    return None, resolve_precision(precision, device, TORCH)
