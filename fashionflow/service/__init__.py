"""What the web app does, without the web page: checking requests, running one generation at a
time, cancelling, cleaning up files, and turning failures into sentences for shop staff.

One module per concern:

    errors     ServiceError and its kinds, worded for the person using the app
    settings   Limits, GenerationSettings, validate_settings (what a request may ask for)
    photo      read_photo, preview_photo (the upload, and the frame the model sees)
    model      ModelState, load_model, resolve_model_name (the pipeline the app serves)
    cancel     CancelToken, stops_inside (stops one generation, also inside a step and across ZeroGPU's processes)
    jobs       JobRegistry, Outcome (each browser session's running generations and how the last ended)
    queue      DeviceQueue (one generation at a time, in order; real places in line and waits)
    estimate   SpeedBook, calibrate, measure_speeds (how long a generation takes here, fitted to its recent runs)
    outputs    OutputStore (job folders, swept after a while)
    zerogpu    gpu_seconds_estimate (the GPU time a ZeroGPU call reserves)
    generate   run_generation, GenerationResult, out_of_memory_message (one generation, start to files)
    live_preview  LivePreviews, fit_latent_colours (the video taking shape: each session's latest latents)
    setup      ModelSetup, prepare_model (the model, or how far fetching it has got; tried again after a failure)
    launch     LaunchSettings, env_defaults, build_arg_parser (command line and environment variables)
    boundary   as_service_error (any exception as a titled sentence; unexpected ones logged with a reference)

Out of memory is recognised and memory handed back by `base.memory` (is_out_of_memory,
release_memory, re-exported here), as for the command line.

Nothing here imports Gradio, so all of it is tested directly. `app.py` lays out the page and wires
its events to `fashionflow.page`, whose handlers call this package and translate `ServiceError`
into `gr.Error`. The names below are the package's interface:
`from fashionflow import service; service.validate_settings(...)`.
"""

from ..base.environment import truth as parse_bool
from ..base.memory import is_out_of_memory, release_memory
from .boundary import as_service_error
from .cancel import CancelToken, stops_inside
from .errors import (
    DemoNotReadyError,
    DiskFullError,
    GenerationCancelled,
    InternalError,
    ModelUnavailableError,
    OutOfMemoryError,
    PhotoError,
    ServiceError,
    SettingsError,
)
from .estimate import LONG_RUN_SECONDS, Estimate, SpeedBook, Speeds, calibrate, measure_speeds
from .generate import UNTRAINED_CAPTION, GenerationResult, ProgressReport, out_of_memory_message, run_generation
from .jobs import JobRegistry, Outcome
from .launch import LaunchSettings, build_arg_parser, env_defaults, parse_positive_int, positive_int_argument
from .live_preview import LOOK_BUDGET, LatentSnapshot, LivePreviews, Look, fit_latent_colours
from .model import PUBLISHED_FRAME_SIZE, ModelState, load_model, resolve_model_name
from .outputs import OutputStore, default_output_dir
from .photo import crop_note, example_photos, photo_label, preview_photo, read_photo
from .queue import DeviceQueue, Place, QueueFullError, Ticket
from .settings import (
    FIT_CHOICES,
    FRAMES_AT_A_TIME,
    LIMITS,
    SAMPLER_CHOICES,
    Choice,
    GenerationSettings,
    Limits,
    count,
    length_choices,
    nearest_even_frames,
    random_seed,
    slider_value,
    validate_settings,
)
from .setup import (
    ModelSetup,
    ModelStatus,
    Preparation,
    auto_download_allowed,
    prepare_model,
    published_weights_requested,
    weights_home,
)
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
    "FIT_CHOICES",
    "FRAMES_AT_A_TIME",
    "LIMITS",
    "LOOK_BUDGET",
    "LONG_RUN_SECONDS",
    "PUBLISHED_FRAME_SIZE",
    "SAMPLER_CHOICES",
    "UNTRAINED_CAPTION",
    "ZEROGPU_DECODE_SECONDS_PER_FRAME",
    "ZEROGPU_EXPORT_SECONDS_PER_FRAME",
    "ZEROGPU_MARGIN",
    "ZEROGPU_MIN_SECONDS",
    "ZEROGPU_OVERHEAD_SECONDS",
    "ZEROGPU_SECONDS_PER_FRAME_STEP",
    "CancelToken",
    "Choice",
    "DemoNotReadyError",
    "DeviceQueue",
    "Estimate",
    "DiskFullError",
    "InternalError",
    "GenerationCancelled",
    "GenerationResult",
    "GenerationSettings",
    "JobRegistry",
    "LatentSnapshot",
    "LivePreviews",
    "Look",
    "LaunchSettings",
    "Limits",
    "ModelSetup",
    "ModelState",
    "ModelStatus",
    "ModelUnavailableError",
    "OutOfMemoryError",
    "Outcome",
    "OutputStore",
    "PhotoError",
    "Place",
    "Preparation",
    "ProgressReport",
    "QueueFullError",
    "ServiceError",
    "SettingsError",
    "SpeedBook",
    "Speeds",
    "Ticket",
    "auto_download_allowed",
    "as_service_error",
    "build_arg_parser",
    "calibrate",
    "count",
    "crop_note",
    "default_output_dir",
    "env_defaults",
    "example_photos",
    "fit_latent_colours",
    "gpu_seconds_estimate",
    "is_out_of_memory",
    "length_choices",
    "load_model",
    "measure_speeds",
    "nearest_even_frames",
    "out_of_memory_message",
    "parse_bool",
    "parse_positive_int",
    "photo_label",
    "positive_int_argument",
    "prepare_model",
    "preview_photo",
    "published_weights_requested",
    "random_seed",
    "read_photo",
    "release_memory",
    "resolve_model_name",
    "run_generation",
    "slider_value",
    "stops_inside",
    "validate_settings",
    "weights_home",
]
