"""FashionFlowPipeline end to end on the tiny random pipeline (and the reference-size U-Net)."""

import io

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModel

from fashionflow import FashionFlowPipeline, convert_checkpoint
from fashionflow._compat import clip_image_processor_class
from fashionflow.image import ImageInputError
from fashionflow.schedulers import SAMPLERS, default_steps, make_scheduler, published_betas
from fashionflow.tiny import TINY_VAE_CONFIG, build_tiny_pipeline
from fashionflow.video import probe_video

FAST = dict(num_frames=4, num_inference_steps=2)


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline()


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    image = np.full((300, 200, 3), 230, dtype=np.uint8)
    image[60:260, 60:140] = rng.integers(0, 255, (200, 80, 3))
    return Image.fromarray(image)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_end_to_end_mp4_plays_in_browsers(pipe, photo, tmp_path):
    out = pipe(photo, num_frames=6, num_inference_steps=2, generator=seeded(), output_path=tmp_path / "video.mp4")
    assert out.video_path == tmp_path / "video.mp4"
    info = probe_video(out.video_path)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")
    assert (info.width, info.height, info.frames, info.fps) == (128, 128, 6, 25.0)
    assert len(out.frames) == 1 and len(out.frames[0]) == 6 and out.frames[0][0].size == (128, 128)


def test_gif_and_seamless_loop(pipe, photo, tmp_path):
    out = pipe(photo, **FAST, generator=seeded(), output_path=tmp_path / "video.gif", fps=10, loop=True)
    info = probe_video(out.video_path)
    assert info.codec == "gif" and info.frames == 2 * 4 - 2  # forward, then back without repeating the ends
    assert len(out.frames[0]) == 4  # the returned frames are the model's


def test_seeded_runs_are_reproducible(pipe, photo):
    a = pipe(photo, **FAST, generator=seeded(7), output_type="pt").frames
    b = pipe(photo, **FAST, generator=seeded(7), output_type="pt").frames
    c = pipe(photo, **FAST, generator=seeded(8), output_type="pt").frames
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_frame_zero_is_the_clean_latent_of_the_framed_still(pipe, photo):
    latents = pipe(photo, **FAST, generator=seeded(3), output_type="latent").frames
    still = pipe.prepare_image(photo)
    _, first_frame = pipe.encode_image([still], seeded(3))  # the same draws as inside the pipeline
    assert torch.equal(latents[:, :, 0], first_frame)
    video = pipe(photo, **FAST, generator=seeded(3), output_type="pt").frames
    torch.testing.assert_close(video[:, 0], pipe.decode_latents(first_frame[:, :, None])[:, 0], atol=1e-5, rtol=1e-5)


def test_output_types(pipe, photo):
    pt = pipe(photo, **FAST, generator=seeded(), output_type="pt").frames
    array = pipe(photo, **FAST, generator=seeded(), output_type="np").frames
    assert pt.shape == (1, 4, 3, 128, 128) and array.shape == (1, 4, 128, 128, 3)
    assert 0 <= pt.min() and pt.max() <= 1
    np.testing.assert_allclose(array, pt.permute(0, 1, 3, 4, 2).numpy())


def test_batch_of_photos(pipe, photo):
    out = pipe([photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], **FAST, generator=seeded(), output_type="pt")
    assert out.frames.shape[:2] == (2, 4)


def test_chunked_decode_equals_frame_by_frame(pipe):
    latents = torch.randn(1, 4, 5, 16, 16, generator=seeded())
    torch.testing.assert_close(
        pipe.decode_latents(latents, chunk_size=3), pipe.decode_latents(latents, chunk_size=1), atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "ddpm"])
def test_fast_samplers_run_on_the_published_schedule(pipe, photo, sampler):
    assert default_steps(sampler) <= 50
    out = pipe(photo, num_frames=4, sampler=sampler, num_inference_steps=3, generator=seeded(), output_type="latent")
    assert torch.isfinite(out.frames).all()
    scheduler = make_scheduler(sampler)
    assert torch.equal(scheduler.betas, published_betas()) and scheduler.config.prediction_type == "epsilon"


