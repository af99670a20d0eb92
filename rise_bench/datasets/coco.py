"""MS-COCO images with the official instances json, read through pycocotools.

``ROOT`` holds ``<split>/`` (e.g. ``val2017/``) and ``annotations/instances_<split>.json``.
Each sample keeps, per category, the union of its instance masks and, apart, the union
of its crowd regions (``iscrowd``, run-length encoded). As in TorchRay's
``coco_as_mask`` and ``coco_as_class_ids``, a category's ground truth is both together and
a category present only as a crowd region is present (``Sample.ground_truth`` and
``pointing_labels`` take ``crowds=False`` to leave crowds out). The label space is COCO's
80 categories, in id order. A bad annotation is skipped with a warning line (see ``load``).
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
        self.annotation_file = path
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
        """The image with, per category, the union of its instance masks and of its crowd regions.

        A bad annotation (a category not among the json's, a malformed bbox or
        segmentation, a mask of another size or an empty one) is skipped with one ``warn``
        line naming the file and the annotation id; a category left without a valid
        annotation is not asked about (``Sample.unplayable``).

        Raises:
            DatasetError: the image has annotations and none of them is valid.
        """
        info = self.coco.loadImgs(int(sample_id))[0]
        image_path = self.image_dir / info["file_name"]
        image = read_image(image_path)
        column = {cat: i for i, cat in enumerate(self.category_ids)}
        masks: dict[int, np.ndarray] = {}
        crowds: dict[int, np.ndarray] = {}
        boxes, dropped = [], set()
        annotations = self.coco.loadAnns(self.coco.getAnnIds(imgIds=int(sample_id), iscrowd=None))
        for ann in annotations:
            label = column.get(ann.get("category_id"))
            mask, problem = self._mask(ann, (image.height, image.width)) if label is not None else (None, "")
            if label is None:
                problem = f"category_id {ann.get('category_id')!r} is not among the json's categories"
            if mask is None:
                self.warn(
                    f"{self.annotation_file}: annotation {ann.get('id')} of image {sample_id}: {problem}; skipped"
                )
                if label is not None:
                    dropped.add(label)
                continue
            union = crowds if ann.get("iscrowd", 0) else masks
            union[label] = union[label] | mask if label in union else mask
            x, y, w, h = ann["bbox"]
            boxes.append((label, (x + 1, y + 1, x + w, y + h)))
        if annotations and not boxes:
            raise DatasetError(
                f"{self.annotation_file}: none of the {len(annotations)} annotation(s) of image {sample_id} is valid"
            )
        labels = sorted(set(masks) | set(crowds))
        return Sample(
            id=sample_id,
            image=image,
            labels=labels,
            boxes=boxes,
            difficult=[False] * len(boxes),
            masks=masks,
            crowd_masks=crowds,
            unplayable=sorted(dropped - set(labels)),
            meta={"file": str(image_path)},
        )

    def _mask(self, ann: dict, size: tuple[int, int]) -> tuple[np.ndarray | None, str]:
        """(the annotation's ``[H,W]`` mask, '') or (None, what is wrong with it)."""
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            return None, f"malformed bbox {bbox!r}"
        try:
            mask = self.coco.annToMask(ann).astype(bool)
        except Exception as exc:  # noqa: BLE001 - malformed segmentations raise many types
            return None, f"malformed segmentation ({type(exc).__name__}: {exc})"
        if mask.shape != size:
            return None, f"mask size {mask.shape} differs from the image's {size}"
        if not mask.any():
            return None, "empty mask"
        return mask, ""
