"""fashionflow.service.setup: a server that fetches, converts and loads the published weights by
itself (Hugging Face Spaces), against the local stand-ins of the Hub and the checkpoint's host."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from stand_ins import serve_sources, stand_in_server, write_sources

from fashionflow import service


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return write_sources(tmp_path_factory.mktemp("sources"))


def not_loaded() -> service.ModelState:
    return service.ModelState(name="weights/fashionflow-official", error="No FashionFlow weights at weights/...")


def follow(setup: service.ModelSetup, timeout: float = 120) -> list[service.ModelStatus]:
    """Every status the page would have shown, polling as the page does, until preparing ends."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = setup.status()
        seen.append(status)
        if status.kind != "preparing":
            return seen
        time.sleep(0.05)
    raise AssertionError(f"still preparing after {timeout} s: {seen[-1]}")


def test_missing_weights_are_fetched_converted_and_loaded_with_progress(sources, tmp_path):
    with stand_in_server() as server:
        checkpoint_url = serve_sources(server, sources)
        server.bytes_per_second = len(server.files[next(iter(server.files))]) / 2  # about 2 s: progress to watch
        setup = service.ModelSetup(not_loaded(), on_spaces=True)
        ready = []
        setup.when_ready(ready.append)
        setup.prepare_in_background(
            tmp_path / "data" / "fashionflow-official",
            service.load_model,
            cache_dir=tmp_path / "cache",
            checkpoint_url=checkpoint_url,
            hub_endpoint=server.url,
        )
        seen = follow(setup)

    preparing = [s for s in seen if s.kind == "preparing"]
    assert preparing and all(not s.can_generate and s.headline.startswith("Preparing the model") for s in preparing)
    checkpoint = [
        s.preparation
        for s in preparing
        if s.preparation.step == "Fetching the FashionFlow model (the authors' checkpoint)"
    ]
    assert len({p.done_bytes for p in checkpoint}) > 2  # real progress, several steps of it
    assert all(p.total_bytes == checkpoint[0].total_bytes for p in checkpoint)
    assert checkpoint[-1].describe().startswith("Fetching the FashionFlow model (the authors' checkpoint): ")
    assert " MB)" in checkpoint[-1].describe()
    assert any(s.preparation.step == "Converting the checkpoint" for s in preparing)
    final = seen[-1]
    assert final.kind == "ready" and final.can_generate and final.headline == "Model ready."
    assert setup.state.ready and not setup.state.untrained  # the published checkpoint's configuration
    assert ready == [setup.state]  # what waited for the model (the speed calibration) heard of it
    assert (tmp_path / "data" / "fashionflow-official" / "model_index.json").is_file()


def test_without_retries_a_failure_keeps_the_details_for_the_operator_and_the_next_start_tries_again(sources, tmp_path):
    target = tmp_path / "weights" / "fashionflow-official"
    with stand_in_server() as server:
        serve_sources(server, sources)
        setup = service.ModelSetup(not_loaded(), on_spaces=True)
        setup.prepare_in_background(
            target,
            service.load_model,
            cache_dir=tmp_path / "cache",
            checkpoint_url=server.url + "/expired-link.pth",
            hub_endpoint=server.url,
            first_retry_seconds=None,
        )
        failed = follow(setup)[-1]
        assert (failed.kind, failed.headline) == (
            "failed",
            "This demo is not ready: it cannot make videos at the moment.",
        )
        assert not failed.can_generate and not failed.changing
        assert "HTTP 404" in failed.details and "tried again on the next start" in failed.details
        assert not target.exists()  # nothing half-written

        # The next start: the link works again; the Hub files fetched before are not fetched twice.
        hub_gets = sum(1 for method, path, _ in server.requests if method == "GET" and "/resolve/" in path)
        again = service.ModelSetup(not_loaded(), on_spaces=True)
        again.prepare_in_background(
            target,
            service.load_model,
            cache_dir=tmp_path / "cache",
            checkpoint_url=serve_sources(server, sources),
            hub_endpoint=server.url,
        )
        assert follow(again)[-1].kind == "ready"
        assert sum(1 for method, path, _ in server.requests if method == "GET" and "/resolve/" in path) == hub_gets


def test_a_hub_out_of_reach_is_tried_again_by_itself_and_visitors_are_told_so_in_their_words(sources, tmp_path):
    with stand_in_server() as server:
        checkpoint_url = serve_sources(server, sources)
        server.unreachable = True
        setup = service.ModelSetup(not_loaded(), on_spaces=True)
        setup.prepare_in_background(
            tmp_path / "weights" / "fashionflow-official",
            service.load_model,
            cache_dir=tmp_path / "cache",
            checkpoint_url=checkpoint_url,
            hub_endpoint=server.url,
            first_retry_seconds=0.2,
        )
        try:
            failed = follow(setup)[-1]
            assert failed.kind == "failed" and failed.changing and not failed.can_generate
            assert failed.headline.startswith("This demo is not ready yet. It tries again by itself (next try in ")
            assert "python" not in failed.headline and "1st try" in failed.details
            with pytest.raises(service.DemoNotReadyError, match="tries again by itself") as caught:
                setup.require()  # what the API and the examples say: a visitor's sentence, no commands
            assert caught.value.title == "Not ready yet" and "python" not in str(caught.value)
            while "3rd try" not in setup.status().details:  # tried again, and again, by itself
                time.sleep(0.05)
            server.unreachable = False  # the Hub is back: the next try succeeds, without a restart
            while not setup.status().can_generate:
                time.sleep(0.05)
        finally:
            setup.stop()
    assert setup.status().kind == "ready" and setup.require() is setup.state


