"""fashionflow.service.launch: options from the environment; and the package stays free of Gradio."""

from __future__ import annotations

import subprocess
import sys

import pytest
from app_harness import ROOT

from fashionflow import service
from fashionflow.hub import CHECKPOINT_URL
from fashionflow.loading import DEFAULT_MODEL

# environment variables -------------------------------------------------------------------------------------------------------


def test_launch_options_from_the_environment():
    assert service.env_defaults({}) | {"output_dir": None} == {
        "model": DEFAULT_MODEL,
        "host": "127.0.0.1",
        "port": 7860,
        "share": False,
        "device": None,
        "dtype": None,
        "attention": "auto",
        "cpu_offload": False,
        "queue_size": 16,
        "output_dir": None,
        "output_ttl": 3600,
        "examples": None,
        "auto_download": False,
        "checkpoint_url": CHECKPOINT_URL,
        "checkpoint_sha256": None,
        "download_retry": 30,
        "live_preview": True,
    }
    spaces = service.env_defaults({"SPACE_ID": "shop/fashionflow", "FASHIONFLOW_MODEL": "shop/weights"})
    assert spaces["host"] == "0.0.0.0" and spaces["model"] == "shop/weights"
    gradio_vars = service.env_defaults({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8080"})
    assert (gradio_vars["host"], gradio_vars["port"]) == ("0.0.0.0", 8080)
    ours = service.env_defaults(
        {
            "GRADIO_SERVER_PORT": "8080",
            "FASHIONFLOW_PORT": "9000",
            "FASHIONFLOW_HOST": "10.0.0.2",
            "FASHIONFLOW_SHARE": "true",
        }
    )
    assert (ours["host"], ours["port"], ours["share"]) == ("10.0.0.2", 9000, True)
    ours = service.env_defaults({"FASHIONFLOW_DTYPE": "bfloat16", "FASHIONFLOW_CPU_OFFLOAD": "yes"})
    assert (ours["dtype"], ours["cpu_offload"]) == ("bfloat16", True)
    for bad in ({"FASHIONFLOW_PORT": "http"}, {"FASHIONFLOW_QUEUE_SIZE": "0"}):
        with pytest.raises(ValueError, match="must be a positive whole number"):
            service.env_defaults(bad)
    with pytest.raises(ValueError, match="FASHIONFLOW_SHARE must be true or false"):
        service.env_defaults({"FASHIONFLOW_SHARE": "sometimes"})


def test_importing_the_service_does_not_import_gradio():
    """The service is the app without its page: scripts, tests and workers import it without Gradio."""
    code = "import sys, fashionflow.service; print('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_positive_whole_numbers_have_one_parser():
    assert service.parse_positive_int("8", "FASHIONFLOW_PORT") == 8
    for bad in ("0", "-3", "1.5", "", "port"):
        with pytest.raises(ValueError, match="FASHIONFLOW_PORT must be a positive whole number"):
            service.parse_positive_int(bad, "FASHIONFLOW_PORT")
