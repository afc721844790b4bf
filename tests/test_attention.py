"""Attention kernels and backend selection."""

import logging

import pytest
import torch

from fashionflow.models.attention import RelativePositionBias
from fashionflow.models.attention_backend import attend, resolve_attention_backend, xformers_works


def plain_attention(q, k, v, bias=None):
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if bias is not None:
        scores = scores + bias
    return scores.softmax(dim=-1) @ v


@pytest.mark.parametrize("with_bias", [False, True])
def test_sdpa_path_equals_plain_softmax_attention(with_bias):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 4, 37, 16), torch.randn(3, 4, 11, 16), torch.randn(3, 4, 11, 16)
    bias = torch.randn(4, 37, 11) if with_bias else None
    torch.testing.assert_close(
        attend(q, k, v, bias, backend="sdpa"), plain_attention(q, k, v, bias), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        attend(q, k, v, bias, backend="auto"), plain_attention(q, k, v, bias), rtol=1e-5, atol=1e-6
    )


def test_backend_resolution_on_the_cpu(caplog):
    assert resolve_attention_backend("auto", "cpu") == "sdpa"
    assert resolve_attention_backend("sdpa", "cpu") == "sdpa"
    with caplog.at_level(logging.WARNING):
        assert resolve_attention_backend("xformers", "cpu") == "sdpa"
    assert not xformers_works(torch.device("cpu"))


def test_choosing_and_reporting_the_backend(tiny_unet):
    assert tiny_unet.attention_backend == "sdpa"
    tiny_unet.set_attention_backend("sdpa")
    assert tiny_unet.attention_backend == "sdpa"
    tiny_unet.enable_xformers_memory_efficient_attention()  # diffusers' switch reaches our layers...
    layers = [m for m in tiny_unet.modules() if hasattr(m, "attention_backend") and m is not tiny_unet]
    assert layers and all(m.attention_backend == "xformers" for m in layers)
    assert tiny_unet.attention_backend == "sdpa"  # ...but xformers runs only on CUDA
    with pytest.raises(ValueError, match="auto, sdpa, xformers"):
        tiny_unet.set_attention_backend("flash")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="xformers kernels need CUDA; no GPU here")
def test_xformers_matches_sdpa_on_cuda():
    if not xformers_works(torch.device("cuda", torch.cuda.current_device())):
        pytest.skip("xformers is not installed or does not run on this GPU")
    q, k, v = (torch.randn(2, 8, 80, 64, device="cuda", dtype=torch.float16) for _ in range(3))
    bias = torch.randn(8, 80, 80, device="cuda", dtype=torch.float16)
    torch.testing.assert_close(attend(q, k, v, bias, "xformers"), attend(q, k, v, bias, "sdpa"), rtol=2e-3, atol=2e-3)


def test_relative_position_bias_equals_the_mlp_on_every_pair():
    torch.manual_seed(0)
    bias = RelativePositionBias(num_dims=2, hidden_dim=16, heads=3)
    h, w = 3, 5
    grid = torch.cartesian_prod(torch.arange(h), torch.arange(w)).float()
    brute = bias.mlp(grid[:, None] - grid[None, :]).permute(2, 0, 1)
    torch.testing.assert_close(bias(h, w), brute)
    line = RelativePositionBias(num_dims=1, hidden_dim=16, heads=2)
    frames = torch.arange(7).float()[:, None]
    torch.testing.assert_close(line(7), line.mlp(frames[:, None] - frames[None, :]).permute(2, 0, 1))
