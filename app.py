"""FashionFlow web app: upload a fashion photo, get a short video of the person moving.

    python app.py                        # weights/fashionflow-official, on http://127.0.0.1:7860
    python app.py --model tiny-random    # the untrained test model: runs anywhere, makes noise
    python app.py --host 0.0.0.0 --port 8080 --share

This file lays out the page and wires its events to `fashionflow.page.PageEvents`; its look is
app.css and what runs in the browser app.js. What the events do (checking requests, one
generation at a time, cancelling, cleaning up, readable errors, fetching the weights, estimating
times) is `fashionflow.service`.
"""

from __future__ import annotations

try:  # ZeroGPU on Hugging Face Spaces: `spaces` has to be imported before torch sets up CUDA
    import spaces
except ImportError:
    spaces = None

import argparse
import json
import logging
import os
from pathlib import Path

import gradio as gr

from fashionflow import service
from fashionflow.base.environment import on_spaces
from fashionflow.image import MAX_FILE_BYTES
from fashionflow.page.events import ESTIMATE, FORM, PageEvents
from fashionflow.page.html import status_html

# Shops' servers send no telemetry; set before any Blocks exists, which is when Gradio reads it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# A visitor who leaves is heard when their heartbeat stream breaks, which the server may only notice
# at its next write: every 2 s instead of Gradio's 15, so that their jobs stop within seconds.
os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "2")

logger = logging.getLogger("fashionflow.app")

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
# Public-domain photos of people; sources and licences in examples/README.md. An operator
# replaces them with a folder of their own (--examples, FASHIONFLOW_EXAMPLES).
EXAMPLES = ["grace_hopper.jpg", "astronaut.png", "camera.png"]
SCRIPTS = (HERE / "app.js").read_text()
FIT_CHOICES = [(choice.label, mode) for mode, choice in service.FIT_CHOICES.items()]
SAMPLER_CHOICES = [(choice.label, name) for name, choice in service.SAMPLER_CHOICES.items()]
INTRO = (
    "# FashionFlow\nUpload a fashion photo of one person; get a short video of them moving and posing. "
    "**Works best with** a full-length photo of one person, standing, on a plain background, taller than it is "
    "wide (like a shop's catalogue photo)."
)
PRIVATE = dict(api_visibility="private")  # the page's own events: not part of the API
QUIET = dict(preprocess=False, queue=False, show_progress="hidden", **PRIVATE)  # quick page updates


class FashionFlowApp(PageEvents):
    """The page's events, with ZeroGPU's `spaces.GPU` around the GPU's part on a Space that has it."""

    def __init__(
        self, model, store, jobs=None, zero_gpu: bool = False, queue_size: int = 16, speeds=None, live_previews=None
    ):
        on_gpu = spaces.GPU if zero_gpu else None
        super().__init__(model, store, jobs, queue_size, speeds, on_gpu=on_gpu, live_previews=live_previews)


def afterwards(event: gr.events.Dependency) -> list:
    """Ways to listen to `event` ending, however it ended (Gradio 6.31's `.then` misses failures)."""
    return [event.success, event.failure]


def script(name: str, *args) -> str:
    """app.js's function `name`, called with `args`, as an event's `js`."""
    return f"() => ({SCRIPTS}).{name}({', '.join(json.dumps(a) for a in args)})"


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


# the layout ------------------------------------------------------------------------------------------------------


