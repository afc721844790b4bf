"""FashionFlow: one still fashion photo in, a short video of the person moving out."""

from . import _compat  # noqa: F401  (log filter for a diffusers quirk)
from .base.lazy import lazy_attributes

__version__ = "0.1.0"

# Imported on first use (PEP 562), so that the command line's `--help` and photo checks do not
# wait seconds for torch and diffusers.
_LAZY = {
    "CheckpointError": ".convert",
    "convert_checkpoint": ".convert",
    "ConditionAdapter": ".models",
    "FashionFlowUNet": ".models",
    "FashionFlowPipeline": ".pipeline",
    "FashionFlowPipelineOutput": ".pipeline",
}

__all__ = [
    "CheckpointError",
    "ConditionAdapter",
    "FashionFlowPipeline",
    "FashionFlowPipelineOutput",
    "FashionFlowUNet",
    "convert_checkpoint",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
