"""FashionFlowUNet: shapes, timesteps, size checks, config checks, save/load, checkpointing."""

import pytest
import torch

from fashionflow import FashionFlowUNet
from fashionflow.tiny import TINY_UNET_CONFIG


def inputs(b=2, f=4, h=16, w=16, context_dim=32, tokens=5):
    torch.manual_seed(1)
    return torch.randn(b, 4, f, h, w), torch.randn(b, tokens, context_dim)


def test_output_has_the_input_shape(tiny_unet):
    sample, context = inputs(f=6, h=32, w=16)
    out = tiny_unet(sample, torch.tensor([3, 900]), context)
    assert out.sample.shape == sample.shape
    assert tiny_unet(sample, 3, context, return_dict=False)[0].shape == sample.shape


def test_scalar_timestep_equals_one_per_sample(tiny_unet):
    sample, context = inputs()
    with torch.no_grad():
        scalar = tiny_unet(sample, 250, context).sample
        per_sample = tiny_unet(sample, torch.tensor([250, 250]), context).sample
        float_step = tiny_unet(sample, torch.tensor(250.0), context).sample
        other = tiny_unet(sample, torch.tensor([250, 700]), context).sample
    torch.testing.assert_close(scalar, per_sample)
    torch.testing.assert_close(scalar, float_step)
    torch.testing.assert_close(other[0], scalar[0])
    assert not torch.allclose(other[1], scalar[1])


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 4, 4, 24, 16), "multiples of 16"),
        ((1, 4, 4, 16, 8), "multiples of 16"),
        ((1, 4, 5, 16, 16), "multiple of 2"),
        ((1, 3, 4, 16, 16), "4 channels"),
        ((4, 16, 16, 4), "latent video"),
    ],
)
def test_sizes_the_model_cannot_take(tiny_unet, shape, message):
    context = torch.randn(shape[0], 5, 32)
    with pytest.raises(ValueError, match=message):
        tiny_unet(torch.randn(shape), 10, context)


def test_wrong_context_and_timesteps(tiny_unet):
    sample, context = inputs()
    with pytest.raises(ValueError, match=r"\(batch=2, tokens, 32\)"):
        tiny_unet(sample, 10, torch.randn(2, 5, 31))
    with pytest.raises(ValueError, match="one per sample"):
        tiny_unet(sample, torch.tensor([1, 2, 3]), context)


def test_published_defaults_and_config_checks():
    with torch.device("meta"):
        assert sum(p.numel() for p in FashionFlowUNet().parameters()) == 71_671_548
    with pytest.raises(ValueError, match="one entry per level"):
        FashionFlowUNet(**{**TINY_UNET_CONFIG, "resnet_depths": (1, 1)})
    with pytest.raises(ValueError, match="odd"):
        FashionFlowUNet(**{**TINY_UNET_CONFIG, "conv_in_kernel_size": 4})
    with pytest.raises(ValueError, match="cross-attention heads"):
        FashionFlowUNet(**{**TINY_UNET_CONFIG, "cross_attention_heads": (3, 1, 2, 4)})


def test_save_and_load_round_trip(tiny_unet, tmp_path):
    tiny_unet.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = FashionFlowUNet.from_pretrained(tmp_path).eval()
    assert {k: v for k, v in loaded.config.items() if not k.startswith("_")} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in tiny_unet.config.items() if not k.startswith("_")
    }
    sample, context = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(sample, 5, context).sample, tiny_unet(sample, 5, context).sample, rtol=0, atol=0
        )


def test_gradient_checkpointing_gives_the_same_gradients(tiny_unet):
    sample, context = inputs(b=1)
    tiny_unet.train()

    def grads():
        tiny_unet.zero_grad()
        tiny_unet(sample, 100, context).sample.square().mean().backward()
        return {n: p.grad.clone() for n, p in tiny_unet.named_parameters() if p.grad is not None}

    plain = grads()
    tiny_unet.enable_gradient_checkpointing()
    checkpointed = grads()
    assert plain.keys() == checkpointed.keys() and len(plain) > 100
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], msg=name)


def test_frames_are_not_mixed_before_the_temporal_layers_start(tiny_unet):
    """With identity temporal convs and zero attention outputs (the init), no frame sees another
    except through the deepest level's time downsampling and the feed-forward's shift: changing
    the last frame must still change earlier frames, proving that time really flows."""
    sample, context = inputs(b=1, f=4)
    changed = sample.clone()
    changed[:, :, -1] += 1
    with torch.no_grad():
        a, b = tiny_unet(sample, 10, context).sample, tiny_unet(changed, 10, context).sample
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])
