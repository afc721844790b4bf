"""What one generation may ask for, and the checks on what a page or API caller sent."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..base import seeds
from ..base.environment import NumberRefused, truth
from ..base.environment import whole_number as parse_whole_number
from ..defaults import DEFAULT_DECODE_CHUNK_SIZE, DEFAULT_NUM_FRAMES
from ..image import DEFAULT_FIT, FIT_MODES
from ..schedulers import DEFAULT_SAMPLER, SAMPLERS, default_steps
from ..video import DEFAULT_FPS, MAX_FPS, MIN_FPS, chained_frames
from .errors import SettingsError


@dataclass(frozen=True)
class Limits:
    """What a request may ask for. The page's sliders use the same numbers."""

    # Twice the published 70 frames: the model was trained on 70-frame clips and memory grows
    # with the length (temporal attention), so longer asks mostly buy out-of-memory errors.
    max_frames: int = 140
    # Clips chained into one video (the page's Length: about 3, 6 or 9 s). Memory does not grow with
    # them; the time does, one clip's worth each.
    max_clips: int = 3
    max_steps: int = 1000  # the training schedule's length: no sampler can take more
    min_fps: int = MIN_FPS
    max_fps: int = MAX_FPS
    # the range of seeds drawn for the page (base/seeds.py): what a number box carries exactly and a person copies
    max_seed: int = seeds.DRAWN_SEEDS - 1


LIMITS = Limits()


@dataclass(frozen=True)
class GenerationSettings:
    """One request's settings, checked. `seed` is the seed actually used (never "random")."""

    seed: int
    sampler: str = DEFAULT_SAMPLER
    steps: int = default_steps(DEFAULT_SAMPLER)
    num_frames: int = DEFAULT_NUM_FRAMES
    fps: int = DEFAULT_FPS
    loop: bool = False
    decode_chunk_size: int = DEFAULT_DECODE_CHUNK_SIZE
    fit: str = DEFAULT_FIT
    decoder: str = "full"  # "tiny": a quick preview through the TAESD decoder
    num_clips: int = 1  # clips of num_frames chained into one video

    @property
    def video_frames(self) -> int:
        """Frames the model makes: its clips chained, each starting on the last frame of the one before."""
        return chained_frames(self.num_frames, self.num_clips)

    @property
    def output_frames(self) -> int:
        """Frames in the written video: a loop plays forward then back without repeating the ends."""
        return 2 * self.video_frames - 2 if self.loop else self.video_frames


@dataclass(frozen=True)
class Choice:
    """A setting's value as people see it: a name in plain words and a one-line hint, whose last
    sentence ("For experts: ...") gives the technical name. `former` holds labels of earlier versions,
    which API callers may still send."""

    label: str
    hint: str
    former: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The label without its parenthesis: "Fast (25 steps)" -> "Fast" (for the summary, where the steps are given)."""
        return self.label.split(" (")[0]


# The samplers named for people; the API keeps taking the short names (and these labels too).
SAMPLER_CHOICES = {
    "dpm++": Choice("Fast (25 steps)", "Recommended: good videos in few steps. For experts: the DPM-Solver++ sampler."),
    "unipc": Choice(
        "Fast, alternative (25 steps)",
        "About as fast as Fast; try it if a video looks off. For experts: the UniPC sampler.",
    ),
    "ddim": Choice("Careful (50 steps)", "Twice the work of Fast, for smoother detail. For experts: the DDIM sampler."),
    "ddpm": Choice(
        "Original FashionFlow method (1000 steps, very slow)",
        "How the FashionFlow paper's authors made their videos: 40 times the work of Fast, for comparing with "
        "theirs. For experts: their 1000-step DDPM sampler.",
        former=("Authors' original, 1000 steps, very slow",),
    ),
}


FIT_CHOICES = {
    "pad": Choice("Pad: keep the whole photo", "The whole photo, with the margins filled in its border colour."),
    "crop": Choice("Crop: fill the frame", "Fills the frame and cuts what sticks out; may cut off the head or feet."),
    "stretch": Choice(
        "Stretch: squeeze to fit",
        "Squeezes the photo into the frame, as the code of the FashionFlow paper's authors does.",
        former=("Stretch: as the authors did",),
    ),
}


def length_choices(limits: Limits | None = None) -> list[tuple[str, int]]:
    """The page's Length choice: (its length in seconds at the default frames and frame rate, clips)."""
    limits = limits or LIMITS
    return [
        (f"{chained_frames(DEFAULT_NUM_FRAMES, clips) / DEFAULT_FPS:.0f} s", clips)
        for clips in range(1, limits.max_clips + 1)
    ]


# The page's name for `decode_chunk_size`; the out-of-memory advice names it in the same words.
FRAMES_AT_A_TIME = "Frames finished at a time"


