"""Label spaces (ImageNet-1k, VOC's 20, COCO's 80) and the maps between them.

An ImageNet classifier plays the pointing game on VOC or COCO through a class map
(``rise_bench/labelmaps/{voc,coco}.toml``, written by ``scripts/make_labelmaps.py``):
a VOC/COCO class scores as the sum of the softmax probabilities of its ImageNet classes.
Classes with no ImageNet counterpart (person, ...) have empty lists and are skipped.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import tomllib

from ..errors import UsageError
from ..models import MappedClassifier
from .base import DatasetError

VOC_CLASSES = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]

LABELMAP_DIR = Path(__file__).resolve().parents[1] / "labelmaps"


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """Short names of the 1000 ImageNet-1k classes in the standard (sorted synset) order."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes()))


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """WordNet ids (``n01440764``...) of the 1000 ImageNet-1k classes, sorted."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_label_name(i) for i in range(info.num_classes()))


def load_labelmap(name_or_path: str | Path) -> dict[str, list[int]]:
    """Class -> ImageNet indices, from a bundled map (``voc``, ``coco``) or a TOML file.

    The file holds a ``[classes]`` table of ``"class" = ["INDEX name", ...]``; every
    name is checked against the ImageNet class at that index.

    Raises:
        DatasetError: the file is missing or malformed, or a name does not match its index.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = LABELMAP_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise DatasetError(f"label map '{name_or_path}' not found (bundled: voc, coco; or a TOML file)")
    try:
        table = tomllib.loads(path.read_text())["classes"]
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise DatasetError(f"label map '{path}' is malformed: {exc}") from None
    names = imagenet_classes()
    mapping: dict[str, list[int]] = {}
    for cls, entries in table.items():
        indices = []
        for entry in entries:
            index_text, _, name = str(entry).partition(" ")
            if not index_text.isdigit() or not 0 <= int(index_text) < len(names):
                raise DatasetError(f"label map '{path}': bad entry '{entry}' for class '{cls}'")
            if name and name != names[int(index_text)]:
                raise DatasetError(
                    f"label map '{path}': ImageNet class {index_text} is '{names[int(index_text)]}', not '{name}'"
                )
            indices.append(int(index_text))
        mapping[cls] = indices
    return mapping


def classifier_for(model, dataset, labelmap: str | Path | None = None):
    """The classifier in ``dataset``'s label space and the classes it can score.

    A checkpoint trained on the data set's classes is used as it is; an ImageNet-1k model
    plays through the class map (a class with no ImageNet counterpart cannot be scored).

    Raises:
        UsageError: the model has neither the data set's classes nor ImageNet's.
    """
    classes = list(dataset.classes)
    if model.num_classes == len(classes) and model.num_classes != 1000:
        model.classes = classes  # a checkpoint trained on this label space
        return model, frozenset(range(len(classes)))
    if model.num_classes != 1000:
        raise UsageError(
            f"model '{model.name}' has {model.num_classes} classes; ground truth on {dataset.name} "
            f"needs its {len(classes)} classes or an ImageNet-1k model"
        )
    mapping = class_map_for(dataset.label_space, classes, labelmap)
    return MappedClassifier(model, mapping), frozenset(i for i, name in enumerate(classes) if mapping[name])


def class_map_for(label_space: str, classes: list[str], labelmap: str | Path | None = None) -> dict[str, list[int]]:
    """The ImageNet map for a data set's ``classes`` (every class present, maybe empty).

    Raises:
        UsageError: no map is known for ``label_space`` and none was given.
    """
    source = labelmap or label_space
    if labelmap is None and label_space not in ("voc", "coco"):
        raise UsageError(f"no ImageNet class map for label space '{label_space}'; pass --labelmap FILE")
    mapping = load_labelmap(source)
    return {cls: mapping.get(cls, []) for cls in classes}