class Page:
    """The page's components, by what they are (the form's fields by `Form`'s names), filled in by `lay_out`.
    (A plain class: tests load this file without registering it as a module, which dataclasses need.)"""

    model_status: gr.HTML
    model_timer: gr.Timer
    preview: gr.Image
    photo_message: gr.HTML
    generate: gr.Button
    cancel: gr.Button
    settings_message: gr.HTML
    estimate: gr.HTML
    job_status: gr.HTML
    job_timer: gr.Timer
    live_preview: gr.HTML | None = None  # the video taking shape (None: the operator turned it off)
    show_live_preview: gr.Checkbox | None = None  # the visitor's switch for it
    video: gr.Video
    mp4: gr.DownloadButton
    gif: gr.DownloadButton
    summary: gr.Markdown
    preview_api: gr.Button

    def __init__(self) -> None:
        self.form: dict[str, gr.components.Component] = {}

    def inputs(self, names) -> list:
        return [self.form[name] for name in names]

    @property
    def results(self) -> list:
        """What /generate returns: the video, the MP4 and GIF downloads, the seed used, a summary."""
        return [self.video, self.mp4, self.gif, self.form["seed"], self.summary]


def lay_out(app: FashionFlowApp, status: service.ModelStatus) -> Page:
    # At 1440 x 900 the photo, its framing and length, Generate and the estimate fit in the first screen;
    # the rest (seed, speed...) waits under Advanced.
    page, form = Page(), {}
    defaults = service.GenerationSettings(seed=0)
    gr.Markdown(INTRO, elem_id="intro")
    page.model_status = gr.HTML(status_html(status), elem_id="model-status")
    page.model_timer = gr.Timer(1.0, active=app.still_changing(status))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            with gr.Row():
                form["photo"] = gr.Image(
                    label="Photo",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard"],
                    height=320,
                    elem_id="photo",
                )
                page.preview = gr.Image(
                    label="What the model sees",
                    interactive=False,
                    height=320,
                    format="png",
                    buttons=["fullscreen"],  # no download or share: it is only a check of the framing
                    elem_id="preview",
                )
            page.photo_message = gr.HTML("", elem_id="photo-message")
            with gr.Row():  # side by side, so that Generate and its estimate stay in the first screen
                form["fit"] = gr.Radio(FIT_CHOICES, value=defaults.fit, label="Framing", scale=3, elem_id="fit")
                # Clips chained, each starting where the one before ends (at the default 70 frames and 25
                # per second; the summary gives the exact length). The estimate counts every clip.
                form["clips"] = gr.Radio(
                    service.length_choices(), value=defaults.num_clips, label="Length", scale=2, elem_id="length"
                )
            with gr.Row():
                page.generate = gr.Button(
                    "Generate", variant="primary", interactive=status.can_generate, elem_id="generate"
                )
                page.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            # Right under Generate, where the visitor is looking: notes on the settings, and any problem
            # found when Generate is pressed (app.js scrolls a problem into view).
            page.settings_message = gr.HTML("", elem_id="settings-message")
            page.estimate = gr.HTML("", elem_id="estimate")
            page.job_status = gr.HTML("", elem_id="job-status")
            page.job_timer = gr.Timer(0.5, active=False)
            if app.live_previews is not None:
                page.live_preview = gr.HTML("", elem_id="live-preview")
            with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                form.update(seed_settings())
                form.update(advanced_settings(app.model))
                if app.live_previews is not None:
                    page.show_live_preview = gr.Checkbox(
                        value=True,
                        label="Show the video taking shape while it is made",
                        info="A rough look at a few frames every few steps, while you wait.",
                        elem_id="show-live-preview",
                    )
        with gr.Column(scale=1):
            page.video = gr.Video(
                label="Video",
                autoplay=True,
                loop=True,
                interactive=False,
                height=480,
                buttons=[],  # downloads are the MP4 and GIF buttons below
                elem_id="video",
            )
            with gr.Row():
                page.mp4 = gr.DownloadButton("Download MP4", interactive=False, elem_id="download-mp4")
                page.gif = gr.DownloadButton("Download GIF", interactive=False, elem_id="download-gif")
            page.summary = gr.Markdown(label="Summary", elem_id="run-summary")
    page.preview_api = gr.Button("Preview", visible=False, elem_id="preview-api")
    page.form = {name: form[name] for name in FORM}  # in /generate's order
    return page


