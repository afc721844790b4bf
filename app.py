"""FashionFlow web app: upload a fashion photo, get a short video of the person moving.

    python app.py                        # weights/fashionflow-official, on http://127.0.0.1:7860
    python app.py --model tiny-random    # the untrained test model: runs anywhere, makes noise
    python app.py --host 0.0.0.0 --port 8080 --share

This file lays out the page and wires its events; what the events do (checking requests,
one generation at a time, cancelling, cleaning up, readable errors, fetching the weights,
estimating times) is `fashionflow.service`.
"""

from __future__ import annotations

try:  # ZeroGPU on Hugging Face Spaces: `spaces` has to be imported before torch sets up CUDA
    import spaces
except ImportError:
    spaces = None

import argparse
import asyncio
import html
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import PIL.Image

from fashionflow import service
from fashionflow.image import MAX_FILE_BYTES
from fashionflow.progress import ProgressUpdate
from fashionflow.schedulers import DEFAULT_SAMPLER, SAMPLERS, default_steps

# Shops' servers send no telemetry; set before any Blocks exists, which is when Gradio reads it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

logger = logging.getLogger("fashionflow.app")

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
# Public-domain photos of people; sources and licences in examples/README.md. An operator
# replaces them with a folder of their own (--examples, FASHIONFLOW_EXAMPLES).
EXAMPLES = ["grace_hopper.jpg", "astronaut.png", "camera.png"]
FIT_CHOICES = [(choice.label, mode) for mode, choice in service.FIT_CHOICES.items()]
SAMPLER_CHOICES = [(choice.label, name) for name, choice in service.SAMPLER_CHOICES.items()]
TIP = (
    "**Works best with** a full-length photo of one person, standing, on a plain background, "
    "taller than it is wide (like a shop's catalogue photo)."
)


# The Soft theme with its labels, primary buttons and selected choices one shade darker, for at
# least 4.5:1 contrast of their text (WCAG AA).
def theme() -> gr.themes.Base:
    return gr.themes.Soft().set(
        block_title_text_color="*primary_700",
        block_label_text_color="*primary_700",
        button_primary_background_fill="*primary_600",
        button_primary_background_fill_hover="*primary_700",
        checkbox_label_background_fill_selected="*primary_600",
    )


# Text colours chosen for at least 4.5:1 contrast (WCAG AA) on the theme's backgrounds.
CSS = """
:root, .dark {
  --body-text-color-subdued: #4b5563; --block-info-text-color: #4b5563;
}
.dark { --body-text-color-subdued: #d1d5db; --block-info-text-color: #d1d5db; }
.ff-banner { padding: 0.6rem 0.9rem; border-radius: 0.5rem; border: 1px solid; }
.ff-banner p { margin: 0.2rem 0; }
.ff-ready { background: #ecfdf5; border-color: #6ee7b7; color: #064e3b; }
.ff-warning { background: #fef3c7; border-color: #d97706; color: #78350f; }
.ff-preparing { background: #eff6ff; border-color: #60a5fa; color: #1e3a8a; }
.ff-failed { background: #fef2f2; border-color: #f87171; color: #7f1d1d; }
.ff-banner details { margin-top: 0.3rem; } .ff-banner summary { cursor: pointer; }
.ff-banner pre { white-space: pre-wrap; font-size: 0.85rem; margin: 0.3rem 0 0; }
.ff-banner progress, .ff-job progress { width: 100%; height: 0.7rem; }
.ff-message { padding: 0.5rem 0.8rem; border-radius: 0.4rem; background: #fef2f2; color: #7f1d1d;
  border: 1px solid #f87171; }
.ff-note { padding: 0.5rem 0.8rem; border-radius: 0.4rem; background: #fef3c7; color: #78350f;
  border: 1px solid #d97706; }
.ff-estimate { color: #1f2937; } .ff-estimate.ff-long { color: #78350f; font-weight: 600; }
.ff-job { padding: 0.4rem 0; color: #1f2937; }
.ff-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
#preview img { width: 100%; height: 100%; object-fit: contain; }
#photo-message:has(.prose:empty), #settings-message:has(.prose:empty), #estimate:has(.prose:empty) { display: none; }
#photo-message, #settings-message, #estimate, #job-status { padding: 0 !important; min-height: 0; }
.ff-estimate, .ff-message, .ff-note { margin: 0 !important; }
#run-summary { min-height: 1.5rem; }
:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }
"""


