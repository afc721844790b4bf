"""What the page shows besides Gradio's own components: small pieces of HTML, escaped, with the
roles and labels screen readers need. The look is app.css's (the `ff-` classes)."""

from __future__ import annotations

import base64
import html

from ..service import Look, ModelStatus


def message_html(text: str) -> str:
    """A problem, beside its cause (the photo, the settings, the status line)."""
    return f'<p class="ff-message" role="alert">{html.escape(text)}</p>'


def note_html(text: str) -> str:
    """A note that is not a problem (Crop cuts the head off, frames were made even)."""
    return f'<p class="ff-note">{html.escape(text)}</p>'


def estimate_html(text: str, long: bool = False) -> str:
    """How long Generate will take; a long wait stands out."""
    return f'<p class="ff-estimate{" ff-long" if long else ""}">{html.escape(text)}</p>'


def job_html(text: str, fraction: float | None, final: bool = False) -> str:
    """The status line beside Generate: a sentence and a bar. Screen readers hear a coarse version
    (the live region), so that they are not told every step."""
    if not text:
        return ""
    if final or fraction is None:
        bar, spoken = "", text
    else:
        percent = round(100 * fraction)
        bar = f'<progress max="100" value="{percent}" aria-label="Progress of the video"></progress>'
        spoken = f"{text.split(' · ')[0].split(':')[0]}: {10 * (percent // 10)}% done"
    return (
        f'<div class="ff-job"><div aria-hidden="true">{html.escape(text)}</div>{bar}'
        f'<span class="ff-sr">{html.escape(spoken)}</span></div>'
    )


def status_html(status: ModelStatus) -> str:
    """The model banner: ready, untrained (a warning), preparing (with progress), or not ready."""
    style = {"ready": "ff-ready", "untrained": "ff-warning", "preparing": "ff-preparing"}.get(status.kind, "ff-failed")
    parts = [f"<p><strong>{html.escape(status.headline)}</strong></p>"]
    if status.preparation is not None:
        parts.append(f"<p>{html.escape(status.preparation.describe())}</p>")
        fraction = status.preparation.fraction
        value = f' value="{round(100 * fraction)}"' if fraction is not None else ""
        parts.append(f'<progress max="100"{value} aria-label="Preparing the model"></progress>')
    if status.details:
        summary = "Details" if status.can_generate else "Details for the operator"
        parts.append(f"<details><summary>{summary}</summary><pre>{html.escape(status.details)}</pre></details>")
    return f'<div class="ff-banner {style}">{"".join(parts)}</div>'


def live_preview_html(look: Look) -> str:
    """A few frames of the video taking shape, inline (no files to clean up); they wrap to two rows on a
    phone. Not a live region: screen readers hear the status line."""
    pictures = "".join(
        f'<img src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode("ascii")}" '
        f'alt="Frame {index + 1} of {look.num_frames}, after step {look.step} of {look.steps}">'
        for index, jpeg in look.frames
    )
    caption = f"Taking shape: step {look.step} of {look.steps}. Rough colours only: the finished video is sharper."
    return (
        f'<figure class="ff-live"><div class="ff-live-frames">{pictures}</div>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )
