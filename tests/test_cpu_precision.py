"""Precision and layout on a CPU: bfloat16 only where the processor has bfloat16 units and a probe finds it
faster; channels-last convolutions; the choice reported and overridable. The processor's capability checks
and the speed probe are replaced here, so every branch runs on any machine."""

import numpy as np
import pytest
import torch
from PIL import Image

from fashionflow import runtime
from fashionflow.cli import main as cli_main
from fashionflow.loading import apply_cpu_settings, describe_pipeline, load_pipeline
from fashionflow.runtime import choose_cpu_settings, probe_speeds
from fashionflow.tiny import build_tiny_pipeline

F32, BF16 = torch.float32, torch.bfloat16


def probe_result(unet_bf16=0.5, decoders_bf16=0.4, channels_first=1.3):
    """Seconds per (stage, dtype, channels_last): float32 channels-last takes 1; bfloat16 takes the given
    fraction of it; channels-first takes `channels_first` times its dtype's channels-last time."""
    speeds = {}
    for stage, bf16 in (("unet", unet_bf16), ("decoders", decoders_bf16)):
        for dtype, seconds in ((F32, 1.0), (BF16, bf16)):
            speeds[(stage, dtype, True)] = seconds
            speeds[(stage, dtype, False)] = seconds * channels_first
    return speeds


@pytest.fixture
def processor(monkeypatch):
    """Sets what this "processor" has (torch.cpu's checks) and what the probe "measures"; records probe calls."""
    calls = []

    def set_up(amx=False, avx512_bf16=False, speeds=None):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(runtime, "probe_speeds", lambda: calls.append(1) or (speeds or probe_result()))
        return calls

    return set_up


def test_without_bfloat16_units_float32_and_nothing_is_measured(processor):
    calls = processor(amx=False, avx512_bf16=False)
    settings = choose_cpu_settings()
    assert settings.unet.dtype == settings.decoders.dtype == F32
    assert settings.unet.channels_last and settings.decoders.channels_last
    assert settings.features.bf16_units is None and not calls
    assert settings.describe() == "float32 (this CPU has no bfloat16 units), channels-last convolutions"
    asked = choose_cpu_settings(BF16)  # the user's choice wins, also where it is slow
    assert asked.unet.dtype == BF16 and asked.describe().startswith("bfloat16 (asked for)")


@pytest.mark.parametrize("amx, avx512_bf16, units", [(True, True, "AMX"), (False, True, "AVX512-BF16")])
def test_bfloat16_units_and_a_faster_probe_give_bfloat16(processor, amx, avx512_bf16, units):
    calls = processor(amx=amx, avx512_bf16=avx512_bf16)
    settings = choose_cpu_settings()
    assert settings.unet.dtype == settings.decoders.dtype == BF16 and calls
    assert settings.unet.why == f"{units}: 2.0x float32's speed in a short probe"
    assert settings.decoders.why == f"{units}: 2.5x float32's speed in a short probe"
    assert settings.describe() == (
        f"U-Net bfloat16 ({units}: 2.0x float32's speed in a short probe), "
        f"decoders bfloat16 ({units}: 2.5x float32's speed in a short probe), channels-last convolutions"
    )
    assert settings.probe["unet:bfloat16:channels-last"] == 0.5


def test_bfloat16_units_that_measure_no_faster_keep_float32(processor):
    processor(amx=True, speeds=probe_result(unet_bf16=0.95, decoders_bf16=1.6))
    settings = choose_cpu_settings()
    assert settings.unet.dtype == settings.decoders.dtype == F32
    assert settings.unet.why == "AMX, but bfloat16 measured no faster: 1.1x"
    assert settings.decoders.why == "AMX, but bfloat16 measured no faster: 0.6x"


def test_a_stage_that_bfloat16_harms_stays_float32(processor, monkeypatch):
    processor(amx=True)
    monkeypatch.setattr(runtime, "BF16_HARMS", {"decoders": "bfloat16 would change the VAE's colours"})
    settings = choose_cpu_settings()
    assert settings.unet.dtype == BF16 and settings.decoders.dtype == F32
    assert "decoders float32 (bfloat16 would change the VAE's colours)" in settings.describe()


