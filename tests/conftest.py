import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Downloads and caches the tests make (detector files, real-video statistics) go to a folder of this
# session, not the user's ~/.cache/fashionflow; set before fashionflow reads it.
if "FASHIONFLOW_CACHE" not in os.environ:
    os.environ["FASHIONFLOW_CACHE"] = tempfile.mkdtemp(prefix="fashionflow-test-cache-")
    atexit.register(shutil.rmtree, os.environ["FASHIONFLOW_CACHE"], True)

import pytest  # noqa: E402
import torch  # noqa: E402

from fashionflow import FashionFlowUNet  # noqa: E402
from fashionflow.tiny import TINY_UNET_CONFIG  # noqa: E402

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
