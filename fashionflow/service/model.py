"""The model the app serves: loading it once, and what the page says about it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..loading import DEFAULT_MODEL, WeightsNotFoundError, describe_pipeline, load_pipeline
from .errors import ModelUnavailableError, SettingsError

logger = logging.getLogger(__name__)

# The published model's frame (adapter latent 80 x 64, VAE scale 8): what the preview shows
# when no model is loaded, so that framing can be checked before the weights are there.
PUBLISHED_FRAME_SIZE = (640, 512)


@dataclass(frozen=True)
class ModelState:
    """The pipeline the app serves, or why there is none."""

    name: str
    pipeline: Any = None
    description: str = ""
    error: str | None = None
    untrained: bool = False

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames the model makes."""
        return tuple(self.pipeline.frame_size) if self.ready else PUBLISHED_FRAME_SIZE

    def require(self) -> None:
        if not self.ready:
            raise ModelUnavailableError(self.error or f"The model {self.name} is not loaded.")

    @property
    def has_quick_preview(self) -> bool:
        """Whether the model holds the tiny decoder that quick previews use."""
        return self.ready and "tiny" in getattr(self.pipeline, "decoders", ("full",))

    def require_decoder(self, decoder: str) -> None:
        if decoder == "tiny" and not self.has_quick_preview:
            raise SettingsError(
                f"Quick preview needs the tiny decoder, which the model {self.name} does not have. Turn Quick preview "
                "off, or add the decoder with `python -m fashionflow download --force` and restart the app."
            )

    def status_markdown(self) -> str:
        """The page's status line: which weights, where, how; or exactly what to do."""
        if not self.ready:
            return (
                f"**No model loaded: the app cannot make videos yet.**\n\n{self.error}\n\n"
                "Then restart the app. On Hugging Face Spaces, set the `FASHIONFLOW_MODEL` variable to a "
                "model folder or Hub id instead."
            )
        if self.untrained:
            return f"**Untrained test model.** Model: {self.description}"
        return f"Model: {self.description}"


def resolve_model_name(name: str, app_dir: str | os.PathLike) -> str:
    """Where to look for `name`: the default weights folder also beside the app, not only under the
    working directory, so that `python /path/to/app.py` finds the checkout's weights."""
    if name != DEFAULT_MODEL or Path(name).exists():
        return name
    beside = Path(app_dir).resolve() / name
    return str(beside) if beside.exists() else name


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    dtype: str | None = None,
    attention_backend: str = "auto",
    cpu_offload: bool = False,
) -> ModelState:
    """Load the pipeline once; missing or unusable weights give a `ModelState` that says why, not an exception."""
    from ..schedulers import UnsupportedPredictionTypeError

    try:
        pipeline = load_pipeline(
            name, device=device, dtype=dtype, attention_backend=attention_backend, cpu_offload=cpu_offload
        )
    except (WeightsNotFoundError, UnsupportedPredictionTypeError) as error:
        logger.warning("No model loaded: %s", error)
        return ModelState(name=str(name), error=str(error))
    return ModelState(
        name=str(name),
        pipeline=pipeline,
        description=describe_pipeline(pipeline, str(name)),
        untrained=bool(pipeline.config.untrained),
    )
