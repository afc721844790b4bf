"""How the app is started: command-line options, each with an environment variable (how Hugging
Face Spaces configures an app), checked once here for both."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ..base.environment import env_flag, env_whole_number, on_spaces, whole_number
from ..loading import DEFAULT_MODEL, DTYPES
from ..models import ATTENTION_BACKENDS
from .outputs import default_output_dir
from .setup import auto_download_allowed


def parse_positive_int(text: str, name: str) -> int:
    """`text` as a whole number of at least 1, or `ValueError` naming `name` (an option or variable)."""
    return whole_number(text, name, low=1)


def env_defaults(environ: Mapping[str, str]) -> dict[str, Any]:
    """Launch settings from environment variables (how Hugging Face Spaces configures an app).

    FASHIONFLOW_MODEL, FASHIONFLOW_HOST (or GRADIO_SERVER_NAME), FASHIONFLOW_PORT (or
    GRADIO_SERVER_PORT), FASHIONFLOW_SHARE, FASHIONFLOW_DEVICE, FASHIONFLOW_DTYPE,
    FASHIONFLOW_ATTENTION, FASHIONFLOW_CPU_OFFLOAD, FASHIONFLOW_QUEUE_SIZE,
    FASHIONFLOW_OUTPUT_DIR, FASHIONFLOW_OUTPUT_TTL (seconds), FASHIONFLOW_EXAMPLES (a folder of
    example photos), FASHIONFLOW_AUTO_DOWNLOAD (fetch the published weights when they are missing;
    on by default on Spaces), FASHIONFLOW_CHECKPOINT_URL and FASHIONFLOW_CHECKPOINT_SHA256 (where
    that fetches the authors' checkpoint from, and its checksum). On Spaces (SPACE_ID set) the app
    listens on 0.0.0.0.
    """
    from ..hub import CHECKPOINT_URL

    host = (
        environ.get("FASHIONFLOW_HOST")
        or environ.get("GRADIO_SERVER_NAME")
        or ("0.0.0.0" if on_spaces(environ) else "127.0.0.1")
    )
    return {
        "model": environ.get("FASHIONFLOW_MODEL") or DEFAULT_MODEL,
        "host": host,
        "port": env_whole_number(("FASHIONFLOW_PORT", "GRADIO_SERVER_PORT"), 7860, environ),
        "share": env_flag("FASHIONFLOW_SHARE", environ),
        "device": environ.get("FASHIONFLOW_DEVICE") or None,
        "dtype": environ.get("FASHIONFLOW_DTYPE") or None,
        "attention": environ.get("FASHIONFLOW_ATTENTION") or "auto",
        "cpu_offload": env_flag("FASHIONFLOW_CPU_OFFLOAD", environ),
        "queue_size": env_whole_number(("FASHIONFLOW_QUEUE_SIZE",), 16, environ),
        "output_dir": environ.get("FASHIONFLOW_OUTPUT_DIR") or str(default_output_dir()),
        "output_ttl": env_whole_number(("FASHIONFLOW_OUTPUT_TTL",), 3600, environ),
        "examples": environ.get("FASHIONFLOW_EXAMPLES") or None,
        "auto_download": auto_download_allowed(environ),
        "checkpoint_url": environ.get("FASHIONFLOW_CHECKPOINT_URL") or CHECKPOINT_URL,
        "checkpoint_sha256": environ.get("FASHIONFLOW_CHECKPOINT_SHA256") or None,
    }


def positive_int_argument(text: str) -> int:
    """argparse `type=` for options that take a positive whole number."""
    try:
        return parse_positive_int(text, "the value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None


def build_arg_parser(defaults: Mapping[str, Any]) -> argparse.ArgumentParser:
    """The app's command line, with `defaults` (from `env_defaults`) naming each option's variable."""
    parser = argparse.ArgumentParser(
        description="FashionFlow web app. Every option can also be set by an environment variable (for Spaces)."
    )
    parser.add_argument(
        "--model",
        default=defaults["model"],
        help="pipeline folder, Hugging Face Hub id, or tiny-random [FASHIONFLOW_MODEL; default: %(default)s]",
    )
    parser.add_argument(
        "--host", default=defaults["host"], help="address to listen on [FASHIONFLOW_HOST, GRADIO_SERVER_NAME]"
    )
    parser.add_argument(
        "--port",
        type=positive_int_argument,
        default=defaults["port"],
        help="port [FASHIONFLOW_PORT, GRADIO_SERVER_PORT; 7860]",
    )
    parser.add_argument(
        "--share", action="store_true", default=defaults["share"], help="public gradio.live link [FASHIONFLOW_SHARE]"
    )
    parser.add_argument(
        "--device", default=defaults["device"], help="cuda, cuda:1, mps or cpu [FASHIONFLOW_DEVICE; the best present]"
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=defaults["dtype"],
        help="[FASHIONFLOW_DTYPE; half precision on CUDA, float32 elsewhere]",
    )
    parser.add_argument(
        "--attention", choices=ATTENTION_BACKENDS, default=defaults["attention"], help="[FASHIONFLOW_ATTENTION]"
    )
    parser.add_argument(
        "--cpu-offload",
        action="store_true",
        default=defaults["cpu_offload"],
        help="keep idle model parts in CPU memory [FASHIONFLOW_CPU_OFFLOAD]",
    )
    parser.add_argument(
        "--queue-size",
        type=positive_int_argument,
        default=defaults["queue_size"],
        help="requests that may wait; more are turned away [FASHIONFLOW_QUEUE_SIZE; %(default)s]",
    )
    parser.add_argument(
        "--output-dir", default=defaults["output_dir"], help="where videos are written [FASHIONFLOW_OUTPUT_DIR]"
    )
    parser.add_argument(
        "--output-ttl",
        type=positive_int_argument,
        default=defaults["output_ttl"],
        help="seconds a video is kept for download [FASHIONFLOW_OUTPUT_TTL; %(default)s]",
    )
    parser.add_argument(
        "--examples",
        default=defaults["examples"],
        help="folder of example photos shown under the form [FASHIONFLOW_EXAMPLES; default: the app's examples/]",
    )
    parser.add_argument(
        "--auto-download",
        action=argparse.BooleanOptionalAction,
        default=defaults["auto_download"],
        help="when the published weights are missing, fetch and convert them in the background "
        "[FASHIONFLOW_AUTO_DOWNLOAD; on by default on Hugging Face Spaces]",
    )
    parser.set_defaults(checkpoint_url=defaults["checkpoint_url"], checkpoint_sha256=defaults["checkpoint_sha256"])
    return parser