def count(number: int, noun: str) -> str:
    """A number of things in words: "1 step", "25 steps"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def random_seed(limits: Limits = LIMITS, rng: random.Random | None = None) -> int:
    """A seed for "Randomise seed": drawn as `base.seeds` draws them, within `limits`."""
    return (rng or random.SystemRandom()).randrange(min(seeds.DRAWN_SEEDS, limits.max_seed + 1))


def validate_settings(
    *,
    fit: Any = DEFAULT_FIT,
    seed: Any = None,
    randomize_seed: Any = True,
    sampler: Any = DEFAULT_SAMPLER,
    steps: Any = None,
    num_frames: Any = DEFAULT_NUM_FRAMES,
    fps: Any = DEFAULT_FPS,
    loop: Any = False,
    decode_chunk_size: Any = DEFAULT_DECODE_CHUNK_SIZE,
    limits: Limits = LIMITS,
    rng: random.Random | None = None,
    quick_preview: Any = False,
    clips: Any = 1,
) -> GenerationSettings:
    """Check what a page or API caller sent; raise `SettingsError` saying what is allowed.

    Values arrive as JSON numbers (25.0), strings or booleans. A missing or zero step count
    means the sampler's default; a decode chunk larger than the video is the whole video.
    Everything else out of range is refused rather than quietly changed, so that a caller
    gets the video they asked for or a reason.
    """
    sampler = choice(_value_for_label(sampler, SAMPLER_CHOICES), "Sampler", SAMPLERS)
    fit = choice(_value_for_label(fit, FIT_CHOICES), "Framing", FIT_MODES)
    num_frames = whole_number(num_frames, "Frames", 2, limits.max_frames)
    if num_frames % 2:
        raise SettingsError(f"Frames must be an even number (the model makes frames in pairs); got {num_frames}.")
    if steps is None or (not isinstance(steps, str) and _is_number(steps) and steps == 0):
        steps = default_steps(sampler)
    steps = whole_number(steps, "Steps", 1, limits.max_steps)
    fps = whole_number(fps, "Frames per second", limits.min_fps, limits.max_fps)
    decode_chunk_size = min(whole_number(decode_chunk_size, "Decode chunk size", 1, limits.max_frames), num_frames)
    loop = flag(loop, "Loop")
    num_clips = whole_number(1 if clips is None else clips, "Length in clips", 1, limits.max_clips)
    if flag(randomize_seed, "Randomise seed"):
        seed = random_seed(limits, rng)
    else:
        if seed is None or seed == "":
            raise SettingsError("Enter a seed, or tick “Randomise seed”.")
        seed = whole_number(seed, "Seed", 0, limits.max_seed)
    return GenerationSettings(
        seed=seed,
        sampler=sampler,
        steps=steps,
        num_frames=num_frames,
        fps=fps,
        loop=loop,
        decode_chunk_size=decode_chunk_size,
        fit=fit,
        decoder="tiny" if flag(quick_preview, "Quick preview") else "full",
        num_clips=num_clips,
    )


def _value_for_label(value: Any, choices: dict[str, Choice]) -> Any:
    """A label shown on the page ("Fast (25 steps)"), now or in an earlier version, stands for its value ("dpm++")."""
    if isinstance(value, str):
        for key, shown in choices.items():
            if value.strip().lower() in (label.lower() for label in (shown.label, *shown.former)):
                return key
    return value


def nearest_even_frames(value: Any, limits: Limits = LIMITS) -> int | None:
    """An odd frame count typed on the page as the next even one (within the limits); None when
    `value` is not a number at all (the check at Generate then explains)."""
    try:
        number = round(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return max(2, min(limits.max_frames, number + number % 2))


def slider_value(value: Any, low: int, high: int) -> Any:
    """A number typed into one of the page's sliders as the slider keeps it (and Generate sends it):
    within [low, high], so 0 steps become 1 and 5000 become 1000. Anything that is not a number is
    returned as it is, for the checks to explain."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return value
    if isinstance(value, bool) or not math.isfinite(number):
        return value
    return min(high, max(low, number))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole_number(value: Any, label: str, low: int, high: int) -> int:
    """`value` (a number or its text) as an int in [low, high], or `SettingsError` naming `label`."""
    try:
        return parse_whole_number(value, label, low, high)
    except NumberRefused as refused:
        if refused.number is not None:  # a whole number, out of range: say only the range
            raise SettingsError(f"{label} must be from {low} to {high}; got {refused.number}.") from None
        raise SettingsError(str(refused)) from None


def choice(value: Any, label: str, choices: Iterable[str]) -> str:
    """`value` as one of `choices` (case and spaces ignored), or `SettingsError` listing them."""
    text = str(value).strip().lower() if value is not None else ""
    if text not in choices:
        raise SettingsError(f"{label} must be one of: {', '.join(choices)}; got {value!r}.")
    return text


def flag(value: Any, label: str) -> bool:
    """`value` as a bool: true/false, 1/0 or their text (`base.environment.truth`); else `SettingsError`."""
    try:
        return truth(value, label)
    except ValueError as error:
        raise SettingsError(str(error)) from None
