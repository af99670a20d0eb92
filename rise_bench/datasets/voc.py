"""PASCAL VOC 2007 in the standard VOCdevkit layout.

``ROOT`` may be the folder holding ``VOCdevkit``, ``VOCdevkit`` itself or ``VOC2007``.
Ids come from ``ImageSets/Main/<split>.txt``, images from ``JPEGImages/<id>.jpg`` and
objects from ``Annotations/<id>.xml`` (the ``<filename>`` field is not used). Boxes stay
1-based and inclusive, with their ``difficult`` flags; a malformed object is skipped,
a box is clipped to the image, and an inverted box or one outside the image is dropped
(each with one warning line naming the file and object). Online users can pass
``download=True`` to fetch the data through torchvision.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..images import read_image
from .base import Dataset, DatasetError, Sample, require_dir, warn_user
from .labels import VOC_CLASSES


def find_voc2007(root: Path) -> Path:
    """The ``VOC2007`` folder under ``root`` (which may be it, ``VOCdevkit`` or its parent)."""
    for candidate in (root, root / "VOC2007", root / "VOCdevkit" / "VOC2007"):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise DatasetError(f"no VOC2007 layout (VOCdevkit/VOC2007/ImageSets/Main) under '{root}'")


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>`` of a VOC annotation: its position in the file (1-based), class, box and flag."""

    number: int
    name: str
    box: tuple[float, float, float, float]
    difficult: bool


def parse_annotation(path: Path, warn: Callable[[str], None] = warn_user) -> list[VOCObject]:
    """The objects of a VOC XML file; an object without a known class or a numeric box is skipped.

    Each skipped object gets one ``warn`` line naming the file and the object.

    Raises:
        DatasetError: the file is missing or not XML, or it has objects and none is valid.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file missing")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: malformed XML ({exc})") from None
    objects, nodes = [], list(root.iter("object"))
    for number, node in enumerate(nodes, 1):
        name = (node.findtext("name") or "").strip()
        box = node.find("bndbox")
        problem = ""
        if not name or box is None:
            problem = "has no name or no bndbox"
        elif name not in VOC_CLASSES:
            problem = f"has unknown VOC class '{name}'"
        else:
            try:
                coords = tuple(float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
                problem = "" if all(math.isfinite(c) for c in coords) else "has a non-finite bndbox"
            except (TypeError, ValueError):
                problem = "has a malformed bndbox"
        if problem:
            warn(f"{path}: object {number} {problem}; skipped")
            continue
        difficult = (node.findtext("difficult") or "0").strip() == "1"
        objects.append(VOCObject(number, name, coords, difficult))
    if nodes and not objects:
        raise DatasetError(f"{path}: none of its {len(nodes)} object(s) is valid")
    return objects


def clip_box(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[tuple[float, float, float, float] | None, str]:
    """A VOC box (1-based, inclusive) clipped to an image of ``size`` (height, width).

    Returns:
        (the clipped box, '') or (None, why): inverted (``xmin > xmax`` or ``ymin > ymax``)
        or wholly outside the image.
    """
    xmin, ymin, xmax, ymax = box
    height, width = size
    if xmin > xmax or ymin > ymax:
        return None, "is inverted (xmin > xmax or ymin > ymax)"
    if xmax < 1 or ymax < 1 or xmin > width or ymin > height:
        return None, f"lies wholly outside the {width}x{height} image"
    return (max(xmin, 1.0), max(ymin, 1.0), min(xmax, float(width)), min(ymax, float(height))), ""


class VOCDataset(Dataset):
    """VOC 2007 images with boxes; label space: the 20 VOC classes."""

    name = "voc"
    classes = VOC_CLASSES
    label_space = "voc"
    localised = True

    def __init__(self, root: str | Path, split: str = "test", download: bool = False) -> None:
        super().__init__()
        root = Path(root)
        if download:
            _download(root, split)
        self.base = find_voc2007(require_dir(root, "VOC root"))
        split_file = self.base / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file():
            raise DatasetError(f"VOC split '{split}' not found: {split_file}")
        self._ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
        if not self._ids:
            raise DatasetError(f"VOC split '{split}' ({split_file}) lists no images")

    def load(self, sample_id: str) -> Sample:
        """The image and its objects; boxes overlapping the image are clipped to it.

        An inverted box or one wholly outside the image is dropped with one ``warn``
        line; a class left without a box is not asked about (``Sample.unplayable``).
        """
        image_path = self.base / "JPEGImages" / f"{sample_id}.jpg"
        annotation = self.base / "Annotations" / f"{sample_id}.xml"
        objects = parse_annotation(annotation, self.warn)
        image = read_image(image_path)
        index = {name: i for i, name in enumerate(self.classes)}
        boxes, difficult, dropped = [], [], set()
        for item in objects:
            box, problem = clip_box(item.box, (image.height, image.width))
            if box is None:
                self.warn(f"{annotation}: object {item.number} ({item.name}) {problem}; its box is dropped")
                dropped.add(index[item.name])
                continue
            boxes.append((index[item.name], box))
            difficult.append(item.difficult)
        labels = sorted({cls for cls, _ in boxes})
        return Sample(
            id=sample_id,
            image=image,
            labels=labels,
            boxes=boxes,
            difficult=difficult,
            unplayable=sorted(dropped - set(labels)),
            meta={"file": str(image_path)},
        )


def _download(root: Path, split: str) -> None:
    """Fetch VOC 2007 through torchvision (online users only)."""
    from torchvision.datasets import VOCDetection

    try:
        VOCDetection(str(root), year="2007", image_set=split, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise DatasetError(f"could not download VOC 2007 to '{root}': {str(exc).splitlines()[0][:150]}") from None
