"""Annotations as ground-truth masks: VOC boxes and COCO instance masks to ``[H,W]`` bool arrays."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def boxes_mask(boxes: Iterable[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    """Union of VOC boxes ``(xmin, ymin, xmax, ymax)``, 1-based inclusive, as a ``[H,W]`` bool mask."""
    height, width = size
    mask = np.zeros((height, width), dtype=bool)
    for xmin, ymin, xmax, ymax in boxes:
        top, left = max(int(round(ymin)) - 1, 0), max(int(round(xmin)) - 1, 0)
        bottom, right = min(int(round(ymax)), height), min(int(round(xmax)), width)
        mask[top:bottom, left:right] = True
    return mask


def union_masks(masks: Iterable[np.ndarray | None], size: tuple[int, int]) -> np.ndarray:
    """Union of ``[H,W]`` bool masks (``None`` entries skipped); all False when there are none."""
    union = np.zeros(size, dtype=bool)
    for mask in masks:
        if mask is not None:
            union |= mask
    return union
