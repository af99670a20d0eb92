"""Data sets yielding ``Sample`` records at original resolution (see ``base.py``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError, close_matches
from .base import Dataset, DatasetError, Sample
from .coco import COCODataset
from .folder import FolderDataset, SamplesDataset
from .imagenet import ImageNetDataset
from .voc import VOCDataset

DATASETS = {
    "imagenet": ImageNetDataset,
    "voc": VOCDataset,
    "coco": COCODataset,
    "folder": FolderDataset,
    "samples": SamplesDataset,
}

#: Default split per data set, where it has splits.
DEFAULT_SPLITS = {"voc": "test", "coco": "val2017"}


def open_dataset(
    name: str, root: str | Path | None = None, split: str | None = None, download: bool = False
) -> Dataset:
    """Open data set ``name`` at ``root``.

    Raises:
        UsageError: unknown name, or a missing root for a data set that needs one.
        DatasetError: the data are missing or malformed.
    """
    if name not in DATASETS:
        raise UsageError(f"unknown data set '{name}'{close_matches(name, DATASETS)}; choose from {', '.join(DATASETS)}")
    if name == "samples":
        return SamplesDataset()
    if root is None:
        raise UsageError(f"data set '{name}' needs --root PATH")
    split = split or DEFAULT_SPLITS.get(name)
    if name == "voc":
        return VOCDataset(root, split, download=download)
    if name == "coco":
        return COCODataset(root, split)
    return DATASETS[name](root)


__all__ = ["DATASETS", "Dataset", "DatasetError", "Sample", "open_dataset"]
