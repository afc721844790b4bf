"""Command line: `python -m fashionflow {generate,download,convert,prepare,train} ...` (also installed as `fashionflow`)."""

from __future__ import annotations

import argparse
import datetime
import os
import random
import sys
from pathlib import Path

from .image import PHOTO_SUFFIXES  # noqa: F401  (kept importable from here)

MAX_SEED = 2**63 - 1


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _whole_number(low: int, high: int | None = None, even: bool = False):
    """An argparse type: a whole number in [low, high] (even when asked); argparse names the flag."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = None
        if number is None or number < low or (high is not None and number > high) or (even and number % 2):
            what = "an even number" if even else "a whole number"
            bounds = f"from {low} to {high}" if high is not None else f"of {low} or more"
            raise argparse.ArgumentTypeError(f"must be {what} {bounds}; got {text!r}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    # Only light modules here (no torch, no diffusers): `--help` answers at once.
    from .defaults import (
        ATTENTION_BACKENDS,
        DECODERS,
        DEFAULT_NUM_FRAMES,
        DEFAULT_SAMPLER,
        DTYPE_NAMES,
        NUM_TRAIN_TIMESTEPS,
        SAMPLER_NAMES,
    )
    from .hub import CHECKPOINT_URL, DEFAULT_CACHE, DEFAULT_OUTPUT
    from .image import DEFAULT_FIT, FIT_MODES
    from .video import DEFAULT_FPS, VIDEO_FORMATS

    DEFAULT_MODEL, SAMPLERS, DTYPES = str(DEFAULT_OUTPUT), SAMPLER_NAMES, DTYPE_NAMES

    parser = argparse.ArgumentParser(
        prog="python -m fashionflow", description="FashionFlow: fashion videos from one photo."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate",
        help="make a video from a photo (or from every photo in a folder or list)",
        description="Make a video of the person in PHOTO. With a folder of photos, or a list file (.txt, one "
        "photo path a line, relative to the list's folder), make one video per photo into the output folder, "
        "skipping photos whose video already exists, and record each photo in OUTPUT/manifest.jsonl. "
        "Under `accelerate launch` (or torchrun) the photos are shared among all processes.",
    )
    generate.add_argument("photo", type=Path, help="a photo, a folder of photos, or a .txt list of photos")
    generate.add_argument(
        "-o", "--output", type=Path, required=True, help="video file (.mp4/.gif), or a folder for several photos"
    )
    generate.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"pipeline folder, Hub id, or tiny-random (default: {DEFAULT_MODEL})"
    )
    generate.add_argument(
        "--sampler", default=DEFAULT_SAMPLER, choices=list(SAMPLERS), help=f"default: {DEFAULT_SAMPLER}"
    )
    generate.add_argument(
        "--steps",
        type=_whole_number(1, NUM_TRAIN_TIMESTEPS),
        help="denoising steps (default: 25 for dpm++/unipc, 50 for ddim, 1000 for ddpm)",
    )
    generate.add_argument(
        "--seed",
        type=_whole_number(0, MAX_SEED),
        help="random seed (one photo: default a random one, printed; several: the base seed, default 0, from "
        "which each photo's seed derives with its name, so that reruns make the same videos)",
    )
    generate.add_argument(
        "--frames",
        type=_whole_number(2, even=True),
        default=DEFAULT_NUM_FRAMES,
        help=f"even number of frames (default: {DEFAULT_NUM_FRAMES})",
    )
    generate.add_argument(
        "--fit", default=DEFAULT_FIT, choices=FIT_MODES, help=f"how the photo fills the frame (default: {DEFAULT_FIT})"
    )
    generate.add_argument("--format", choices=VIDEO_FORMATS, help="video format for a batch (default: mp4)")
    generate.add_argument("--fps", type=_whole_number(1, 60), default=DEFAULT_FPS, help=f"default: {DEFAULT_FPS}")
    generate.add_argument("--loop", action="store_true", help="play forward then backward, for a seamless loop")
    generate.add_argument("--device", help="cuda, cpu, ... (default: the best one present)")
    generate.add_argument("--dtype", choices=list(DTYPES), help="default: bfloat16/float16 on CUDA, float32 elsewhere")
    generate.add_argument(
        "--attention", default="auto", choices=ATTENTION_BACKENDS, help="attention kernel (default: auto)"
    )
    generate.add_argument(
        "--decode-chunk-size",
        type=_whole_number(1),
        help="frames per decoder call (default: chosen from the device and its free memory)",
    )
    generate.add_argument(
        "--cpu-offload", action="store_true", help="keep models on the CPU until used (saves GPU memory)"
    )
    generate.add_argument("--overwrite", action="store_true", help="in a batch, also redo photos that have a video")
    # speed (issue 11)
    generate.add_argument(
        "--decoder",
        default="full",
        choices=DECODERS,
        help="full: the VAE's decoder, for final videos (default); tiny: TAESD, a quick preview decoded ~8x faster",
    )
    generate.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the U-Net and decoders (GPU; the first video of each size pays the compilation)",
    )
    generate.set_defaults(run=_run_generate)

    download = commands.add_parser(
        "download",
        help="fetch the published weights and assemble a pipeline folder",
        description="Fetch the VAE and CLIP from the Hugging Face Hub and the authors' checkpoint from their Dropbox "
        "link, convert it, and write a complete pipeline folder that loads offline.",
    )
    download.add_argument("--output", "-o", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    download.add_argument(
        "--vae-from", type=Path, help="local copy of CompVis/stable-diffusion-v1-4 (with vae/) instead of the Hub"
    )
    download.add_argument(
        "--clip-from", type=Path, help="local copy of openai/clip-vit-base-patch32 instead of the Hub"
    )
    download.add_argument("--checkpoint", type=Path, help="a FashionFlow_checkpoint.pth you already have")
    download.add_argument("--checkpoint-url", default=CHECKPOINT_URL, help="where to download the checkpoint from")
    download.add_argument("--sha256", help="expected sha256 of the checkpoint, if you know it")
    download.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"downloads are kept here (default: {DEFAULT_CACHE})"
    )
    download.add_argument("--force", action="store_true", help="replace an existing output folder")
    download.add_argument(
        "--no-tiny-decoder", action="store_true", help="skip the optional tiny decoder for quick previews (TAESD)"
    )
    download.add_argument("--tiny-decoder-from", type=Path, help="local copy of madebyollin/taesd instead of the Hub")
    download.set_defaults(run=_run_download)

    convert = commands.add_parser(
        "convert",
        help="convert the authors' published checkpoint into diffusers folders",
        description="Convert FashionFlow_checkpoint.pth (or U-Net + adapter .safetensors) into OUTPUT/unet and OUTPUT/adapter.",
    )
    convert.add_argument(
        "checkpoint", nargs="+", type=Path, help="the .pth file, or the U-Net and adapter .safetensors files"
    )
    convert.add_argument("--output", "-o", type=Path, required=True, help="folder to write unet/ and adapter/ into")
    convert.add_argument("--cross-attention-heads", type=_int_list, help="heads per level (default: published 1,1,2,4)")
    convert.add_argument("--latent-size", type=_int_list, help="adapter latent HEIGHT,WIDTH when it cannot be inferred")
    convert.set_defaults(run=_run_convert)

    _add_training_commands(commands, DEFAULT_MODEL)
    _add_evaluate_parser(commands)
    return parser  # fmt: skip


# generate ---------------------------------------------------------------------------------------------------------


def _run_generate(args: argparse.Namespace) -> int:
    from .batch import LIST_SUFFIX, Job, Manifest, find_photos, plan_jobs, record_earlier_videos, run_jobs, say_line

    if not args.photo.exists():
        raise FileNotFoundError(f"No photo, folder or list at {args.photo}.")
    several = args.photo.is_dir() or args.photo.suffix.lower() == LIST_SUFFIX
    output_is_video = args.output.suffix.lower() in (".mp4", ".gif")
    if several and output_is_video:
        raise ValueError(f"{args.photo} holds several photos: give an output folder, not a file ({args.output}).")
    if not several and not output_is_video and (args.output.suffix or args.output.is_file()):
        raise ValueError(f"The output must end in .mp4 or .gif, or be a folder; got {args.output}.")
    _check_model_name(args.model)
    from .schedulers import default_steps

    settings = {
        "model": args.model, "sampler": args.sampler, "steps": args.steps or default_steps(args.sampler),
        "frames": args.frames, "fit": args.fit,
        "fps": args.fps, "loop": args.loop, "decode_chunk_size": args.decode_chunk_size,
        "decoder": args.decoder,
    }  # fmt: skip

    if not several:  # one photo: its video, rewritten if it exists; no manifest
        seed = args.seed if args.seed is not None else random.randrange(2**31)
        video = args.output if output_is_video else args.output / f"{args.photo.stem}.{args.format or 'mp4'}"
        print(f"Seed: {seed}")
        job = Job(args.photo, args.photo.name, video, seed)
        outcome = run_jobs([job], lambda: _generator(args, bars=True), settings=settings, overwrite=True)
        return 1 if outcome.failed else 0

    state = _process_state(args.device)
    mark = f"[{state.process_index + 1}/{state.num_processes}] " if state.num_processes > 1 else ""
    photos, ignored = find_photos(args.photo)
    base_seed = args.seed if args.seed is not None else 0
    jobs = plan_jobs(photos, args.output, args.format or "mp4", base_seed)
    if state.is_main_process:
        for path, why in ignored:
            print(f"skipped: {path.name}: {why}")
        if not jobs:
            raise FileNotFoundError(f"No photos in {args.photo}.")
        print(f"{len(jobs)} photo(s), base seed {base_seed}" + (f", {state.num_processes} processes" if mark else ""))
    if not jobs:
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(args.output, state.process_index)
    # Every process splits the same full, sorted list, whatever is already done: a photo belongs to
    # exactly one process of a run, however far an earlier run got.
    with state.split_between_processes(jobs) as mine:
        outcome = run_jobs(
            mine,
            lambda: _generator(args, bars=not mark, device=args.device or _process_device(state)),
            settings=settings,
            overwrite=args.overwrite,
            manifest=manifest,
            rank=state.process_index,
            say=lambda line, failure: say_line(mark + line, failure),
        )
    state.wait_for_everyone()
    if not state.is_main_process:
        return 1 if outcome.failed else 0
    records = manifest.merge()
    record_earlier_videos(manifest, jobs, records, settings)
    records = manifest.merge()
    made = sum(job.video.exists() for job in jobs)
    failed = len(jobs) - made
    print(
        f"Done: {made} of {len(jobs)} photo(s) have their video in {args.output}"
        + (f"; {failed} failed (reasons in {manifest.path})." if failed else ".")
    )
    return 1 if failed else 0


def _generator(args: argparse.Namespace, bars: bool, device: str | None = None):
    """Load the model once; return the function that makes one job's video."""
    import torch

    from .loading import describe_pipeline, load_pipeline
    from .tiny import TINY_RANDOM

    pipeline = load_pipeline(
        args.model, device or args.device, args.dtype, args.attention, args.cpu_offload, compile=args.compile
    )
    multiple = pipeline.unet.frame_multiple
    if args.frames % multiple:
        raise ValueError(f"--frames must be a multiple of {multiple} for this model; got {args.frames}.")
    pipeline._decoder(args.decoder)  # --decoder tiny on a model without one: say so before any photo
    pipeline.set_progress_bar_config(disable=True)  # the stage bars below replace it
    print(f"Model: {describe_pipeline(pipeline, args.model)}")
    if args.model == TINY_RANDOM:
        print("Note: tiny-random is an untrained model; its videos are noise. Use it to try the software.")

    def generate(job) -> None:
        with _StageBars(enabled=bars) as stage_bars:
            result = pipeline(
                job.photo,
                num_frames=args.frames,
                sampler=args.sampler,
                num_inference_steps=args.steps,
                fit=args.fit,
                generator=torch.Generator().manual_seed(job.seed),
                decode_chunk_size=args.decode_chunk_size,
                output_path=job.video,
                fps=args.fps,
                loop=args.loop,
                progress=stage_bars.update,
                decoder=args.decoder,
            )
        if result.compile_seconds:
            print(f"  compiled for this video size in {result.compile_seconds:.1f} s (once per size)")

    return generate


