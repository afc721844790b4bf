"""Defaults and choices that the command line's `--help` shows, in a module that imports nothing heavy.

The library modules own these values (pipeline, schedulers, models, loading); the CLI reads
these copies so that `python -m fashionflow --help` answers without importing torch or
diffusers (7 s here). tests/test_batch.py checks that every copy agrees with its owner.
"""

DEFAULT_NUM_FRAMES = 70  # pipeline.DEFAULT_NUM_FRAMES
DEFAULT_DECODE_CHUNK_SIZE = 8  # pipeline.DEFAULT_DECODE_CHUNK_SIZE
SAMPLER_NAMES = ("ddpm", "ddim", "dpm++", "unipc")  # schedulers.SAMPLERS
DEFAULT_SAMPLER = "dpm++"  # schedulers.DEFAULT_SAMPLER
NUM_TRAIN_TIMESTEPS = 1000  # schedulers.NUM_TRAIN_TIMESTEPS: no sampler takes more steps
PREDICTION_TYPES = ("epsilon", "v_prediction")  # schedulers.PREDICTION_TYPES: what the U-Net's output can mean
DTYPE_NAMES = ("float32", "float16", "bfloat16")  # loading.DTYPES
ATTENTION_BACKENDS = ("auto", "sdpa", "xformers")  # models.ATTENTION_BACKENDS
DECODERS = ("full", "tiny")  # runtime.DECODERS (imported from here): the VAE's decoder, or TAESD for quick previews
