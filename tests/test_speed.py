"""Speed and memory options: chunked cross-attention, device-fitted defaults, torch.compile."""

import numpy as np
import pytest
import torch
from PIL import Image

from fashionflow import runtime
from fashionflow.loading import describe_pipeline
from fashionflow.models.attention import CrossAttentionBlock
from fashionflow.runtime import choose_decode_chunk_size, configure_cpu_threads
from fashionflow.tiny import build_tiny_pipeline

GB = 2**30


def unet_inputs(f=6, h=32, w=16):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, f, h, w, generator=generator), torch.randn(2, 5, 32, generator=generator)


@pytest.mark.parametrize("chunk_size", [7, None])
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


# defaults that fit the device ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "device, decoder, dtype, free, frames, expected",
    [
        ("cpu", "full", torch.float32, 20 * GB, 70, 1),  # batching the VAE gains nothing on a CPU
        ("cpu", "tiny", torch.float32, 20 * GB, 70, 2),
        ("cpu", "tiny", torch.float32, 1 * GB, 70, 1),  # two frames would take over a quarter of the memory
        ("cpu", "tiny", torch.float32, 2 * GB, 70, 1),  # 0.34 GB a frame in float32: one fits in 0.5 GB
        ("cpu", "tiny", torch.bfloat16, 2 * GB, 70, 2),  # half of that in bfloat16: two fit
        ("cuda", "full", torch.bfloat16, 70 * GB, 70, 16),
        ("cuda", "full", torch.bfloat16, 2 * GB, 70, 2),  # 0.46 GB a frame, half of the free memory
        ("cuda", "full", torch.float32, 0, 70, 1),  # never less than one
        ("cuda", "tiny", torch.float16, 70 * GB, 6, 6),  # never more than the video
    ],
)
def test_decode_chunk_follows_device_and_free_memory(device, decoder, dtype, free, frames, expected):
    assert choose_decode_chunk_size(device, decoder, 640, 512, dtype, frames, free_bytes=free) == expected


def test_the_pipeline_decodes_in_the_chunks_chosen_for_the_machine(monkeypatch):
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    monkeypatch.setattr(runtime, "MAX_DECODE_CHUNK", {"cpu": {"full": 3, "tiny": 3}, "other": {}})
    sizes = []
    original = pipe.vae.decode
    monkeypatch.setattr(pipe.vae, "decode", lambda z: sizes.append(z.shape[0]) or original(z))
    photo = Image.fromarray(np.full((300, 200, 3), 128, dtype=np.uint8))
    pipe(photo, num_frames=4, num_inference_steps=1, output_type="pt")
    assert sizes[-2:] == [3, 1]
    sizes.clear()
    pipe(photo, num_frames=4, num_inference_steps=1, output_type="pt", decode_chunk_size=4)  # an explicit value wins
    assert sizes[-1:] == [4]


def test_cpu_threads_fit_the_usable_cores(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(runtime, "usable_cpu_count", lambda: 1)
        assert configure_cpu_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice is left alone
        torch.set_num_threads(2)
        assert configure_cpu_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert 1 <= runtime.usable_cpu_count() <= (__import__("os").cpu_count() or 1)


def test_describe_pipeline_says_what_was_chosen():
    pipe = build_tiny_pipeline()
    line = describe_pipeline(pipe, "tiny-random")
    assert f"{torch.get_num_threads()} CPU threads" in line and "decoding 1 frame per call" in line
    assert "quick preview: tiny decoder" in line and "compiled" not in line
    pipe.register_modules(tiny_vae=None)
    assert "no tiny decoder" in describe_pipeline(pipe, "x")


# torch.compile ------------------------------------------------------------------------------------------------


def test_compiled_pipeline_matches_eager_and_compiles_once_per_shape():
    """On the CPU with backend="aot_eager" (dynamo capture + AOT autograd, no code generation): the
    inductor backend compiles the same graphs but takes minutes on this 2-core machine."""
    torch._dynamo.reset()
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    # chunks of 3 frames: the last chunk of a 4-frame video (1 frame) is padded to the compiled shape
    kwargs = dict(num_frames=4, num_inference_steps=2, output_type="pt", decode_chunk_size=3)
    eager = pipe(photo, **kwargs, generator=torch.Generator().manual_seed(0))
    assert eager.compile_seconds is None

    pipe.enable_compile(backend="aot_eager")
    assert "compiled (aot_eager)" in describe_pipeline(pipe, "tiny-random")
    torch._dynamo.utils.counters.clear()
    first = pipe(photo, **kwargs, generator=torch.Generator().manual_seed(0))
    # one graph each for the U-Net and the decoder: nothing (an attention-backend lookup, say) breaks them up
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2
    again = pipe(photo, **kwargs, generator=torch.Generator().manual_seed(0))
    assert first.compile_seconds > 0 and again.compile_seconds == 0
    torch.testing.assert_close(first.frames, eager.frames, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again.frames, eager.frames, rtol=1e-5, atol=1e-5)
    torch._dynamo.reset()
