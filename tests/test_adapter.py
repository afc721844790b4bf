"""ConditionAdapter: shapes, identity init, and the latent size it was built for."""

import pytest
import torch

from fashionflow import ConditionAdapter


def test_context_shape_and_published_defaults():
    adapter = ConditionAdapter()
    context = adapter(torch.randn(2, 50, 768), torch.randn(2, 4, 80, 64))
    assert context.shape == (2, 50, 768)
    assert adapter.latent_to_tokens.in_features == 1280
    assert list(adapter.config.latent_size) == [80, 64]


def test_token_mixer_starts_as_identity_on_the_clip_tokens():
    adapter = ConditionAdapter(latent_size=(16, 16), clip_tokens=5, context_dim=8)
    with torch.no_grad():
        adapter.token_mixer.bias.zero_()
    clip = torch.randn(1, 5, 8)
    torch.testing.assert_close(adapter(clip, torch.randn(1, 4, 16, 16)), clip)


def test_another_latent_size_is_a_clear_error():
    adapter = ConditionAdapter()
    with pytest.raises(ValueError, match=r"built for VAE latents of shape \(batch, 4, 80, 64\).*640 x 512"):
        adapter(torch.randn(1, 50, 768), torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match="last_hidden_state"):
        adapter(torch.randn(1, 1, 512), torch.randn(1, 4, 80, 64))
    with pytest.raises(ValueError, match="different batch sizes"):
        adapter(torch.randn(2, 50, 768), torch.randn(1, 4, 80, 64))


def test_save_and_load_keeps_the_latent_size(tmp_path):
    adapter = ConditionAdapter(latent_size=(32, 32))
    adapter.save_pretrained(tmp_path)
    loaded = ConditionAdapter.from_pretrained(tmp_path)
    assert list(loaded.config.latent_size) == [32, 32]
    clip, latent = torch.randn(1, 50, 768), torch.randn(1, 4, 32, 32)
    torch.testing.assert_close(loaded(clip, latent), adapter(clip, latent))
