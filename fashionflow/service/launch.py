"""How the app is started: `LaunchSettings`, each setting a command-line option and an environment
variable (how Hugging Face Spaces configures an app), read and checked once here for both.

The model's settings (--model, --device, --dtype, --attention, --cpu-offload) are `ModelSettings`,
the ones `python -m fashionflow generate` takes, with the same help and choices.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base.environment import on_spaces, whole_number
from ..base.options import add_arguments, from_environment, option, options_of
from ..defaults import ModelSettings
from ..hub import CHECKPOINT_URL
from .outputs import default_output_dir
from .setup import auto_download_allowed


@dataclass(frozen=True, kw_only=True)
class LaunchSettings(ModelSettings):
    """The web app's settings; each has an option and a variable (the option wins)."""

    host: str = option(
        "127.0.0.1", "address to listen on (0.0.0.0 on Spaces)", env=("FASHIONFLOW_HOST", "GRADIO_SERVER_NAME")
    )
    port: int = option(7860, "port (default: {default})", low=1, env=("FASHIONFLOW_PORT", "GRADIO_SERVER_PORT"))
    share: bool = option(False, "public gradio.live link", env="FASHIONFLOW_SHARE")
    queue_size: int = option(
        16, "requests that may wait; more are turned away (default: {default})", low=1, env="FASHIONFLOW_QUEUE_SIZE"
    )
    output_dir: str | None = option(
        None, "where videos are written (default: the system's temporary folder)", env="FASHIONFLOW_OUTPUT_DIR"
    )
    output_ttl: int = option(
        3600, "seconds a video is kept for download (default: {default})", low=1, env="FASHIONFLOW_OUTPUT_TTL"
    )
    examples: str | None = option(
        None, "folder of example photos shown under the form (default: the app's examples/)", env="FASHIONFLOW_EXAMPLES"
    )
    live_preview: bool = option(
        True,
        "show visitors the video taking shape while it is made: a few frames coloured straight from the model's "
        "working state every few steps (on by default; costs under 5%% of a video's time)",
        on_and_off=True,
        env="FASHIONFLOW_LIVE_PREVIEW",
    )
    auto_download: bool = option(
        False,
        "when the published weights are missing, fetch and convert them in the background (on by default on "
        "Hugging Face Spaces)",
        on_and_off=True,
        env="FASHIONFLOW_AUTO_DOWNLOAD",
    )
    download_retry: int = option(
        30,
        "seconds before fetching the weights again after a failure; the pause doubles after each failure, up to "
        "an hour (default: {default})",
        low=1,
        env="FASHIONFLOW_DOWNLOAD_RETRY",
    )
    checkpoint_url: str = option(
        CHECKPOINT_URL, "where the authors' checkpoint is fetched from", env="FASHIONFLOW_CHECKPOINT_URL", cli=False
    )
    checkpoint_sha256: str | None = option(None, "its expected sha256", env="FASHIONFLOW_CHECKPOINT_SHA256", cli=False)


def parse_positive_int(text: str, name: str) -> int:
    """`text` as a whole number of at least 1, or `ValueError` naming `name` (an option or variable)."""
    return whole_number(text, name, low=1)


def env_defaults(environ: Mapping[str, str]) -> dict[str, Any]:
    """Launch settings from environment variables: every `LaunchSettings` field, its variable's value
    when set, else its default. On Spaces (SPACE_ID set) the app listens on 0.0.0.0 and fetches the
    published weights when they are missing (FASHIONFLOW_AUTO_DOWNLOAD turns that off)."""
    values = {f.name: f.default for f, _ in options_of(LaunchSettings)}
    values.update(host="0.0.0.0" if on_spaces(environ) else "127.0.0.1", output_dir=str(default_output_dir()))
    values["auto_download"] = auto_download_allowed(environ)
    values.update(from_environment(LaunchSettings, environ))
    return values


def positive_int_argument(text: str) -> int:
    """argparse `type=` for options that take a positive whole number."""
    try:
        return parse_positive_int(text, "the value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None


def build_arg_parser(defaults: Mapping[str, Any]) -> argparse.ArgumentParser:
    """The app's command line, with `defaults` (from `env_defaults`); each option's help names its variables."""
    parser = argparse.ArgumentParser(
        description="FashionFlow web app. Every option can also be set by an environment variable (for Spaces)."
    )
    add_arguments(parser, LaunchSettings, defaults=defaults, check_on_parse=True, show_env=True)
    parser.set_defaults(**{f.name: defaults[f.name] for f, opt in options_of(LaunchSettings) if not opt.cli})
    return parser