class FashionFlowApp:
    """The page's event handlers, around one model (loaded, or on its way)."""

    def __init__(
        self,
        model: service.ModelState | service.ModelSetup,
        store: service.OutputStore,
        jobs: service.JobRegistry | None = None,
        zero_gpu: bool = False,
        queue_size: int = 16,
        speeds: service.SpeedBook | None = None,
    ):
        self.setup = model if isinstance(model, service.ModelSetup) else service.ModelSetup(model)
        self.store = store
        self.jobs = jobs or service.JobRegistry()
        self.queue = service.DeviceQueue(max_waiting=queue_size)
        self.speeds = speeds or service.SpeedBook()
        # One pipeline, one device: a cancelled run may still be finishing its current step
        # when the next one starts, and this lock makes the next one wait for it.
        self.device_lock = threading.Lock()
        self.run_on_device = self._run_on_device
        if zero_gpu:
            # ZeroGPU lends a GPU per call for the seconds asked; the estimate follows the settings.
            self.run_on_device = spaces.GPU(self._run_on_device, duration=_zero_gpu_duration)

    @property
    def model(self) -> service.ModelState:
        return self.setup.state

    # the photo ---------------------------------------------------------------------------------------------------

    def preview(self, photo: Any, fit: str) -> PIL.Image.Image | None:
        """The /preview API: the photo framed as the model will see it; bad input is an error.

        A plain (not async) function, as the page's handlers below: Gradio runs it in its thread
        pool, off the event loop, so a large photo never holds up other requests."""
        try:
            return service.preview_photo(self.model, photo, fit)
        except Exception as error:
            raise _gr_error(service.as_service_error(error, "reading the photo")) from None

    def photo_changed(self, photo: Any, fit: str) -> tuple:
        """The page's upload and framing changes: the preview and a note, or the problem beside the
        photo and the drop zone emptied. Returns (photo, preview, photo message)."""
        if photo is None:  # removed, or emptied after a rejected upload: keep what was said
            return gr.skip(), None, gr.skip()
        try:
            image = service.read_photo(photo)
            preview = service.preview_photo(self.model, image, fit)
        except Exception as error:
            return None, None, _message_html(str(service.as_service_error(error, "reading the photo")))
        note = service.crop_note(image.size, self.model.frame_size, fit)
        return gr.skip(), preview, _note_html(note) if note else ""

    # settings ----------------------------------------------------------------------------------------------------

    def settings_changed(self, sampler: str, steps: Any, num_frames: Any, fps: Any, loop: Any, chunk: Any) -> tuple:
        """Any setting edited: odd frames become even, the time estimate follows, old messages go.
        Returns (frames, settings message, estimate)."""
        even = service.nearest_even_frames(num_frames)
        frames = even if even is not None and even != num_frames else gr.skip()
        note = ""
        if frames is not gr.skip() and isinstance(num_frames, (int, float)) and num_frames % 2:
            note = _note_html(f"Frames go in pairs: {num_frames:g} became {even}.")
        estimate = self.estimate_html(sampler, steps, even or num_frames, fps, loop, chunk)
        return frames, note, estimate

    def sampler_changed(self, sampler: str, num_frames: Any, fps: Any, loop: Any, chunk: Any) -> tuple:
        """A new sampler: its usual step count and its hint. Returns (steps, sampler, estimate)."""
        name = sampler if sampler in SAMPLERS else DEFAULT_SAMPLER
        steps = default_steps(name)
        hint = service.SAMPLER_CHOICES[name].hint
        return (
            gr.Slider(value=steps),
            gr.Dropdown(info=hint),
            self.estimate_html(name, steps, num_frames, fps, loop, chunk),
        )

    def estimate_html(self, sampler: str, steps: Any, num_frames: Any, fps: Any, loop: Any, chunk: Any) -> str:
        """How long Generate will take with these settings, from this server's measured speeds."""
        defaults = service.GenerationSettings(seed=0)
        try:  # a setting the browser has not sent yet (Advanced never opened) counts as its default
            settings = service.validate_settings(
                sampler=sampler or defaults.sampler,
                steps=steps,
                num_frames=defaults.num_frames if num_frames is None else num_frames,
                fps=defaults.fps if fps is None else fps,
                loop=bool(loop),
                decode_chunk_size=defaults.decode_chunk_size if chunk is None else chunk,
            )
        except service.SettingsError:
            return ""
        estimate = self.speeds.estimate(settings)
        if estimate is None:
            if self.model.ready:
                return '<p class="ff-estimate">Measuring how fast this server is…</p>'
            return ""
        if estimate.long:
            return (
                f'<p class="ff-estimate ff-long">Long wait: {html.escape(estimate.describe())} '
                "“Fast (25 steps)” and fewer frames take much less.</p>"
            )
        return f'<p class="ff-estimate">Time: {html.escape(estimate.describe())}</p>'

    # generating ------------------------------------------------------------------------------------------------

    def check_request(
        self, photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview=False
    ) -> tuple:
        """Generate pressed on the page: problems are shown beside their cause (by `show_problem`)
        and stop here; otherwise Generate turns busy and the status line starts following the job."""
        try:
            self._checked(photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview)
        except service.ServiceError as error:
            raise gr.Error(str(error), title=error.title, visible=False, print_exception=False) from None
        busy = gr.Button(value="Generating…", interactive=False)
        return busy, gr.Timer(active=True), _job_html("Starting…", 0.0), "", ""

    def show_problem(
        self, photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview=False
    ) -> tuple:
        """What stopped Generate, beside the photo or the settings. Returns (photo message, settings message)."""
        try:
            self._checked(photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview)
        except service.PhotoError as error:
            return _message_html(str(error)), ""
        except service.ServiceError as error:
            return gr.skip(), _message_html(str(error))
        return gr.skip(), gr.skip()

    def _checked(self, photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview):
        """The request as `generate` will take it, or the `ServiceError` it will give."""
        settings = self._settings(
            fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview
        )
        self.model.require_decoder(settings.decoder)
        try:
            return settings, service.read_photo(photo)
        except Exception as error:
            raise service.as_service_error(error, "reading the photo") from None

    def _settings(self, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, chunk, quick_preview=False):
        self.model.require()
        return service.validate_settings(
            fit=fit,
            seed=seed,
            randomize_seed=randomize_seed,
            sampler=sampler,
            steps=steps,
            num_frames=num_frames,
            fps=fps,
            loop=loop,
            decode_chunk_size=chunk,
            quick_preview=quick_preview,
        )

    async def generate(
        self,
        photo: Any,
        fit: str,
        seed: float | None,
        randomize_seed: bool,
        sampler: str,
        steps: int,
        num_frames: int,
        fps: int,
        loop: bool,
        decode_chunk_size: int,
        request: gr.Request,
        quick_preview: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the tracker by this default)
    ) -> tuple:
        """Make a video from `photo`: returns the video, MP4 and GIF downloads, the seed used and a summary."""
        session = getattr(request, "session_hash", None)
        try:
            settings = self._settings(
                fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, decode_chunk_size, quick_preview
            )
            self.model.require_decoder(settings.decoder)
            # Off the event loop: reading a large photo takes a while, and other requests go on meanwhile.
            image = await asyncio.to_thread(service.read_photo, photo)
            job_dir = self.store.new_job()
        except Exception as error:
            raise _gr_error(service.as_service_error(error, "reading the photo")) from None

        token = self.jobs.start(session, flag_file=job_dir / "cancelled")
        estimate = self.speeds.estimate(settings)
        try:
            ticket = self.queue.join(session, token, estimate.seconds if estimate else None)
        except service.QueueFullError as error:
            self._finish(session, token, job_dir, service.Outcome("error", str(error)))
            raise _gr_error(error, visible=False) from None
        progress(0, desc="Starting")
        try:
            await self.queue.wait_turn(ticket, report=lambda place: progress(0, desc=place.describe()))
            # In a thread of our own rather than Gradio's: a cancelled task then gets control back
            # at once (Gradio waits for its own threads), and the token stops the pipeline at its
            # next step. Context variables travel with the thread, so progress reaches the page.
            result = await asyncio.to_thread(self.run_on_device, image, settings, job_dir, token, progress, ticket)
        except asyncio.CancelledError:
            token.cancel()
            self._finish(session, token, job_dir, service.Outcome("cancelled", "Generation cancelled."), ticket)
            raise
        except service.GenerationCancelled:
            result = None
        except gr.Error as error:
            self._finish(session, token, job_dir, service.Outcome("error", error.message), ticket)
            error.visible = False  # the page shows it in the status line, beside Generate
            raise
        if result is None:  # cancelled through the session's Cancel button, not through the queue
            self._finish(session, token, job_dir, service.Outcome("cancelled", "Generation cancelled."), ticket)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Generation cancelled: no video was made."
        self.speeds.learn(result.settings, result.timings)
        done = f"Done: made in {_seconds(result.seconds)}."
        self._finish(session, token, job_dir, service.Outcome("done", done), ticket)
        # Plain paths, so that API callers get files; `enable_downloads` then unlocks the buttons.
        return str(result.mp4), str(result.mp4), str(result.gif), result.settings.seed, result.summary_markdown()

    def _finish(self, session, token, job_dir, outcome: service.Outcome, ticket=None) -> None:
        if ticket is not None:
            self.queue.leave(ticket)
        self.jobs.finish(session, token)
        self.store.finished(job_dir)
        self.jobs.record_outcome(session, outcome)

    async def generate_example(self, photo: Any, request: gr.Request) -> tuple:
        """Cached example results: the default settings and seed 0, so that anyone can reproduce them."""
        s = service.GenerationSettings(seed=0)
        return await self.generate(
            photo, s.fit, s.seed, False, s.sampler, s.steps, s.num_frames, s.fps, s.loop, s.decode_chunk_size, request
        )

    def job_status(self, request: gr.Request) -> str:
        """This session's generation as the status line beside Generate shows it (polled while it runs)."""
        ticket = self.queue.ticket_of(getattr(request, "session_hash", None))
        if ticket is None:
            return gr.skip()
        if not ticket.running:
            place = self.queue.place(ticket)
            return _job_html(place.describe(), None) if place else gr.skip()
        update = ticket.update or ProgressUpdate(0.0, "Starting")
        return _job_html(update.desc, update.fraction)

    def after_run(self, sampler, steps, num_frames, fps, loop, chunk, request: gr.Request) -> tuple:
        """Generate is free again; the status line says how the run ended; the estimate has learnt.
        Returns (Generate, status timer, status line, estimate)."""
        outcome = self.jobs.last_outcome(getattr(request, "session_hash", None))
        if outcome is None or outcome.kind == "done":
            text = _job_html(outcome.message if outcome else "", None, final=True)
        elif outcome.kind == "cancelled":
            text = _job_html(outcome.message, None, final=True)
        else:
            text = _message_html(outcome.message)
        idle = gr.Button(value="Generate", interactive=self.model.ready)
        return idle, gr.Timer(active=False), text, self.estimate_html(sampler, steps, num_frames, fps, loop, chunk)

    def cancel(self, request: gr.Request) -> str:
        """Stop this session's generation, running or waiting (the queue's own cancel also ends its task)."""
        if self.jobs.cancel_session(getattr(request, "session_hash", None)):
            return "Generation cancelled."
        return "Nothing to cancel: no video is being made."

    def cancel_clicked(self, request: gr.Request) -> tuple:
        """Cancel on the page: the status line says what happened; Generate is free again."""
        said = self.cancel(request)
        return (
            _job_html(said, None, final=True),
            gr.Button(value="Generate", interactive=self.model.ready),
            gr.Timer(active=False),
        )

    @staticmethod
    def enable_downloads(mp4: str | None, gif: str | None) -> tuple[gr.DownloadButton, gr.DownloadButton]:
        return gr.DownloadButton(interactive=mp4 is not None), gr.DownloadButton(interactive=gif is not None)

    # the model ----------------------------------------------------------------------------------------------------

    def model_status(self, sampler, steps, num_frames, fps, loop, chunk) -> tuple:
        """The model banner, Generate, the banner's timer (on while preparing) and the estimate."""
        status = self.setup.status()
        return (
            _status_html(status),
            gr.Button(interactive=status.can_generate),
            gr.Timer(active=self.still_changing(status)),
            self.estimate_html(sampler, steps, num_frames, fps, loop, chunk),
        )

    def still_changing(self, status: service.ModelStatus) -> bool:
        """Whether the banner and the estimate need polling: the model is on its way, or the speed
        measurement that gives the estimate its first numbers has not finished yet."""
        unmeasured = self.speeds.measured is None and self.speeds.prior is None
        return status.kind == "preparing" or (status.can_generate and unmeasured)

    # the device side -------------------------------------------------------------------------------------------

    def _run_on_device(
        self,
        image: PIL.Image.Image,
        settings: service.GenerationSettings,
        job_dir: Path,
        token: service.CancelToken,
        progress: gr.Progress,
        ticket: service.Ticket | None = None,
    ) -> service.GenerationResult | None:
        """The part that needs the GPU. On ZeroGPU it runs in a forked process: arguments and
        result are pickled, and errors must be `gr.Error` to arrive with their message."""

        def report(update: ProgressUpdate) -> None:
            if ticket is not None:
                ticket.update = update
            progress(update.fraction, desc=update.desc)

        model = self.model
        try:
            return service.run_generation(
                model.pipeline,
                image,
                settings,
                job_dir,
                token,
                report,
                lock=self.device_lock,
                untrained=model.untrained,
            )
        except service.GenerationCancelled:
            return None
        except Exception as error:  # disk full, out of memory, anything: a titled sentence, details in the log
            raise _gr_error(service.as_service_error(error, "making the video")) from None


