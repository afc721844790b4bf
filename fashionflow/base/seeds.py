"""Seeds: one range for every seed FashionFlow takes or makes, random ones, and one derived from a name.

The range is that of an unsigned 32-bit number: every random-number library takes it (numpy's
legacy seeding refuses more), a number box in a browser and a URL carry it exactly, and people can
copy it. A seed derived from a base seed and a name (a photo of a catalogue, a test video, a
prepared clip) is the same on every run and every process, whatever else is in the folder, so
that a rerun or a run on more GPUs makes the same result for the same item.
"""

from __future__ import annotations

import hashlib
import random

MIN_SEED = 0
MAX_SEED = 2**32 - 1


def random_seed(rng: random.Random | None = None) -> int:
    """A seed drawn from `rng` (default: the operating system's randomness), within the range."""
    return (rng or random.SystemRandom()).randint(MIN_SEED, MAX_SEED)


def derive_seed(base_seed: int, name: str) -> int:
    """The seed of the item `name` under `base_seed`: the first 4 bytes of sha256("{base_seed}:{name}")."""
    digest = hashlib.sha256(f"{base_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
