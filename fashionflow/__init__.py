"""FashionFlow: one still fashion photo in, a short video of the person moving out."""

from . import _compat  # noqa: F401  (log filter for a diffusers quirk)

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


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