def test_the_pause_between_tries_doubles_up_to_an_hour():
    from itertools import islice

    from fashionflow.service.setup import retry_pauses

    assert list(islice(retry_pauses(30), 9)) == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_while_the_model_is_on_its_way_visitors_are_asked_to_come_back(sources, tmp_path):
    with stand_in_server() as server:
        checkpoint_url = serve_sources(server, sources)
        server.bytes_per_second = len(server.files[next(iter(server.files))]) / 2
        setup = service.ModelSetup(not_loaded(), on_spaces=True)
        setup.prepare_in_background(
            tmp_path / "fashionflow-official",
            service.load_model,
            cache_dir=tmp_path / "cache",
            checkpoint_url=checkpoint_url,
            hub_endpoint=server.url,
        )
        with pytest.raises(service.DemoNotReadyError, match="still getting ready.*try again in a few minutes"):
            setup.require()
        assert follow(setup)[-1].kind == "ready"


def test_weights_from_an_earlier_start_are_loaded_without_fetching(sources, tmp_path):
    target = tmp_path / "fashionflow-official"
    with stand_in_server() as server:
        url = serve_sources(server, sources)
        first = service.ModelSetup(not_loaded())
        first.prepare_in_background(target, service.load_model, cache_dir=tmp_path / "c", checkpoint_url=url,
                                    hub_endpoint=server.url)  # fmt: skip
        assert follow(first)[-1].kind == "ready"
        requests = len(server.requests)
        second = service.ModelSetup(not_loaded())
        second.prepare_in_background(target, service.load_model, cache_dir=tmp_path / "c", checkpoint_url=url,
                                     hub_endpoint=server.url)  # fmt: skip
        assert follow(second)[-1].kind == "ready" and len(server.requests) == requests


def test_missing_weights_without_downloading():
    local = service.ModelSetup(not_loaded()).status()
    assert local.kind == "missing" and local.headline == "No model loaded: the app cannot make videos yet."
    assert "No FashionFlow weights" in local.details and "restart the app" in local.details
    with pytest.raises(service.ModelUnavailableError, match="No FashionFlow weights"):  # the operator's own app
        service.ModelSetup(not_loaded()).require()
    space = service.ModelSetup(not_loaded(), on_spaces=True)
    # A Space that does not fetch its weights: visitors get no commands, and no promise of "later".
    assert space.status().headline == "This demo is not ready: it cannot make videos at the moment."
    assert "FASHIONFLOW_AUTO_DOWNLOAD" in space.status().details
    with pytest.raises(service.DemoNotReadyError, match="cannot make videos at the moment"):
        space.require()


def test_the_untrained_model_is_a_warning(tmp_path):
    from app_harness import tiny_model

    status = service.ModelSetup(tiny_model()).status()
    assert status.kind == "untrained" and status.can_generate
    assert status.headline == "Untrained test model: its videos are noise, not real results."
    assert "tiny-random" in status.details and "attention" in status.details  # technical: folded away


@pytest.mark.parametrize(
    "environ, allowed",
    [
        ({}, False),
        ({"SPACE_ID": "shop/fashionflow"}, True),
        ({"SPACE_ID": "shop/fashionflow", "FASHIONFLOW_AUTO_DOWNLOAD": "0"}, False),
        ({"FASHIONFLOW_AUTO_DOWNLOAD": "true"}, True),
    ],
)
def test_downloading_is_on_by_default_on_spaces_only(environ, allowed):
    assert service.auto_download_allowed(environ) is allowed
    assert service.env_defaults(environ)["auto_download"] is allowed


def test_a_malformed_auto_download_variable_is_refused():
    with pytest.raises(ValueError, match="FASHIONFLOW_AUTO_DOWNLOAD must be true or false"):
        service.auto_download_allowed({"FASHIONFLOW_AUTO_DOWNLOAD": "maybe"})


def test_weights_go_to_persistent_storage_when_the_space_has_it(tmp_path):
    persistent, cache = tmp_path / "data", tmp_path / "cache"
    assert service.weights_home(persistent, cache) == cache
    persistent.mkdir()
    assert service.weights_home(persistent, cache) == persistent / "fashionflow"


def test_preparation_in_words():
    assert service.Preparation("Fetching the image encoder (CLIP)", 260_000_000, 605_000_000).describe() == (
        "Fetching the image encoder (CLIP): 43% (260 of 605 MB)"
    )
    assert service.Preparation("Fetching x", 150_000, 300_000).describe() == "Fetching x: 50% (0.1 of 0.3 MB)"
    assert service.Preparation("Converting the checkpoint").describe() == "Converting the checkpoint"
