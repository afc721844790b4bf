"""FashionFlow web app: upload a fashion photo, get a short video of the person moving.

    python app.py                        # weights/fashionflow-official, on http://127.0.0.1:7860
    python app.py --model tiny-random    # the untrained test model: runs anywhere, makes noise
    python app.py --host 0.0.0.0 --port 8080 --share

This file lays out the page and wires its events; what the events do (checking requests,
one generation at a time, cancelling, cleaning up, readable errors) is `fashionflow.service`.
"""

from __future__ import annotations

try:  # ZeroGPU on Hugging Face Spaces: `spaces` has to be imported before torch sets up CUDA
    import spaces
except ImportError:
    spaces = None

import argparse
import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import PIL.Image

from fashionflow import service
from fashionflow.image import FIT_MODES, MAX_FILE_BYTES
from fashionflow.progress import ProgressUpdate
from fashionflow.schedulers import DEFAULT_SAMPLER, SAMPLERS, default_steps

# Shops' servers send no telemetry; set before any Blocks exists, which is when Gradio reads it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

logger = logging.getLogger("fashionflow.app")

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
# Public-domain photos of people; sources and licences in examples/README.md.
EXAMPLES = ["grace_hopper.jpg", "astronaut.png", "camera.png"]
FIT_LABELS = {
    "pad": "Pad: keep the whole photo",
    "crop": "Crop: fill the frame",
    "stretch": "Stretch: as the authors did",
}
FIT_CHOICES = [(FIT_LABELS[mode], mode) for mode in FIT_MODES]
CSS = """
#model-status { padding: 0.4rem 0.8rem; border-radius: 0.5rem; background: var(--block-background-fill); }
#run-summary { min-height: 1.5rem; }
"""


