"""Where the project and the shared offline data are (tests read ``../shared/data`` from the project root)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
IMAGENET_SAMPLE = DATA / "imagenet-sample"
VOC_ROOT = DATA / "voc"
COCO_ROOT = DATA / "coco"