def _gr_error(error: service.ServiceError, visible: bool = True) -> gr.Error:
    return gr.Error(str(error), title=error.title, visible=visible, print_exception=False)


def _zero_gpu_duration(image, settings: service.GenerationSettings, job_dir, token, progress, ticket=None) -> int:
    return service.gpu_seconds_estimate(settings)


def _seconds(seconds: float) -> str:
    from fashionflow.progress import format_seconds

    return format_seconds(seconds).removeprefix("about ")


# what the page shows: small pieces of HTML --------------------------------------------------------------------------


def _message_html(text: str) -> str:
    return f'<p class="ff-message" role="alert">{html.escape(text)}</p>'


def _note_html(text: str) -> str:
    return f'<p class="ff-note">{html.escape(text)}</p>'


def _job_html(text: str, fraction: float | None, final: bool = False) -> str:
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


def _status_html(status: service.ModelStatus) -> str:
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


def _page_js(example_names: list[str]) -> str:
    """Runs in the browser (and again when the page changes): names for example thumbnails and image
    buttons, and the status line beside Generate as a live region."""
    return f"""
() => {{
  const names = {json.dumps(example_names)};
  const label = () => {{
    document.querySelectorAll('#examples button.gallery-item, #examples .gallery-item').forEach((item, i) => {{
      if (names[i] && !item.getAttribute('aria-label')) {{
        item.setAttribute('aria-label', 'Example photo: ' + names[i]);
        item.querySelectorAll('img').forEach(img => img.setAttribute('alt', names[i]));
      }}
    }});
    // Image buttons (the uploaded photo, the preview) say which image they are.
    document.querySelectorAll('button').forEach(button => {{
      if (button.getAttribute('aria-label') || button.title || button.innerText.trim()) return;
      const block = button.closest('.block');
      const label = block?.querySelector('[data-testid=block-label]')?.innerText.trim();
      if (label || block?.id) button.setAttribute('aria-label', label || block.id);
    }});
    const status = document.getElementById('job-status');
    if (status && !status.getAttribute('aria-live')) {{
      status.setAttribute('role', 'status');
      status.setAttribute('aria-live', 'polite');
    }}
  }};
  label();
  new MutationObserver(label).observe(document.body, {{childList: true, subtree: true}});
}}
"""