class FashionFlowApp:
    """The page's event handlers, around one loaded model."""

    def __init__(
        self,
        model: service.ModelState,
        store: service.OutputStore,
        jobs: service.JobRegistry | None = None,
        zero_gpu: bool = False,
    ):
        self.model = model
        self.store = store
        self.jobs = jobs or service.JobRegistry()
        # One pipeline, one device: a cancelled run may still be finishing its current step
        # when the queue starts the next one, and this lock makes the next one wait for it.
        self.device_lock = threading.Lock()
        self.run_on_device = self._run_on_device
        if zero_gpu:
            # ZeroGPU lends a GPU per call for the seconds asked; the estimate follows the settings.
            self.run_on_device = spaces.GPU(self._run_on_device, duration=_zero_gpu_duration)

    # events ----------------------------------------------------------------------------------------------------

    def preview(self, photo: Any, fit: str) -> PIL.Image.Image | None:
        """The photo framed as the model will see it, on upload and when the framing changes.

        A plain (not async) function: Gradio runs it in its thread pool, off the event loop, so a
        large photo never holds up other requests."""
        try:
            return service.preview_photo(self.model, photo, fit)
        except Exception as error:
            raise _gr_error(service.as_service_error(error, "reading the photo")) from None

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
        try:
            self.model.require()
            settings = service.validate_settings(
                fit=fit,
                seed=seed,
                randomize_seed=randomize_seed,
                sampler=sampler,
                steps=steps,
                num_frames=num_frames,
                fps=fps,
                loop=loop,
                decode_chunk_size=decode_chunk_size,
                quick_preview=quick_preview,
            )
            self.model.require_decoder(settings.decoder)
            # Off the event loop: reading a large photo takes a while, and other requests go on meanwhile.
            image = await asyncio.to_thread(service.read_photo, photo)
            job_dir = self.store.new_job()
        except Exception as error:
            raise _gr_error(service.as_service_error(error, "reading the photo")) from None

        session = getattr(request, "session_hash", None)
        token = self.jobs.start(session, flag_file=job_dir / "cancelled")
        progress(0, desc="Starting")
        try:
            # In a thread of our own rather than Gradio's: a cancelled task then gets control back
            # at once (Gradio waits for its own threads), and the token stops the pipeline at its
            # next step. Context variables travel with the thread, so progress reaches the page.
            result = await asyncio.to_thread(self.run_on_device, image, settings, job_dir, token, progress)
        except asyncio.CancelledError:
            token.cancel()
            raise
        finally:
            self.jobs.finish(session, token)
            self.store.finished(job_dir)
        if result is None:  # cancelled through the session's Cancel button, not through the queue
            gr.Info("Generation cancelled.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Generation cancelled: no video was made."
        # Plain paths, so that API callers get files; `enable_downloads` then unlocks the buttons.
        return str(result.mp4), str(result.mp4), str(result.gif), result.settings.seed, result.summary_markdown()

    async def generate_example(self, photo: Any, request: gr.Request) -> tuple:
        """Cached example results: the default settings and seed 0, so that anyone can reproduce them."""
        s = service.GenerationSettings(seed=0)
        return await self.generate(
            photo, s.fit, s.seed, False, s.sampler, s.steps, s.num_frames, s.fps, s.loop, s.decode_chunk_size, request
        )

    def cancel(self, request: gr.Request) -> str:
        """Stop this session's running generation; the queue's own cancel removes a waiting one."""
        self.jobs.cancel_session(getattr(request, "session_hash", None))
        return "Generation cancelled."

    @staticmethod
    def enable_downloads(mp4: str | None, gif: str | None) -> tuple[gr.DownloadButton, gr.DownloadButton]:
        return gr.DownloadButton(interactive=mp4 is not None), gr.DownloadButton(interactive=gif is not None)

    @staticmethod
    def steps_for_sampler(sampler: str) -> gr.Slider:
        return gr.Slider(value=default_steps(sampler) if sampler in SAMPLERS else default_steps(DEFAULT_SAMPLER))

    # the device side -------------------------------------------------------------------------------------------

    def _run_on_device(
        self,
        image: PIL.Image.Image,
        settings: service.GenerationSettings,
        job_dir: Path,
        token: service.CancelToken,
        progress: gr.Progress,
    ) -> service.GenerationResult | None:
        """The part that needs the GPU. On ZeroGPU it runs in a forked process: arguments and
        result are pickled, and errors must be `gr.Error` to arrive with their message."""

        def report(update: ProgressUpdate) -> None:
            progress(update.fraction, desc=update.desc)

        try:
            return service.run_generation(
                self.model.pipeline, image, settings, job_dir, token, report, lock=self.device_lock
            )
        except service.GenerationCancelled:
            return None
        except Exception as error:  # disk full, out of memory, anything: a titled sentence, details in the log
            raise _gr_error(service.as_service_error(error, "making the video")) from None


def _gr_error(error: service.ServiceError) -> gr.Error:
    return gr.Error(str(error), title=error.title, print_exception=False)


def _zero_gpu_duration(image, settings: service.GenerationSettings, job_dir, token, progress) -> int:
    return service.gpu_seconds_estimate(settings)


def build_demo(app: FashionFlowApp, output_ttl: int = 3600) -> gr.Blocks:
    """The page. Generation runs through the queue: one at a time, with positions shown."""
    model, limits, defaults = app.model, service.LIMITS, service.GenerationSettings(seed=0)
    sweep_every = max(60, min(600, output_ttl // 4))
    with gr.Blocks(
        title="FashionFlow",
        analytics_enabled=False,
        # Gradio's copies of the videos it served, removed on the same schedule as ours.
        delete_cache=(sweep_every, output_ttl),
    ) as demo:
        gr.Markdown("# FashionFlow\nUpload a fashion photo of one person; get a short video of them moving and posing.")
        gr.Markdown(model.status_markdown(), elem_id="model-status")
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
                fit = gr.Radio(FIT_CHOICES, value=defaults.fit, label="Framing", elem_id="fit")
                with gr.Row():
                    seed = gr.Number(
                        value=0, label="Seed", precision=0, minimum=0, maximum=limits.max_seed, elem_id="seed"
                    )
                    randomize_seed = gr.Checkbox(value=True, label="Randomise seed", elem_id="randomize-seed")
                with gr.Row():
                    generate_button = gr.Button(
                        "Generate", variant="primary", interactive=model.ready, elem_id="generate"
                    )
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    sampler = gr.Dropdown(list(SAMPLERS), value=defaults.sampler, label="Sampler", elem_id="sampler")
                    steps = gr.Slider(
                        1, limits.max_steps, value=defaults.steps, step=1, label="Steps",
                        info="More steps: finer detail, longer wait. Changing the sampler picks its usual number.",
                        elem_id="steps",
                    )  # fmt: skip
                    num_frames = gr.Slider(
                        2, limits.max_frames, value=defaults.num_frames, step=2, label="Frames",
                        info="The model was trained on 70-frame videos.", elem_id="frames",
                    )  # fmt: skip
                    fps = gr.Slider(
                        limits.min_fps, limits.max_fps, value=defaults.fps, step=1, label="Frames per second",
                        elem_id="fps",
                    )  # fmt: skip
                    loop = gr.Checkbox(
                        value=defaults.loop, label="Loop: play forward then backward, so the video loops smoothly",
                        elem_id="loop",
                    )  # fmt: skip
                    decode_chunk_size = gr.Slider(
                        1, limits.max_frames, value=defaults.decode_chunk_size, step=1, label="Decode chunk size",
                        info="Frames decoded at once; lower it if the GPU runs out of memory.",
                        elem_id="decode-chunk-size",
                    )  # fmt: skip
                    quick_preview = gr.Checkbox(
                        value=False, label="Quick preview: decode with the tiny decoder (much faster, softer details)",
                        info=None if model.has_quick_preview else "This model has no tiny decoder.",
                        interactive=model.has_quick_preview, elem_id="quick-preview",
                    )  # fmt: skip
            with gr.Column(scale=1):
                video = gr.Video(
                    label="Video", autoplay=True, loop=True, interactive=False, height=480, elem_id="video"
                )
                with gr.Row():
                    mp4_button = gr.DownloadButton("Download MP4", interactive=False, elem_id="download-mp4")
                    gif_button = gr.DownloadButton("Download GIF", interactive=False, elem_id="download-gif")
                summary = gr.Markdown(label="Summary", elem_id="run-summary")

        outputs = [video, mp4_button, gif_button, seed, summary]
        # Example results are cached only for trained weights: the tiny-random model's videos
        # are noise (caching would present noise as what the app does), and without weights
        # there is nothing to run. Lazily, on first click: caching all at start-up would run
        # full generations before the server even listens.
        cache = model.ready and not model.untrained
        gr.Examples(
            examples=[[str(EXAMPLES_DIR / name)] for name in EXAMPLES],
            inputs=[photo],
            outputs=outputs if cache else None,
            fn=app.generate_example if cache else None,
            cache_examples=cache,
            cache_mode="lazy" if cache else None,
            label="Example photos (public domain)",
            elem_id="examples",
        )

        # The photo reaches the handlers unprocessed (preprocess=False): Gradio's own decoding
        # would fail on a broken upload with a message nobody can act on; ours says what is wrong.
        preview_options = dict(
            inputs=[photo, fit],
            outputs=preview,
            preprocess=False,
            concurrency_limit=4,  # framing is quick CPU work: it need not wait for generations
            show_progress="minimal",
        )
        photo.change(app.preview, api_name="preview", **preview_options)
        fit.change(app.preview, api_visibility="private", **preview_options)
        sampler.change(app.steps_for_sampler, inputs=sampler, outputs=steps, queue=False, api_visibility="private")
        generate_inputs = [photo, fit, seed, randomize_seed, sampler, steps, num_frames, fps, loop, decode_chunk_size]
        generate_inputs.append(quick_preview)  # added later: /generate's parameters only ever grow at the end
        generate_event = generate_button.click(
            app.generate,
            inputs=generate_inputs,
            outputs=outputs,
            preprocess=False,
            api_name="generate",
            api_description="Make a video from one fashion photo. Returns the MP4, MP4 and GIF downloads, "
            "the seed used and a one-line summary.",
            concurrency_limit=1,
            concurrency_id="device",
            show_progress_on=[video],
        )
        # On the button's own change, so that cached example results unlock it too.
        mp4_button.change(
            app.enable_downloads,
            inputs=[mp4_button, gif_button],
            outputs=[mp4_button, gif_button],
            queue=False,
            api_visibility="private",
        )
        cancel_button.click(
            app.cancel, outputs=summary, cancels=[generate_event], queue=False, api_visibility="private"
        )
    return demo


# launching -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    defaults = service.env_defaults(os.environ if environ is None else environ)
    return service.build_arg_parser(defaults).parse_args(argv)


def on_zero_gpu() -> bool:
    return spaces is not None and bool(os.environ.get("SPACE_ID"))


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(argv)
    except ValueError as error:  # a malformed environment variable
        raise SystemExit(f"error: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    model = service.load_model(
        service.resolve_model_name(args.model, HERE),
        device=args.device,
        dtype=args.dtype,
        attention_backend=args.attention,
        cpu_offload=args.cpu_offload,
    )
    logger.info("%s", model.description if model.ready else model.error)
    store = service.OutputStore(args.output_dir, max_age_seconds=args.output_ttl)
    store.sweep()
    store.start_sweeper(interval_seconds=max(30, min(600, args.output_ttl // 4)))

    app = FashionFlowApp(model, store, zero_gpu=on_zero_gpu())
    demo = build_demo(app, output_ttl=args.output_ttl)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=1)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        # Refused at upload, before a huge file reaches the disk; same limit as the image checks.
        max_file_size=MAX_FILE_BYTES,
        allowed_paths=[str(Path(args.output_dir).resolve())],
        theme=gr.themes.Soft(),
        css=CSS,
        # No run history: it would keep customers' photos in the browser, and its links would
        # point at videos that the clean-up has removed.
        run_history=False,
    )


if __name__ == "__main__":
    main()
