"""The maps and curves a run leaves on disk: one owner for writing and reading them.

- ``OUT/maps/<method>/<sample>.npy``: float32 ``[T,H,W]`` at the model's input
  resolution, with ``<sample>.json`` naming the T targets (``{"targets": [...],
  "sample_id": ..., "image": ...}``). This is also the layout ``--maps`` reads, where
  ``[H,W]`` files (one map for every target) work too.
- ``OUT/curves/<method>/<sample>.npz``: one array per metric that has a curve.

``<sample>`` is the sample id made safe for a file name (``files.safe_name``), and
``<method>`` the method's name with ``:`` written as ``-`` (``files.method_stem``:
``maps/captum-IntegratedGradients/``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import RiseBenchError
from ..files import atomic_file, method_stem, safe_name, save_array_atomic, write_atomic

MAPS = "maps"
CURVES = "curves"


def save_maps(
    out: Path, method: str, sample_id: str, saliency: torch.Tensor, names: Sequence[str], image: str = ""
) -> None:
    """Write a method's ``[T,H,W]`` maps of one sample and the sidecar naming the targets."""
    folder = out / MAPS / method_stem(method)
    stem = safe_name(sample_id)
    save_array_atomic(folder / f"{stem}.npy", saliency.detach().cpu().numpy().astype(np.float32))
    write_atomic(folder / f"{stem}.json", json.dumps({"targets": list(names), "sample_id": sample_id, "image": image}))


def load_maps(root: Path, method: str, sample_id: str, names: Sequence[str], size: tuple[int, int]) -> torch.Tensor:
    """Maps of ``names`` from ``root/<method>/<sample>.npy``, resized to ``size`` -> ``[T,H,W]``.

    The file holds ``[H,W]`` (one map for every target) or ``[T,H,W]``; a sidecar
    ``<sample>.json`` with ``{"targets": [...]}`` picks slices by name, otherwise the
    slices are taken in order. Values are not checked: a map holding NaN or inf is
    flagged ``invalid`` by the runner, like a method's.

    Raises:
        RiseBenchError: the file is missing, unreadable or has the wrong shape.
    """
    path = root / method_stem(method) / f"{safe_name(sample_id)}.npy"
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
        stored = read_sidecar(sidecar).get("targets", [])
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


def read_sidecar(path: Path) -> dict:
    """A map's sidecar, or {} when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def curves_path(out: Path, method: str, sample_id: str) -> Path:
    """Where one sample's curves of a method are kept (``out/curves/<method>/<sample>.npz``)."""
    return out / CURVES / method_stem(method) / f"{safe_name(sample_id)}.npz"


def save_curves(out: Path, method: str, sample_id: str, curves: dict[str, np.ndarray]) -> None:
    """Write one sample's curves of a method (one array per metric)."""
    with atomic_file(curves_path(out, method, sample_id), "wb") as stream:
        np.savez(stream, **curves)


def read_curves(run: Path, method: str) -> dict[str, list[np.ndarray]]:
    """metric -> the curves of every sample of one method of a run (its ``curves/<method>/`` folder)."""
    found: dict[str, list[np.ndarray]] = {}
    folder = run / CURVES / method_stem(method)
    for file in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        with np.load(file) as data:
            for metric in data.files:
                found.setdefault(metric, []).append(data[metric])
    return found


def map_files(run: Path, method: str) -> dict[str, Path]:
    """sample file stem -> the maps file of one method of a run (its ``maps/<method>/`` folder)."""
    folder = run / MAPS / method_stem(method)
    return {file.stem: file for file in sorted(folder.glob("*.npy"))} if folder.is_dir() else {}