def seed_settings() -> dict[str, gr.components.Component]:
    """The seed, and whether to draw a new one for every video."""
    with gr.Row():
        seed = gr.Number(
            value=0,
            label="Seed",
            precision=0,
            minimum=0,
            maximum=service.LIMITS.max_seed,
            elem_id="seed",
            info="The same seed and settings make the same video.",
        )
        randomize = gr.Checkbox(value=True, label="Randomise seed", elem_id="randomize-seed")
    return {"seed": seed, "randomize_seed": randomize}


def advanced_settings(model: service.ModelState) -> dict[str, gr.components.Component]:
    """The settings under Advanced, with the limits and hints of `fashionflow.service`: plain words first,
    the technical name last in the hint ("For experts: ...")."""
    defaults, limits = service.GenerationSettings(seed=0), service.LIMITS
    # Frames decoded at once: the loaded pipeline's choice for this machine (1 on a CPU, where more
    # costs gigabytes and gains nothing); a model still being prepared starts from the GPU default.
    chunk = model.pipeline.decode_chunk_size_for() if model.ready else defaults.decode_chunk_size
    # A model still being prepared gets its tiny decoder with the download: leave it on then.
    no_tiny_decoder = model.ready and not model.has_quick_preview
    return {
        "sampler": gr.Dropdown(
            SAMPLER_CHOICES,
            value=defaults.sampler,
            label="Speed and quality",
            elem_id="sampler",
            info=service.SAMPLER_CHOICES[defaults.sampler].hint,
        ),
        "steps": slider(
            "steps",
            "Steps",
            (1, limits.max_steps, defaults.steps),
            "More steps: finer detail, longer wait. Changing “Speed and quality” picks its usual number. "
            "For experts: denoising steps.",
        ),
        "num_frames": slider(
            "frames",
            "Frames (even numbers)",
            (2, limits.max_frames, defaults.num_frames),
            "The model was trained on 70-frame videos (2.8 s at 25 frames per second).",
            step=2,
        ),
        "fps": slider(
            "fps",
            "Frames per second",
            (limits.min_fps, limits.max_fps, defaults.fps),
            "Playback speed: fewer is slower motion, more is faster.",
        ),
        "loop": gr.Checkbox(
            value=defaults.loop,
            label="Loop: play forward then backward, so the video loops smoothly",
            elem_id="loop",
        ),
        "decode_chunk_size": slider(
            "decode-chunk-size",
            service.FRAMES_AT_A_TIME,
            (1, limits.max_frames, chunk),
            "Lower it if the server runs out of memory; higher is faster on a GPU. "
            "For experts: frames per call of the VAE's decoder.",
        ),
        "quick_preview": gr.Checkbox(
            value=False,
            label="Quick preview: rougher frames, made much faster",
            info="Not available: this model was set up without the small, fast decoder it needs."
            if no_tiny_decoder
            else "For a first look; turn it off for the final video. For experts: decodes with TAESD, the tiny "
            "decoder.",
            interactive=not no_tiny_decoder,
            elem_id="quick-preview",
        ),
    }


def slider(elem_id: str, label: str, span: tuple[int, int, int], info: str, step: int = 1) -> gr.Slider:
    """A whole-number slider; `span` is (lowest, highest, starting value)."""
    low, high, value = span
    return gr.Slider(low, high, value=value, step=step, label=label, info=info, elem_id=elem_id)


