"""The live preview: latents to colours (fashionflow.latent_preview), each session's latest latents
(service.LivePreviews), run_generation handing them over, and the page's handler. The page in a
browser: tests/test_browser.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from app_harness import EXAMPLE, fast_settings, load_app_module
from app_harness import tiny_model as load_tiny_model

from fashionflow import service
from fashionflow.latent_preview import LatentColours, frame_indices, latent_colours, preview_frames


class LinearVAE(torch.nn.Module):
    """A stand-in VAE whose latents are a known linear function of each 8 x 8 cell's colour (and noise-free):
    what Stable Diffusion's VAE is, roughly. A fitted map must give the colours back."""

    config = SimpleNamespace(block_out_channels=(8, 8, 8, 8), scaling_factor=0.5)
    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.mix = torch.nn.Parameter(torch.randn(4, 3, generator=generator), requires_grad=False)
        self.offset = torch.nn.Parameter(torch.randn(4, generator=generator), requires_grad=False)
        self.encodes = 0

    def encode(self, pixels):
        self.encodes += 1
        cells = torch.nn.functional.avg_pool2d(pixels, 8)  # (n, 3, h, w)
        mean = torch.einsum("cd,ndhw->nchw", self.mix, cells) + self.offset[:, None, None]
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=mean))


@pytest.fixture(scope="module")
def tiny_model() -> service.ModelState:
    return load_tiny_model()


def test_the_fitted_map_gives_back_the_colours_a_linear_vae_encoded():
    vae = LinearVAE()
    colours = LatentColours.fit(vae, "cpu")
    assert colours.weight.shape == (4, 3) and colours.bias.shape == (3,)
    pixels = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(3))
    latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    rgb = colours.to_rgb(latents)
    assert rgb.shape == (2, 3, 8, 6)
    assert torch.allclose(rgb, torch.nn.functional.avg_pool2d(pixels, 8), atol=2e-3)


def test_the_map_is_fitted_once_per_vae():
    vae = LinearVAE()
    assert latent_colours(vae, "cpu") is latent_colours(vae, "cpu")
    assert vae.encodes == 1
    assert latent_colours(LinearVAE(), "cpu") is not latent_colours(vae, "cpu")


@pytest.mark.parametrize(
    "frames, count, expected", [(70, 4, [0, 23, 46, 69]), (8, 4, [0, 2, 5, 7]), (2, 4, [0, 1]), (6, 1, [0])]
)
def test_preview_frames_are_spread_from_the_first_to_the_last(frames, count, expected):
    assert frame_indices(frames, count) == expected


def test_the_tiny_models_noise_is_shown_at_a_size_people_can_see(tiny_model):
    """tiny-random's latents are 16 x 16 and its VAE random: the look is noise, but 192 pixels high, in colour."""
    colours = latent_colours(tiny_model.pipeline.vae)
    latents = torch.randn(1, 4, 8, 16, 16)
    frames = preview_frames(latents, colours)
    assert [index for index, _ in frames] == [0, 2, 5, 7]
    assert all(picture.size == (192, 192) and picture.mode == "RGB" for _, picture in frames)
    assert torch.isfinite(colours.weight).all() and torch.isfinite(colours.bias).all()
    # The published latent size (80 x 64) keeps its portrait shape.
    assert preview_frames(torch.randn(1, 4, 70, 80, 64), colours, count=2)[0][1].size == (154, 192)


def test_a_generation_hands_over_its_latents_after_every_step(tiny_model, tmp_path):
    previews = service.LivePreviews(budget=1.0)
    seen = []
    watch = previews.watcher("me")

    def keep(snapshot):
        seen.append(snapshot)
        watch(snapshot)

    service.run_generation(
        tiny_model.pipeline, service.read_photo(EXAMPLE), fast_settings(steps=3), tmp_path / "job", watch=keep
    )
    assert [(s.step, s.steps) for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert seen[0].latents.shape == (1, 4, 6, 16, 16)
    assert seen[0].latents is not seen[1].latents  # each step's own tensor: an earlier look stays as it was
    # The page gets a look at the newest once, then nothing until a newer step; after turning looks off, again.
    look = previews.look("me")
    assert (look.step, look.steps, look.num_frames) == (3, 3, 6)
    assert [index for index, _ in look.frames] == [0, 2, 3, 5]
    assert all(jpeg.startswith(b"\xff\xd8") for _, jpeg in look.frames)
    assert previews.look("me") is None and previews.look("someone else") is None
    previews.hidden("me")
    assert previews.look("me").step == 3
    previews.forget("me")
    assert previews.look("me") is None


def test_looks_keep_to_their_share_of_the_runs_time():
    now = [100.0]
    previews = service.LivePreviews(budget=0.02, clock=lambda: now[0])
    keep = previews.watcher("me")
    colours = LatentColours(weight=torch.eye(4, 3), bias=torch.zeros(3))

    def step(number: int) -> None:
        keep(service.LatentSnapshot(torch.randn(1, 4, 8, 16, 16), number, 1000, colours))

    step(1)
    assert previews.look("me").step == 1  # the first look is free
    step(2)
    assert previews.look("me") is None  # no time has passed: that look used the whole share
    now[0] += 60.0  # a CPU minute later, 2% of it is far more than a look takes
    step(3)
    assert previews.look("me").step == 3


def test_without_a_colour_map_the_video_is_made_all_the_same(tiny_model, tmp_path, monkeypatch):
    import fashionflow.latent_preview as latent_preview

    def broken(vae, device=None):
        raise RuntimeError("no colours today")

    monkeypatch.setattr(latent_preview, "latent_colours", broken)
    seen = []
    result = service.run_generation(
        tiny_model.pipeline, service.read_photo(EXAMPLE), fast_settings(), tmp_path / "job", watch=seen.append
    )
    assert result.mp4.is_file() and seen == []


def test_the_pages_look_is_new_frames_or_nothing_and_empty_when_turned_off(tiny_model, tmp_path):
    import gradio as gr

    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path), live_previews=service.LivePreviews(budget=1.0))
    me = SimpleNamespace(session_hash="me")
    assert ui.live_preview(True, me) == gr.skip()  # nothing running
    colours = latent_colours(tiny_model.pipeline.vae)
    ui.live_previews.watcher("me")(service.LatentSnapshot(torch.randn(1, 4, 8, 16, 16), 5, 25, colours))
    look = ui.live_preview(True, me)
    assert look.count("<img ") == 4 and "data:image/jpeg;base64," in look
    assert "step 5 of 25" in look and 'alt="Frame 8 of 8, after step 5 of 25"' in look
    assert ui.live_preview(True, me) == gr.skip()  # the same step again: nothing new to send
    assert ui.live_preview(False, me) == ""  # turned off: the look goes
    assert "step 5 of 25" in ui.live_preview(True, me)  # and comes back when turned on


def test_the_operator_can_turn_the_live_preview_off(tiny_model, tmp_path):
    app = load_app_module()
    assert app.parse_args([], environ={}).live_preview
    assert not app.parse_args(["--no-live-preview"], environ={}).live_preview
    assert not app.parse_args([], environ={"FASHIONFLOW_LIVE_PREVIEW": "0"}).live_preview

    def elem_ids(live_previews) -> set[str]:
        ui = app.FashionFlowApp(tiny_model, service.OutputStore(tmp_path), live_previews=live_previews)
        return {c["props"].get("elem_id") for c in app.build_demo(ui).get_config_file()["components"]}

    assert {"live-preview", "show-live-preview"} <= elem_ids(service.LivePreviews())
    assert not {"live-preview", "show-live-preview"} & elem_ids(None)
