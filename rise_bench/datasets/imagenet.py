"""ImageNet-1k in its common layouts; labels are standard class indices (sorted synsets).

- ImageFolder: ``ROOT/<synset>/*.JPEG``.
- Official validation: a flat folder of ``ILSVRC2012_val_*.JPEG`` with either
  ``LOC_val_solution.csv`` (Kaggle; first synset of each row) or
  ``ILSVRC2012_validation_ground_truth.txt`` (ILSVRC2012 ids, translated to synsets with
  the devkit's ``meta.mat``, looked for in ``ROOT`` and ``ROOT/../ILSVRC2012_devkit_t12/data``).
- A flat folder with ``labels.csv`` (``file,class_index,...``), like the shared sample.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..images import read_image
from .base import IMAGE_SUFFIXES, Dataset, DatasetError, Sample, require_dir
from .labels import imagenet_classes, imagenet_synsets


class ImageNetDataset(Dataset):
    """ImageNet images with one label each; label space: ImageNet-1k."""

    name = "imagenet"
    label_space = "imagenet"

    def __init__(self, root: str | Path) -> None:
        super().__init__()
        self.root = require_dir(Path(root), "ImageNet root")
        self.classes = list(imagenet_classes())
        synset_index = {s: i for i, s in enumerate(imagenet_synsets())}
        self.files: dict[str, tuple[Path, int]] = {}
        if (self.root / "labels.csv").is_file():
            self._read_labels_csv(self.root / "labels.csv")
        elif (self.root / "LOC_val_solution.csv").is_file():
            self._read_loc_solution(self.root / "LOC_val_solution.csv", synset_index)
        elif (self.root / "ILSVRC2012_validation_ground_truth.txt").is_file():
            self._read_devkit_truth(self.root / "ILSVRC2012_validation_ground_truth.txt", synset_index)
        else:
            for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name in synset_index):
                for path in sorted(folder.iterdir()):
                    if path.suffix.lower() in IMAGE_SUFFIXES:
                        self.files[f"{folder.name}/{path.stem}"] = (path, synset_index[folder.name])
        self._ids = list(self.files)
        if not self._ids:
            raise DatasetError(
                f"no ImageNet images under '{self.root}' (expected <synset>/ folders, labels.csv, "
                "LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt)"
            )

    def _read_labels_csv(self, path: Path) -> None:
        try:
            with open(path, newline="") as handle:
                for row in csv.DictReader(handle):
                    index = int(row["class_index"])
                    if not 0 <= index < len(self.classes):
                        raise ValueError(f"class_index {index} out of range")
                    self.files[Path(row["file"]).stem] = (self.root / row["file"], index)
        except (KeyError, ValueError, TypeError) as exc:
            raise DatasetError(f"{path}: malformed labels.csv ({exc}); need columns file,class_index") from None

    def _read_loc_solution(self, path: Path, synset_index: dict[str, int]) -> None:
        try:
            with open(path, newline="") as handle:
                for row in csv.DictReader(handle):
                    synset = row["PredictionString"].split()[0]
                    self.files[row["ImageId"]] = (self.root / f"{row['ImageId']}.JPEG", synset_index[synset])
        except (KeyError, IndexError) as exc:
            raise DatasetError(f"{path}: malformed LOC_val_solution.csv ({exc})") from None
        self.files = dict(sorted(self.files.items()))

    def _read_devkit_truth(self, path: Path, synset_index: dict[str, int]) -> None:
        candidates = [self.root / "meta.mat", self.root.parent / "ILSVRC2012_devkit_t12" / "data" / "meta.mat"]
        meta = next((c for c in candidates if c.is_file()), None)
        if meta is None:
            raise DatasetError(
                f"{path} uses ILSVRC2012 ids; put the devkit's meta.mat in '{self.root}' to translate them"
            )
        from scipy.io import loadmat

        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
        by_id = {int(s[0]): str(s[1]) for s in synsets if int(s[4]) == 0}  # leaf classes only
        images = sorted(p for p in self.root.glob("ILSVRC2012_val_*.JPEG"))
        truth = [int(line) for line in path.read_text().split()]
        if len(truth) < len(images):
            raise DatasetError(f"{path} has {len(truth)} labels for {len(images)} images")
        for image in images:
            number = int(image.stem.rsplit("_", 1)[1])
            self.files[image.stem] = (image, synset_index[by_id[truth[number - 1]]])

    def load(self, sample_id: str) -> Sample:
        path, label = self.files[sample_id]
        return Sample(id=sample_id, image=read_image(path), labels=[label], meta={"file": str(path)})
