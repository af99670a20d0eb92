"""Tiny models with analytically known answers, shared by the tests."""

from __future__ import annotations

import torch
from torch import nn

from rise_bench.models import Classifier

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
        net,
        name="region",
        classes=["region", "other"],
        input_size=TINY_SIZE,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        cam_layer=net.gate,
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


class KeptFraction(nn.Module):
    """p(class 0) = fraction of pixels (optionally within ``weights``) that are still non-zero."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights / weights.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = (x.abs().sum(1) > 0).float()
        fraction = (kept * self.weights).sum(dim=(1, 2)).clamp(1e-6, 1 - 1e-6)
        return torch.stack([fraction.log(), (1 - fraction).log()], dim=1)


def fraction_model(height: int, width: int, weights: torch.Tensor | None = None) -> Classifier:
    """A classifier whose class-0 probability is the fraction of (weighted) pixels still non-zero."""
    weights = torch.ones(height, width) if weights is None else weights
    return Classifier(
        KeptFraction(weights),
        name="fraction",
        classes=["kept", "gone"],
        input_size=(height, width),
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )


def linear_model(height: int = 6, width: int = 9, classes: int = 3) -> tuple[Classifier, torch.Tensor]:
    """A linear classifier with random weights, and those weights as ``[classes,3,H,W]``."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(classes, 3 * height * width, generator=generator)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * height * width, classes))
    with torch.no_grad():
        net[1].weight.copy_(weight)
        net[1].bias.zero_()
    model = Classifier(
        net,
        name="linear",
        classes=[str(i) for i in range(classes)],
        input_size=(height, width),
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    return model, weight.view(classes, 3, height, width)
