"""Fetching the published FashionFlow weights and assembling a complete pipeline folder.

`download_official_pipeline` fetches the Stable Diffusion v1-4 VAE (pinned revision), CLIP
ViT-B/32 and (optional) the TAESD tiny decoder for quick previews from the Hugging Face Hub, the
authors' checkpoint from their Dropbox link (resumable, sha256 recorded), converts the checkpoint,
and writes a pipeline folder that loads offline. Every source can also be a local folder or file,
for offline machines and for tests.
The folder appears complete or not at all: it is assembled beside the target and renamed.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import assembly
from .assembly import assemble_pipeline, bullets, save_pipeline, table
from .base.errors import UNREACHABLE, FashionFlowError, first_sentence
from .base.files import file_sha256
from .defaults import DEFAULT_MODEL

DEFAULT_OUTPUT = Path(DEFAULT_MODEL)
DEFAULT_CACHE = Path(os.environ.get("FASHIONFLOW_CACHE", Path.home() / ".cache" / "fashionflow"))
CHECKPOINT_FILENAME = "FashionFlow_checkpoint.pth"


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    revision: str
    subfolder: str
    files: tuple[str, ...]  # needed files; the first weights file of `weights` that exists is taken
    weights: tuple[str, ...]
    licence: str
    url: str


VAE_SOURCE = HubSource(
    repo_id="CompVis/stable-diffusion-v1-4",
    revision="ebb811dd71cdc38a204ecbdd6ac5d580f529fd8c",  # the revision the authors trained with
    subfolder="vae",
    files=("config.json",),
    weights=("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    licence="CreativeML OpenRAIL-M",
    url="https://huggingface.co/CompVis/stable-diffusion-v1-4",
)
CLIP_SOURCE = HubSource(
    repo_id="openai/clip-vit-base-patch32",
    revision="main",  # the authors did not pin one; the commit fetched is recorded in the model card
    subfolder="",
    files=("config.json", "preprocessor_config.json"),
    weights=("model.safetensors", "pytorch_model.bin"),
    licence="MIT",
    url="https://huggingface.co/openai/clip-vit-base-patch32",
)
TAESD_SOURCE = HubSource(  # optional: the tiny decoder for quick previews (pipeline component tiny_vae)
    repo_id="madebyollin/taesd",
    revision="main",  # the commit fetched is recorded in the model card
    subfolder="",
    files=("config.json",),
    weights=("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    licence="MIT",
    url="https://huggingface.co/madebyollin/taesd",
)
CHECKPOINT_URL = (
    "https://www.dropbox.com/scl/fi/p9fv7o3j7ti0yu2umsgmv/FashionFlow_checkpoint.pth"
    "?rlkey=mqsto9i4ujh6xhvab0e2s6n7d&dl=1"
)


# Progress of the download for a display other than the terminal (the web app's "Preparing the
# model"): called with what is being done, bytes done and bytes in all (None while unknown or
# for steps that are not downloads, such as converting the checkpoint).
DownloadProgress = Callable[[str, int, "int | None"], None]


class DownloadError(FashionFlowError, RuntimeError):
    """A download failed; the message says what is missing and how to get it."""

    kind = UNREACHABLE


@dataclass
class FetchedSource:
    name: str
    source: str
    revision: str | None
    sha256: str | None
    licence: str
    path: str


# Hugging Face Hub --------------------------------------------------------------------------------------------


def fetch_hub_source(
    source: HubSource,
    local: str | os.PathLike | None = None,
    cache_dir=None,
    endpoint: str | None = None,
    progress: DownloadProgress | None = None,
) -> tuple[Path, str | None]:
    """The folder holding `source`'s files (inside `local` when given, else fetched), and its commit.

    `endpoint` is a Hub mirror (default: HF_ENDPOINT, else huggingface.co). `progress` hears of
    every file fetched (bytes done and in all), besides the terminal's progress bars.
    """
    if local is not None:
        folder = Path(local) / source.subfolder
        missing = [f for f in source.files if not (folder / f).is_file()]
        if missing or not any((folder / w).is_file() for w in source.weights):
            raise DownloadError(
                f"{folder} does not hold {source.repo_id}{'/' + source.subfolder if source.subfolder else ''}: "
                f"expected {', '.join(source.files)} and one of {', '.join(source.weights)}."
            )
        return folder, None

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    def fetch(filename: str, local_only: bool) -> Path:
        return Path(
            hf_hub_download(
                source.repo_id,
                filename,
                subfolder=source.subfolder or None,
                revision=source.revision,
                cache_dir=cache_dir,
                endpoint=endpoint,
                local_files_only=local_only,
                tqdm_class=_reporting_tqdm(
                    progress, f"{source.repo_id}/{source.subfolder + '/' if source.subfolder else ''}{filename}"
                ),
            )
        )

    def fetch_all(local_only: bool) -> list[Path]:
        paths = [fetch(f, local_only) for f in source.files]
        for weights in source.weights:
            try:
                return [*paths, fetch(weights, local_only)]
            except RemoteEntryNotFoundError:  # not in this repository: try the next weights file
                continue
        raise DownloadError(f"{where} has none of the weight files {', '.join(source.weights)}.")

    where = f"{source.repo_id}{'/' + source.subfolder if source.subfolder else ''} at revision {source.revision}"
    # One quick look before fetching: an unreachable Hub is said at once, instead of after
    # half a minute of the Hub client's retries. Files fetched earlier are still used from the cache.
    unreachable = None if _hub_offline() else _unreachable(endpoint or _hub_endpoint())
    try:
        paths = fetch_all(local_only=_hub_offline() or unreachable is not None)
    except DownloadError:
        raise
    except Exception as error:
        why = unreachable or explain_hub_failure(error)
        raise DownloadError(
            f"Could not fetch {where} from the Hugging Face Hub: {why}\n"
            "Run the command again once the Hub can be reached (finished files are kept and not fetched twice). "
            "On a machine without access to the Hub, copy the repositories and the checkpoint there and pass "
            "them with --vae-from, --clip-from and --checkpoint."
        ) from None
    folder = paths[0].parent
    snapshot = folder.parent if source.subfolder else folder  # <cache>/snapshots/<commit>[/subfolder]
    return folder, snapshot.name


def _hub_offline() -> bool:
    import huggingface_hub.constants

    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _hub_endpoint() -> str:
    import huggingface_hub.constants

    return huggingface_hub.constants.ENDPOINT


def _unreachable(endpoint: str, timeout: float = 10) -> str | None:
    """None when `endpoint` answers at all (any HTTP status); else why not, in words."""
    import http.client  # here, not at the top: `--help` reads this module's constants without the HTTP client
    import urllib.request

    request = urllib.request.Request(endpoint, method="HEAD", headers={"User-Agent": "fashionflow-downloader"})
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"{endpoint} cannot be reached ({_plain_reason(reason)}). Check the internet connection (and HF_ENDPOINT or proxy settings if you use them)."
    return None


def _plain_reason(reason) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "no answer within the time limit"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if (
        "Name or service not known" in str(reason)
        or "nodename nor servname" in str(reason)
        or "getaddrinfo" in str(reason)
    ):
        return "its name could not be resolved"
    text = getattr(reason, "strerror", None) or str(reason)
    return text.strip().rstrip(".") or type(reason).__name__


def explain_hub_failure(error: BaseException) -> str:
    """A Hub client failure as one plain sentence, naming the setting to change when there is one."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if _hub_offline():
        return (
            "HF_HUB_OFFLINE is set, so nothing is fetched from the Hub, and the files are not in the local cache. "
            "Unset HF_HUB_OFFLINE (or set it to 0) to download them."
        )
    if isinstance(error, GatedRepoError):
        return "the repository needs an access token: accept its terms on the Hub and set HF_TOKEN."
    if isinstance(error, RepositoryNotFoundError):
        return "no such repository (check the name; private ones need HF_TOKEN)."
    if isinstance(error, RevisionNotFoundError):
        return "the repository has no such revision."
    return first_sentence(str(error)) or f"{type(error).__name__}."


