"""Loading a FashionFlowPipeline from what a user names: a folder, a Hub id, or `tiny-random`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .base.errors import MISSING, REFUSED_PICKLE, FashionFlowError, is_refused_pickle, literal
from .defaults import DEFAULT_MODEL, DTYPE_NAMES, TINY_RANDOM, ModelSettings
from .runtime import configure_cpu_threads

logger = logging.getLogger(__name__)

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
DOWNLOAD_HINT = (
    "Run `python -m fashionflow download` to fetch the published weights (about 1 GB), "
    f"or pass `--model {TINY_RANDOM}` to try the software with an untrained model (its videos are noise)."
)


class WeightsNotFoundError(FashionFlowError, FileNotFoundError):
    """The named model is not there; the message says what to run."""

    kind = MISSING


def describe_pipeline(pipeline, name: str) -> str:
    """One line for status displays: which weights, on which device, which attention kernel and precision,
    and the settings chosen for this machine (CPU threads, frames per decoder call, decoders, compilation)."""
    label = " (untrained tiny model: its videos are noise)" if pipeline.config.untrained else ""
    dtype = str(pipeline.unet.dtype).removeprefix("torch.")
    device = pipeline.execution_device
    offload = ", CPU offload" if pipeline.cpu_offloaded else ""
    line = f"{name}{label} on {device}{offload}, {dtype}, attention: {pipeline.attention_backend}"
    if device.type == "cpu":
        line += f", {torch.get_num_threads()} CPU threads"
    chunk = pipeline.decode_chunk_size_for("full")
    line += f", decoding {chunk} frame{'s' if chunk > 1 else ''} per call"
    line += ", quick preview: tiny decoder" if "tiny" in pipeline.decoders else ", no tiny decoder"
    if pipeline.compile_settings is not None:
        line += f", {pipeline.compile_settings.describe()}"
    return line


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str) -> torch.dtype:
    """Half precision where it is fast and safe: bfloat16 on CUDA GPUs that have it, else float16; float32 elsewhere."""
    if torch.device(device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_pipeline(
    model: str | os.PathLike = DEFAULT_MODEL,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    attention_backend: str = "auto",
    cpu_offload: bool = False,
    compile: bool = False,
):
    """Load the pipeline `model` names and put it on `device` (best available by default).

    `model` is a pipeline folder (what `python -m fashionflow download` writes), a Hugging Face
    Hub repository id, or "tiny-random". Only weights are loaded, never code from the folder.
    The precision defaults to bfloat16 on GPUs that have it (float16 on older ones, float32 on
    CPUs); on a CPU, no more threads than usable cores. compile: torch.compile the U-Net and the
    decoders (`FashionFlowPipeline.enable_compile`); each new video shape compiles once.
    """
    from .pipeline import FashionFlowPipeline
    from .schedulers import UnsupportedPredictionTypeError
    from .tiny import build_tiny_pipeline

    model = str(model)
    if model == TINY_RANDOM:
        pipeline = build_tiny_pipeline()
    elif Path(model).is_dir():
        if not (Path(model) / "model_index.json").is_file():
            raise WeightsNotFoundError(
                f"{model} is not a FashionFlow pipeline folder (no model_index.json). {DOWNLOAD_HINT}"
            )
        try:
            pipeline = FashionFlowPipeline.from_pretrained(model)
        except UnsupportedPredictionTypeError as error:
            raise unsupported_model_error(model, error) from None
        except Exception as error:
            if is_refused_pickle(error):  # never torch's advice to load it anyway
                pickles = ", ".join(p.relative_to(model).as_posix() for p in _pickled_files(Path(model)))
                raise FashionFlowError(
                    f"The model folder {literal(model)} cannot be loaded: {pickles or 'a pickled file in it'} "
                    f"{REFUSED_PICKLE}. A folder of weights needs none: use one with safetensors weights, or fetch "
                    "it again from a source you trust."
                ) from None
            if not isinstance(error, (OSError, ValueError, KeyError)):
                raise
            raise WeightsNotFoundError(
                f"The model folder {model} is incomplete or damaged ({error}). "
                "Run `python -m fashionflow download --force` to fetch it again."
            ) from None
    elif model != DEFAULT_MODEL and looks_like_hub_id(model):
        from .hub import explain_hub_failure

        try:
            pipeline = FashionFlowPipeline.from_pretrained(model)
        except UnsupportedPredictionTypeError as error:
            raise unsupported_model_error(model, error) from None
        except Exception as error:
            raise WeightsNotFoundError(
                f"{model!r} is not a folder here, and loading it from the Hugging Face Hub failed: "
                f"{explain_hub_failure(error)} " + DOWNLOAD_HINT
            ) from None
    else:
        raise WeightsNotFoundError(missing_model_message(model))

    device = device or best_device()
    if torch.device(device).type == "cpu" or cpu_offload:
        configure_cpu_threads()
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else (dtype or default_dtype(device))
    pipeline.unet.set_attention_backend(attention_backend)
    if cpu_offload:
        pipeline.to(dtype=torch_dtype)
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.to(device, torch_dtype)
    pipeline.set_progress_bar_config(leave=False)
    if compile:
        pipeline.enable_compile()
    return pipeline


def load_pipeline_as(settings: ModelSettings, device: str | None = None, **options):
    """The pipeline `settings` name, loaded as they say (`device` replaces theirs when given; `options`
    are `load_pipeline`'s others)."""
    return load_pipeline(
        settings.model, device or settings.device, settings.dtype, settings.attention, settings.cpu_offload, **options
    )


def missing_model_message(model: str) -> str:
    """What to do when `model` names no folder: `download` writes the default folder unless told otherwise."""
    if model == DEFAULT_MODEL:
        return f"No FashionFlow weights at {model}. {DOWNLOAD_HINT}"
    return (
        f"No FashionFlow weights at {model}: there is no such folder. Check the path; to fetch the published "
        f"weights into it, run `python -m fashionflow download --output {model}`, or pass `--model {TINY_RANDOM}` "
        "to try the software with an untrained model (its videos are noise)."
    )


def unsupported_model_error(model: str, error):
    """The load error of a model whose U-Net predicts something no sampler here can use, naming the model."""
    from .schedulers import PREDICTION_TYPES, UnsupportedPredictionTypeError

    config = Path(model) / "scheduler" / "scheduler_config.json" if Path(model).is_dir() else "its scheduler config"
    return UnsupportedPredictionTypeError(
        f"The model {model} cannot be sampled: {config} has prediction_type {error.prediction_type!r}, and FashionFlow samples only models that predict "
        + " or ".join(repr(p) for p in PREDICTION_TYPES)
        + ".",
        error.prediction_type,
    )


def _pickled_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~")) and not Path(parts[0]).exists()


_looks_like_hub_id = looks_like_hub_id  # the earlier name