def test_ddpm_step_is_the_authors_update(pipe):
    """One step of our 'ddpm' sampler against the authors' formula, written out as in their inference.py."""
    betas = published_betas()
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    alphas_cumprod_prev = torch.nn.functional.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
    sqrt_recip_alphas = torch.sqrt(1.0 / alphas)
    sqrt_one_minus_alphas_cumprod = torch.sqrt(1.0 - alphas_cumprod)
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)

    scheduler = make_scheduler("ddpm")
    scheduler.set_timesteps(1000)
    assert scheduler.timesteps.tolist() == list(range(999, -1, -1))
    x = torch.randn(1, 4, 6, 8, 8, generator=seeded(1))
    eps = torch.randn(1, 4, 6, 8, 8, generator=seeded(2))
    for t in (999, 500, 1, 0):
        ours = scheduler.step(eps, t, x, generator=seeded(10 + t)).prev_sample
        mean = sqrt_recip_alphas[t] * (x - betas[t] * eps / sqrt_one_minus_alphas_cumprod[t])
        theirs = (
            mean
            if t == 0
            else mean + torch.sqrt(posterior_variance[t]) * torch.randn(x.shape, generator=seeded(10 + t))
        )
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_clip_preprocessing_modes(pipe):
    pixels = torch.rand(1, 3, 128, 128, generator=seeded())
    mean = torch.tensor(pipe.feature_extractor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(pipe.feature_extractor.image_std).view(1, 3, 1, 1)
    assert pipe.config.clip_preprocessing == "published-checkpoint"
    published = pipe._clip_pixel_values(pixels)
    # the checkpoint's CLIP saw [0, 1/255] images: within 1/255/std of the normalised black
    assert (published - (-mean / std)).abs().max() <= 1 / 255 / std.min() + 1e-6
    standard = build_tiny_pipeline()
    standard.register_to_config(clip_preprocessing="standard")
    picture = Image.fromarray((pixels[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    usual = pipe.feature_extractor(images=[picture], return_tensors="pt")["pixel_values"]  # CLIP's usual input
    torch.testing.assert_close(standard._clip_pixel_values(pixels), usual, atol=2 / 255 / std.min().item(), rtol=0)


def test_clip_preprocessing_is_saved_with_the_pipeline(tmp_path, photo):
    pipe = build_tiny_pipeline()
    pipe.register_to_config(clip_preprocessing="standard")
    pipe.save_pretrained(tmp_path)
    loaded = FashionFlowPipeline.from_pretrained(tmp_path)
    assert loaded.config.clip_preprocessing == "standard" and loaded.config.untrained
    with pytest.raises(ValueError, match="clip_preprocessing"):
        FashionFlowPipeline(**loaded.components, clip_preprocessing="sort-of")
    a = pipe(photo, **FAST, generator=seeded(), output_type="pt").frames
    b = loaded(photo, **FAST, generator=seeded(), output_type="pt").frames
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # equal weights; oneDNN may round differently per instance


def test_callbacks_see_every_step_and_can_stop(pipe, photo):
    steps, stages = [], []

    def on_step_end(pipeline, i, t, tensors):
        steps.append((i, int(t)))
        assert tensors["latents"].shape == (1, 4, 4, 16, 16)
        return tensors

    pipe(photo, num_frames=4, num_inference_steps=3, generator=seeded(), callback_on_step_end=on_step_end,
         progress=lambda stage, done, total: stages.append((stage, done, total)), output_type="pt")  # fmt: skip
    assert [i for i, _ in steps] == [0, 1, 2]
    assert [s for s in stages if s[0] == "denoise"] == [("denoise", 1, 3), ("denoise", 2, 3), ("denoise", 3, 3)]
    assert stages[-1] == ("decode", 4, 4)

    class Stop(Exception):
        pass

    def stop_at_second_step(stage, done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        pipe(photo, num_frames=4, num_inference_steps=5, generator=seeded(), progress=stop_at_second_step)
    assert pipe(photo, **FAST, generator=seeded(), output_type="latent").frames.shape[2] == 4  # still works


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_frames=5), "multiple of 2"),
        (dict(num_frames=0), "multiple of 2"),
        (dict(num_inference_steps=0), "between 1 and 1000"),
        (dict(num_inference_steps=1001), "between 1 and 1000"),
        (dict(sampler="euler-ish"), "Unknown sampler"),
        (dict(fit="zoom"), "Unknown fit"),
        (dict(decode_chunk_size=0), "decode_chunk_size"),
        (dict(output_type="webm"), "output_type"),
        (dict(output_path="video.avi"), ".mp4 or .gif"),
        (dict(output_path="video.mp4", fps=0), "fps"),
    ],
)
def test_out_of_range_settings_are_refused_and_write_nothing(pipe, photo, tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        pipe(photo, **{**FAST, **kwargs})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "data, message",
    [(b"GIF89a-not-really", "not a picture"), (b"plain text", "not a picture"), (None, "No photo")],
)
def test_unusable_photos_are_refused(pipe, data, message):
    with pytest.raises(ValueError, match=message):
        pipe(data, **FAST)


def test_truncated_and_tiny_photos(pipe, photo):
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    with pytest.raises(ImageInputError, match="damaged or incomplete"):
        pipe(buffer.getvalue()[:300], **FAST)
    with pytest.raises(ImageInputError, match="too small"):
        pipe(photo.resize((60, 90)), **FAST)


def test_model_cpu_offload_through_accelerate(photo):
    pipe = build_tiny_pipeline()
    pipe.enable_model_cpu_offload(device="cpu")  # the hooks of a GPU machine, exercised on the CPU
    assert pipe.attention_backend == "sdpa"
    out = pipe(photo, **FAST, generator=seeded(), output_type="pt").frames
    expected = build_tiny_pipeline()(photo, **FAST, generator=seeded(), output_type="pt").frames
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_bfloat16_runs_and_float16_keeps_the_vae_in_float32(photo):
    pipe = build_tiny_pipeline().to(dtype=torch.bfloat16)
    out = pipe(photo, **FAST, generator=seeded(), output_type="pt").frames
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    half = build_tiny_pipeline().to(dtype=torch.float16)
    half._upcast_vae_if_needed()
    assert half.vae.dtype == torch.float32 and half.unet.dtype == torch.float16


def test_reference_size_checkpoint_runs_in_a_pipeline(reference_dir, photo):
    small = reference_dir / "official-small"
    unet, adapter = convert_checkpoint(small / "small_unet.safetensors", small / "small_adapter.safetensors")
    torch.manual_seed(0)
    # Stand-ins with the published interfaces: CLIP with 50 tokens of 768, a VAE with scale factor 8.
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=768, intermediate_size=64, num_hidden_layers=1,
                                            num_attention_heads=12, image_size=224, patch_size=32))  # fmt: skip
    pipe = FashionFlowPipeline(
        vae=AutoencoderKL(**TINY_VAE_CONFIG),
        image_encoder=clip,
        feature_extractor=clip_image_processor_class()(),
        unet=unet,
        adapter=adapter,
        scheduler=make_scheduler("ddpm"),
    )
    assert pipe.frame_size == (256, 256)  # the reference adapter's 32 x 32 latent
    out = pipe(photo, num_frames=4, num_inference_steps=2, generator=seeded(), output_type="pt")
    assert out.frames.shape == (1, 4, 3, 256, 256) and torch.isfinite(out.frames).all()