def test_the_layout_is_channels_last_unless_the_probe_finds_channels_first_clearly_faster(processor):
    processor(amx=True, speeds=probe_result(channels_first=0.95))  # 5% faster: not enough to leave channels-last
    assert choose_cpu_settings().unet.channels_last
    processor(amx=True, speeds=probe_result(channels_first=0.5))
    settings = choose_cpu_settings()
    assert not settings.unet.channels_last and not settings.decoders.channels_last
    assert settings.describe().endswith(", channels-first convolutions")


def test_a_dtype_given_decides_and_the_probe_still_picks_its_layout(processor):
    processor(amx=True, speeds=probe_result(channels_first=0.5))
    settings = choose_cpu_settings(F32)
    assert settings.unet == runtime.StageSettings(F32, False, "asked for")
    assert choose_cpu_settings(torch.float16).unet.channels_last  # not probed: the rule


def test_the_probe_measures_every_stage_dtype_and_layout():
    """The real probe, on small shapes (the default ones take about 0.1 s where bfloat16 units exist;
    this machine may emulate bfloat16, which is why the load path never probes without units)."""
    speeds = probe_speeds.__wrapped__(unet_video=(1, 8, 2, 8, 8), decoder_image=(1, 8, 16, 16))
    assert set(speeds) == {(s, d, c) for s in runtime.STAGES for d in runtime.PROBE_DTYPES for c in (True, False)}
    assert all(0 < seconds < 5 for seconds in speeds.values())


def test_loading_puts_each_stage_in_its_precision_and_layout(processor, monkeypatch):
    processor(amx=True)
    monkeypatch.setattr(runtime, "BF16_HARMS", {"decoders": "measured: bfloat16 harms it"})
    pipe = load_pipeline("tiny-random", device="cpu")
    assert pipe.unet.dtype == pipe.adapter.dtype == pipe.image_encoder.dtype == BF16
    assert pipe.vae.dtype == pipe.tiny_vae.dtype == F32
    assert pipe.unet.convolution_layout == "channels-last"
    weight = next(m.weight for m in pipe.vae.decoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    line = describe_pipeline(pipe, "tiny-random")
    assert "U-Net bfloat16 (AMX: 2.0x float32's speed in a short probe), decoders float32" in line
    pipe.to(dtype=F32)  # changed after loading: the line says what runs, without the reasons of another setting
    assert ", float32, channels-last U-Net, attention" in describe_pipeline(pipe, "tiny-random")


def test_channels_last_pipeline_makes_the_same_video():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    kwargs = dict(num_frames=4, num_inference_steps=2, output_type="pt")
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    before = pipe(photo, **kwargs, generator=torch.Generator().manual_seed(0)).frames
    channels_last = runtime.StageSettings(F32, channels_last=True, why="test")
    apply_cpu_settings(pipe, runtime.CpuSettings(runtime.cpu_features(), unet=channels_last, decoders=channels_last))
    after = pipe(photo, **kwargs, generator=torch.Generator().manual_seed(0)).frames
    # float32 rounding carried through the sampler: far below one of 255 levels
    torch.testing.assert_close(after, before, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    "dtype_flag, expected", [([], "bfloat16 (AMX: 2.0x"), (["--dtype", "float32"], "float32 (asked for)")]
)
def test_generate_on_a_cpu_with_amx_reports_bfloat16_and_writes_the_video(
    processor, tmp_path, capsys, dtype_flag, expected
):
    """The issue's "done when": `generate PHOTO -o OUT.mp4 --model tiny-random --steps 2 --frames 8` on a
    CPU with AMX (checks and probe replaced) runs bfloat16 and says so; `--dtype float32` runs float32."""
    processor(amx=True, avx512_bf16=True, speeds=probe_result(unet_bf16=0.5, decoders_bf16=0.5))
    photo, video = tmp_path / "photo.png", tmp_path / "out.mp4"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(photo)
    argv = ["generate", str(photo), "-o", str(video), "--model", "tiny-random", "--steps", "2", "--frames", "8"]
    assert cli_main(argv + dtype_flag) == 0
    model_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Model: "))
    assert f", {expected}" in model_line, model_line
    assert video.stat().st_size > 0


def test_generate_without_bfloat16_units_reports_float32(processor, tmp_path, capsys):
    processor(amx=False, avx512_bf16=False)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((300, 200, 3), 128, dtype=np.uint8)).save(photo)
    argv = ["generate", str(photo), "-o", str(tmp_path / "out.mp4"), "--model", "tiny-random", "--steps", "1"]
    assert cli_main(argv + ["--frames", "2"]) == 0
    assert "float32 (this CPU has no bfloat16 units), channels-last convolutions" in capsys.readouterr().out


