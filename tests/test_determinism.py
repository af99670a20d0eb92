"""How deterministic results are, as README states: identical when repeated, within measured tolerances otherwise.

Forward passes differ in their last bits with the batch size and the thread count (the
kernels sum in another order), so RISE maps and deletion/insertion AUCs are equal only
within tolerances; ``scripts/determinism.py`` measures them on more images and masks.
"""

from __future__ import annotations

import pytest
import torch

import rise_bench
from rise_bench.images import read_image
from rise_bench.metrics.deletion import deletion
from rise_bench.metrics.insertion import insertion

from .helpers import IMAGENET_SAMPLE

#: README's tolerances: RISE maps (absolute) and AUCs, across batch sizes and thread counts.
MAP_TOLERANCE = 1e-5
AUC_TOLERANCE = 1e-3


def run(model, image, target, batch: int, threads: int):
    """RISE maps and their deletion and insertion AUCs, at ``batch`` images per pass on ``threads`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        maps = rise_bench.create_explainer("rise", num_masks=64, seed=0).explain(model, image, target, batch_size=batch)
        with torch.inference_mode():
            aucs = [f(model, image, maps, target, step=224 * 28, batch_size=batch).auc for f in (deletion, insertion)]
        return maps, torch.cat(aucs)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photo(default_model):
    image = default_model.transform(read_image(IMAGENET_SAMPLE / "n01530575_brambling.JPEG"))[None]
    with torch.inference_mode():
        target = default_model.scores(image).argmax(1)
    return image, target


@pytest.fixture(scope="module")
def reference(default_model, photo):
    return run(default_model, *photo, 8, 1)


def test_the_same_settings_give_the_same_bits(default_model, photo, reference):
    maps, aucs = run(default_model, *photo, 8, 1)
    assert torch.equal(maps, reference[0]) and torch.equal(aucs, reference[1])


@pytest.mark.parametrize("batch, threads", [(1, 1), (16, 1), (8, 2)])
def test_batch_size_and_threads_move_maps_and_aucs_only_within_tolerance(
    default_model, photo, reference, batch, threads
):
    maps, aucs = run(default_model, *photo, batch, threads)
    assert (maps - reference[0]).abs().max() <= MAP_TOLERANCE
    assert (aucs - reference[1]).abs().max() <= AUC_TOLERANCE