# longer videos: clips chained ---------------------------------------------------------------------------------------


def test_chained_clips_make_one_video_and_a_seed_makes_it_again(pipe, photo):
    def chained(seed, clips=3):
        return pipe(photo, **FAST, num_clips=clips, generator=seeded(seed), output_type="latent").frames

    three = chained(5)
    assert three.shape == (1, 4, 3 * (4 - 1) + 1, 16, 16)  # the repeated frame at each join is dropped
    assert torch.equal(three, chained(5))
    assert not torch.allclose(three[:, :, 4:], chained(6)[:, :, 4:])  # later clips' noise comes from the seed too
    assert torch.equal(three[:, :, :4], chained(5, clips=1))  # the first clip is the single-clip video of that seed


def test_each_clip_starts_from_the_last_latent_of_the_one_before_with_the_photos_own_context(pipe, photo):
    steps, contexts = [], []

    def on_step_end(pipeline, step, t, tensors):
        steps.append(tensors["latents"].clone())
        return tensors

    hook = pipe.unet.register_forward_hook(lambda module, args, output: contexts.append(args[2].clone()))
    try:
        out = pipe(photo, **FAST, num_clips=3, generator=seeded(2), output_type="latent",
                   callback_on_step_end=on_step_end)  # fmt: skip
    finally:
        hook.remove()
    clips = steps[1::2]  # each clip's latents after its last (second) step
    assert len(steps) == 6 and len(contexts) == 6
    for earlier, later, first_step in zip(clips, clips[1:], steps[2::2]):
        assert torch.equal(later[:, :, 0], earlier[:, :, -1])  # frame 0 is the last latent, not re-encoded
        assert torch.equal(first_step[:, :, 0], earlier[:, :, -1])  # ... and stays so at every step
    assert torch.equal(out.frames, torch.cat([clips[0], clips[1][:, :, 1:], clips[2][:, :, 1:]], dim=2))
    context, _ = pipe.encode_image([pipe.prepare_image(photo)], seeded(2))  # the same draws as in the call
    assert all(torch.equal(c, context) for c in contexts)  # every clip: the photo's CLIP + adapter context


