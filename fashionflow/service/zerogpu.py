"""ZeroGPU on Hugging Face Spaces: how many GPU seconds one generation reserves."""

from __future__ import annotations

import math

from .settings import GenerationSettings

# GPU seconds a ZeroGPU call reserves, from the settings. ZeroGPU stops a call that outlives its
# reservation, and long reservations wait longer for a GPU and need more of the visitor's quota,
# so the estimate is an upper bound that is not wildly high. Not yet measured on a ZeroGPU slice:
# the per frame-step cost assumes the published U-Net (17 s per 70-frame step on 2 CPU cores,
# benchmarks/results/unet_forward.json) runs at least 60 times faster in bfloat16 on a slice of an
# H200. A chained video costs its clips' steps; decode and export are per frame of the whole video;
# export (MP4 + GIF) runs on the CPU inside the reservation.
# The overhead covers moving the weights onto the GPU and encoding the photo.
ZEROGPU_SECONDS_PER_FRAME_STEP = 0.004
ZEROGPU_DECODE_SECONDS_PER_FRAME = 0.03
ZEROGPU_EXPORT_SECONDS_PER_FRAME = 0.08
ZEROGPU_OVERHEAD_SECONDS = 15
ZEROGPU_MARGIN = 1.25
ZEROGPU_MIN_SECONDS = 30


def gpu_seconds_estimate(settings: GenerationSettings) -> int:
    """Seconds of GPU time to reserve for one generation with `settings` (for `spaces.GPU(duration=...)`)."""
    seconds = (
        ZEROGPU_OVERHEAD_SECONDS
        + settings.num_clips * settings.steps * settings.num_frames * ZEROGPU_SECONDS_PER_FRAME_STEP
        + settings.video_frames * ZEROGPU_DECODE_SECONDS_PER_FRAME
        + settings.output_frames * ZEROGPU_EXPORT_SECONDS_PER_FRAME
    )
    return max(ZEROGPU_MIN_SECONDS, math.ceil(seconds * ZEROGPU_MARGIN))
