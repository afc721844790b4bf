"""Tiny configurations of FashionFlow's models: same architecture, a few thousand parameters.

Used by the tests and by the `tiny-random` pipeline, which runs the whole software offline
with untrained weights (its output is noise).
"""

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
