"""The dataset contract: ``Sample`` records at original resolution, subsets, errors."""

from __future__ import annotations

import random
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DatasetError
from .annotations import boxes_mask, union_masks


@dataclass
class Sample:
    """One image with its annotations, at original resolution.

    Attributes:
        id: stable identifier (VOC id, COCO image id, file name...).
        image: the RGB image.
        labels: indices (into the dataset's ``classes``) of the classes present; for COCO
            every category with an annotation, crowd-only ones included (TorchRay's
            ``coco_as_class_ids``).
        boxes: ``(class index, (xmin, ymin, xmax, ymax))``, VOC convention (1-based, inclusive).
        difficult: one flag per box.
        masks: class index -> union of its non-crowd instance masks ``[H,W]`` (COCO).
        crowd_masks: class index -> union of its crowd regions ``[H,W]`` (COCO ``iscrowd``).
        unplayable: classes annotated in the image whose every box or mask was invalid
            (dropped with a warning): localisation metrics skip them, never score a miss.
        meta: anything else (file path, original label names...).
    """

    id: str
    image: Image.Image
    labels: list[int]
    boxes: list[tuple[int, tuple[float, float, float, float]]] = field(default_factory=list)
    difficult: list[bool] = field(default_factory=list)
    masks: dict[int, np.ndarray] | None = None
    crowd_masks: dict[int, np.ndarray] = field(default_factory=dict)
    unplayable: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return self.image.height, self.image.width

    def ground_truth(self, label: int, crowds: bool = True) -> np.ndarray:
        """``[H,W]`` bool mask of class ``label``.

        Boxes: the union of all its boxes, difficult ones included. Masks: the union of its
        instance masks and, unless ``crowds`` is False, of its crowd regions (TorchRay's
        ``coco_as_mask`` adds every annotation of the class).
        """
        if self.masks is not None:
            parts = [self.masks.get(label), self.crowd_masks.get(label) if crowds else None]
            return union_masks(parts, self.size)
        return boxes_mask([box for cls, box in self.boxes if cls == label], self.size)

    def pointing_labels(self, crowds: bool = True) -> list[int]:
        """Classes the pointing game asks about.

        Boxes: present and not annotated only as difficult. Masks: every class with an
        annotation, a class present only as a crowd region included unless ``crowds`` is False.
        """
        if self.masks is not None:
            return sorted(set(self.masks) | (set(self.crowd_masks) if crowds else set()))
        keep = {cls for (cls, _), hard in zip(self.boxes, self.difficult, strict=True) if not hard}
        return sorted(keep)


def warn_user(message: str) -> None:
    """The default report of a skipped annotation: a Python warning."""
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class Dataset(ABC):
    """A sequence of samples in a fixed order; ``classes`` names the label space."""

    name: str = ""
    classes: list[str] = []
    #: The label space's name, e.g. ``imagenet``, ``voc``, ``coco`` (None: no labels).
    label_space: str | None = None
    #: Whether samples carry boxes or masks (what localisation metrics need).
    localised: bool = False

    def __init__(self) -> None:
        self._ids: list[str] = []
        #: Where a skipped annotation is reported (one line each); the runner sets its log.
        self.warn: Callable[[str], None] = warn_user

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Sample]:
        for sample_id in self._ids:
            yield self.load(sample_id)

    @abstractmethod
    def load(self, sample_id: str) -> Sample:
        """Read one sample.

        Raises:
            DatasetError or ImageError: its image or annotation is missing or malformed.
        """

    def subset(
        self,
        limit: int | None = None,
        ids: Sequence[str] | Path | None = None,
        sample: int | None = None,
        seed: int = 0,
    ) -> Dataset:
        """Restrict to ``ids`` (a list or a file of one id per line), then a seeded random
        ``sample`` of them (kept in dataset order), then the first ``limit``.

        Raises:
            DatasetError: an id is unknown, or nothing is left.
        """
        chosen = self._ids
        if ids is not None:
            wanted = _read_ids(ids) if isinstance(ids, (str, Path)) else [str(i) for i in ids]
            known = set(chosen)
            missing = [i for i in wanted if i not in known]
            if missing:
                raise DatasetError(f"{len(missing)} id(s) not in data set '{self.name}': {', '.join(missing[:5])}")
            chosen = wanted
        if sample is not None and sample < len(chosen):
            picked = set(random.Random(seed).sample(range(len(chosen)), sample))
            chosen = [c for i, c in enumerate(chosen) if i in picked]
        if limit is not None:
            chosen = chosen[:limit]
        if not chosen:
            raise DatasetError(f"data set '{self.name}' has no samples left after subsetting")
        self._ids = list(chosen)
        return self


def _read_ids(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"ids file '{path}' does not exist")
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a DatasetError naming ``what``."""
    if not path.is_dir():
        raise DatasetError(f"{what} '{path}' does not exist or is not a folder")
    return path