# plain HTTP(S) downloads ------------------------------------------------------------------------------------------


def download_file(
    url: str,
    destination: Path,
    expected_sha256: str | None = None,
    retries: int = 3,
    progress: DownloadProgress | None = None,
) -> str:
    """Download `url` to `destination` with a progress bar, resuming a partial file; return its sha256.

    The data goes to `destination.part` and is renamed only when complete and checked, so an
    interrupted download never leaves a file that looks finished; the next call resumes it.
    """
    import http.client

    destination = Path(destination)
    if destination.is_file():
        digest = file_sha256(destination)
        _check_digest(digest, expected_sha256, destination)
        return digest
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _fetch_into(url, partial, progress)
            break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code in (401, 403, 404, 410):
                raise DownloadError(f"{url} answered HTTP {error.code}: the file is not available there.") from None
            if attempt == retries:
                size = partial.stat().st_size if partial.exists() else 0
                kept = f" {size / 2**20:.0f} MB are kept in {partial}; run the command again to resume." if size else ""
                raise DownloadError(
                    f"Could not download {url} ({_plain_reason(getattr(error, 'reason', error))}).{kept} "
                    "Without access to it, download the file by hand and pass --checkpoint FILE."
                ) from None
            time.sleep(min(2**attempt, 10))
    digest = file_sha256(partial)
    try:
        _check_digest(digest, expected_sha256, destination)
    except DownloadError:
        partial.unlink()
        raise
    os.replace(partial, destination)
    return digest


