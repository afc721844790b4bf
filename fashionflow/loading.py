"""Loading a FashionFlowPipeline from what a user names: a folder, a Hub id, or `tiny-random`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .base.errors import MISSING, REFUSED_PICKLE, FashionFlowError, is_refused_pickle, literal
from .defaults import DEFAULT_MODEL, DTYPE_NAMES, TINY_RANDOM, ModelSettings
from .runtime import CpuSettings, choose_cpu_settings, configure_cpu_threads, dtype_name

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
    """One line for status displays: which weights, on which device, which precision and layout (and on a
    CPU why), which attention kernel, and the settings chosen for this machine (CPU threads, frames per
    decoder call, decoders, compilation)."""
    label = " (untrained tiny model: its videos are noise)" if pipeline.config.untrained else ""
    device = pipeline.execution_device
    offload = ", CPU offload" if pipeline.cpu_offloaded else ""
    line = (
        f"{name}{label} on {device}{offload}, {describe_precision(pipeline)}, attention: {pipeline.attention_backend}"
    )
    if device.type == "cpu":
        line += f", {torch.get_num_threads()} CPU threads"
    chunk = pipeline.decode_chunk_size_for("full")
    line += f", decoding {chunk} frame{'s' if chunk > 1 else ''} per call"
    line += ", quick preview: tiny decoder" if "tiny" in pipeline.decoders else ", no tiny decoder"
    if pipeline.compile_settings is not None:
        line += f", {pipeline.compile_settings.describe()}"
    return line


def describe_precision(pipeline) -> str:
    """The precision and layout that run, with the reason `load_pipeline` chose them on a CPU (e.g. "float32
    (this CPU has no bfloat16 units), channels-last convolutions"); just the precision when they were set
    otherwise."""
    settings: CpuSettings | None = pipeline.cpu_settings
    unet, vae = pipeline.unet, pipeline.vae
    if (
        settings is not None
        and pipeline.execution_device.type == "cpu"
        and (unet.dtype, vae.dtype) == (settings.unet.dtype, settings.decoders.dtype)
        and (unet.convolution_layout == "channels-last") == settings.unet.channels_last
    ):
        return settings.describe()
    text = dtype_name(unet.dtype)
    if vae.dtype != unet.dtype:
        text += f" (VAE {dtype_name(vae.dtype)})"
    return text + (", channels-last U-Net" if unet.convolution_layout == "channels-last" else "")


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str) -> torch.dtype:
    """Half precision where it is fast and safe: bfloat16 on CUDA GPUs that have it, else float16; on a CPU
    bfloat16 where it has bfloat16 units and a probe finds it faster (`runtime.choose_cpu_settings`: the
    U-Net's precision); float32 elsewhere."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "cpu":
        return choose_cpu_settings().unet.dtype
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
    The precision defaults to bfloat16 on GPUs that have it (float16 on older ones); on a CPU to
    bfloat16 where it has bfloat16 units and a short probe finds it faster, stage by stage, else
    float32, with the convolutions' layout chosen too (`runtime.choose_cpu_settings`; `dtype` given
    decides the precision). On a CPU, no more threads than usable cores. compile: torch.compile the
    U-Net and the decoders (`FashionFlowPipeline.enable_compile`); each new video shape compiles once.
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
    on_cpu = torch.device(device).type == "cpu"
    if on_cpu or cpu_offload:
        configure_cpu_threads()
    requested = DTYPES[dtype] if isinstance(dtype, str) else dtype
    cpu_settings = choose_cpu_settings(requested) if on_cpu and not cpu_offload else None
    torch_dtype = cpu_settings.unet.dtype if cpu_settings else (requested or default_dtype(device))
    pipeline.unet.set_attention_backend(attention_backend)
    if cpu_offload:
        pipeline.to(dtype=torch_dtype)
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.to(device, torch_dtype)
    if cpu_settings is not None:
        apply_cpu_settings(pipeline, cpu_settings)
    pipeline.set_progress_bar_config(leave=False)
    if compile:
        pipeline.enable_compile()
    return pipeline


def apply_cpu_settings(pipeline, settings: CpuSettings) -> None:
    """Put the pipeline's models in the precision and layout `settings` chose for this CPU: CLIP and the
    adapter follow the U-Net, the VAE (its encoder too) and the tiny decoder follow the decoders."""
    for model in (pipeline.unet, pipeline.adapter, pipeline.image_encoder):
        model.to(dtype=settings.unet.dtype)
    pipeline.unet.set_convolution_layout("channels-last" if settings.unet.channels_last else "channels-first")
    memory_format = torch.channels_last if settings.decoders.channels_last else torch.contiguous_format
    for model in (pipeline.vae, pipeline.tiny_vae):
        if model is not None:
            model.to(dtype=settings.decoders.dtype, memory_format=memory_format)
    pipeline.cpu_settings = settings


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
