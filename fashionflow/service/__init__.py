"""What the web app does, without the web page: checking requests, running one generation at a
time, cancelling, cleaning up files, and turning failures into sentences for shop staff.

One module per concern:

    errors     ServiceError and its kinds, worded for the person using the app
    settings   Limits, GenerationSettings, validate_settings (what a request may ask for)
    photo      read_photo, preview_photo (the upload, and the frame the model sees)
    model      ModelState, load_model, resolve_model_name (the pipeline the app serves)
    cancel     CancelToken (stops one generation, also across ZeroGPU's process boundary)
    jobs       JobRegistry (each browser session's running generations)
    outputs    OutputStore (job folders, swept after a while)
    memory     is_out_of_memory, out_of_memory_message, release_memory
    zerogpu    gpu_seconds_estimate (the GPU time a ZeroGPU call reserves)
    generate   run_generation, GenerationResult (one generation, start to files)
    launch     env_defaults, build_arg_parser (command line and environment variables)
    boundary   as_service_error (any exception as a titled sentence; unexpected ones logged with a reference)

Nothing here imports Gradio, so all of it is tested directly. `app.py` builds the page and
translates `ServiceError` into `gr.Error`. The names below are the package's interface:
`from fashionflow import service; service.validate_settings(...)`.
"""

from .boundary import as_service_error
from .cancel import CancelToken
from .errors import (
    DiskFullError,
    GenerationCancelled,
    InternalError,
    ModelUnavailableError,
    OutOfMemoryError,
    PhotoError,
    ServiceError,
    SettingsError,
)
from .generate import GenerationResult, ProgressReport, run_generation
from .jobs import JobRegistry
from .launch import build_arg_parser, env_defaults, parse_bool, parse_positive_int, positive_int_argument
from .memory import is_out_of_memory, out_of_memory_message, release_memory
from .model import PUBLISHED_FRAME_SIZE, ModelState, load_model, resolve_model_name
from .outputs import OutputStore, default_output_dir
from .photo import preview_photo, read_photo
from .settings import LIMITS, GenerationSettings, Limits, random_seed, validate_settings
from .zerogpu import (
    ZEROGPU_DECODE_SECONDS_PER_FRAME,
    ZEROGPU_EXPORT_SECONDS_PER_FRAME,
    ZEROGPU_MARGIN,
    ZEROGPU_MIN_SECONDS,
    ZEROGPU_OVERHEAD_SECONDS,
    ZEROGPU_SECONDS_PER_FRAME_STEP,
    gpu_seconds_estimate,
)

__all__ = [
    "LIMITS",
    "PUBLISHED_FRAME_SIZE",
    "ZEROGPU_DECODE_SECONDS_PER_FRAME",
    "ZEROGPU_EXPORT_SECONDS_PER_FRAME",
    "ZEROGPU_MARGIN",
    "ZEROGPU_MIN_SECONDS",
    "ZEROGPU_OVERHEAD_SECONDS",
    "ZEROGPU_SECONDS_PER_FRAME_STEP",
    "CancelToken",
    "DiskFullError",
    "InternalError",
    "GenerationCancelled",
    "GenerationResult",
    "GenerationSettings",
    "JobRegistry",
    "Limits",
    "ModelState",
    "ModelUnavailableError",
    "OutOfMemoryError",
    "OutputStore",
    "PhotoError",
    "ProgressReport",
    "ServiceError",
    "SettingsError",
    "as_service_error",
    "build_arg_parser",
    "default_output_dir",
    "env_defaults",
    "gpu_seconds_estimate",
    "is_out_of_memory",
    "load_model",
    "out_of_memory_message",
    "parse_bool",
    "parse_positive_int",
    "positive_int_argument",
    "preview_photo",
    "random_seed",
    "read_photo",
    "release_memory",
    "resolve_model_name",
    "run_generation",
    "validate_settings",
]
