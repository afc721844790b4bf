"""FashionFlow: one still fashion photo in, a short video of the person moving out."""

from . import _compat  # noqa: F401  (log filter for a diffusers quirk)
from .convert import CheckpointError, convert_checkpoint
from .models import ConditionAdapter, FashionFlowUNet
from .pipeline import FashionFlowPipeline, FashionFlowPipelineOutput

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConditionAdapter",
    "FashionFlowPipeline",
    "FashionFlowPipelineOutput",
    "FashionFlowUNet",
    "convert_checkpoint",
]
