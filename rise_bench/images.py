"""Reading images, resizing them for a model, image filters and heat-map overlays.

Every image enters as an RGB ``PIL.Image`` at its original resolution. Models see the
*whole* image squashed to their input size (no centre crop, as the RISE and TorchRay
references do); saliency maps are drawn back over the original.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, close_matches

#: Smallest side, in pixels, that an input image may have.
MIN_IMAGE_SIDE = 8

#: Photographs bundled with scikit-image, usable as ``sample:NAME`` without any download.
SAMPLE_IMAGES = {
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "astronaut": "astronaut.png",
    "camera": "camera.png",
    "motorcycle": "motorcycle_left.png",
}

#: Prefix that names a bundled photograph instead of a file.
SAMPLE_PREFIX = "sample:"


def sample_image_path(name: str) -> Path:
    """Path of a photograph bundled with scikit-image (see ``SAMPLE_IMAGES``)."""
    import skimage.data

    if name not in SAMPLE_IMAGES:
        raise ImageError(
            f"unknown sample image '{name}'{close_matches(name, SAMPLE_IMAGES)}; choose from {', '.join(SAMPLE_IMAGES)}"
        )
    return Path(skimage.data.__file__).parent / SAMPLE_IMAGES[name]


def resolve_image_path(source: str | os.PathLike) -> Path:
    """Turn ``sample:NAME`` into a bundled file's path; other paths pass through."""
    text = str(source)
    if text.startswith(SAMPLE_PREFIX):
        return sample_image_path(text[len(SAMPLE_PREFIX) :])
    return Path(text)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; alpha is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F" and array.max() <= 1.0:
            top = 1.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def read_image(source: str | os.PathLike) -> Image.Image:
    """Read an image file (or ``sample:NAME``) as an RGB ``PIL.Image``.

    Grayscale, palette, RGBA, CMYK and 16-bit images are converted to 8-bit RGB; the
    EXIF orientation is applied.

    Raises:
        ImageError: one line naming the file, when it is missing, a directory, not an
            image, truncated or corrupt, or smaller than ``MIN_IMAGE_SIDE`` pixels.
    """
    path = resolve_image_path(source)
    if not path.exists():
        raise ImageError(f"{source}: no such file")
    if path.is_dir():
        raise ImageError(f"{source}: is a directory, not an image file")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened) or opened
            image = _to_rgb(image)
    except UnidentifiedImageError:
        raise ImageError(f"{source}: not an image file (format not recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{source}: corrupt or truncated image ({exc})") from None
    if min(image.size) < MIN_IMAGE_SIDE:
        raise ImageError(
            f"{source}: image is {image.width}x{image.height} pixels, smaller than "
            f"the minimum of {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}"
        )
    return image


_PIL_INTERPOLATION = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize_whole(image: Image.Image, size: tuple[int, int], interpolation: str) -> Image.Image:
    """Squash the whole image to ``size`` = (height, width); no crop."""
    height, width = size
    resample = _PIL_INTERPOLATION.get(interpolation, Image.Resampling.BILINEAR)
    return image.resize((width, height), resample=resample)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB ``PIL.Image`` -> float32 tensor ``[3,H,W]`` in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian kernel of length ``2*radius+1`` (default radius 3 sigma)."""
    radius = int(math.ceil(3 * sigma)) if radius is None else radius
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).float()


def gaussian_blur(images: torch.Tensor, sigma: float, padding_mode: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of ``[B,C,H,W]`` tensors, per channel.

    Args:
        images: ``[B,C,H,W]`` float tensor.
        sigma: standard deviation in pixels; the kernel spans 3 sigma each side.
        padding_mode: ``reflect`` (falls back to ``replicate`` for tiny images),
            ``replicate`` or ``zeros``.
    """
    if sigma <= 0:
        return images.clone()
    channels, height, width = images.shape[1:]
    kernel = gaussian_kernel1d(sigma).to(images.device, images.dtype)
    radius = kernel.numel() // 2
    mode = padding_mode
    if mode == "reflect" and radius >= min(height, width):
        mode = "replicate"
    out = images
    for dim in (2, 3):
        shape = (1, 1, kernel.numel(), 1) if dim == 2 else (1, 1, 1, kernel.numel())
        pad = (0, 0, radius, radius) if dim == 2 else (radius, radius, 0, 0)
        if mode == "zeros":
            out = F.pad(out, pad)
        else:
            out = F.pad(out, pad, mode=mode)
        out = F.conv2d(out, kernel.view(shape).expand(channels, -1, -1, -1), groups=channels)
    return out


#: Display maps clip at this percentile, so that a few extreme values (gradients are
#: heavy-tailed) do not leave the rest of the map black. For display only: scores use raw maps.
DISPLAY_PERCENTILE = 99.0


def normalise_for_display(saliency: np.ndarray, percentile: float = DISPLAY_PERCENTILE) -> np.ndarray:
    """Scale a map to [0, 1] for display: from its minimum to its ``percentile``-th value (clipped above).

    A constant map is shown as zeros; ``percentile=100`` is plain min-max scaling.
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    low, high = float(np.min(saliency)), float(np.percentile(saliency, percentile))
    if not np.isfinite(low) or not np.isfinite(high) or high - low <= 1e-12:
        high = float(np.max(saliency))  # a map flat below its top percent: fall back to the maximum
    if not np.isfinite(low) or not np.isfinite(high) or high - low <= 1e-12:
        return np.zeros_like(saliency)
    return np.clip((saliency - low) / (high - low), 0.0, 1.0)


def resize_map(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize a ``[H,W]`` map to ``size`` = (height, width)."""
    tensor = torch.as_tensor(np.asarray(saliency, dtype=np.float32))[None, None]
    resized = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    return resized[0, 0].numpy()


def overlay(image: Image.Image, saliency: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> Image.Image:
    """Blend a heat map of ``saliency`` (any size) over ``image`` at the image's size."""
    from matplotlib import colormaps

    heat = normalise_for_display(resize_map(saliency, (image.height, image.width)))
    colours = (colormaps[cmap](heat)[..., :3] * 255).astype(np.float32)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = (1 - alpha) * base + alpha * colours
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))
