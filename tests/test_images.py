"""Reading every kind of image file, and refusing the ones that cannot be used."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rise_bench.images import ImageError, gaussian_blur, gaussian_kernel1d, overlay, read_image

from .helpers import IMAGENET_SAMPLE


def odd_images(folder):
    """Files in every colour mode the CLI must convert: name -> path."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    paths = {}
    paths["gray"] = folder / "gray.png"
    Image.fromarray(rgb[..., 0]).save(paths["gray"])
    paths["rgba"] = folder / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full((30, 40), 128, np.uint8)])).save(paths["rgba"])
    paths["palette"] = folder / "palette.gif"
    Image.fromarray(rgb).convert("P").save(paths["palette"])
    paths["cmyk"] = folder / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(paths["cmyk"])
    paths["gray16"] = folder / "gray16.png"
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(paths["gray16"])
    return paths


def test_odd_colour_modes_become_8bit_rgb(tmp_path):
    for name, path in odd_images(tmp_path).items():
        image = read_image(path)
        assert image.mode == "RGB" and image.size == (40, 30), name
    gray16 = np.asarray(read_image(tmp_path / "gray16.png"))[..., 0]
    gray8 = np.asarray(read_image(tmp_path / "gray.png"))[..., 0]
    np.testing.assert_array_equal(gray16, gray8)  # 16-bit scaled down, not clipped
    rgba = np.asarray(read_image(tmp_path / "rgba.png"), dtype=np.float64)
    assert rgba.mean() > np.asarray(read_image(tmp_path / "gray.png"), dtype=np.float64).mean() * 0.9


def test_bad_files_get_one_line_errors_naming_them(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(next(IMAGENET_SAMPLE.glob("*.JPEG")).read_bytes()[:3000])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    cases = {
        tmp_path / "missing.jpg": "no such file",
        tmp_path: "is a directory",
        text: "not an image file",
        truncated: "corrupt or truncated",
        tiny: "1x1 pixels",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError, match=message) as caught:
            read_image(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_bundled_sample_photographs():
    image = read_image("sample:chelsea")
    assert image.mode == "RGB" and image.size == (451, 300)
    with pytest.raises(ImageError, match="did you mean: chelsea"):
        read_image("sample:chelsee")


def test_gaussian_blur_preserves_constants_and_matches_the_kernel():
    kernel = gaussian_kernel1d(2.0)
    assert kernel.numel() == 13 and float(kernel.sum()) == pytest.approx(1.0)
    constant = torch.full((1, 3, 20, 30), 0.7)
    torch.testing.assert_close(gaussian_blur(constant, 2.0), constant)
    delta = torch.zeros(1, 1, 31, 31)
    delta[0, 0, 15, 15] = 1
    blurred = gaussian_blur(delta, 2.0)[0, 0]
    torch.testing.assert_close(blurred[9:22, 15], kernel * kernel[6])


def test_overlay_has_the_image_size():
    image = Image.new("RGB", (50, 20), (10, 20, 30))
    assert overlay(image, np.random.rand(7, 7)).size == (50, 20)
    assert overlay(image, np.zeros((7, 7))).size == (50, 20)  # constant map: no division by zero


def test_display_scaling_clips_heavy_tails_and_keeps_constant_maps_black():
    from rise_bench.images import normalise_for_display

    rng = np.random.default_rng(0)
    heavy = rng.random((50, 50))
    heavy[3, 4] = 1000.0  # one extreme gradient
    shown = normalise_for_display(heavy)
    assert shown.max() == 1.0 and shown.min() == 0.0
    assert np.median(shown) > 0.3  # the rest of the map stays visible (min-max would give ~0.0005)
    assert normalise_for_display(np.full((4, 4), 2.0)).max() == 0.0
    spike = np.zeros((20, 20))
    spike[5, 5] = 1.0  # flat below the top percent: scaled by the maximum, not hidden
    assert normalise_for_display(spike)[5, 5] == 1.0