def add_examples(
    app: FashionFlowApp, page: Page, status: service.ModelStatus, examples: list[Path], demo: gr.Blocks
) -> None:
    # Example results are cached only for trained weights (loaded, or on their way): the tiny-random
    # model's videos are noise (caching would present noise as what the app does), and without
    # weights there is nothing to run. Lazily, on first click: caching all at start-up would run
    # full generations before the server even listens.
    cache = status.kind == "ready" or (status.changing and not app.model.untrained)
    shown = gr.Examples(
        examples=[[str(path)] for path in examples],
        inputs=[page.form["photo"]],
        outputs=page.results if cache else None,
        fn=app.generate_example if cache else None,
        cache_examples=cache,
        cache_mode="lazy" if cache else None,
        label="Example photos",
        elem_id="examples",
    )
    if cache:
        # Like Generate: progress and problems (a model not ready yet) in the status line, not as
        # "Error" badges on the results; the generation waits in the app's own queue, not Gradio's.
        # (gr.Examples takes neither setting, so they are set on its event.)
        event = demo.fns[shown.cache_event["id"]]
        event.show_progress, event.concurrency_limit = "hidden", None
        shown.dataset.click(app.example_clicked, outputs=[page.job_timer, page.job_status], **QUIET)
        outputs = [page.generate, page.job_timer, page.job_status, page.estimate]
        for ended in afterwards(shown.cache_event):
            ended(app.after_run, inputs=page.inputs(ESTIMATE), outputs=outputs, **QUIET)


# the wiring ------------------------------------------------------------------------------------------------------


def wire(app: FashionFlowApp, page: Page, demo: gr.Blocks, examples: list[Path]) -> None:
    photo, fit, seed = page.form["photo"], page.form["fit"], page.form["seed"]
    estimate_inputs = page.inputs(ESTIMATE)
    # The photo reaches the handlers unprocessed (preprocess=False): Gradio's own decoding would
    # fail on a broken upload with a message nobody can act on; ours says what is wrong.
    for changed in (photo.change, fit.change):
        changed(
            app.photo_changed,
            inputs=[photo, fit],
            outputs=[photo, page.preview, page.photo_message],
            preprocess=False,
            concurrency_limit=4,  # framing is quick CPU work: it need not wait for generations
            show_progress="hidden",
            **PRIVATE,
        )
    # The /preview API (as before): bad input is an error for the caller. Its trigger is hidden,
    # because the page itself shows problems beside the photo instead.
    page.preview_api.click(
        app.preview,
        inputs=[photo, fit],
        outputs=page.preview,
        preprocess=False,
        concurrency_limit=4,
        api_name="preview",
        api_description="The photo framed as the model will see it (pad, crop or stretch).",
    )
    sampler, steps, num_frames = page.form["sampler"], page.form["steps"], page.form["num_frames"]
    sampler.change(app.sampler_changed, inputs=estimate_inputs, outputs=[steps, sampler, page.estimate], **QUIET)
    edited = [page.form[name].input for name in ESTIMATE if name != "sampler"] + [num_frames.release]
    gr.on(
        edited,
        app.settings_changed,
        inputs=estimate_inputs,
        outputs=[num_frames, page.settings_message, page.estimate],
        **QUIET,
    )
    # A typed seed is meant to be used: untick "Randomise seed".
    randomize = page.form["randomize_seed"]
    seed.input(lambda: (False, ""), outputs=[randomize, page.settings_message], queue=False, **PRIVATE)
    randomize.input(lambda: "", outputs=page.settings_message, queue=False, **PRIVATE)

    running = [page.generate, page.job_timer, page.job_status]
    checked = page.generate.click(
        app.check_request,
        inputs=page.inputs(FORM),
        outputs=[*running, page.photo_message, page.settings_message],
        **QUIET,
    )
    problem = checked.failure(
        app.show_problem,
        inputs=page.inputs(FORM),
        outputs=[page.photo_message, page.settings_message, page.job_status],
        **QUIET,
    )
    problem.then(None, js=script("revealProblem"), **PRIVATE)
    generated = checked.success(
        app.generate,
        inputs=page.inputs(FORM),
        outputs=page.results,
        preprocess=False,
        api_name="generate",
        api_description="Make a video from one fashion photo. Returns the MP4, MP4 and GIF downloads, "
        "the seed used and a one-line summary.",
        # The app's own queue (DeviceQueue) runs one generation at a time and says where each
        # waiting one stands; Gradio only hands requests over.
        concurrency_limit=None,
        show_progress="hidden",
    )
    generated.success(None, js=script("scrollToResult"), **PRIVATE)
    for ended in afterwards(generated):
        after = ended(app.after_run, inputs=estimate_inputs, outputs=[*running, page.estimate], **QUIET)
        after.then(None, js=script("revealProblem"), **PRIVATE)
    page.job_timer.tick(app.job_status, outputs=page.job_status, queue=False, show_progress="hidden", **PRIVATE)
    if page.live_preview is not None:
        # A look at the video taking shape on the status line's clock, outside /generate (whose outputs
        # stay as they are); the video, an error or Cancel then takes its place.
        page.job_timer.tick(
            app.live_preview,
            inputs=page.show_live_preview,
            outputs=page.live_preview,
            queue=False,
            show_progress="hidden",
            **PRIVATE,
        )
        for finished in (*afterwards(generated), page.cancel.click):
            finished(app.live_preview_ended, outputs=page.live_preview, queue=False, show_progress="hidden", **PRIVATE)
    model_outputs = [page.model_status, page.generate, page.model_timer, page.estimate]
    page.model_timer.tick(app.model_status, inputs=estimate_inputs, outputs=model_outputs, **QUIET)
    # Each visitor sees the model as it is now, not as it was when the page was built.
    names = [service.photo_label(path) for path in examples]
    demo.load(app.model_status, inputs=estimate_inputs, outputs=model_outputs, js=script("label", names), **QUIET)
    # On the button's own change, so that cached example results unlock it too.
    page.mp4.change(
        app.enable_downloads, inputs=[page.mp4, page.gif], outputs=[page.mp4, page.gif], queue=False, **PRIVATE
    )
    # A visitor who leaves (tab closed, page reloaded, connection lost, an API client gone) leaves the line.
    demo.unload(app.visitor_left)
    page.cancel.click(
        app.cancel_clicked,
        outputs=[page.job_status, page.generate, page.job_timer],
        cancels=[generated],
        queue=False,
        **PRIVATE,
    )


