"""Importable test helpers: data paths and tiny models with known answers."""

from .models import (
    REGION,
    TINY_SIZE,
    fraction_model,
    linear_model,
    make_region_model,
    texture_images,
)
from .paths import COCO_ROOT, DATA, IMAGENET_SAMPLE, ROOT, VOC_ROOT
from .runs import FAST, forbid_model_loading, rows_of

__all__ = [
    "COCO_ROOT",
    "DATA",
    "FAST",
    "IMAGENET_SAMPLE",
    "REGION",
    "ROOT",
    "TINY_SIZE",
    "VOC_ROOT",
    "forbid_model_loading",
    "fraction_model",
    "linear_model",
    "make_region_model",
    "rows_of",
    "texture_images",
]
