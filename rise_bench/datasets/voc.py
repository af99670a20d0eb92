"""PASCAL VOC 2007 in the standard VOCdevkit layout.

``ROOT`` may be the folder holding ``VOCdevkit``, ``VOCdevkit`` itself or ``VOC2007``.
Ids come from ``ImageSets/Main/<split>.txt``, images from ``JPEGImages/<id>.jpg`` and
objects from ``Annotations/<id>.xml`` (the ``<filename>`` field is not used). Boxes stay
1-based and inclusive, with their ``difficult`` flags. Online users can pass
``download=True`` to fetch the data through torchvision.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..images import read_image
from .base import Dataset, DatasetError, Sample, require_dir
from .labels import VOC_CLASSES


def find_voc2007(root: Path) -> Path:
    """The ``VOC2007`` folder under ``root`` (which may be it, ``VOCdevkit`` or its parent)."""
    for candidate in (root, root / "VOC2007", root / "VOCdevkit" / "VOC2007"):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise DatasetError(f"no VOC2007 layout (VOCdevkit/VOC2007/ImageSets/Main) under '{root}'")


def parse_annotation(path: Path) -> list[tuple[str, tuple[float, float, float, float], bool]]:
    """(class name, (xmin, ymin, xmax, ymax), difficult) of every object in a VOC XML file.

    Raises:
        DatasetError: the file is missing, not XML, or an object lacks a name or box.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file missing")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: malformed XML ({exc})") from None
    objects = []
    for node in root.iter("object"):
        name = (node.findtext("name") or "").strip()
        box = node.find("bndbox")
        if not name or box is None:
            raise DatasetError(f"{path}: an object has no name or no bndbox")
        if name not in VOC_CLASSES:
            raise DatasetError(f"{path}: unknown VOC class '{name}'")
        try:
            coords = tuple(float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: object '{name}' has a malformed bndbox") from None
        difficult = (node.findtext("difficult") or "0").strip() == "1"
        objects.append((name, coords, difficult))
    return objects


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
        image_path = self.base / "JPEGImages" / f"{sample_id}.jpg"
        objects = parse_annotation(self.base / "Annotations" / f"{sample_id}.xml")
        image = read_image(image_path)
        index = {name: i for i, name in enumerate(self.classes)}
        return Sample(
            id=sample_id,
            image=image,
            labels=sorted({index[name] for name, _, _ in objects}),
            boxes=[(index[name], box) for name, box, _ in objects],
            difficult=[hard for _, _, hard in objects],
            meta={"file": str(image_path)},
        )


def _download(root: Path, split: str) -> None:
    """Fetch VOC 2007 through torchvision (online users only)."""
    from torchvision.datasets import VOCDetection

    try:
        VOCDetection(str(root), year="2007", image_set=split, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise DatasetError(f"could not download VOC 2007 to '{root}': {str(exc).splitlines()[0][:150]}") from None
