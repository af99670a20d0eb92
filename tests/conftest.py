"""Shared fixtures: tiny models with known answers, the real default model, data paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rise_bench.models import Classifier

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
IMAGENET_SAMPLE = DATA / "imagenet-sample"

#: Input size of the tiny models: deliberately not square.
TINY_SIZE = (40, 56)
#: The only region the region model looks at: rows 10..21, columns 30..43.
REGION = (slice(10, 22), slice(30, 44))


class Gate(nn.Module):
    """Multiplies feature maps by a fixed 0/1 spatial mask."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


class RegionNet(nn.Module):
    """Class 0's logit is the high-frequency energy of the image inside ``REGION`` only.

    A fixed Laplacian filter, ReLU, a spatial gate that zeroes everything outside the
    region (this gate is the Grad-CAM layer), global average pooling, a linear head.
    Class 1's logit is constant, so p(class 0) rises with the texture kept in the region.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 2, 3, padding=1, bias=False)
        laplacian = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0] = laplacian / 3
            self.features.weight[1] = -laplacian / 3
        mask = torch.zeros(1, 1, *TINY_SIZE)
        mask[0, 0, REGION[0], REGION[1]] = 1
        self.gate = Gate(mask)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2, 2)
        area = TINY_SIZE[0] * TINY_SIZE[1] / ((REGION[0].stop - REGION[0].start) * (REGION[1].stop - REGION[1].start))
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[10.0, 10.0], [0.0, 0.0]]) * area)
            self.head.bias.copy_(torch.tensor([-2.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.gate(torch.relu(self.features(x)))
        return self.head(self.pool(features).flatten(1))


def make_region_model() -> Classifier:
    net = RegionNet()
    return Classifier(
        net, name="region", classes=["region", "other"], input_size=TINY_SIZE,
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), cam_layer=net.gate,
    )


def texture_images(count: int, seed: int = 0) -> torch.Tensor:
    """``[count,3,H,W]`` images in [0, 1] at ``TINY_SIZE``: 8x8 colour blocks plus fine noise.

    The blocks give superpixel methods structure to cut along; the noise is texture for
    the region model's high-pass filter.
    """
    generator = torch.Generator().manual_seed(seed)
    blocks = torch.rand(count, 3, TINY_SIZE[0] // 8, TINY_SIZE[1] // 8, generator=generator)
    blocks = torch.nn.functional.interpolate(blocks, size=TINY_SIZE, mode="nearest")
    noise = torch.rand(count, 3, *TINY_SIZE, generator=generator)
    return 0.7 * blocks + 0.3 * noise


@pytest.fixture(scope="session")
def region_model() -> Classifier:
    return make_region_model()


@pytest.fixture(scope="session")
def default_model() -> Classifier:
    """The packaged tf_efficientnet_lite0 (real ImageNet weights, offline)."""
    import rise_bench

    return rise_bench.load_model(device="cpu")


@pytest.fixture(scope="session")
def imagenet_sample() -> Path:
    if not (IMAGENET_SAMPLE / "labels.csv").exists():
        pytest.fail(f"shared data missing: {IMAGENET_SAMPLE}")
    return IMAGENET_SAMPLE
