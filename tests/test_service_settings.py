"""fashionflow.service.settings: what a request may ask for, checked."""

from __future__ import annotations

import random

import pytest
from app_harness import FAST

from fashionflow import service
from fashionflow.schedulers import default_steps

# settings ---------------------------------------------------------------------------------------------------------


def test_settings_from_the_page_and_from_json():
    s = service.validate_settings(
        fit="Crop", seed=12.0, randomize_seed=False, sampler="DPM++", steps=30.0, num_frames=16, fps="12", loop="true"
    )
    assert (s.fit, s.seed, s.sampler, s.steps, s.num_frames, s.fps, s.loop) == ("crop", 12, "dpm++", 30, 16, 12, True)
    assert s.output_frames == 30  # forward then back, ends not repeated


@pytest.mark.parametrize("steps", [None, 0])
def test_missing_steps_mean_the_samplers_default(steps):
    assert service.validate_settings(sampler="ddim", steps=steps).steps == default_steps("ddim")


def test_decode_chunk_larger_than_the_video_is_the_whole_video():
    assert service.validate_settings(num_frames=6, decode_chunk_size=100).decode_chunk_size == 6


def test_random_seed_is_in_range_and_comes_from_the_rng():
    a = service.validate_settings(randomize_seed=True, seed=5, rng=random.Random(1)).seed
    b = service.validate_settings(randomize_seed=True, seed=5, rng=random.Random(1)).seed
    assert a == b != 5 and 0 <= a <= service.LIMITS.max_seed


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_frames=7), "Frames must be an even number"),
        (dict(num_frames=142), "Frames must be from 2 to 140"),
        (dict(num_frames=0), "Frames must be from 2 to 140"),
        (dict(steps=2.5), "Steps must be a whole number"),
        (dict(steps=float("nan")), "Steps must be a whole number"),
        (dict(steps=1001), "Steps must be from 1 to 1000"),
        (dict(steps="many"), "Steps must be a whole number"),
        (dict(fps=0), "Frames per second must be from 1 to 60"),
        (dict(decode_chunk_size=-1), "Decode chunk size must be from 1"),
        (dict(sampler="euler"), "Sampler must be one of: ddpm, ddim, dpm++, unipc"),
        (dict(fit="zoom"), "Framing must be one of: pad, crop, stretch"),
        (dict(seed=-1), "Seed must be from 0 to 4294967295"),
        (dict(seed=None), "Enter a seed, or tick"),
        (dict(loop="maybe"), "Loop must be true or false"),
        (dict(clips=4), "Length in clips must be from 1 to 3"),
        (dict(clips=0), "Length in clips must be from 1 to 3"),
        (dict(clips="long"), "Length in clips must be a whole number"),
    ],
)
def test_out_of_range_settings_are_refused_with_the_allowed_range(overrides, message):
    with pytest.raises(service.SettingsError, match=message.replace("+", r"\+")):
        service.validate_settings(**{**FAST, **overrides})


def test_the_pages_names_for_samplers_and_framing_are_accepted_too():
    s = service.validate_settings(
        sampler="Original FashionFlow method (1000 steps, very slow)", fit="Crop: fill the frame"
    )
    assert (s.sampler, s.steps, s.fit) == ("ddpm", 1000, "crop")
    # ... and the names earlier versions of the page showed, which API callers may still send.
    s = service.validate_settings(sampler="Authors' original, 1000 steps, very slow", fit="Stretch: as the authors did")
    assert (s.sampler, s.fit) == ("ddpm", "stretch")
    assert set(service.SAMPLER_CHOICES) == {"dpm++", "unipc", "ddim", "ddpm"}  # every sampler has a name and hint
    assert all(choice.hint for choice in service.SAMPLER_CHOICES.values())


@pytest.mark.parametrize("typed, even", [(7, 8), (8, 8), (1, 2), (141, 140), ("9", 10), (6.4, 6), ("many", None)])
def test_odd_frames_become_the_next_even_number(typed, even):
    assert service.nearest_even_frames(typed) == even


def test_the_length_is_clips_chained_and_shown_in_seconds():
    s = service.validate_settings(num_frames=70, fps=25, clips=3.0, loop=True)
    assert (s.num_clips, s.video_frames, s.output_frames) == (3, 208, 414)  # 3 x 69 + 1, then there and back
    assert service.validate_settings(clips=None).num_clips == 1  # an API caller that does not send it
    assert service.length_choices() == [("3 s", 1), ("6 s", 2), ("8 s", 3)]  # 70, 139, 208 frames at 25 fps
