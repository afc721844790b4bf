"""Fetching the weights and assembling the pipeline folder, against local stand-ins for the network."""

import hashlib
import json

import huggingface_hub.constants
import pytest
import torch
from diffusers import AutoencoderTiny
from PIL import Image
from stand_ins import CHECKPOINT_PATH, CLIP_COMMIT, TAESD_COMMIT, serve_sources, stand_in_server, write_sources

from fashionflow import FashionFlowPipeline
from fashionflow.cli import main as cli_main
from fashionflow.hub import (
    TAESD_SOURCE,
    VAE_SOURCE,
    DownloadError,
    download_file,
    download_official_pipeline,
    fetch_hub_source,
)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """Tiny copies of the three sources, laid out as the real ones are."""
    return write_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture
def server(stand_ins):
    with stand_in_server() as server:
        serve_sources(server, stand_ins)
        yield server


def checkpoint_gets(server) -> int:
    return sum(1 for method, path, _ in server.requests if method == "GET" and path == CHECKPOINT_PATH)


def test_download_assembles_a_pipeline_that_loads_and_runs(server, stand_ins, tmp_path):
    out = download_official_pipeline(
        tmp_path / "weights" / "fashionflow-official",
        checkpoint_url=server.url + CHECKPOINT_PATH,
        cache_dir=tmp_path / "cache",
        hub_endpoint=server.url,
    )
    # the VAE came from the pinned revision, the .bin fallback was taken, and everything is safetensors now
    assert (
        "GET",
        f"/{VAE_SOURCE.repo_id}/resolve/{VAE_SOURCE.revision}/vae/diffusion_pytorch_model.bin",
        None,
    ) in server.requests
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pth"))
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").is_file()

    checksum = hashlib.sha256((stand_ins / "FashionFlow_checkpoint.pth").read_bytes()).hexdigest()
    card = (out / "README.md").read_text()
    assert checksum in card and VAE_SOURCE.revision in card and CLIP_COMMIT in card and "CreativeML OpenRAIL-M" in card
    sources = {s["name"]: s for s in json.loads((out / "fashionflow_sources.json").read_text())}
    assert sources["unet, adapter"]["sha256"] == checksum

    pipe = FashionFlowPipeline.from_pretrained(out)
    assert pipe.config.clip_preprocessing == "published-checkpoint"
    video = pipe(Image.new("RGB", (200, 260), "teal"), num_frames=4, num_inference_steps=2, output_type="pt").frames
    assert video.shape == (1, 4, 3, 128, 128)


def test_local_copies_instead_of_the_network(stand_ins, tmp_path):
    out = download_official_pipeline(
        tmp_path / "out",
        vae_from=stand_ins / "sd",
        clip_from=stand_ins / "clip",
        tiny_decoder_from=stand_ins / "taesd",
        checkpoint=stand_ins / "FashionFlow_checkpoint.pth",
        cache_dir=tmp_path / "cache",
    )
    assert FashionFlowPipeline.from_pretrained(out).unet.config.base_channels == 8


def test_an_existing_folder_needs_force_and_the_checkpoint_is_fetched_once(server, tmp_path):
    kwargs = dict(checkpoint_url=server.url + CHECKPOINT_PATH, cache_dir=tmp_path / "cache", hub_endpoint=server.url)
    out = download_official_pipeline(tmp_path / "out", **kwargs)
    (out / "marker").write_text("old")
    with pytest.raises(DownloadError, match="already exists; pass --force"):
        download_official_pipeline(out, **kwargs)
    download_official_pipeline(out, force=True, **kwargs)
    assert not (out / "marker").exists()
    assert checkpoint_gets(server) == 1  # the cached checkpoint was reused


def test_a_dropped_connection_is_resumed(server, tmp_path):
    server.cut_after = 1000
    digest = download_file(server.url + CHECKPOINT_PATH, tmp_path / "ckpt.pth")
    content = server.files[CHECKPOINT_PATH]
    assert (tmp_path / "ckpt.pth").read_bytes() == content and digest == hashlib.sha256(content).hexdigest()
    ranges = [r for method, path, r in server.requests if method == "GET" and path == CHECKPOINT_PATH]
    assert ranges == [None, "bytes=1000-"]
    assert not (tmp_path / "ckpt.pth.part").exists()


def test_a_server_that_ignores_ranges_restarts_cleanly(server, tmp_path):
    server.cut_after, server.ignore_range = 1000, True
    download_file(server.url + CHECKPOINT_PATH, tmp_path / "ckpt.pth")
    assert (tmp_path / "ckpt.pth").read_bytes() == server.files[CHECKPOINT_PATH]


def test_a_wrong_checksum_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="sha256"):
        download_file(server.url + CHECKPOINT_PATH, tmp_path / "ckpt.pth", expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url + "/nothing.pth", tmp_path / "x.pth")
    assert len(server.requests) == 1


def test_a_web_page_instead_of_the_checkpoint_is_explained(server, tmp_path):
    page = server.add_file("/page", b"<!DOCTYPE html><html><body>Dropbox</body></html>")
    with pytest.raises(DownloadError, match="web page"):
        download_official_pipeline(
            tmp_path / "out", checkpoint_url=page, cache_dir=tmp_path / "cache", hub_endpoint=server.url
        )
    assert not (tmp_path / "out").exists() and not list((tmp_path / "cache").glob("FashionFlow_checkpoint*"))


