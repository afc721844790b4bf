"""The page's event handlers, around one model (loaded, or on its way): each turns what the page
sent into a call of `fashionflow.service` and the result into what the page shows.

What Generate sends is one `Form`, the order of its fields being /generate's parameters; the
handlers that estimate the time take the `ESTIMATE` part of it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import gradio as gr
import PIL.Image

from .. import service
from ..progress import ProgressUpdate, format_seconds
from ..schedulers import DEFAULT_SAMPLER, SAMPLERS, default_steps
from .html import estimate_html, job_html, live_preview_html, message_html, note_html, status_html

logger = logging.getLogger(__name__)

_DEFAULTS = service.GenerationSettings(seed=0)


@dataclass(frozen=True)
class Form:
    """What the page (or an API caller) sends with Generate: /generate's parameters, in their order.
    Values are as the browser sends them (numbers as floats, a setting not sent yet as None)."""

    photo: Any = None
    fit: Any = _DEFAULTS.fit
    seed: Any = _DEFAULTS.seed
    randomize_seed: Any = True
    sampler: Any = _DEFAULTS.sampler
    steps: Any = _DEFAULTS.steps
    num_frames: Any = _DEFAULTS.num_frames
    fps: Any = _DEFAULTS.fps
    loop: Any = _DEFAULTS.loop
    decode_chunk_size: Any = _DEFAULTS.decode_chunk_size
    quick_preview: Any = False  # added later: /generate's parameters only ever grow at the end
    clips: Any = 1  # the Length: clips chained into one video

    def settings(self) -> service.GenerationSettings:
        """The settings checked, or `SettingsError` saying what is allowed."""
        return service.validate_settings(**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "photo"})

    def settings_to_estimate(self) -> service.GenerationSettings | None:
        """The settings as far as they decide the time, as the page will send them: a number typed out
        of a slider's range as the slider clamps it, a setting the browser has not sent yet (Advanced
        never opened) as its default. None when they are still not valid."""
        limits = service.LIMITS

        def slider(value: Any, default: Any, low: int, high: int) -> Any:
            return default if value is None else service.slider_value(value, low, high)

        frames = _DEFAULTS.num_frames if self.num_frames is None else service.nearest_even_frames(self.num_frames)
        try:
            return replace(
                self,
                sampler=self.sampler or _DEFAULTS.sampler,
                steps=slider(self.steps, None, 1, limits.max_steps),
                num_frames=frames,
                fps=slider(self.fps, _DEFAULTS.fps, limits.min_fps, limits.max_fps),
                loop=bool(self.loop),
                decode_chunk_size=slider(self.decode_chunk_size, _DEFAULTS.decode_chunk_size, 1, limits.max_frames),
                randomize_seed=True,
                quick_preview=bool(self.quick_preview),
                clips=1 if self.clips is None else self.clips,
            ).settings()
        except service.SettingsError:
            return None


FORM = tuple(f.name for f in fields(Form))
# what the time depends on
ESTIMATE = ("sampler", "steps", "num_frames", "fps", "loop", "decode_chunk_size", "quick_preview", "clips")


def estimate_form(*values: Any) -> Form:
    return Form(**dict(zip(ESTIMATE, values)))


class PageEvents:
    """The page's event handlers. `on_gpu`, on ZeroGPU, wraps the work that needs the GPU
    (`spaces.GPU`), with the seconds to reserve from `gpu_seconds`. `live_previews`, when given,
    keeps each running generation's latents for the page's live preview (None: no live preview)."""

    def __init__(
        self,
        model: service.ModelState | service.ModelSetup,
        store: service.OutputStore,
        jobs: service.JobRegistry | None = None,
        queue_size: int = 16,
        speeds: service.SpeedBook | None = None,
        on_gpu: Callable | None = None,
        live_previews: service.LivePreviews | None = None,
    ):
        self.setup = model if isinstance(model, service.ModelSetup) else service.ModelSetup(model)
        self.store = store
        self.jobs = jobs or service.JobRegistry()
        self.queue = service.DeviceQueue(max_waiting=queue_size)
        self.speeds = speeds or service.SpeedBook()
        self.live_previews = live_previews
        # One pipeline, one device: a cancelled run may still be finishing its current step
        # when the next one starts, and this lock makes the next one wait for it.
        self.device_lock = threading.Lock()
        self.run_on_device = self._run_on_device
        if on_gpu is not None:
            # ZeroGPU lends a GPU per call for the seconds asked; the estimate follows the settings.
            self.run_on_device = on_gpu(self._run_on_device, duration=gpu_seconds)

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
            raise gr_error(service.as_service_error(error, "reading the photo")) from None

    def photo_changed(self, photo: Any, fit: str) -> tuple:
        """The page's upload and framing changes: the preview and a note, or the problem beside the
        photo and the drop zone emptied. Returns (photo, preview, photo message)."""
        if photo is None:  # removed, or emptied after a rejected upload: keep what was said
            return gr.skip(), None, gr.skip()
        try:
            image = service.read_photo(photo)
            preview = service.preview_photo(self.model, image, fit)
        except Exception as error:
            return None, None, message_html(str(service.as_service_error(error, "reading the photo")))
        note = service.crop_note(image.size, self.model.frame_size, fit)
        return gr.skip(), preview, note_html(note) if note else ""

    # settings ----------------------------------------------------------------------------------------------------

    def settings_changed(self, *estimate: Any) -> tuple:
        """Any setting edited: odd frames become even, the time estimate follows, old messages go.
        Returns (frames, settings message, estimate)."""
        form = estimate_form(*estimate)
        even = service.nearest_even_frames(form.num_frames)
        frames = even if even is not None and even != form.num_frames else gr.skip()
        note = ""
        if frames is not gr.skip() and isinstance(form.num_frames, (int, float)) and form.num_frames % 2:
            note = note_html(f"Frames go in pairs: {form.num_frames:g} became {even}.")
        return frames, note, self.estimate(replace(form, num_frames=even or form.num_frames))

    def sampler_changed(self, *estimate: Any) -> tuple:
        """A new sampler: its usual step count and its hint. Returns (steps, sampler, estimate)."""
        form = estimate_form(*estimate)
        name = form.sampler if form.sampler in SAMPLERS else DEFAULT_SAMPLER
        steps = default_steps(name)
        hint = service.SAMPLER_CHOICES[name].hint
        return gr.Slider(value=steps), gr.Dropdown(info=hint), self.estimate(replace(form, sampler=name, steps=steps))

    def estimate(self, form: Form) -> str:
        """How long Generate will take with these settings, from this server's measured speeds."""
        settings = form.settings_to_estimate()
        if settings is None:
            return ""
        estimate = self.speeds.estimate(settings)
        if estimate is None:
            return estimate_html("Measuring how fast this server is…") if self.model.ready else ""
        if estimate.long:
            return estimate_html(
                f"Long wait: {estimate.describe()} “Fast (25 steps)” and fewer frames take much less.", long=True
            )
        return estimate_html(f"Time: {estimate.describe()}")

    # generating ------------------------------------------------------------------------------------------------

    def check_request(self, *form: Any) -> tuple:
        """Generate pressed on the page: problems are shown under the button (by `show_problem`)
        and stop here; otherwise Generate turns busy and the status line starts following the job."""
        try:
            self._checked(Form(*form))
        except service.ServiceError as error:
            raise gr.Error(str(error), title=error.title, visible=False, print_exception=False) from None
        busy = gr.Button(value="Generating…", interactive=False)
        return busy, gr.Timer(active=True), job_html("Starting…", 0.0), "", ""

    def show_problem(self, *form: Any) -> tuple:
        """What stopped Generate, under the button, where the visitor is looking (app.js brings it into
        view): a photo problem too, as the message beside the photo is about its upload and may be out of
        sight. The status line, which told how the previous run ended, is emptied (it shows the latest
        outcome only, and this one is the problem). Returns (photo message, settings message, status line)."""
        try:
            self._checked(Form(*form))
        except service.ServiceError as error:
            return gr.skip(), message_html(str(error)), ""
        return gr.skip(), gr.skip(), gr.skip()

    def _checked(self, form: Form) -> tuple[service.GenerationSettings, PIL.Image.Image]:
        """The request as `generate` will take it, or the `ServiceError` it will give."""
        settings = self._settings(form)
        try:
            return settings, service.read_photo(form.photo)
        except Exception as error:
            raise service.as_service_error(error, "reading the photo") from None

    def _settings(self, form: Form) -> service.GenerationSettings:
        model = self.setup.require()
        settings = form.settings()
        model.require_decoder(settings.decoder)
        return settings

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
        clips: int = 1,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the tracker by this default)
    ) -> tuple:
        """The /generate API (its parameters are the `Form`'s): make a video from `photo`; returns the
        video, MP4 and GIF downloads, the seed used and a summary. `clips` (the page's Length): clips
        chained into one longer video, 1 to 3."""
        form = Form(
            photo,
            fit,
            seed,
            randomize_seed,
            sampler,
            steps,
            num_frames,
            fps,
            loop,
            decode_chunk_size,
            quick_preview,
            clips,
        )
        return await self.run(form, request, progress)

    async def run(self, form: Form, request: gr.Request, progress: gr.Progress) -> tuple:
        """Check the form, wait in line, make the video; see `generate`."""
        session = getattr(request, "session_hash", None)
        try:
            settings = self._settings(form)
            # Off the event loop: reading a large photo takes a while, and other requests go on meanwhile.
            image = await asyncio.to_thread(service.read_photo, form.photo)
            job_dir = self.store.new_job()
        except Exception as error:
            problem = service.as_service_error(error, "reading the photo")
            self.jobs.record_outcome(session, service.Outcome(_outcome_kind(problem), str(problem)))
            raise gr_error(problem) from None

        token = self.jobs.start(session, flag_file=job_dir / "cancelled")
        estimate = self.speeds.estimate(settings)
        try:
            ticket = self.queue.join(session, token, estimate.seconds if estimate else None)
        except service.QueueFullError as error:
            self._finish(session, token, job_dir, service.Outcome("error", str(error)))
            raise gr_error(error, visible=False) from None
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
        done = f"Done: made in {format_seconds(result.seconds).removeprefix('about ')}."
        self._finish(session, token, job_dir, service.Outcome("done", done), ticket)
        # Plain paths, so that API callers get files; `enable_downloads` then unlocks the buttons.
        return str(result.mp4), str(result.mp4), str(result.gif), result.settings.seed, result.summary_markdown()

    def _finish(self, session, token, job_dir, outcome: service.Outcome, ticket=None) -> None:
        if ticket is not None:
            self.queue.leave(ticket)
        self.jobs.finish(session, token)
        self.store.finished(job_dir)
        if outcome.kind != "done":  # no video: nothing to keep (a job that ran has removed it already)
            shutil.rmtree(job_dir, ignore_errors=True)
        self.jobs.record_outcome(session, outcome)

    async def generate_example(self, photo: Any, request: gr.Request) -> tuple:
        """Cached example results: the default settings and seed 0, so that anyone can reproduce them.
        Problems (such as a model not ready yet) go to the status line, as Generate's do (`after_run`)."""
        try:
            return await self.run(Form(photo, randomize_seed=False), request, gr.Progress())
        except gr.Error as error:
            error.visible = False
            raise

    def example_clicked(self, request: gr.Request) -> tuple:
        """An example chosen: the status line follows its video while it is made (shown at once when
        an earlier visitor's is cached). Returns (status timer, status line)."""
        self.jobs.forget_outcome(getattr(request, "session_hash", None))
        return gr.Timer(active=True), ""

    def job_status(self, request: gr.Request) -> str:
        """This session's generation as the status line beside Generate shows it (polled while it runs)."""
        ticket = self.queue.ticket_of(getattr(request, "session_hash", None))
        if ticket is None:
            return gr.skip()
        if not ticket.running:
            place = self.queue.place(ticket)
            return job_html(place.describe(), None) if place else gr.skip()
        update = ticket.update or ProgressUpdate(0.0, "Starting")
        return job_html(update.desc, update.fraction)

    def live_preview(self, show: bool, request: gr.Request) -> str:
        """A look at this session's video taking shape (polled while it runs): new frames when a step has
        ended since the last look (within the looks' budget), nothing new otherwise; empty when the
        visitor turned it off."""
        session = getattr(request, "session_hash", None)
        if self.live_previews is None:
            return gr.skip()
        if not show:
            self.live_previews.hidden(session)
            return ""
        try:
            look = self.live_previews.look(session)
        except Exception:  # a look that failed is skipped; the video goes on
            logger.exception("Making the live preview failed")
            return gr.skip()
        return gr.skip() if look is None else live_preview_html(look)

    @staticmethod
    def live_preview_ended() -> str:
        """The run ended (the video, an error or a cancel takes the preview's place): no more looks."""
        return ""

    def after_run(self, request: gr.Request, *estimate: Any) -> tuple:
        """Generate is free again; the status line says how the run ended; the estimate has learnt.
        Returns (Generate, status timer, status line, estimate)."""
        outcome = self.jobs.last_outcome(getattr(request, "session_hash", None))
        if outcome is None or outcome.kind in ("done", "cancelled"):
            text = job_html(outcome.message if outcome else "", None, final=True)
        elif outcome.kind == "not ready":  # nobody's fault, and it passes: a note, not an error
            text = note_html(outcome.message)
        else:
            text = message_html(outcome.message)
        idle = gr.Button(value="Generate", interactive=self.model.ready)
        return idle, gr.Timer(active=False), text, self.estimate(estimate_form(*estimate))

    def cancel(self, request: gr.Request) -> str:
        """Stop this session's generation, running or waiting (the queue's own cancel also ends its task)."""
        if self.jobs.cancel_session(getattr(request, "session_hash", None)):
            return "Generation cancelled."
        return "Nothing to cancel: no video is being made."

    def visitor_left(self, request: gr.Request) -> None:
        """Gradio's unload event: a visitor's page or API client is gone (tab closed, page reloaded,
        connection lost, a client stopped). Their waiting job leaves the line and their running one
        stops, within a second, so that nobody waits behind a video nobody will see."""
        session = getattr(request, "session_hash", None)
        if self.jobs.cancel_session(session):
            logger.info("A visitor left: their video was cancelled (session %s).", session)

    def cancel_clicked(self, request: gr.Request) -> tuple:
        """Cancel on the page: the status line says what happened; Generate is free again."""
        said = self.cancel(request)
        return (
            job_html(said, None, final=True),
            gr.Button(value="Generate", interactive=self.model.ready),
            gr.Timer(active=False),
        )

    @staticmethod
    def enable_downloads(mp4: str | None, gif: str | None) -> tuple[gr.DownloadButton, gr.DownloadButton]:
        return gr.DownloadButton(interactive=mp4 is not None), gr.DownloadButton(interactive=gif is not None)

    # the model ----------------------------------------------------------------------------------------------------

    def model_status(self, request: gr.Request, *estimate: Any) -> tuple:
        """The model banner, Generate, the banner's timer (on while preparing) and the estimate. Generate is
        left alone while this session's video is being made (it is "Generating…", off, until the run ends)."""
        status = self.setup.status()
        generating = self.jobs.running(getattr(request, "session_hash", None)) > 0
        return (
            status_html(status),
            gr.skip() if generating else gr.Button(interactive=status.can_generate),
            gr.Timer(active=self.still_changing(status)),
            self.estimate(estimate_form(*estimate)),
        )

    def still_changing(self, status: service.ModelStatus) -> bool:
        """Whether the banner and the estimate need polling: the model is on its way, or the speed
        measurement that gives the estimate its first numbers has not finished yet."""
        unmeasured = self.speeds.measured is None and self.speeds.prior is None
        return status.changing or (status.can_generate and unmeasured)

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
        session = ticket.session if ticket is not None else None
        watch = self.live_previews.watcher(session) if self.live_previews is not None and ticket is not None else None
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
                watch=watch,
            )
        except service.GenerationCancelled:
            return None
        except Exception as error:  # disk full, out of memory, anything: a titled sentence, details in the log
            raise gr_error(service.as_service_error(error, "making the video")) from None
        finally:
            if watch is not None:
                self.live_previews.forget(session)


def _outcome_kind(error: service.ServiceError) -> str:
    return "not ready" if isinstance(error, service.DemoNotReadyError) else "error"


def gr_error(error: service.ServiceError, visible: bool = True) -> gr.Error:
    return gr.Error(str(error), title=error.title, visible=visible, print_exception=False)


def gpu_seconds(image, settings: service.GenerationSettings, job_dir, token, progress, ticket=None) -> int:
    """The GPU seconds a ZeroGPU call of `_run_on_device` reserves (its arguments are the call's)."""
    return service.gpu_seconds_estimate(settings)