def _check_model_name(model: str) -> None:
    """Refuse a --model that names nothing, before anything loads."""
    from .loading import TINY_RANDOM, WeightsNotFoundError, looks_like_hub_id, missing_model_message

    if model != TINY_RANDOM and not Path(model).exists() and not looks_like_hub_id(model):
        raise WeightsNotFoundError(missing_model_message(model))


def _process_state(device: str | None):
    """accelerate's view of the processes of this run (one, unless started by a launcher)."""
    import torch
    from accelerate import PartialState

    # Without a GPU, processes started by torchrun / `accelerate launch --cpu` must be told to use
    # the CPU: otherwise accelerate sees no accelerator and each one believes it runs alone.
    cpu = (
        (device or "").startswith("cpu")
        or not torch.cuda.is_available()
        or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    )
    # A process that finishes its share waits at the end for the others before the manifest is
    # merged: allow a day (torch's default is 30 minutes).
    return PartialState(cpu=cpu, timeout=datetime.timedelta(hours=24))


def _process_device(state) -> str | None:
    """This process's device under a launcher (cuda:LOCAL_RANK); the usual choice when alone."""
    return str(state.device) if state.num_processes > 1 else None


class _StageBars:
    """One tqdm bar per pipeline stage (denoise, decode, export); none when not `enabled`."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __enter__(self):
        self.bars = {}
        return self

    def update(self, stage: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if not self.enabled:
            return
        if stage not in self.bars:
            self.bars[stage] = tqdm(
                total=total, desc=f"  {stage}", unit="step" if stage == "denoise" else "frame", leave=False
            )
        bar = self.bars[stage]
        bar.update(done - bar.n)

    def __exit__(self, *exc):
        for bar in self.bars.values():
            bar.close()


# download / convert ---------------------------------------------------------------------------------------------------


def _run_download(args: argparse.Namespace) -> int:
    from .hub import download_official_pipeline

    folder = download_official_pipeline(
        args.output,
        vae_from=args.vae_from,
        clip_from=args.clip_from,
        checkpoint=args.checkpoint,
        checkpoint_url=args.checkpoint_url,
        checkpoint_sha256=args.sha256,
        cache_dir=args.cache_dir,
        force=args.force,
        tiny_decoder=not args.no_tiny_decoder,
        tiny_decoder_from=args.tiny_decoder_from,
    )
    print(f"FashionFlow pipeline ready in {folder} (sources and checksums: {folder / 'README.md'}).")
    print(f"Try it: python -m fashionflow generate PHOTO.jpg -o video.mp4 --model {folder}")
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    unet, adapter = convert_checkpoint(
        *args.checkpoint,
        output_dir=args.output,
        cross_attention_heads=args.cross_attention_heads,
        latent_size=args.latent_size,
    )
    params = sum(p.numel() for p in unet.parameters())
    print(f"U-Net: {params:,} parameters -> {args.output / 'unet'}")
    print(f"Adapter: latent {tuple(adapter.config.latent_size)} -> {args.output / 'adapter'}")
    return 0


# prepare / train ------------------------------------------------------------------------------------------------------


def _add_training_commands(commands, default_model: str) -> None:
    # light modules only, as for the other commands: `--help` must not import torch
    from .defaults import SAMPLER_NAMES as SAMPLERS
    from .image import FIT_MODES
    from .training.options import (
        DEFAULT_FRAMES,
        DEFAULT_PREPARE_FIT,
        INIT_CHOICES,
        LOSS_REDUCTIONS,
        LR_SCHEDULES,
        MIXED_PRECISION,
        PREDICTION_TYPES,
        VIDEO_SUFFIXES,
        TrainConfig,
    )

    defaults = TrainConfig(data="", output="")
    prepare = commands.add_parser(
        "prepare",
        help="encode training videos into latent clips (once, before training)",
        description="Take clips of consecutive frames from every video under VIDEOS, fit them to the model's frame "
        "size and encode them with its VAE into DATA (safetensors shards and an index). Run it again to "
        "continue an interrupted preparation; under `accelerate launch` the videos are split between processes.",
    )
    prepare.add_argument(
        "videos", type=Path, help=f"folder searched recursively for videos ({', '.join(VIDEO_SUFFIXES)})"
    )
    prepare.add_argument("-o", "--output", type=Path, required=True, help="folder for the prepared data (DATA)")
    prepare.add_argument(
        "--model", default=default_model, help=f"pipeline whose VAE and frame size to use (default: {default_model})"
    )
    prepare.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help=f"frames per clip (default: {DEFAULT_FRAMES}, as the paper)"
    )
    prepare.add_argument(
        "--clips-per-video",
        type=int,
        default=1,
        help="clips taken from each video, at random starts in equal stretches of it (default: 1, as the authors)",
    )
    prepare.add_argument(
        "--fit",
        default=DEFAULT_PREPARE_FIT,
        choices=FIT_MODES,
        help=f"how frames fill the model's frame, as in generate (default: {DEFAULT_PREPARE_FIT}; the authors stretched)",
    )
    prepare.add_argument("--seed", type=int, default=0, help="seed of the clip starts and VAE samples (default: 0)")
    prepare.add_argument("--device", help="cuda, cpu, ... (default: the best one present)")
    prepare.add_argument("--encode-batch-size", type=int, default=8, help="frames per VAE call (default: 8)")
    prepare.set_defaults(run=_run_prepare)

    train = commands.add_parser(
        "train",
        help="train the U-Net and adapter on prepared data (also under `accelerate launch`)",
        description="Train FashionFlow's U-Net and condition adapter on DATA (made by `prepare`) with the published "
        "objective (predicting the noise, or the velocity: --prediction-type), writing checkpoints, metrics.jsonl, TensorBoard logs and finally RUN/pipeline. "
        "Several GPUs or machines: `accelerate launch -m fashionflow train ...`.",
    )
    train.add_argument("data", type=Path, help="prepared data folder (from `prepare`)")
    train.add_argument("-o", "--output", type=Path, required=True, help="run folder (RUN)")
    train.add_argument(
        "--model",
        default=default_model,
        help=f"pipeline whose VAE, CLIP and schedule are used (default: {default_model})",
    )
    train.add_argument(
        "--init",
        default=defaults.init,
        choices=INIT_CHOICES,
        help="start the U-Net and adapter from the model's weights (fine-tune, default) or from fresh weights of its configuration (scratch)",
    )
    train.add_argument(
        "--prediction-type",
        choices=PREDICTION_TYPES,
        help="what the U-Net learns to predict: the noise (epsilon, the published model's) or the velocity "
        "(v_prediction). Default: v_prediction when training starts from untrained weights (--init scratch, "
        "tiny-random), else the model's own; a resumed run keeps its checkpoints'",
    )
    train.add_argument("--max-steps", type=int, help="optimiser steps to train (default: as many as --epochs take)")
    train.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes of training, saving as at the end (for a job's time limit)",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help=f"passes over the data when --max-steps is not given (default: {defaults.epochs})",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"clips per process per step (default: {defaults.batch_size}, as the authors)",
    )
    train.add_argument(
        "--gradient-accumulation-steps", type=int, default=1, help="micro-batches per optimiser step (default: 1)"
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help=f"AdamW learning rate (default: {defaults.learning_rate:g})",
    )
    train.add_argument(
        "--weight-decay",
        type=float,
        default=defaults.weight_decay,
        help=f"AdamW weight decay (default: {defaults.weight_decay:g})",
    )
    train.add_argument(
        "--lr-schedule",
        default=defaults.lr_schedule,
        choices=LR_SCHEDULES,
        help="learning-rate schedule after warm-up (default: constant)",
    )
    train.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps (default: 0)")
    train.add_argument(
        "--max-grad-norm", type=float, help="clip gradients to this norm (default: no clipping, as the authors)"
    )
    train.add_argument(
        "--loss-reduction",
        default=defaults.loss_reduction,
        choices=LOSS_REDUCTIONS,
        help="per-frame losses averaged (mean: the paper's better variant, default) or summed (sum: the authors' code)",
    )
    train.add_argument(
        "--mixed-precision", default="no", choices=MIXED_PRECISION, help="no (fp32, default), bf16 or fp16"
    )
    train.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: much less memory, about a third slower",
    )
    train.add_argument(
        "--ema",
        action="store_true",
        help="keep an exponential moving average of the weights (diffusers' EMAModel); used for validation and the final pipeline",
    )
    train.add_argument(
        "--ema-decay", type=float, default=defaults.ema_decay, help=f"EMA decay (default: {defaults.ema_decay})"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the initial weights, data order, timesteps and noise (default: 0)"
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=defaults.checkpoint_every,
        help=f"save RUN/checkpoint-STEP every N steps (default: {defaults.checkpoint_every}; also at the end and on Ctrl-C)",
    )
    train.add_argument(
        "--checkpoints-limit",
        type=int,
        default=defaults.checkpoints_limit,
        help=f"keep the newest N checkpoints (default: {defaults.checkpoints_limit})",
    )
    train.add_argument(
        "--resume",
        help="continue from 'latest' (the newest checkpoint in RUN; a new run when there is none) or a checkpoint folder",
    )
    train.add_argument(
        "--validation-videos",
        type=int,
        default=0,
        help="prepared videos held out of training for the validation loss and stills (default: 0)",
    )
    train.add_argument(
        "--validation-stills",
        type=Path,
        nargs="+",
        default=(),
        help="photos (or a folder) to make validation videos from (default: the held-out clips' first frames)",
    )
    train.add_argument(
        "--validation-every",
        type=int,
        default=defaults.validation_every,
        help=f"validate every N steps, and at the start and end (default: {defaults.validation_every})",
    )
    train.add_argument("--validation-frames", type=int, help="frames of validation videos (default: the clips' length)")
    train.add_argument(
        "--validation-sampler",
        default=defaults.validation_sampler,
        choices=list(SAMPLERS),
        help=f"sampler for validation videos (default: {defaults.validation_sampler})",
    )
    train.add_argument(
        "--validation-steps",
        type=int,
        default=defaults.validation_steps,
        help=f"denoising steps of validation videos (default: {defaults.validation_steps})",
    )
    train.add_argument(
        "--validation-seeds",
        type=_int_list,
        default=defaults.validation_seeds,
        help="seeds of validation videos, comma-separated (default: 0)",
    )
    train.add_argument(
        "--log-every",
        type=int,
        default=defaults.log_every,
        help=f"write metrics every N steps, averaged over them (default: {defaults.log_every})",
    )
    train.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    train.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    train.add_argument(
        "--report-to",
        default="tensorboard",
        choices=["tensorboard", "none"],
        help="experiment tracker besides metrics.jsonl (default: tensorboard, in RUN/logs)",
    )
    train.set_defaults(run=_run_train)  # fmt: skip


def _run_prepare(args: argparse.Namespace) -> int:
    from .training.data import prepare_dataset

    summary = prepare_dataset(
        args.videos, args.output, model=args.model, frames=args.frames, clips_per_video=args.clips_per_video,
        fit=args.fit, seed=args.seed, device=args.device, encode_batch_size=args.encode_batch_size,
    )  # fmt: skip
    print(
        f"Prepared {summary.clips} clip(s) from {summary.prepared} of {summary.videos} video(s) in {args.output}"
        + (f" ({summary.done_before} done by an earlier run)." if summary.done_before else ".")
    )
    for video, reason in summary.skipped:
        print(f"  skipped {video}: {reason}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from .training.options import TrainConfig
    from .training.train import train

    config = TrainConfig(
        data=str(args.data), output=str(args.output), model=args.model, init=args.init,
        prediction_type=args.prediction_type, max_steps=args.max_steps, max_minutes=args.max_minutes,
        epochs=args.epochs, batch_size=args.batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps, max_grad_norm=args.max_grad_norm, loss_reduction=args.loss_reduction,
        mixed_precision=args.mixed_precision, gradient_checkpointing=args.gradient_checkpointing, ema=args.ema,
        ema_decay=args.ema_decay, seed=args.seed, checkpoint_every=args.checkpoint_every,
        checkpoints_limit=args.checkpoints_limit, resume=args.resume, validation_videos=args.validation_videos,
        validation_stills=tuple(str(p) for p in args.validation_stills), validation_every=args.validation_every,
        validation_frames=args.validation_frames, validation_sampler=args.validation_sampler,
        validation_steps=args.validation_steps, validation_seeds=tuple(args.validation_seeds),
        log_every=args.log_every, num_workers=args.num_workers, cpu=args.cpu,
        report_to=None if args.report_to == "none" else args.report_to,
    )  # fmt: skip
    result = train(config)
    if result.pipeline_dir is not None:
        loss = f"{result.last_loss:.4f}" if result.last_loss is not None else "n/a"
        print(f"Done: {result.steps} steps, last loss {loss}. Metrics: {result.run_dir / 'metrics.jsonl'}")
        print(f"Try it: python -m fashionflow generate PHOTO.jpg -o video.mp4 --model {result.pipeline_dir}")
    return 0


# evaluate ---------------------------------------------------------------------------------------------------------


def _add_evaluate_parser(commands) -> None:
    from .defaults import ATTENTION_BACKENDS, DEFAULT_DECODE_CHUNK_SIZE, DEFAULT_SAMPLER, DTYPE_NAMES, SAMPLER_NAMES
    from .evaluation.detectors import C3D, I3D
    from .evaluation.registry import DEFAULT_CLIP_FRAMES, GENERATED_FORMATS, MAX_CLIPS, METRICS
    from .hub import DEFAULT_CACHE
    from .image import DEFAULT_FIT, FIT_MODES

    evaluate = commands.add_parser(
        "evaluate",
        help="FVD, video IS, SSIM, PSNR of generated videos against real ones (StyleGAN-V's definitions)",
        description="Compare a folder of generated videos with a folder of real ones (--real/--generated), or run "
        "the paper's whole test protocol for a model (--model/--test-videos): one video per test video from its "
        "first frame, then the metrics. A folder holds video files or sub-folders of frame images, one per video.",
    )
    evaluate.add_argument("--real", type=Path, metavar="DIR", help="folder of real videos (files or frame folders)")
    evaluate.add_argument(
        "--generated", type=Path, metavar="DIR", help="folder of generated videos; with --model, where they are written"
    )
    evaluate.add_argument(
        "--json", type=Path, required=True, metavar="OUT", help="write the metrics, clip counts and settings here"
    )
    evaluate.add_argument(
        "--i3d", metavar="FILE|URL", help=f"I3D TorchScript file or URL for FVD (default: {I3D.url}, cached)"
    )
    evaluate.add_argument(
        "--c3d", metavar="FILE|URL", help=f"C3D TorchScript file or URL for video IS (published at {C3D.url})"
    )
    evaluate.add_argument(
        "--metrics",
        nargs="+",
        choices=list(METRICS),
        help="metrics to compute; any that cannot run is an error (default: fvd, plus those that can run: isv with a "
        "C3D file, ssim/psnr/lpips when videos pair by name)",
    )
    evaluate.add_argument(
        "--frames", type=int, default=DEFAULT_CLIP_FRAMES, help=f"FVD clip length (default: {DEFAULT_CLIP_FRAMES})"
    )
    evaluate.add_argument(
        "--max-clips", type=int, default=MAX_CLIPS, help=f"clips per side at most (default: {MAX_CLIPS})"
    )
    evaluate.add_argument(
        "--clip-seed", type=int, default=0, help="seeds the start frame of each real clip (default: 0)"
    )
    evaluate.add_argument("--batch-size", type=int, default=8, help="clips per detector call (default: 8)")
    evaluate.add_argument("--workers", type=int, default=2, help="processes reading videos (default: 2)")
    evaluate.add_argument(
        "--fit",
        default=DEFAULT_FIT,
        choices=FIT_MODES,
        help=f"how stills and real frames are fitted to the model's frame (default: {DEFAULT_FIT})",
    )
    evaluate.add_argument("--device", help="cuda, cpu, ... (default: the best one present)")
    evaluate.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help=f"detector downloads and real-video statistics (default: {DEFAULT_CACHE})",
    )
    evaluate.add_argument(
        "--no-statistics-cache",
        action="store_true",
        help="recompute the real videos' FVD statistics instead of reusing those of an earlier run on the same clips",
    )
    protocol = evaluate.add_argument_group("the test protocol (--model)")
    protocol.add_argument("--model", help="pipeline folder, Hub id, or tiny-random: generate from --test-videos first")
    protocol.add_argument(
        "--test-videos", type=Path, metavar="DIR", help="folder of test videos: each one's first frame is a still"
    )
    protocol.add_argument(
        "--sampler", default=DEFAULT_SAMPLER, choices=SAMPLER_NAMES, help=f"default: {DEFAULT_SAMPLER}"
    )
    protocol.add_argument("--steps", type=int, help="denoising steps (default: the sampler's)")
    protocol.add_argument(
        "--seed", type=int, default=0, help="base seed; each video's seed comes from it and the video's name"
    )
    protocol.add_argument(
        "--video-frames", type=int, help="frames per generated video (default: the test video's length)"
    )
    protocol.add_argument(
        "--generated-format",
        default="frames",
        choices=GENERATED_FORMATS,
        help="frames: PNG folders, lossless (default); mp4: H.264",
    )
    protocol.add_argument("--dtype", choices=DTYPE_NAMES, help="default: bfloat16/float16 on CUDA, float32 elsewhere")
    protocol.add_argument(
        "--attention", default="auto", choices=ATTENTION_BACKENDS, help="attention kernel (default: auto)"
    )
    protocol.add_argument(
        "--decode-chunk-size", type=int, default=DEFAULT_DECODE_CHUNK_SIZE, help="frames per VAE decode call"
    )
    protocol.add_argument("--overwrite", action="store_true", help="remake videos that already exist")
    evaluate.set_defaults(run=_run_evaluate)  # fmt: skip


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import (
        EvaluationSettings,
        ProtocolSettings,
        evaluate,
        format_table,
        generate_test_videos,
        write_report,
    )

    protocol = args.model is not None or args.test_videos is not None
    if protocol:
        if args.model is None or args.test_videos is None:
            raise ValueError("The test protocol needs both --model and --test-videos.")
        if args.real is not None:
            raise ValueError("With --test-videos, the test videos are the real videos: leave out --real.")
        real = args.test_videos
        generated = args.generated or args.json.with_name(f"{args.json.stem}-generated")
        summary = generate_test_videos(
            args.model,
            args.test_videos,
            generated,
            ProtocolSettings(
                sampler=args.sampler, steps=args.steps, seed=args.seed, fit=args.fit, frames=args.video_frames,
                decode_chunk_size=args.decode_chunk_size, output_format=args.generated_format, overwrite=args.overwrite,
            ),
            device=args.device, dtype=args.dtype, attention=args.attention,
        )  # fmt: skip
        if summary is None:  # not the main process: the main one computes the metrics
            return 0
        print(
            f"Generated {summary['made']} video(s) into {generated} ({summary['already_made']} already there, "
            f"{len(summary['failed'])} failed) on {summary['processes']} process(es)."
        )
        for name, error in summary["failed"].items():
            print(f"  {name}: {error}", file=sys.stderr)
    else:
        if args.real is None or args.generated is None:
            raise ValueError(
                "Give --real DIR and --generated DIR (or --model and --test-videos for the whole protocol)."
            )
        real, generated, summary = args.real, args.generated, None

    settings = EvaluationSettings(
        frames=args.frames, max_clips=args.max_clips, clip_seed=args.clip_seed, batch_size=args.batch_size,
        num_workers=args.workers, fit=args.fit, device=args.device,
        cache_dir=str(args.cache_dir) if args.cache_dir else None, cache_real_statistics=not args.no_statistics_cache,
    )  # fmt: skip
    report = evaluate(real, generated, args.metrics, args.i3d, args.c3d, settings)
    if summary is not None:
        report["generation"] = summary
    write_report(report, args.json)
    print(format_table(report))
    print(f"Written: {args.json}")
    return 1 if summary is not None and summary["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    from .hub import DownloadError
    from .training.errors import TrainingStopped

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help (0) or a malformed argument, named by argparse (2)
        return exit.code if isinstance(exit.code, int) else 2
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, DownloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
