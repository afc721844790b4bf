from .adapter import ConditionAdapter
from .attention_backend import ATTENTION_BACKENDS, resolve_attention_backend
from .unet import FashionFlowUNet, FashionFlowUNetOutput

__all__ = [
    "ATTENTION_BACKENDS",
    "ConditionAdapter",
    "FashionFlowUNet",
    "FashionFlowUNetOutput",
    "resolve_attention_backend",
]
