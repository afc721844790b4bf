"""FashionFlowPipeline: one fashion photo in, a short video of the person moving out."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, AutoencoderTiny, DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPVisionModel
from transformers.image_processing_utils import BaseImageProcessor

from .compile import CompileSettings, compile_pipeline, warm_up
from .defaults import DEFAULT_DECODE_CHUNK_SIZE, DEFAULT_NUM_FRAMES  # noqa: F401  (pipeline.DEFAULT_DECODE_CHUNK_SIZE)
from .image import DEFAULT_FIT, FIT_MODES, ImageInput, frame_image, image_to_tensor, load_image
from .models import ConditionAdapter, FashionFlowUNet
from .runtime import DECODERS, choose_decode_chunk_size
from .schedulers import DEFAULT_SAMPLER, SAMPLERS, check_prediction_type, default_steps, make_scheduler
from .video import DEFAULT_FPS, MAX_FPS, MIN_FPS, VIDEO_FORMATS, VideoWriter, boomerang, chained_frames

logger = logging.getLogger(__name__)

CLIP_PREPROCESSING = ("published-checkpoint", "standard")
OUTPUT_TYPES = ("pil", "np", "pt", "latent")

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class FashionFlowPipelineOutput(BaseOutput):
    """
    frames: per input image, its video: a list of PIL images (output_type "pil"), or an array /
        tensor of shape (batch, frames, height, width, 3) ("np") / (batch, frames, 3, height, width)
        ("pt") in [0, 1], or the latents (batch, 4, frames, h, w) ("latent").
    video_path: the video file written, when `output_path` was given.
    compile_seconds: with `enable_compile`, the seconds this call spent compiling for its shapes
        (0 once they were compiled); None when the pipeline is not compiled.
    """

    frames: list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor
    video_path: Path | None = None
    compile_seconds: float | None = None


class FashionFlowPipeline(DiffusionPipeline):
    """Image-to-video generation with the FashionFlow model.

    Components: `vae` (AutoencoderKL, Stable Diffusion v1-4), `image_encoder` (CLIPVisionModel,
    ViT-B/32) with its `feature_extractor`, `unet` (FashionFlowUNet), `adapter` (ConditionAdapter)
    and `scheduler` (the noise schedule, and in its `prediction_type` what the U-Net predicts: "epsilon"
    or "v_prediction"; `sampler` picks the sampling algorithm per call, on that schedule and prediction).
    Optional: `tiny_vae` (AutoencoderTiny with TAESD weights), a decoder about eight times faster
    than the VAE's on a CPU, for quick previews (`decoder="tiny"`); final videos use the VAE.

    Config:
        clip_preprocessing: "published-checkpoint" feeds CLIP the way the published checkpoint
            was trained: the [0, 1] image goes through the CLIP processor's default 1/255
            rescale once more, so CLIP sees an almost black image. "standard" is the correct
            preprocessing, for models trained by this project.
        untrained: marks a pipeline with random weights (the `tiny-random` one): output is noise.
    """

    model_cpu_offload_seq = "image_encoder->adapter->unet->vae->tiny_vae"
    _optional_components = ["tiny_vae"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: CLIPVisionModel,
        feature_extractor: BaseImageProcessor,
        unet: FashionFlowUNet,
        adapter: ConditionAdapter,
        scheduler: SchedulerMixin,
        clip_preprocessing: str = "published-checkpoint",
        untrained: bool = False,
        tiny_vae: AutoencoderTiny | None = None,
    ):
        super().__init__()
        if clip_preprocessing not in CLIP_PREPROCESSING:
            raise ValueError(f"clip_preprocessing must be one of {CLIP_PREPROCESSING}; got {clip_preprocessing!r}.")
        check_prediction_type(scheduler.config)  # a model we cannot sample is refused at load, not sampled into noise
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            unet=unet,
            adapter=adapter,
            scheduler=scheduler,
            tiny_vae=tiny_vae,
        )
        self.register_to_config(clip_preprocessing=clip_preprocessing, untrained=untrained)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self._compile_settings: CompileSettings | None = None
        self.cpu_settings = None  # the precision and layout `load_pipeline` chose for this CPU (runtime.CpuSettings)

    # facts about the loaded model ---------------------------------------------------------------------

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) in pixels of the videos this model makes: fixed by the adapter's latent size."""
        latent_h, latent_w = self.adapter.config.latent_size
        return latent_h * self.vae_scale_factor, latent_w * self.vae_scale_factor

    @property
    def execution_device(self) -> torch.device:
        """Where the pipeline computes (the GPU also while models wait on the CPU under CPU offload)."""
        return execution_device(self)

    @property
    def cpu_offloaded(self) -> bool:
        """Whether models wait on the CPU between uses (`enable_model_cpu_offload`)."""
        return cpu_offloaded(self)

    @property
    def attention_backend(self) -> str:
        """The attention kernel the U-Net runs on the execution device: "sdpa" or "xformers"."""
        return self.unet.attention_backend_on(self.execution_device)

    @property
    def decoders(self) -> tuple[str, ...]:
        """The decoders this pipeline holds: "full" (the VAE's), and "tiny" when it has a tiny_vae."""
        return ("full", "tiny") if self.tiny_vae is not None else ("full",)

    def decode_chunk_size_for(self, decoder: str = "full", num_frames: int | None = None) -> int:
        """Frames per decoder call chosen from the execution device and its free memory now."""
        height, width = self.frame_size
        model = self.decoder_model(decoder)
        return choose_decode_chunk_size(self.execution_device, decoder, height, width, model.dtype, num_frames)

    # speed --------------------------------------------------------------------------------------------------------

    def enable_compile(
        self, mode: str | None = None, backend: str = "inductor", channels_last: bool | None = None
    ) -> None:
        """Compile the U-Net and the decoders with torch.compile for the fixed shapes of each request.

        Call after moving the pipeline to its device. The first call of every new shape (frames,
        batch, decoder chunk) pays the compilation, reported as `compile_seconds` in the output;
        later calls of that shape run compiled. mode: "reduce-overhead" (default on CUDA: CUDA
        graphs), "default" (default elsewhere), "max-autotune" (slow to compile, fastest kernels)
        or "max-autotune-no-cudagraphs". channels_last: NHWC decoder convolutions (default on CUDA).
        """
        if self._compile_settings is None:
            self._compile_settings = compile_pipeline(self, mode, backend, channels_last)

    @property
    def compile_settings(self) -> CompileSettings | None:
        """How the pipeline was compiled (and the shapes compiled so far); None when it is not."""
        return self._compile_settings

    @property
    def uses_cuda_graphs(self) -> bool:
        """Whether compiled modules replay CUDA graphs (each call then marks the start of a step)."""
        settings = self._compile_settings
        return settings is not None and settings.uses_cuda_graphs

    def decoder_model(self, decoder: str) -> AutoencoderKL | AutoencoderTiny:
        """The model that decodes with `decoder` ("full": the VAE, "tiny": TAESD), or ValueError saying why not."""
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}.")
        if decoder == "tiny" and self.tiny_vae is None:
            raise ValueError(
                "This pipeline has no tiny decoder (tiny_vae) for quick previews: its folder was made without one. "
                "`python -m fashionflow download --force` adds it (madebyollin/taesd, about 10 MB; finished downloads "
                'are reused), or use the full decoder (decoder="full", --decoder full).'
            )
        return self.vae if decoder == "full" else self.tiny_vae

    # the steps of __call__, usable one by one ----------------------------------------------------------------

    def prepare_image(self, image: ImageInput, fit: str = DEFAULT_FIT) -> PIL.Image.Image:
        """The photo as the model will see it: read, made upright RGB, and fitted to the frame."""
        height, width = self.frame_size
        # Reduced while read: the frame needs no more than its long side on the photo's short side.
        return frame_image(load_image(image, working_side=max(height, width)), height, width, fit)

    def encode_image(
        self, images: Sequence[PIL.Image.Image], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Framed stills -> (context (b, tokens, dim), clean first-frame latents (b, 4, h, w))."""
        pixels = torch.stack([image_to_tensor(image) for image in images])  # (b, 3, H, W) in [0, 1]
        clip_hidden_states, context_latents, first_frame_latents = self.encode_condition(pixels, generator)
        context = self.adapter(clip_hidden_states.to(self.adapter.dtype), context_latents.to(self.adapter.dtype))
        return context, first_frame_latents.float()

    @torch.no_grad()
    def encode_condition(
        self, pixels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the frozen encoders make of stills (b, 3, H, W) in [0, 1]: (CLIP last_hidden_state,
        a VAE latent sample for the adapter, another for frame 0), each on the execution device.

        Generation and training both condition through here (training feeds the first two to
        the adapter it trains), so the two cannot drift apart.
        """
        device = self.execution_device
        clip_input = self._clip_pixel_values(pixels.cpu().float()).to(device, self.image_encoder.dtype)
        clip_hidden_states = self.image_encoder(clip_input).last_hidden_state

        # Pixels enter the VAE in [0, 1], as in training. Like the authors' code, the adapter and
        # frame 0 each take their own sample of the latent distribution.
        latent_dist = self.vae.encode(pixels.to(device, self.vae.dtype)).latent_dist
        scale = self.vae.config.scaling_factor
        context_latents = latent_dist.sample(generator) * scale
        first_frame_latents = latent_dist.sample(generator) * scale
        return clip_hidden_states, context_latents, first_frame_latents

    def _clip_pixel_values(self, pixels: torch.Tensor) -> torch.Tensor:
        # "published-checkpoint": the processor rescales the [0, 1] floats by 1/255 again (do_rescale);
        # it warns about exactly that, which here is intended.
        rescale_again = self.config.clip_preprocessing == "published-checkpoint"
        with _transformers_warnings_silenced():
            return self.feature_extractor(images=list(pixels), do_rescale=rescale_again, return_tensors="pt")[
                "pixel_values"
            ]

    def prepare_latents(
        self,
        first_frame_latents: torch.Tensor,
        num_frames: int,
        init_noise_sigma: float,
        generator: torch.Generator | None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noise of shape (b, 4, frames, h, w), float32, with frame 0 set to the still's clean latent."""
        b, c, h, w = first_frame_latents.shape
        shape = (b, c, num_frames, h, w)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=first_frame_latents.device, dtype=torch.float32)
            latents = latents * init_noise_sigma
        elif latents.shape != shape:
            raise ValueError(f"latents must have shape {shape}; got {tuple(latents.shape)}.")
        latents = latents.to(first_frame_latents.device, torch.float32).clone()
        latents[:, :, 0] = first_frame_latents
        return latents

    def decode_latents(
        self,
        latents: torch.Tensor,
        chunk_size: int | None = None,
        progress: ProgressCallback | None = None,
        decoder: str = "full",
    ) -> torch.Tensor:
        """Latents (b, 4, f, h, w) -> frames (b, f, 3, H, W) in [0, 1], decoding `chunk_size` frames per call.

        decoder: "full" (the VAE's) or "tiny" (TAESD, for quick previews). chunk_size None: chosen
        from the device and its free memory (`decode_chunk_size_for`).
        """
        b, _, f, _, _ = latents.shape
        return torch.cat(list(self.decoded_chunks(latents, chunk_size, progress, decoder))).unflatten(0, (b, f))

    @torch.no_grad()
    def decoded_chunks(
        self,
        latents: torch.Tensor,
        chunk_size: int | None = None,
        progress: ProgressCallback | None = None,
        decoder: str = "full",
    ) -> Iterator[torch.Tensor]:
        """The frames of latents (b, 4, f, h, w) as they are decoded, `chunk_size` per decoder call, video
        after video: chunks (n, 3, H, W) in [0, 1] on the CPU. What hands frames on (to a video file)
        without ever holding a whole video; `decode_latents` gathers them."""
        model = self.decoder_model(decoder)
        b, _, f, _, _ = latents.shape
        if chunk_size is None:
            chunk_size = self.decode_chunk_size_for(decoder, b * f)
        # Both decoders follow diffusers' conventions: they take latents / their scaling_factor
        # (TAESD's is 1.0: it works on the scaled latents the U-Net denoises, ours = VAE latents
        # * 0.18215) and return the SD VAE's output range. This model's VAE reads and writes
        # pixels in [0, 1] within that range, and TAESD imitates the VAE's decoder, so both
        # outputs are [0, 1] pixels as they come.
        flat = (latents / model.config.scaling_factor).permute(0, 2, 1, 3, 4).flatten(0, 1)  # (b f) c h w
        for start in range(0, flat.shape[0], chunk_size):
            # contiguous: a compiled decoder is specialised to one memory layout as well as one shape
            chunk = flat[start : start + chunk_size].to(self.execution_device, model.dtype).contiguous()
            count = chunk.shape[0]
            if self._compile_settings is not None and count < chunk_size:
                # a compiled decoder has one shape: fill the last chunk up with copies of its last frame
                chunk = torch.cat((chunk, chunk[-1:].expand(chunk_size - count, -1, -1, -1)))
            if self.uses_cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            frames = model.decode(chunk).sample[:count].float().clamp(0, 1).cpu()
            if progress is not None:
                progress("decode", min(start + chunk_size, flat.shape[0]), flat.shape[0])
            yield frames

    def decode_to_video(
        self,
        latents: torch.Tensor,
        output_type: str,
        output_path: str | os.PathLike | None = None,
        fps: int = DEFAULT_FPS,
        loop: bool = False,
        chunk_size: int | None = None,
        progress: ProgressCallback | None = None,
        decoder: str = "full",
    ) -> tuple[list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor | None, Path | None]:
        """Decode latents (b, 4, f, h, w): (the frames as `output_type` says, None for "latent"; the
        video written to `output_path`, or None).

        The frames go to the video file as they are decoded, so a long video is never held whole
        for the file: with output_type "latent" memory stays flat however long the video is (the
        frames of a `loop` excepted: its way back needs them, kept as 8-bit pictures). Frames that
        are returned are kept as asked: "pil" as 8-bit pictures, "np" and "pt" as float32.
        """
        b, _, f, _, _ = latents.shape
        kept, pictures = [], []  # float chunks ("np", "pt"); 8-bit frames ("pil", and a loop's way back)
        with VideoWriter(output_path, fps) if output_path is not None else contextlib.nullcontext() as video:
            for chunk in self.decoded_chunks(latents, chunk_size, progress, decoder):
                if output_type in ("np", "pt"):
                    kept.append(chunk)
                if video is None and output_type != "pil":
                    continue
                chunk_pictures = to_pictures(chunk)
                if video is not None:
                    for picture in chunk_pictures:
                        video.write(picture)
                if output_type == "pil" or loop:
                    pictures.extend(chunk_pictures)
            if video is not None:
                if progress is not None:
                    progress("export", 0, 1)
                for picture in boomerang(pictures)[len(pictures) :] if loop else ():
                    video.write(picture)
        # leaving the block finished the file, read it back and renamed it into place
        if video is not None and progress is not None:
            progress("export", 1, 1)
        video_path = video.path if video is not None else None
        if output_type == "pil":
            images = [PIL.Image.fromarray(picture) for picture in pictures]
            return [images[i * f : (i + 1) * f] for i in range(b)], video_path
        if output_type in ("np", "pt"):
            return self.postprocess(torch.cat(kept).unflatten(0, (b, f)), output_type), video_path
        return None, video_path

    # generation -----------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        image: ImageInput | Sequence[ImageInput],
        num_frames: int = DEFAULT_NUM_FRAMES,
        sampler: str | None = DEFAULT_SAMPLER,
        num_inference_steps: int | None = None,
        fit: str = DEFAULT_FIT,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        decode_chunk_size: int | None = None,
        output_type: str = "pil",
        output_path: str | os.PathLike | None = None,
        fps: int = DEFAULT_FPS,
        loop: bool = False,
        callback_on_step_end: Callable[[DiffusionPipeline, int, int, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        progress: ProgressCallback | None = None,
        return_dict: bool = True,
        decoder: str = "full",
        num_clips: int = 1,
    ) -> FashionFlowPipelineOutput | tuple:
        """Make a video of the person in `image`.

        Args:
            image: a photo (path, bytes, PIL image or array) or a list of photos.
            num_frames: frames per clip; a multiple of `unet.frame_multiple` (2). 70 frames = 2.8 s at 25 fps.
            sampler: "dpm++" (default, 25 steps), "unipc" (25), "ddim" (50), or "ddpm" (the authors'
                1000-step ancestral sampler). None uses `self.scheduler` as it is configured.
            num_inference_steps: denoising steps (per clip); default per sampler.
            fit: how the photo fills the portrait frame: "pad", "crop" or "stretch" (the authors').
            generator: seeds the VAE latent samples and the noise of every clip (a CPU generator gives
                the same noise on every device): one seed makes the whole video again.
            latents: the first clip's starting noise (b, 4, num_frames, h, w), instead of drawing it.
            decode_chunk_size: frames per decoder call; lower it to save memory. Default: chosen
                from the device and its free memory (1 or 2 on a CPU, up to 16 on a GPU).
            output_type: "pil", "np", "pt" (decoded frames) or "latent". With `output_path` the frames
                go to the file as they are decoded; "latent" then returns only the latents and keeps
                memory flat however many clips the video has.
            output_path: also write the video here (.mp4: H.264 yuv420p, or .gif).
            loop: write the video forward then backward, so that it loops seamlessly.
            callback_on_step_end: called as `(pipeline, step, timestep, tensors)` after every step;
                may return replacements for the tensors it was given (diffusers convention). Steps are
                counted over all clips (clip = step // num_inference_steps); `tensors["latents"]` is
                the clip being denoised.
            progress: called as `(stage, done, total)` for the stages "denoise" (steps of all clips),
                "decode" (frames of the joined video) and "export"; raising from it stops the generation
                (how the app cancels).
            decoder: "full" (the VAE's decoder, for final videos) or "tiny" (TAESD: a quick preview
                at a fraction of the decoding time, with softer details).
            num_clips: clips chained into one longer video. Clip k+1 starts from the last latent
                frame of clip k (no decoding in between); every clip is conditioned on the photo
                itself. The video has num_clips * (num_frames - 1) + 1 frames.
        """
        # 0. Defaults
        if num_inference_steps is None:
            num_inference_steps = default_steps(sampler) if sampler else 50
        images = [image] if _is_single_image(image) else list(image)

        # 1. Check inputs
        self.check_inputs(
            images,
            num_frames,
            sampler,
            num_inference_steps,
            fit,
            decode_chunk_size,
            output_type,
            output_path,
            fps,
            callback_on_step_end_tensor_inputs,
            decoder,
            num_clips,
        )
        self.upcast_vae_if_needed()
        video_frames = chained_frames(num_frames, num_clips)
        decodes = output_type != "latent" or output_path is not None
        if decode_chunk_size is None and decodes:
            decode_chunk_size = self.decode_chunk_size_for(decoder, len(images) * video_frames)
        compile_seconds = None
        if self._compile_settings is not None:
            compile_seconds = warm_up(self, len(images), num_frames, decoder, decode_chunk_size if decodes else None)

        # 2. Prepare the still images
        stills = [self.prepare_image(photo, fit) for photo in images]

        # 3. Encode them: CLIP + VAE -> adapter context (every clip's); VAE -> clean first-frame latent
        context, first_frame_latents = self.encode_image(stills, generator)

        # 4. Timesteps (the same for every clip)
        scheduler = self.fresh_scheduler(sampler, num_inference_steps, first_frame_latents.device)
        timesteps = scheduler.timesteps
        # ancestral samplers draw noise every step; deterministic ones take no generator
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}

        # 5. Denoise clip by clip. Each clip starts from the frame it is given, put back clean after every
        #    step as in training: the first clip from the latent of the still, each next one from the last
        #    frame of the one before (carrying more frames across a join, noised to each step's level as
        #    video inpainting does, measured no smoother: README, Longer videos); every clip has the photo's own context, so the garment always comes from
        #    the photo. Its noise comes from the generator in turn: a seed makes the whole video again.
        unet_dtype = self.unet.dtype
        context = context.to(unet_dtype).contiguous()  # one layout: a compiled U-Net is specialised to it
        clips: list[torch.Tensor] = []
        with self.progress_bar(total=num_clips * len(timesteps)) as progress_bar:
            for clip in range(num_clips):
                # 5a. The clip's latents: noise, with its first frame given
                if clip > 0:
                    scheduler = self.fresh_scheduler(sampler, num_inference_steps, first_frame_latents.device)
                given = first_frame_latents if clip == 0 else clips[-1][:, :, -1]
                latents = self.prepare_latents(
                    given, num_frames, scheduler.init_noise_sigma, generator, latents if clip == 0 else None
                )

                # 5b. Its denoising loop; the given frame goes back after every step
                for i, t in enumerate(timesteps):
                    model_input = scheduler.scale_model_input(latents, t).to(unet_dtype)
                    if self.uses_cuda_graphs:
                        torch.compiler.cudagraph_mark_step_begin()
                    # a float32 copy: with CUDA graphs the next step overwrites the U-Net's output buffer
                    noise_pred = self.unet(model_input, t, context).sample.to(torch.float32, copy=True)
                    latents = scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
                    latents[:, :, 0] = given

                    step = clip * len(timesteps) + i
                    if callback_on_step_end is not None:
                        available = {"latents": latents}
                        tensors = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                        latents = callback_on_step_end(self, step, t, tensors).get("latents", latents)
                    progress_bar.update()
                    if progress is not None:
                        progress("denoise", step + 1, num_clips * len(timesteps))
                clips.append(latents)

        # 6. Join the clips: each after the first without the frame it shares with the one before
        latents = torch.cat([clips[0], *(later[:, :, 1:] for later in clips[1:])], dim=2)
        del clips

        # 7. Decode, handing the frames to the video file as they come; 8. export (in the same pass)
        frames, video_path = latents, None
        if decodes:
            decoded, video_path = self.decode_to_video(
                latents, output_type, output_path, fps, loop, decode_chunk_size, progress, decoder
            )
            frames = latents if output_type == "latent" else decoded

        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames, video_path)
        return FashionFlowPipelineOutput(frames=frames, video_path=video_path, compile_seconds=compile_seconds)

    def fresh_scheduler(self, sampler: str | None, num_inference_steps: int, device: torch.device) -> SchedulerMixin:
        """A new scheduler with its timesteps set: calls (and clips) share no sampler state, which
        multistep samplers keep from step to step (and the app serves many users)."""
        if sampler is None:
            scheduler = self.scheduler.__class__.from_config(self.scheduler.config)
        else:
            scheduler = make_scheduler(sampler, self.scheduler.config)
        scheduler.set_timesteps(num_inference_steps, device=device)
        return scheduler

    def check_inputs(
        self,
        images,
        num_frames,
        sampler,
        num_inference_steps,
        fit,
        decode_chunk_size,
        output_type,
        output_path,
        fps,
        callback_on_step_end_tensor_inputs,
        decoder="full",
        num_clips=1,
    ) -> None:
        if not images or any(photo is None for photo in images):
            raise ValueError("No photo was given.")
        multiple = self.unet.frame_multiple
        if not isinstance(num_frames, int) or num_frames < multiple or num_frames % multiple:
            raise ValueError(f"num_frames must be a positive multiple of {multiple}; got {num_frames!r}.")
        if not isinstance(num_clips, int) or isinstance(num_clips, bool) or num_clips < 1:
            raise ValueError(f"num_clips must be a positive whole number; got {num_clips!r}.")
        if sampler is not None and sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}.")
        train_steps = self.scheduler.config.num_train_timesteps
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= train_steps:
            raise ValueError(f"num_inference_steps must be between 1 and {train_steps}; got {num_inference_steps!r}.")
        if fit not in FIT_MODES:
            raise ValueError(f"Unknown fit {fit!r}; choose one of: {', '.join(FIT_MODES)}.")
        if decode_chunk_size is not None and (not isinstance(decode_chunk_size, int) or decode_chunk_size < 1):
            raise ValueError(f"decode_chunk_size must be a positive integer or None; got {decode_chunk_size!r}.")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}.")
        if output_type != "latent":
            self.decoder_model(decoder)  # an unknown or absent decoder fails before any work
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}; got {output_type!r}.")
        if output_path is not None:
            if len(images) != 1:
                raise ValueError("output_path writes one video: give one photo (or call once per photo).")
            if Path(output_path).suffix.lower().lstrip(".") not in VIDEO_FORMATS:
                raise ValueError(f"output_path must end in .mp4 or .gif; got {str(output_path)!r}.")
            if not MIN_FPS <= fps <= MAX_FPS:
                raise ValueError(f"fps must be between {MIN_FPS} and {MAX_FPS}; got {fps!r}.")
        unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs may hold {self._callback_tensor_inputs}; got {unknown}."
            )

    def upcast_vae_if_needed(self) -> None:
        """Stable Diffusion's VAE overflows in float16 on some images (NaN, black frames): run it in
        float32 when the pipeline is half precision (bfloat16 has the range and stays)."""
        if self.vae.dtype == torch.float16 and getattr(self.vae.config, "force_upcast", True):
            logger.info("Running the VAE in float32 (float16 can produce NaN frames).")
            self.vae.to(dtype=torch.float32)

    _upcast_vae_if_needed = upcast_vae_if_needed  # the earlier name

    @staticmethod
    def postprocess(video: torch.Tensor, output_type: str):
        """Decoded frames (b, f, 3, H, W) in [0, 1] as `output_type` says: "pt" as they are, "np"
        (b, f, H, W, 3), or "pil" (lists of images)."""
        if output_type == "pt":
            return video
        if output_type == "np":
            return video.permute(0, 1, 3, 4, 2).numpy()  # (b, f, H, W, 3)
        return [[PIL.Image.fromarray(picture) for picture in to_pictures(clip)] for clip in video]


# diffusers keeps where a pipeline computes, and whether it offloads, in private attributes:
# these two functions are the one place that reads them.


def execution_device(pipeline) -> torch.device:
    """Where a diffusers pipeline computes (diffusers points it at the GPU under CPU offload)."""
    return pipeline._execution_device


def cpu_offloaded(pipeline) -> bool:
    """Whether a diffusers pipeline keeps its models on the CPU between uses."""
    return getattr(pipeline, "_offload_device", None) is not None


def to_pictures(frames: torch.Tensor) -> np.ndarray:
    """Frames (n, 3, H, W) in [0, 1] as 8-bit pictures (n, H, W, 3): what a video file and a PIL image hold."""
    return (frames.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def _is_single_image(image) -> bool:
    return not isinstance(image, (list, tuple))


@contextlib.contextmanager
def _transformers_warnings_silenced():
    from transformers.utils import logging as transformers_logging

    level = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(level)
