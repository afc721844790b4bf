"""The feature detectors of the video metrics: TorchScript files, from a local path or a URL.

The published detectors are StyleGAN-V's TorchScript ports (no PyPI wheel ships them):
- I3D (Kinetics-400), for FVD: `detector(videos, rescale=True, resize=True, return_features=True)`
  on uint8 (batch, 3, frames, height, width) at the frames' stored size -> 400 features per clip.
- C3D (fine-tuned on UCF-101), for video IS: `detector(videos)` on the same uint8 input ->
  101 class probabilities per clip.

A URL is downloaded once into the cache (`$FASHIONFLOW_CACHE/detectors`, progress bar, resumable)
with its sha256 recorded beside it; afterwards it loads offline. Files are loaded with
`torch.jit.load` only: TorchScript, never pickles, so loading runs no code from the file.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ..base.errors import MISSING, FashionFlowError
from ..base.files import file_sha256, write_json
from ..hub import DEFAULT_CACHE, DownloadError, download_file, is_web_page

if TYPE_CHECKING:  # torch is imported where a detector is loaded: `--help` stays fast
    import torch


@dataclass(frozen=True)
class DetectorSpec:
    name: str  # "i3d", "c3d"
    description: str
    url: str  # where StyleGAN-V's authors publish it
    filename: str
    kwargs: dict = field(default_factory=dict)  # keyword arguments of the call
    cli_flag: str = ""


I3D = DetectorSpec(
    name="i3d",
    description="I3D (Kinetics-400) TorchScript, StyleGAN-V's FVD detector",
    url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    filename="i3d_torchscript.pt",
    kwargs=dict(rescale=True, resize=True, return_features=True),
    cli_flag="--i3d",
)
C3D = DetectorSpec(
    name="c3d",
    description="C3D (UCF-101) TorchScript, StyleGAN-V's video IS classifier",
    url="https://www.dropbox.com/s/jxpu7avzdc9n97q/c3d_ucf101.pt?dl=1",
    filename="c3d_ucf101.pt",
    kwargs={},
    cli_flag="--c3d",
)
DETECTORS = {spec.name: spec for spec in (I3D, C3D)}


class DetectorUnavailableError(FashionFlowError, FileNotFoundError):
    """A detector file that is missing, cannot be downloaded or is not TorchScript; the message says what to do."""

    kind = MISSING


@dataclass(frozen=True)
class DetectorFile:
    name: str
    source: str  # what the user gave (path or URL)
    path: Path
    sha256: str

    def to_json(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def default_cache_dir() -> Path:
    return DEFAULT_CACHE / "detectors"


def cached_path(spec: DetectorSpec, source: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the file downloaded from `source` (default: the published URL) is kept."""
    url = source or spec.url
    filename = Path(urlparse(url).path).name or spec.filename
    return Path(cache_dir or default_cache_dir()) / filename


def fetch_detector(
    spec: DetectorSpec, source: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> DetectorFile:
    """The local file for `source`: a path as it is, a URL downloaded once into the cache."""
    source = str(source) if source is not None else spec.url
    if "://" not in source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise DetectorUnavailableError(
                f"No {spec.name.upper()} detector file at {path}. Download {spec.filename} from {spec.url} "
                f"and pass its path with {spec.cli_flag}."
            )
        return DetectorFile(spec.name, source, path, file_sha256(path))

    destination = cached_path(spec, source, cache_dir)
    try:
        digest = download_file(source, destination)
    except DownloadError as error:
        raise DetectorUnavailableError(
            f"The {spec.name.upper()} detector {destination.name} is not in the cache and could not be downloaded "
            f"({error}). On a machine with internet access, download {source} and either put the file at "
            f"{destination} or pass its path with {spec.cli_flag} FILE."
        ) from None
    if is_web_page(destination):
        destination.unlink()
        raise DetectorUnavailableError(
            f"{source} returned a web page, not {destination.name} (for a Dropbox link, it must end in dl=1). "
            f"Download the file by hand and pass it with {spec.cli_flag} FILE."
        )
    record = destination.with_name(destination.name + ".json")
    if not record.exists():
        fetched = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        write_json(record, {"url": source, "sha256": digest, "fetched": fetched}, indent=2)
    return DetectorFile(spec.name, source, destination, digest)


_loaded: dict[tuple[str, str], torch.jit.ScriptModule] = {}


def load_detector(file: DetectorFile, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The TorchScript module, in eval mode on `device`; loaded once per process."""
    import torch

    key = (str(file.path), str(device))
    if key not in _loaded:
        try:
            with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; the published files are TorchScript
                warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
                module = torch.jit.load(str(file.path), map_location=device)
        except (RuntimeError, ValueError) as error:
            raise DetectorUnavailableError(
                f"{file.path} is not a TorchScript file ({str(error).splitlines()[0][:200]}). "
                f"Expected the {file.name.upper()} detector ({DETECTORS[file.name].filename})."
            ) from None
        _loaded[key] = module.eval()
    return _loaded[key]