def test_the_decode_chunk_is_sized_in_the_decoders_real_precision(processor, monkeypatch):
    """bfloat16 halves a decoded frame's working memory: the chunk choice reads the decoder's own dtype."""
    from fashionflow import pipeline as pipeline_module

    processor(amx=True)
    monkeypatch.setattr(runtime, "BF16_HARMS", {})
    pipe = load_pipeline("tiny-random", device="cpu")
    asked = []
    monkeypatch.setattr(
        pipeline_module,
        "choose_decode_chunk_size",
        lambda device, decoder, h, w, dtype, frames: asked.append(dtype) or 1,
    )
    pipe.decode_chunk_size_for("tiny", 8)
    pipe.vae.to(F32)
    pipe.decode_chunk_size_for("full", 8)
    assert asked == [BF16, F32]


# the U-Net's two layouts compute the same function ---------------------------------------------------------------


def test_both_layouts_give_the_same_outputs_and_gradients(tiny_unet):
    with torch.no_grad():  # every path counts: no zero-initialised attention output, no identity temporal conv
        for parameter in tiny_unet.parameters():
            parameter.add_(
                0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(parameter.numel()))
            )
    generator = torch.Generator().manual_seed(0)
    sample, context = torch.randn(2, 4, 6, 32, 16, generator=generator), torch.randn(2, 5, 32, generator=generator)
    results = {}
    for layout in ("channels-first", "channels-last"):
        tiny_unet.set_convolution_layout(layout)
        tiny_unet.zero_grad()
        output = tiny_unet(sample, torch.tensor([10, 700]), context).sample
        output.square().mean().backward()
        results[layout] = output.detach(), torch.cat([p.grad.flatten() for p in tiny_unet.parameters()])
    assert tiny_unet.convolution_layout == "channels-last" and results["channels-last"][0].is_contiguous()
    (out_first, grad_first), (out_last, grad_last) = results.values()
    assert ((out_last - out_first).norm() / out_first.norm()).item() < 1e-5
    assert ((grad_last - grad_first).norm() / grad_first.norm()).item() < 1e-4
    with pytest.raises(ValueError, match="channels-first, channels-last"):
        tiny_unet.set_convolution_layout("nhwc")


def test_channels_last_keeps_parity_with_the_authors_reference(reference_dir):
    from conftest import relative_error
    from safetensors.torch import load_file

    from fashionflow import convert_checkpoint

    small = reference_dir / "official-small"
    unet, _ = convert_checkpoint(small / "small_unet.safetensors", small / "small_adapter.safetensors")
    io = load_file(small / "small_io.safetensors")
    unet.eval().set_convolution_layout("channels-last")
    with torch.no_grad():
        noise = unet(io["x"], io["timestep"], io["adapter_out"]).sample
    assert relative_error(noise, io["unet_out"]) < 1e-5


def test_the_apps_status_says_which_precision_runs_and_why(processor):
    from fashionflow.service.model import load_model

    processor(amx=True)
    status = load_model("tiny-random", device="cpu").status_markdown()
    assert "bfloat16 (AMX: 2.0x float32's speed in a short probe)" in status and "channels-last" in status
    processor(amx=False, avx512_bf16=False)
    status = load_model("tiny-random", device="cpu").status_markdown()
    assert "float32 (this CPU has no bfloat16 units), channels-last convolutions" in status
