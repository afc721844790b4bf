"""Defaults and choices that the command line's `--help` shows, and the settings of loading a model,
in a module that imports nothing heavy (no torch, no diffusers: `--help` answers at once).

The library modules take these values from here (the pipeline, the schedulers, the models,
loading, image.py, video.py); tests/test_batch.py checks that each agrees with what its module
works with.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base.options import option

DEFAULT_MODEL = "weights/fashionflow-official"  # where `python -m fashionflow download` writes the published weights
TINY_RANDOM = "tiny-random"  # a tiny untrained pipeline built in-process (tiny.py)
DEFAULT_NUM_FRAMES = 70  # pipeline.DEFAULT_NUM_FRAMES: the clips the published model was trained on
# The pipeline picks the frames per decoder call from the device when given None (runtime.py); 8
# is the former fixed default, still where the app's slider starts and what the protocol uses.
DEFAULT_DECODE_CHUNK_SIZE = 8
SAMPLER_NAMES = ("ddpm", "ddim", "dpm++", "unipc")  # schedulers.SAMPLERS
DEFAULT_SAMPLER = "dpm++"
NUM_TRAIN_TIMESTEPS = 1000  # the published schedule's length: no sampler takes more steps
PREDICTION_TYPES = ("epsilon", "v_prediction")  # schedulers.PREDICTION_TYPES: what the U-Net's output can mean
DTYPE_NAMES = ("float32", "float16", "bfloat16")  # loading.DTYPES
ATTENTION_BACKENDS = ("auto", "sdpa", "xformers")  # models.attention_backend
DECODERS = ("full", "tiny")  # the VAE's decoder, or TAESD for quick previews (runtime.DECODERS)
# How a photo fills the model's frame (image.frame_image): keep it whole with margins, cut it, or squeeze it.
FIT_MODES = ("pad", "crop", "stretch")
DEFAULT_FIT = "pad"
VIDEO_FORMATS = ("mp4", "gif")  # what video.export_video writes
DEFAULT_FPS = 25
# Frame rates a video may have: browsers and GIF timing (10 ms units) cope with these. The app's
# slider, the pipeline and the writer all check against these two numbers.
MIN_FPS, MAX_FPS = 1, 60


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which model to load and how: the settings `generate`, `evaluate` and the web app share (the app
    also reads them from the environment variables named here)."""

    model: str = option(
        DEFAULT_MODEL,
        "pipeline folder, Hugging Face Hub id, or tiny-random (default: {default})",
        env="FASHIONFLOW_MODEL",
    )
    device: str | None = option(
        None, "cuda, cuda:1, mps or cpu (default: the best one present)", env="FASHIONFLOW_DEVICE"
    )
    dtype: str | None = option(
        None,
        "precision (default: bfloat16/float16 on CUDA; on a CPU bfloat16 where it has bfloat16 units (AMX, "
        "AVX512-BF16) and a short probe finds it faster, else float32)",
        choices=DTYPE_NAMES,
        env="FASHIONFLOW_DTYPE",
    )
    attention: str = option(
        "auto", "attention kernel (default: {default})", choices=ATTENTION_BACKENDS, env="FASHIONFLOW_ATTENTION"
    )
    cpu_offload: bool = option(
        False, "keep models in CPU memory until used (saves GPU memory)", env="FASHIONFLOW_CPU_OFFLOAD"
    )
