"""Unlabelled images: any folder of image files, or the photographs bundled with scikit-image.

Without labels the explained target is the model's top-1 class; the pointing game needs
annotations and is not available here.
"""

from __future__ import annotations

from pathlib import Path

from ..images import SAMPLE_IMAGES, read_image, sample_image_path
from .base import IMAGE_SUFFIXES, Dataset, DatasetError, Sample, require_dir


class FolderDataset(Dataset):
    """Every image file directly in ``root`` (sorted by name); no labels."""

    name = "folder"

    def __init__(self, root: str | Path) -> None:
        super().__init__()
        self.root = require_dir(Path(root), "image folder")
        self.paths = {p.name: p for p in sorted(self.root.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        self._ids = list(self.paths)
        if not self._ids:
            raise DatasetError(f"no image files in '{self.root}'")

    def load(self, sample_id: str) -> Sample:
        path = self.paths[sample_id]
        return Sample(id=sample_id, image=read_image(path), labels=[], meta={"file": str(path)})


class SamplesDataset(Dataset):
    """The colour photographs bundled with scikit-image: the embedded default, no download."""

    name = "samples"

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__()
        self._ids = [name for name in SAMPLE_IMAGES if name != "camera"]  # camera is grayscale

    def load(self, sample_id: str) -> Sample:
        path = sample_image_path(sample_id)
        return Sample(id=sample_id, image=read_image(path), labels=[], meta={"file": str(path)})
