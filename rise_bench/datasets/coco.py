"""MS-COCO images with the official instances json, read through pycocotools.

``ROOT`` holds ``<split>/`` (e.g. ``val2017/``) and ``annotations/instances_<split>.json``.
Each sample keeps, per category, the union of its instance masks and, apart, the union
of its crowd regions (``iscrowd``, run-length encoded). As in TorchRay's
``coco_as_mask`` and ``coco_as_class_ids``, a category's ground truth is both together and
a category present only as a crowd region is present (``Sample.ground_truth`` and
``pointing_labels`` take ``crowds=False`` to leave crowds out). The label space is COCO's
80 categories, in id order.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from ..images import read_image
from .base import Dataset, DatasetError, Sample, require_dir


class COCODataset(Dataset):
    """COCO instances; label space: the categories of the json, sorted by id."""

    name = "coco"
    label_space = "coco"
    localised = True

    def __init__(self, root: str | Path, split: str = "val2017", annotations: str | Path | None = None) -> None:
        super().__init__()
        from pycocotools.coco import COCO

        root = require_dir(Path(root), "COCO root")
        self.image_dir = require_dir(root / split, "COCO image folder")
        path = Path(annotations) if annotations else root / "annotations" / f"instances_{split}.json"
        if not path.is_file():
            raise DatasetError(f"COCO annotation file '{path}' does not exist")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                self.coco = COCO(str(path))
            categories = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda c: c["id"])
            images = sorted(self.coco.getImgIds())
        except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as exc:
            raise DatasetError(f"COCO annotation file '{path}' is malformed ({type(exc).__name__}: {exc})") from None
        self.category_ids = [c["id"] for c in categories]
        self.classes = [c["name"] for c in categories]
        self._ids = [str(i) for i in images]
        if not self._ids:
            raise DatasetError(f"COCO annotation file '{path}' lists no images")

    def load(self, sample_id: str) -> Sample:
        info = self.coco.loadImgs(int(sample_id))[0]
        image_path = self.image_dir / info["file_name"]
        image = read_image(image_path)
        column = {cat: i for i, cat in enumerate(self.category_ids)}
        masks: dict[int, np.ndarray] = {}
        crowds: dict[int, np.ndarray] = {}
        boxes = []
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=int(sample_id), iscrowd=None)):
            label = column[ann["category_id"]]
            try:
                mask = self.coco.annToMask(ann).astype(bool)
            except Exception as exc:  # noqa: BLE001 - malformed segmentations raise many types
                raise DatasetError(
                    f"COCO annotation {ann.get('id')} of image {sample_id} is malformed ({exc})"
                ) from None
            if mask.shape != (image.height, image.width):
                raise DatasetError(f"COCO image {sample_id}: mask size {mask.shape} differs from the image's")
            union = crowds if ann.get("iscrowd", 0) else masks
            union[label] = union[label] | mask if label in union else mask
            x, y, w, h = ann["bbox"]
            boxes.append((label, (x + 1, y + 1, x + w, y + h)))
        return Sample(
            id=sample_id,
            image=image,
            labels=sorted(set(masks) | set(crowds)),
            boxes=boxes,
            difficult=[False] * len(boxes),
            masks=masks,
            crowd_masks=crowds,
            meta={"file": str(image_path)},
        )
