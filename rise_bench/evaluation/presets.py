"""Protocol presets: every setting of a published evaluation protocol, pinned by one name.

A preset fills the run configuration before the config file and the command line, which
still win (e.g. ``--root``, or ``--model``/``--weights`` offline). Each preset states the
numbers its paper published, which only its original models reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError, close_matches


@dataclass(frozen=True)
class Preset:
    """A published protocol: the configuration values it pins and what was reported with it."""

    name: str
    title: str
    values: dict[str, Any]
    published: str
    needs: str = field(default="")


PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            name="rise2018",
            title="deletion and insertion as in the RISE authors' evaluation notebook (Petsiuk et al. 2018)",
            values={
                "dataset": "imagenet",
                "model": "resnet50",
                "weights": "IMAGENET1K_V1",
                "metrics": ["deletion", "insertion"],
                "target": "top1",
                "step": 224 * 8,
                "limit": 10000,
            },
            published="RISE on the first 10,000 ImageNet validation images (ImageFolder order): "
            "deletion 0.10483, insertion 0.77192",
            needs="torchvision's resnet50 IMAGENET1K_V1 weights (a download) and the ImageNet validation set",
        ),
        Preset(
            name="torchray2019",
            title="the pointing game as TorchRay's benchmark (Fong et al. 2019): 15 px tolerance, difficult subsets",
            values={"dataset": "voc", "split": "test", "model": "resnet50", "metrics": ["pointing"]},
            published="ResNet50 on VOC 2007 test, all/difficult: RISE 86.4/78.8, Grad-CAM 90.4/82.3, "
            "center 69.6/42.4 (use --dataset coco --split val2014 for the COCO table)",
            needs="TorchRay's VOC- and COCO-trained ResNet50 checkpoints (pass them with --weights)",
        ),
    )
}


def preset(name: str) -> Preset:
    """The preset ``name``.

    Raises:
        UsageError: no preset has that name (with close matches).
    """
    if name not in PRESETS:
        raise UsageError(f"unknown preset '{name}'{close_matches(name, PRESETS)}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