def test_progress_covers_every_clip(pipe, photo):
    stages, steps = [], []
    pipe(photo, **FAST, num_clips=3, generator=seeded(), output_type="pt", decode_chunk_size=5,
         progress=lambda stage, done, total: stages.append((stage, done, total)),
         callback_on_step_end=lambda p, i, t, x: steps.append(i) or x)  # fmt: skip
    assert [s for s in stages if s[0] == "denoise"] == [("denoise", i, 6) for i in range(1, 7)]
    assert steps == list(range(6)) and stages[-1] == ("decode", 10, 10)


def test_a_long_video_goes_to_its_file_as_it_is_decoded(pipe, photo, tmp_path):
    out = pipe(photo, **FAST, num_clips=3, generator=seeded(4), output_type="latent", output_path=tmp_path / "v.mp4",
               decode_chunk_size=4)  # fmt: skip
    assert out.frames.shape[2] == 10 and probe_video(out.video_path).frames == 10  # latents returned, frames written
    looped = pipe(photo, **FAST, num_clips=2, generator=seeded(4), output_path=tmp_path / "l.gif", loop=True,
                  decode_chunk_size=7)  # fmt: skip
    assert len(looped.frames[0]) == 7 and probe_video(looped.video_path).frames == 2 * 7 - 2


def test_a_failure_while_decoding_keeps_the_earlier_video(pipe, photo, tmp_path):
    path = tmp_path / "look.mp4"
    pipe(photo, **FAST, generator=seeded(), output_path=path, decode_chunk_size=4)
    before = path.read_bytes()

    def fail_at_the_second_chunk(stage, done, total):
        if stage == "decode" and done > 2:
            raise KeyboardInterrupt  # a cancel, a kill signal, out of memory: anything

    with pytest.raises(KeyboardInterrupt):
        pipe(photo, **FAST, num_clips=3, generator=seeded(9), output_path=path, decode_chunk_size=2,
             progress=fail_at_the_second_chunk)  # fmt: skip
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]  # no partial file left


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_clips=0), "num_clips must be a positive whole number"),
        (dict(num_clips=1.5), "num_clips must be a positive whole number"),
    ],
)
def test_out_of_range_clips_are_refused(pipe, photo, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(photo, **FAST, **kwargs)