def _fetch_into(url: str, partial: Path, progress: DownloadProgress | None = None) -> None:
    import urllib.request

    from tqdm.auto import tqdm

    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": "fashionflow-downloader"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the partial file is complete
            return
        raise
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        name = partial.name.removesuffix(".part")
        bar_class = _reporting_tqdm(progress, name) or tqdm
        with (
            open(partial, "ab" if offset else "wb") as out,
            bar_class(total=total, initial=offset, unit="B", unit_scale=True, desc=name) as bar,
        ):
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if total is not None and partial.stat().st_size != total:
        raise ConnectionError(f"connection closed after {partial.stat().st_size} of {total} bytes")


def _reporting_tqdm(progress: DownloadProgress | None, what: str) -> type | None:
    """A tqdm class that also tells `progress` how far the download of `what` is (None: plain tqdm)."""
    if progress is None:
        return None
    from tqdm.auto import tqdm

    class ReportingTqdm(tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            # Counted here too: a disabled bar (HF_HUB_DISABLE_PROGRESS_BARS, no terminal) counts nothing.
            self.reported = getattr(self, "reported", getattr(self, "initial", 0) or 0) + (n or 0)
            progress(what, int(self.reported), int(self.total) if getattr(self, "total", None) else None)
            return shown

    return ReportingTqdm


def is_web_page(path: Path) -> bool:
    """Whether a downloaded file is a web page: what a share link answers with when it does not lead
    to the file itself (Dropbox with dl=0, an expired link)."""
    with open(path, "rb") as f:
        return f.read(512).lstrip().lower().startswith((b"<!doctype", b"<html"))


def _refuse_web_page(path: Path, url: str) -> None:
    """A web page instead of the checkpoint is refused (and removed, so that the next run fetches again)."""
    if is_web_page(path):
        path.unlink()
        raise DownloadError(
            f"{url} returned a web page, not the checkpoint file. For a Dropbox link, make sure it ends in dl=1 "
            "(a direct download); if the link has expired, download the file by hand and pass --checkpoint FILE."
        )


def _check_digest(digest: str, expected: str | None, path: Path) -> None:
    if expected and digest != expected.lower():
        raise DownloadError(
            f"{path.name} has sha256 {digest}, expected {expected}: the download is corrupt or a different file."
        )


# assembly --------------------------------------------------------------------------------------------------------------


def download_official_pipeline(
    output_dir: str | os.PathLike = DEFAULT_OUTPUT,
    *,
    vae_from: str | os.PathLike | None = None,
    clip_from: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_url: str = CHECKPOINT_URL,
    checkpoint_sha256: str | None = None,
    cache_dir: str | os.PathLike = DEFAULT_CACHE,
    hub_endpoint: str | None = None,
    force: bool = False,
    progress: DownloadProgress | None = None,
    tiny_decoder: bool = True,
    tiny_decoder_from: str | os.PathLike | None = None,
) -> Path:
    """Fetch everything the published model needs and write a complete pipeline folder.

    Args:
        vae_from / clip_from / tiny_decoder_from: local copies of the Hub repositories (folders
            laid out as on the Hub) to use instead of downloading.
        tiny_decoder: also fetch TAESD (madebyollin/taesd, MIT, ~10 MB), the optional decoder
            for quick previews (`decoder="tiny"`).
        checkpoint: a local FashionFlow_checkpoint.pth to use instead of downloading it.
        checkpoint_sha256: the expected checksum of the checkpoint, when known.
        hub_endpoint: a Hugging Face Hub mirror (default: HF_ENDPOINT, else huggingface.co).
        force: replace an existing output folder.
        progress: hears what is being fetched (bytes done and in all) and when converting and
            writing start, for a display other than the terminal's progress bars.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not force:
        raise DownloadError(f"{output_dir} already exists; pass --force to replace it.")
    cache_dir = Path(cache_dir)

    say = progress or (lambda what, done, total: None)
    vae_folder, vae_commit = fetch_hub_source(VAE_SOURCE, vae_from, cache_dir / "hub", hub_endpoint, progress)
    clip_folder, clip_commit = fetch_hub_source(CLIP_SOURCE, clip_from, cache_dir / "hub", hub_endpoint, progress)
    taesd_folder = taesd_commit = None
    if tiny_decoder:
        try:
            taesd_folder, taesd_commit = fetch_hub_source(
                TAESD_SOURCE, tiny_decoder_from, cache_dir / "hub", hub_endpoint, progress
            )
        except DownloadError as error:
            raise DownloadError(
                f"{error}\nThe tiny decoder is optional (quick previews): pass --no-tiny-decoder to go without it, "
                "or --tiny-decoder-from FOLDER with a copy of madebyollin/taesd."
            ) from None
    if checkpoint is not None:
        checkpoint_path = Path(checkpoint)
        if not checkpoint_path.is_file():
            raise DownloadError(f"Checkpoint file not found: {checkpoint_path}")
        checkpoint_sha = file_sha256(checkpoint_path)
        _check_digest(checkpoint_sha, checkpoint_sha256, checkpoint_path)
    else:
        checkpoint_path = cache_dir / CHECKPOINT_FILENAME
        checkpoint_sha = download_file(checkpoint_url, checkpoint_path, checkpoint_sha256, progress=progress)
        _refuse_web_page(checkpoint_path, checkpoint_url)

    sources = [
        _fetched("vae", VAE_SOURCE, vae_commit, vae_from),
        _fetched("image_encoder, feature_extractor", CLIP_SOURCE, clip_commit, clip_from),
        FetchedSource(
            "unet, adapter",
            "the authors' FashionFlow_checkpoint.pth",
            None,
            checkpoint_sha,
            "not stated by the authors",
            str(checkpoint if checkpoint is not None else checkpoint_url),
        ),
    ]
    if taesd_folder is not None:
        sources.append(_fetched("tiny_vae (optional, quick previews)", TAESD_SOURCE, taesd_commit, tiny_decoder_from))

    say("Converting the checkpoint", 0, None)
    pipeline = _assemble(vae_folder, clip_folder, checkpoint_path, taesd_folder)
    say("Writing the model folder", 0, None)
    card = model_card(sources)
    save_pipeline(
        pipeline, output_dir, card, {"fashionflow_sources.json": json.dumps([asdict(s) for s in sources], indent=2)}
    )
    return output_dir


def _fetched(components: str, source: HubSource, commit: str | None, local: str | os.PathLike | None) -> FetchedSource:
    """The model card's record of a Hub repository: fetched at `commit`, or copied from `local`."""
    name = f"{source.repo_id} (subfolder {source.subfolder})" if source.subfolder else source.repo_id
    return FetchedSource(components, name, commit or source.revision, None, source.licence, str(local or source.url))


def _assemble(vae_folder: Path, clip_folder: Path, checkpoint_path: Path, taesd_folder: Path | None = None):
    from diffusers import AutoencoderKL, AutoencoderTiny
    from transformers import CLIPVisionModel

    from ._compat import clip_image_processor_class
    from .convert import convert_checkpoint

    unet, adapter = convert_checkpoint(checkpoint_path)
    try:
        # Pickled .bin weights are read by diffusers / transformers with torch.load(weights_only=True).
        vae = AutoencoderKL.from_pretrained(vae_folder)
        image_encoder = CLIPVisionModel.from_pretrained(clip_folder)
        feature_extractor = clip_image_processor_class().from_pretrained(clip_folder)
        tiny_vae = AutoencoderTiny.from_pretrained(taesd_folder) if taesd_folder is not None else None
    except (OSError, ValueError) as error:
        raise DownloadError(f"The downloaded VAE / CLIP / TAESD files could not be loaded: {error}") from None
    parts = (vae, image_encoder, feature_extractor, unet, adapter)
    return assemble_pipeline(*parts, clip_preprocessing="published-checkpoint", tiny_vae=tiny_vae)


def model_card(sources: list[FetchedSource]) -> str:
    """The published pipeline's card: every source, revision, checksum and licence."""
    rows = [(s.name, s.source, s.revision or "-", s.sha256 or "-", s.licence, s.path) for s in sources]
    return assembly.model_card(
        "FashionFlow (published checkpoint)",
        "A complete `FashionFlowPipeline` folder assembled by `python -m fashionflow download`, which loads offline",
        [
            ("Sources", table(("component", "source", "revision", "sha256", "licence", "fetched from"), rows)),
            (
                None,
                bullets(
                    [
                        "The U-Net and adapter are the authors' published weights (Islam et al., *FashionFlow: Leveraging\n"
                        "  Diffusion Models for Dynamic Fashion Video Synthesis from Static Imagery*, arXiv:2310.00106),\n"
                        "  converted key by key; the authors' repository (github.com/tasinislam21/FashionFlow) states no\n"
                        "  licence for them. They were trained on the UBC Fashion dataset, whose terms are research use.",
                        "The VAE is Stable Diffusion v1-4's (CreativeML OpenRAIL-M: its use restrictions apply).",
                        "CLIP ViT-B/32 is OpenAI's (MIT).",
                        "The tiny decoder (`tiny_vae`, when listed above) is TAESD by Ollin Boer Bohan (MIT), a distilled\n"
                        '  copy of the VAE\'s decoder: `decoder="tiny"` / `--decoder tiny` makes quick previews with it;\n'
                        "  final videos use the VAE.",
                    ]
                ),
            ),
            (
                "Settings",
                bullets(
                    [
                        "`clip_preprocessing: published-checkpoint`: CLIP is fed the way this checkpoint was trained\n"
                        "  (the [0, 1] image is rescaled by 1/255 once more, so CLIP sees an almost black image).",
                        "Pixels enter and leave the VAE in [0, 1]; the noise schedule is the published cosine ramp of beta.",
                    ]
                ),
            ),
        ],
        tags=("image-to-video", "fashion", "video-diffusion"),
        license="other",
    )
