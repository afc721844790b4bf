"""FashionFlow: one still fashion photo in, a short video of the person moving out."""

from .convert import CheckpointError, convert_checkpoint
from .models import ConditionAdapter, FashionFlowUNet

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConditionAdapter", "FashionFlowUNet", "convert_checkpoint"]
