"""The one rule for randomness: every draw's seed comes from ``derive_seed``.

A draw is named by (a seed, the sample id, a purpose): the seed is a method's own
``seed`` parameter (which defaults to the run's ``--seed``) or the run's seed; the sample
id makes each image's draw independent of order, batching and sharding; the purpose
keeps two draws of one owner for the same sample apart. Generators are local
``torch.Generator`` objects: the global RNG is never used.
"""

from __future__ import annotations

import hashlib

import torch

#: Seeds are kept below 2**60 so they fit every generator and an int64 tensor.
_SEED_DIGITS = 15


def derive_seed(seed: int, sample_id: str, purpose: str = "") -> int:
    """A seed for one draw from ``(seed, sample id, purpose)``.

    The empty purpose is the draw of a method's per-image randomness (and of the random
    baseline); metrics that add noise name their own purpose.
    """
    text = f"{int(seed)}:{sample_id}" + (f":{purpose}" if purpose else "")
    return int(hashlib.sha256(text.encode()).hexdigest()[:_SEED_DIGITS], 16)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A local ``torch.Generator`` on ``device`` seeded with ``seed`` (global RNG untouched)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return generator