def test_a_failure_while_writing_leaves_no_folder(server, tmp_path, monkeypatch):
    def broken_card(sources):
        raise OSError("disk full")

    monkeypatch.setattr("fashionflow.hub.model_card", broken_card)
    with pytest.raises(OSError, match="disk full"):
        download_official_pipeline(
            tmp_path / "out",
            checkpoint_url=server.url + CHECKPOINT_PATH,
            cache_dir=tmp_path / "cache",
            hub_endpoint=server.url,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # neither the folder nor a half-written staging copy


def test_offline_hub_says_what_is_missing_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError) as error:
        fetch_hub_source(VAE_SOURCE, cache_dir=tmp_path)
    message = str(error.value)
    assert VAE_SOURCE.repo_id in message and VAE_SOURCE.revision in message and "--vae-from" in message


def test_a_revision_the_hub_does_not_have(server, tmp_path):
    server.hub.clear()
    server.add_repo(VAE_SOURCE.repo_id, tmp_path, commit="f" * 40, revisions=("main",))
    with pytest.raises(DownloadError, match="Could not fetch CompVis/stable-diffusion-v1-4/vae at revision ebb811"):
        fetch_hub_source(VAE_SOURCE, cache_dir=tmp_path / "cache", endpoint=server.url)


def test_an_incomplete_local_copy(tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    with pytest.raises(DownloadError, match="one of diffusion_pytorch_model.safetensors"):
        fetch_hub_source(VAE_SOURCE, local=tmp_path)


def test_the_download_command(stand_ins, tmp_path, capsys):
    args = ["download", "-o", str(tmp_path / "out"), "--vae-from", str(stand_ins / "sd"), "--clip-from", str(stand_ins / "clip"),
            "--tiny-decoder-from", str(stand_ins / "taesd"),
            "--checkpoint", str(stand_ins / "FashionFlow_checkpoint.pth"), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert cli_main(args) == 0
    assert "pipeline ready" in capsys.readouterr().out
    assert cli_main(args) == 2
    assert "--force" in capsys.readouterr().err


# the optional tiny decoder (TAESD) -------------------------------------------------------------------------------


def test_the_tiny_decoder_is_fetched_recorded_and_used(server, stand_ins, tmp_path):
    out = download_official_pipeline(
        tmp_path / "out", checkpoint_url=server.url + CHECKPOINT_PATH, cache_dir=tmp_path / "cache",
        hub_endpoint=server.url,
    )  # fmt: skip
    assert ("GET", f"/{TAESD_SOURCE.repo_id}/resolve/main/diffusion_pytorch_model.safetensors", None) in server.requests
    assert (out / "tiny_vae" / "diffusion_pytorch_model.safetensors").is_file()
    sources = {s["name"]: s for s in json.loads((out / "fashionflow_sources.json").read_text())}
    taesd = sources["tiny_vae (optional, quick previews)"]
    assert (taesd["source"], taesd["revision"], taesd["licence"]) == ("madebyollin/taesd", TAESD_COMMIT, "MIT")
    assert TAESD_COMMIT in (out / "README.md").read_text()

    pipe = FashionFlowPipeline.from_pretrained(out)
    assert pipe.decoders == ("full", "tiny")
    expected = AutoencoderTiny.from_pretrained(stand_ins / "taesd").state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in pipe.tiny_vae.state_dict().items())
    video = pipe(Image.new("RGB", (200, 260), "teal"), num_frames=4, num_inference_steps=2, output_type="pt",
                 decoder="tiny").frames  # fmt: skip
    assert video.shape == (1, 4, 3, 128, 128)


def test_without_the_tiny_decoder(server, tmp_path, capsys):
    out = download_official_pipeline(
        tmp_path / "out", checkpoint_url=server.url + CHECKPOINT_PATH, cache_dir=tmp_path / "cache",
        hub_endpoint=server.url, tiny_decoder=False,
    )  # fmt: skip
    assert not any(TAESD_SOURCE.repo_id in path for _, path, _ in server.requests)
    assert not (out / "tiny_vae").exists() and "taesd" not in (out / "fashionflow_sources.json").read_text()
    pipe = FashionFlowPipeline.from_pretrained(out)
    assert pipe.tiny_vae is None and pipe.decoders == ("full",)
    with pytest.raises(ValueError, match="no tiny decoder.*download --force"):
        pipe(Image.new("RGB", (200, 260), "teal"), num_frames=4, num_inference_steps=2, decoder="tiny")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (200, 260), "teal").save(photo)
    args = ["generate", str(photo), "-o", str(tmp_path / "v.mp4"), "--model", str(out), "--frames", "4", "--steps", "1",
            "--decoder", "tiny"]  # fmt: skip
    assert cli_main(args) != 0
    printed = capsys.readouterr()
    assert "no tiny decoder" in printed.out + printed.err and not (tmp_path / "v.mp4").exists()


def test_a_missing_tiny_decoder_names_the_way_around_it(server, tmp_path):
    del server.hub[(TAESD_SOURCE.repo_id, "main")]
    with pytest.raises(DownloadError, match="madebyollin/taesd(.|\n)*--no-tiny-decoder"):
        download_official_pipeline(
            tmp_path / "out", checkpoint_url=server.url + CHECKPOINT_PATH, cache_dir=tmp_path / "cache",
            hub_endpoint=server.url,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()
