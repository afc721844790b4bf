"""Seeds: one range for every seed FashionFlow takes, random ones, and one derived from a name.

The range is what a torch generator takes, 0 to 2**63 - 1: the widest any command ever accepted,
so no seed that worked before stops working. Seeds FashionFlow draws itself stay below 2**32:
short enough to copy from the page, and carried exactly by a browser's number box (JavaScript
numbers are exact only up to 2**53); the web page takes seeds in that drawn range. Libraries
with a narrower seed (numpy's legacy seeding takes 32 bits) get `narrow_seed(seed)`, which
leaves every seed below 2**32 as it is.

A seed derived from a base seed and a name (a photo of a catalogue, a test video) is the same on
every run and every process, whatever else is in the folder, so that a rerun or a run on more
GPUs makes the same result for the same item.
"""

from __future__ import annotations

import hashlib
import random

MIN_SEED = 0
MAX_SEED = 2**63 - 1
DRAWN_SEEDS = 2**32  # seeds we draw lie in [0, DRAWN_SEEDS)


def random_seed(rng: random.Random | None = None) -> int:
    """A seed drawn from `rng` (default: the operating system's randomness), below `DRAWN_SEEDS`."""
    return (rng or random.SystemRandom()).randrange(DRAWN_SEEDS)


def narrow_seed(seed: int) -> int:
    """`seed` for a library that takes 32 bits: itself below 2**32, else folded into that range."""
    return seed % 2**32


def derive_seed(base_seed: int, name: str) -> int:
    """The seed of the item `name` under `base_seed`: sha256 of "{base_seed}\\0{name}", first 31 bits.

    The catalogue's formula since its first release: its videos keep their seeds across versions."""
    digest = hashlib.sha256(f"{base_seed}\0{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
