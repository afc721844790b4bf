"""Quick previews: the optional tiny decoder (TAESD, diffusers' AutoencoderTiny) in the pipeline and the CLI."""

import numpy as np
import pytest
import torch
from PIL import Image

from fashionflow.cli import main
from fashionflow.tiny import build_tiny_pipeline
from fashionflow.video import probe_video

FAST = dict(num_frames=4, num_inference_steps=2)


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline()


@pytest.fixture(scope="module")
def photo():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_each_decoder_gets_latents_in_its_own_scale(pipe):
    """Our latents are VAE latents * 0.18215. The VAE takes them divided by that factor; TAESD takes
    them as they are (its scaling_factor is 1.0: it was distilled on those scaled latents). Both
    return the SD VAE's output range, in which this model's pixels are [0, 1]: clamped, not rescaled."""
    latents = torch.randn(1, 4, 3, 16, 16, generator=seeded())
    flat = latents.permute(0, 2, 1, 3, 4).flatten(0, 1)
    with torch.no_grad():
        full = pipe.vae.decode(flat / 0.18215).sample.clamp(0, 1)
        tiny = pipe.tiny_vae.decoder(flat).clamp(0, 1)  # DecoderTiny: TAESD's [0, 1] output * 2 - 1
    assert pipe.vae.config.scaling_factor == 0.18215 and pipe.tiny_vae.config.scaling_factor == 1.0
    torch.testing.assert_close(pipe.decode_latents(latents, chunk_size=2)[0], full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pipe.decode_latents(latents, chunk_size=2, decoder="tiny")[0], tiny)
    assert not torch.allclose(full, tiny)


def test_quick_preview_end_to_end(pipe, photo, tmp_path):
    out = pipe(photo, **FAST, generator=seeded(), output_path=tmp_path / "preview.mp4", decoder="tiny")
    info = probe_video(out.video_path)
    assert (info.codec, info.frames, info.width, info.height) == ("h264", 4, 128, 128)
    # the same denoised latents as the full decoder's video; only the decoding differs
    latents = pipe(photo, **FAST, generator=seeded(), output_type="latent").frames
    preview = pipe(photo, **FAST, generator=seeded(), output_type="pt", decoder="tiny").frames
    torch.testing.assert_close(preview, pipe.decode_latents(latents, decoder="tiny"))
    frames = np.stack([np.asarray(frame) for frame in out.frames[0]])
    assert frames.std() > 0  # the untrained tiny decoder gives grey noise, not a black video


def test_unknown_or_missing_decoder_is_refused_before_any_work(pipe, photo):
    calls = []
    with pytest.raises(ValueError, match="decoder must be one of full, tiny"):
        pipe(photo, **FAST, decoder="taesd", progress=lambda *a: calls.append(a))
    no_tiny = build_tiny_pipeline()
    no_tiny.register_modules(tiny_vae=None)
    with pytest.raises(ValueError, match="no tiny decoder"):
        no_tiny(photo, **FAST, decoder="tiny", progress=lambda *a: calls.append(a))
    assert calls == []
    assert no_tiny(photo, **FAST, decoder="tiny", output_type="latent").frames.shape[2] == 4  # nothing to decode


def test_cli_quick_preview(tmp_path, photo, capsys):
    photo.save(tmp_path / "a.png")
    args = ["generate", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.mp4"), "--model", "tiny-random",
            "--frames", "4", "--steps", "2", "--seed", "1", "--decoder", "tiny"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "quick preview: tiny decoder" in printed and "decoding 1 frame per call" in printed
    assert probe_video(tmp_path / "a.mp4").frames == 4


# the app's "Quick preview" switch ------------------------------------------------------------------------------------


def test_settings_and_model_for_quick_preview():
    from app_harness import tiny_model

    from fashionflow import service

    assert service.validate_settings().decoder == "full"
    assert service.validate_settings(quick_preview="true").decoder == "tiny"
    with pytest.raises(service.SettingsError, match="Quick preview must be true or false"):
        service.validate_settings(quick_preview="maybe")
    model = tiny_model()
    assert model.has_quick_preview
    model.require_decoder("tiny")
    bare = build_tiny_pipeline()
    bare.register_modules(tiny_vae=None)
    without = service.ModelState(name="old-folder", pipeline=bare)
    with pytest.raises(service.SettingsError, match="Quick preview needs the tiny decoder.*download --force"):
        without.require_decoder("tiny")
    without.require_decoder("full")


def test_app_quick_preview_switch_and_api_parameter(tmp_path):
    import asyncio
    from types import SimpleNamespace

    from app_harness import EXAMPLE, FAST, load_app_module, tiny_model

    from fashionflow import service

    app = load_app_module()
    ui = app.FashionFlowApp(tiny_model(), service.OutputStore(tmp_path))
    request = SimpleNamespace(session_hash="s")
    video, mp4, gif, seed, summary = asyncio.run(
        ui.generate(str(EXAMPLE), request=request, **FAST, decode_chunk_size=4, quick_preview=True)
    )
    assert "quick preview" in summary and probe_video(mp4).frames == FAST["num_frames"]

    api = app.build_demo(ui).get_api_info()["named_endpoints"]["/generate"]["parameters"]
    names = [p["parameter_name"] for p in api]
    assert names[-3:] == ["decode_chunk_size", "quick_preview", "clips"]  # new parameters are optional and last
    assert api[-2]["parameter_has_default"] and api[-2]["parameter_default"] is False
    assert api[-1]["parameter_has_default"] and api[-1]["parameter_default"] == 1  # the Length: one clip
