"""Tiny configurations of FashionFlow's models and the `tiny-random` pipeline built from them.

Same architecture as the published model, a few hundred thousand random parameters: for
the tests, and for trying the whole software offline. Its videos are noise (untrained).
"""

from __future__ import annotations

import torch

from .defaults import TINY_RANDOM  # noqa: F401  (the name --model takes for it)

TINY_UNET_CONFIG = dict(
    base_channels=8,
    channel_mults=(1, 2, 4, 8),
    attention_heads=2,
    attention_head_dim=8,
    mid_attention_heads=2,
    mid_attention_head_dim=8,
    cross_attention_heads=(1, 1, 2, 4),
    context_dim=32,
    resnet_depths=(1, 1, 1, 1),
)
TINY_CLIP_CONFIG = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
)
TINY_VAE_CONFIG = dict(
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(8, 8, 16, 16),  # four blocks: the same 8x scale factor as Stable Diffusion's VAE
    layers_per_block=1,
    norm_num_groups=4,
    latent_channels=4,
    sample_size=128,
)
TINY_TAESD_CONFIG = dict(  # TAESD's layout (AutoencoderTiny), narrower and shallower
    encoder_block_out_channels=(8, 8, 8, 8),
    decoder_block_out_channels=(8, 8, 8, 8),
    num_encoder_blocks=(1, 1, 1, 1),
    num_decoder_blocks=(1, 1, 1, 1),
)
TINY_LATENT_SIZE = (16, 16)  # 128 x 128 pixel frames


def build_tiny_pipeline(seed: int = 0):
    """A complete FashionFlowPipeline with tiny random models; the same weights for the same seed."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    from .assembly import assemble_pipeline, clip_tokens, random_image_encoder
    from .models import ConditionAdapter, FashionFlowUNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(**TINY_VAE_CONFIG)
        image_encoder, feature_extractor = random_image_encoder(TINY_CLIP_CONFIG)
        unet = FashionFlowUNet(**TINY_UNET_CONFIG)
        adapter = ConditionAdapter(
            latent_size=TINY_LATENT_SIZE,
            clip_tokens=clip_tokens(image_encoder),
            context_dim=TINY_UNET_CONFIG["context_dim"],
        )
        tiny_vae = AutoencoderTiny(**TINY_TAESD_CONFIG)  # made last: the other weights stay as they were
    with torch.no_grad():  # random TAESD-like weights decode to black; centre them in [0, 1] (grey noise)
        tiny_vae.decoder.layers[-1].bias.fill_(0.75)
    return assemble_pipeline(vae, image_encoder, feature_extractor, unet, adapter, untrained=True, tiny_vae=tiny_vae)
