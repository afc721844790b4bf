import os
from pathlib import Path

import pytest
import torch

from fashionflow import FashionFlowUNet
from fashionflow.tiny import TINY_UNET_CONFIG

# The authors' key layout and test vectors live beside the checkout, never inside it.
REFERENCE_DIR = Path(
    os.environ.get("FASHIONFLOW_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference")
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "official-small" / "small_io.safetensors").is_file():
        pytest.skip(
            f"reference files not found at {REFERENCE_DIR} (../shared/reference beside the checkout, "
            "or set FASHIONFLOW_REFERENCE); they are not part of the project"
        )
    return REFERENCE_DIR


@pytest.fixture
def tiny_unet() -> FashionFlowUNet:
    torch.manual_seed(0)
    return FashionFlowUNet(**TINY_UNET_CONFIG).eval()


def published_shapes(tsv: Path) -> dict[str, tuple[int, ...]]:
    rows = tsv.read_text().splitlines()[1:]
    return {key: tuple(int(n) for n in shape.strip("[]").split(",")) for key, shape in (r.split("\t") for r in rows)}


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).norm() / theirs.norm()).item()