SCROLL_TO_RESULT = "() => document.getElementById('video')?.scrollIntoView({behavior: 'smooth', block: 'start'})"


def build_demo(app: FashionFlowApp, output_ttl: int = 3600, examples: list[Path] | None = None) -> gr.Blocks:
    """The page. Generations wait in the app's own queue (real places and waits), one at a time."""
    model, limits, defaults = app.model, service.LIMITS, service.GenerationSettings(seed=0)
    # Frames decoded at once: the loaded pipeline's choice for this machine (1 on a CPU, where more
    # costs gigabytes and gains nothing); a model still being prepared starts from the GPU default.
    chunk_default = model.pipeline.decode_chunk_size_for() if model.ready else defaults.decode_chunk_size
    status = app.setup.status()
    examples = examples or [EXAMPLES_DIR / name for name in EXAMPLES]
    sweep_every = max(60, min(600, output_ttl // 4))
    with gr.Blocks(
        title="FashionFlow",
        analytics_enabled=False,
        # Gradio's copies of the videos it served, removed on the same schedule as ours.
        delete_cache=(sweep_every, output_ttl),
    ) as demo:
        gr.Markdown("# FashionFlow\nUpload a fashion photo of one person; get a short video of them moving and posing.")
        model_status = gr.HTML(_status_html(status), elem_id="model-status")
        model_timer = gr.Timer(1.0, active=app.still_changing(status))
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                with gr.Row():
                    photo = gr.Image(
                        label="Photo",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        height=360,
                        elem_id="photo",
                    )
                    preview = gr.Image(
                        label="What the model sees",
                        interactive=False,
                        height=360,
                        format="png",
                        elem_id="preview",
                    )
                photo_message = gr.HTML("", elem_id="photo-message")
                gr.Markdown(TIP, elem_id="tip")
                fit = gr.Radio(FIT_CHOICES, value=defaults.fit, label="Framing", elem_id="fit")
                with gr.Row():
                    seed = gr.Number(
                        value=0, label="Seed", precision=0, minimum=0, maximum=limits.max_seed, elem_id="seed",
                        info="The same seed and settings make the same video.",
                    )  # fmt: skip
                    randomize_seed = gr.Checkbox(value=True, label="Randomise seed", elem_id="randomize-seed")
                with gr.Row():
                    generate_button = gr.Button(
                        "Generate", variant="primary", interactive=status.can_generate, elem_id="generate"
                    )
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                settings_message = gr.HTML("", elem_id="settings-message")
                estimate = gr.HTML("", elem_id="estimate")
                job_status = gr.HTML("", elem_id="job-status")
                job_timer = gr.Timer(0.5, active=False)
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    sampler = gr.Dropdown(
                        SAMPLER_CHOICES, value=defaults.sampler, label="Sampler", elem_id="sampler",
                        info=service.SAMPLER_CHOICES[defaults.sampler].hint,
                    )  # fmt: skip
                    steps = gr.Slider(
                        1, limits.max_steps, value=defaults.steps, step=1, label="Steps",
                        info="More steps: finer detail, longer wait. Changing the sampler picks its usual number.",
                        elem_id="steps",
                    )  # fmt: skip
                    num_frames = gr.Slider(
                        2, limits.max_frames, value=defaults.num_frames, step=2, label="Frames (even numbers)",
                        info="The model was trained on 70-frame videos (2.8 s at 25 frames per second).",
                        elem_id="frames",
                    )  # fmt: skip
                    fps = gr.Slider(
                        limits.min_fps, limits.max_fps, value=defaults.fps, step=1, label="Frames per second",
                        info="Playback speed: fewer is slower motion, more is faster.", elem_id="fps",
                    )  # fmt: skip
                    loop = gr.Checkbox(
                        value=defaults.loop, label="Loop: play forward then backward, so the video loops smoothly",
                        elem_id="loop",
                    )  # fmt: skip
                    decode_chunk_size = gr.Slider(
                        1, limits.max_frames, value=chunk_default, step=1,
                        label="Frames turned into pictures at once",
                        info="Lower it if the server runs out of memory; higher is faster on a GPU.",
                        elem_id="decode-chunk-size",
                    )  # fmt: skip
                    # A model still being prepared gets its tiny decoder with the download: leave it on then.
                    no_tiny_decoder = model.ready and not model.has_quick_preview
                    quick_preview = gr.Checkbox(
                        value=False, label="Quick preview: decode with the tiny decoder (much faster, softer details)",
                        info="This model has no tiny decoder." if no_tiny_decoder else "For a first look; turn it off for the final video.",
                        interactive=not no_tiny_decoder, elem_id="quick-preview",
                    )  # fmt: skip
            with gr.Column(scale=1):
                video = gr.Video(
                    label="Video", autoplay=True, loop=True, interactive=False, height=480, elem_id="video"
                )
                with gr.Row():
                    mp4_button = gr.DownloadButton("Download MP4", interactive=False, elem_id="download-mp4")
                    gif_button = gr.DownloadButton("Download GIF", interactive=False, elem_id="download-gif")
                summary = gr.Markdown(label="Summary", elem_id="run-summary")
        preview_api = gr.Button("Preview", visible=False, elem_id="preview-api")

        outputs = [video, mp4_button, gif_button, seed, summary]
        estimate_inputs = [sampler, steps, num_frames, fps, loop, decode_chunk_size]
        request_inputs = [photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, decode_chunk_size]
        request_inputs.append(quick_preview)  # added later: /generate's parameters only ever grow at the end
        # Example results are cached only for trained weights: the tiny-random model's videos
        # are noise (caching would present noise as what the app does), and without weights
        # there is nothing to run. Lazily, on first click: caching all at start-up would run
        # full generations before the server even listens.
        cache = status.kind == "ready" or (status.kind == "preparing" and not model.untrained)
        gr.Examples(
            examples=[[str(path)] for path in examples],
            inputs=[photo],
            outputs=outputs if cache else None,
            fn=app.generate_example if cache else None,
            cache_examples=cache,
            cache_mode="lazy" if cache else None,
            label="Example photos",
            elem_id="examples",
        )

        private = dict(api_visibility="private")
        # The photo reaches the handlers unprocessed (preprocess=False): Gradio's own decoding
        # would fail on a broken upload with a message nobody can act on; ours says what is wrong.
        photo_options = dict(
            inputs=[photo, fit],
            outputs=[photo, preview, photo_message],
            preprocess=False,
            concurrency_limit=4,  # framing is quick CPU work: it need not wait for generations
            show_progress="hidden",
            **private,
        )
        photo.change(app.photo_changed, **photo_options)
        fit.change(app.photo_changed, **photo_options)
        # The /preview API (as before): bad input is an error for the caller. Its trigger is hidden,
        # because the page itself shows problems beside the photo instead.
        preview_api.click(
            app.preview,
            inputs=[photo, fit],
            outputs=preview,
            preprocess=False,
            concurrency_limit=4,
            api_name="preview",
            api_description="The photo framed as the model will see it (pad, crop or stretch).",
        )
        sampler.change(
            app.sampler_changed,
            inputs=[sampler, num_frames, fps, loop, decode_chunk_size],
            outputs=[steps, sampler, estimate],
            preprocess=False,
            queue=False,
            **private,
        )
        gr.on(
            [steps.input, num_frames.input, fps.input, loop.input, decode_chunk_size.input, num_frames.release],
            app.settings_changed,
            inputs=estimate_inputs,
            outputs=[num_frames, settings_message, estimate],
            preprocess=False,
            queue=False,
            show_progress="hidden",
            **private,
        )
        # A typed seed is meant to be used: untick "Randomise seed".
        seed.input(lambda: (False, ""), outputs=[randomize_seed, settings_message], queue=False, **private)
        randomize_seed.input(lambda: "", outputs=settings_message, queue=False, **private)

        checked = generate_button.click(
            app.check_request,
            inputs=request_inputs,
            outputs=[generate_button, job_timer, job_status, photo_message, settings_message],
            preprocess=False,
            queue=False,
            show_progress="hidden",
            **private,
        )
        checked.failure(
            app.show_problem,
            inputs=request_inputs,
            outputs=[photo_message, settings_message],
            preprocess=False,
            queue=False,
            show_progress="hidden",
            **private,
        )
        generate_event = checked.success(
            app.generate,
            inputs=request_inputs,
            outputs=outputs,
            preprocess=False,
            api_name="generate",
            api_description="Make a video from one fashion photo. Returns the MP4, MP4 and GIF downloads, "
            "the seed used and a one-line summary.",
            # The app's own queue (DeviceQueue) runs one generation at a time and says where each
            # waiting one stands; Gradio only hands requests over.
            concurrency_limit=None,
            show_progress="hidden",
        )
        generate_event.success(None, js=SCROLL_TO_RESULT, **private)
        generate_event.then(
            app.after_run,
            inputs=estimate_inputs,
            outputs=[generate_button, job_timer, job_status, estimate],
            preprocess=False,
            queue=False,
            show_progress="hidden",
            **private,
        )
        job_timer.tick(app.job_status, outputs=job_status, queue=False, show_progress="hidden", **private)
        model_timer.tick(
            app.model_status,
            inputs=estimate_inputs,
            outputs=[model_status, generate_button, model_timer, estimate],
            preprocess=False,
            queue=False,
            show_progress="hidden",
            **private,
        )
        # Each visitor sees the model as it is now, not as it was when the page was built.
        demo.load(
            app.model_status,
            inputs=estimate_inputs,
            outputs=[model_status, generate_button, model_timer, estimate],
            preprocess=False,
            queue=False,
            show_progress="hidden",
            js=_page_js([service.photo_label(path) for path in examples]),
            **private,
        )
        # On the button's own change, so that cached example results unlock it too.
        mp4_button.change(
            app.enable_downloads,
            inputs=[mp4_button, gif_button],
            outputs=[mp4_button, gif_button],
            queue=False,
            **private,
        )
        cancel_button.click(
            app.cancel_clicked,
            outputs=[job_status, generate_button, job_timer],
            cancels=[generate_event],
            queue=False,
            **private,
        )
    return demo


# launching -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    defaults = service.env_defaults(os.environ if environ is None else environ)
    return service.build_arg_parser(defaults).parse_args(argv)


def on_zero_gpu() -> bool:
    return spaces is not None and bool(os.environ.get("SPACE_ID"))


def prepare_model(args: argparse.Namespace) -> service.ModelSetup:
    """The model, loaded now; or, when the published weights are missing and downloading is
    allowed, fetched, converted and loaded in the background while the page says how it goes."""

    def load(name: str) -> service.ModelState:
        return service.load_model(
            name, device=args.device, dtype=args.dtype, attention_backend=args.attention, cpu_offload=args.cpu_offload
        )

    name = service.resolve_model_name(args.model, HERE)
    state = load(name)
    setup = service.ModelSetup(state, on_spaces=bool(os.environ.get("SPACE_ID")))
    if not state.ready and args.auto_download and service.published_weights_requested(args.model):
        # Downloads and the assembled folder both in persistent storage when there is some, so
        # that a restart neither fetches again nor loses a half-finished download.
        home = service.weights_home()
        target = home / Path(args.model).name
        logger.info("No weights at %s: fetching the published ones into %s in the background.", name, target)
        setup.prepare_in_background(
            target, load, cache_dir=home, checkpoint_url=args.checkpoint_url, checkpoint_sha256=args.checkpoint_sha256
        )
    else:
        logger.info("%s", state.description if state.ready else state.error)
    return setup


def measure_speeds(app: FashionFlowApp) -> None:
    """Give the time estimates their first numbers: a short calibration run once the model is loaded;
    on ZeroGPU (no GPU outside a call to measure with) a rough prior until the first video."""
    if on_zero_gpu():
        app.speeds.prior = service.Speeds(
            service.ZEROGPU_OVERHEAD_SECONDS,
            0.0,
            service.ZEROGPU_SECONDS_PER_FRAME_STEP,
            service.ZEROGPU_DECODE_SECONDS_PER_FRAME,
            service.ZEROGPU_EXPORT_SECONDS_PER_FRAME,
        )
        return

    def calibrate(model: service.ModelState) -> None:
        try:
            service.calibrate(model.pipeline, app.speeds, app.device_lock)
        except Exception:  # no estimate until the first video: not a reason to stop the app
            logger.exception("Measuring the server's speed failed")

    app.setup.when_ready(
        lambda model: threading.Thread(
            target=calibrate, args=(model,), name="fashionflow-calibration", daemon=True
        ).start()
    )


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(argv)
        examples = service.example_photos(args.examples) if args.examples else None
    except (ValueError, FileNotFoundError) as error:  # a malformed environment variable or examples folder
        raise SystemExit(f"error: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store = service.OutputStore(args.output_dir, max_age_seconds=args.output_ttl)
    store.sweep()
    store.start_sweeper(interval_seconds=max(30, min(600, args.output_ttl // 4)))
    app = FashionFlowApp(prepare_model(args), store, zero_gpu=on_zero_gpu(), queue_size=args.queue_size)
    measure_speeds(app)
    demo = build_demo(app, output_ttl=args.output_ttl, examples=examples)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=1)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        # Refused at upload, before a huge file reaches the disk; same limit as the image checks.
        max_file_size=MAX_FILE_BYTES,
        allowed_paths=[str(Path(args.output_dir).resolve())],
        theme=theme(),
        css=CSS,
        # No run history: it would keep customers' photos in the browser, and its links would
        # point at videos that the clean-up has removed.
        run_history=False,
    )


if __name__ == "__main__":
    main()