def build_demo(app: FashionFlowApp, output_ttl: int = 3600, examples: list[Path] | None = None) -> gr.Blocks:
    """The page. Generations wait in the app's own queue (real places and waits), one at a time."""
    status = app.setup.status()
    examples = examples or [EXAMPLES_DIR / name for name in EXAMPLES]
    # Gradio's copies of the videos it served, removed on the same schedule as ours.
    delete_cache = (service.OutputStore.sweep_interval(output_ttl), output_ttl)
    with gr.Blocks(title="FashionFlow", analytics_enabled=False, delete_cache=delete_cache) as demo:
        page = lay_out(app, status)
        add_examples(app, page, status, examples, demo)
        wire(app, page, demo, examples)
    return demo


# launching -------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    defaults = service.env_defaults(os.environ if environ is None else environ)
    return service.build_arg_parser(defaults).parse_args(argv)


def on_zero_gpu() -> bool:
    return spaces is not None and on_spaces()


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(argv)
        examples = service.example_photos(args.examples) if args.examples else None
    except (ValueError, FileNotFoundError) as error:  # a malformed environment variable or examples folder
        raise SystemExit(f"error: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store = service.OutputStore(args.output_dir, max_age_seconds=args.output_ttl)
    store.sweep()
    store.start_sweeper()
    # No live preview on ZeroGPU: the generation runs in a process of its own there, whose latents the page
    # cannot see.
    live_previews = service.LivePreviews() if args.live_preview and not on_zero_gpu() else None
    app = FashionFlowApp(
        service.prepare_model(args, HERE),
        store,
        zero_gpu=on_zero_gpu(),
        queue_size=args.queue_size,
        live_previews=live_previews,
    )
    service.measure_speeds(app.setup, app.speeds, app.device_lock, zero_gpu=on_zero_gpu())
    if live_previews is not None:
        service.fit_latent_colours(app.setup, app.device_lock)
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
        css_paths=[HERE / "app.css"],
        # No run history: it would keep customers' photos in the browser, and its links would
        # point at videos that the clean-up has removed.
        run_history=False,
    )


if __name__ == "__main__":
    main()
