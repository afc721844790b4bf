"""Speed and memory options: chunked cross-attention, device-fitted defaults, torch.compile."""

import pytest
import torch

from fashionflow import FashionFlowUNet
from fashionflow.models.attention import CrossAttentionBlock
from fashionflow.tiny import TINY_UNET_CONFIG


def unet_inputs(f=6, h=32, w=16):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, f, h, w, generator=generator), torch.randn(2, 5, 32, generator=generator)


@pytest.mark.parametrize("chunk_size", [1, 7, 100, None])
def test_chunked_cross_attention_equals_all_tokens_at_once(tiny_unet, chunk_size):
    sample, context = unet_inputs()
    with torch.no_grad():
        tiny_unet.disable_forward_chunking()
        whole = tiny_unet(sample, torch.tensor([10, 700]), context).sample
        tiny_unet.enable_forward_chunking(chunk_size)
        chunked = tiny_unet(sample, torch.tensor([10, 700]), context).sample
    # float32 rounding only: matrix products over fewer rows may block their sums differently
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
    assert ((chunked - whole).norm() / whole.norm()).item() < 1e-5  # the reference-parity bar


def test_chunking_really_splits_the_tokens(monkeypatch):
    torch.manual_seed(0)
    block = CrossAttentionBlock(dim=16, context_dim=8, heads=2).eval()
    calls = []
    original = block.tokenwise
    monkeypatch.setattr(block, "tokenwise", lambda x, c: calls.append(x.shape[1]) or original(x, c))
    x, context = torch.randn(1, 16, 3, 4, 5), torch.randn(1, 7, 8)  # 60 tokens
    block.chunk_size = 0
    whole = block(x, context)
    block.chunk_size = 25
    chunked = block(x, context)
    assert calls == [60, 25, 25, 10]
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    # the default sizes chunks by the widest hidden layer: 2**24 values
    block.chunk_size = None
    assert block.tokens_per_chunk(10**9) == 2**24 // (16 * 4 * 2)


def test_chunking_is_on_by_default_and_checked(tiny_unet):
    blocks = [m for m in tiny_unet.modules() if isinstance(m, CrossAttentionBlock)]
    assert len(blocks) == 8 and all(b.chunk_size is None for b in blocks)
    with pytest.raises(ValueError, match="chunk_size"):
        tiny_unet.enable_forward_chunking(0)


def test_chunked_published_level_zero_block_matches():
    """A level-0 block of the published width (64, 1 head, context 768) on 70 frames of a small latent."""
    torch.manual_seed(0)
    block = CrossAttentionBlock(dim=64, context_dim=768, heads=1).eval()
    x, context = torch.randn(1, 64, 70, 8, 8), torch.randn(1, 50, 768)
    with torch.no_grad():
        block.chunk_size = 0
        whole = block(x, context)
        block.chunk_size = 1000
        chunked = block(x, context)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


assert FashionFlowUNet and TINY_UNET_CONFIG
