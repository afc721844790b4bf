"""fashionflow.service.model: loading the model once, and what the page says about it."""

from __future__ import annotations

import pytest
from app_harness import tiny_model as load_tiny_model

from fashionflow import service
from fashionflow.loading import DEFAULT_MODEL


@pytest.fixture(scope="module")
def tiny_model() -> service.ModelState:
    return load_tiny_model()


# the model -------------------------------------------------------------------------------------------------------


def test_missing_weights_leave_the_app_running_with_instructions(tmp_path):
    model = service.load_model(str(tmp_path / "weights" / "fashionflow-official"))
    assert not model.ready
    status = model.status_markdown()
    assert "python -m fashionflow download" in status and "--model tiny-random" in status
    with pytest.raises(service.ModelUnavailableError, match="python -m fashionflow download"):
        model.require()


def test_tiny_random_is_labelled_untrained(tiny_model):
    assert tiny_model.ready and tiny_model.untrained
    assert tiny_model.status_markdown().startswith("**Untrained test model.**")
    assert "tiny-random" in tiny_model.status_markdown() and "attention: sdpa" in tiny_model.status_markdown()


def test_default_weights_are_found_beside_the_app(tmp_path, monkeypatch):
    app_dir, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    (app_dir / DEFAULT_MODEL).mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert service.resolve_model_name(DEFAULT_MODEL, app_dir) == str(app_dir.resolve() / DEFAULT_MODEL)
    assert service.resolve_model_name("tiny-random", app_dir) == "tiny-random"
    assert service.resolve_model_name("owner/model", app_dir) == "owner/model"
    # the working directory's own weights win
    (elsewhere / DEFAULT_MODEL).mkdir(parents=True)
    assert service.resolve_model_name(DEFAULT_MODEL, app_dir) == DEFAULT_MODEL


def test_default_without_any_weights_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no weights/ folder here, none beside the "app" either
    name = service.resolve_model_name(DEFAULT_MODEL, tmp_path / "app")
    assert name == DEFAULT_MODEL  # not taken for a Hub repository id
    error = service.load_model(name).error
    assert "No FashionFlow weights at weights/fashionflow-official" in error
    assert "python -m fashionflow download" in error and "--model tiny-random" in error
