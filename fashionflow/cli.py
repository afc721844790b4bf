"""Command line: `python -m fashionflow {generate,download,convert,prepare,train} ...` (also installed as `fashionflow`)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from .hub import CHECKPOINT_URL, DEFAULT_CACHE, DEFAULT_OUTPUT
    from .image import DEFAULT_FIT, FIT_MODES
    from .loading import DEFAULT_MODEL, DTYPES
    from .models import ATTENTION_BACKENDS
    from .pipeline import DEFAULT_DECODE_CHUNK_SIZE, DEFAULT_NUM_FRAMES
    from .schedulers import DEFAULT_SAMPLER, SAMPLERS
    from .video import DEFAULT_FPS, VIDEO_FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m fashionflow", description="FashionFlow: fashion videos from one photo."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate",
        help="make a video from a photo (or from every photo in a folder)",
        description="Make a video of the person in PHOTO. With a folder of photos, make one video per photo "
        "into the output folder, skipping photos whose video already exists.",
    )
    generate.add_argument("photo", type=Path, help="a photo, or a folder of photos")
    generate.add_argument(
        "-o", "--output", type=Path, required=True, help="video file (.mp4/.gif), or a folder for a batch"
    )
    generate.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"pipeline folder, Hub id, or tiny-random (default: {DEFAULT_MODEL})"
    )
    generate.add_argument(
        "--sampler", default=DEFAULT_SAMPLER, choices=list(SAMPLERS), help=f"default: {DEFAULT_SAMPLER}"
    )
    generate.add_argument(
        "--steps", type=int, help="denoising steps (default: 25 for dpm++/unipc, 50 for ddim, 1000 for ddpm)"
    )
    generate.add_argument("--seed", type=int, help="random seed (default: a random one, printed)")
    generate.add_argument(
        "--frames", type=int, default=DEFAULT_NUM_FRAMES, help=f"even number of frames (default: {DEFAULT_NUM_FRAMES})"
    )
    generate.add_argument(
        "--fit", default=DEFAULT_FIT, choices=FIT_MODES, help=f"how the photo fills the frame (default: {DEFAULT_FIT})"
    )
    generate.add_argument("--format", choices=VIDEO_FORMATS, help="video format for a batch (default: mp4)")
    generate.add_argument("--fps", type=int, default=DEFAULT_FPS)
    generate.add_argument("--loop", action="store_true", help="play forward then backward, for a seamless loop")
    generate.add_argument("--device", help="cuda, cpu, ... (default: the best one present)")
    generate.add_argument("--dtype", choices=list(DTYPES), help="default: bfloat16/float16 on CUDA, float32 elsewhere")
    generate.add_argument(
        "--attention", default="auto", choices=ATTENTION_BACKENDS, help="attention kernel (default: auto)"
    )
    generate.add_argument(
        "--decode-chunk-size", type=int, default=DEFAULT_DECODE_CHUNK_SIZE, help="frames per VAE decode call"
    )
    generate.add_argument(
        "--cpu-offload", action="store_true", help="keep models on the CPU until used (saves GPU memory)"
    )
    generate.add_argument("--overwrite", action="store_true", help="in a batch, also redo photos that have a video")
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
    return parser  # fmt: skip


# generate ---------------------------------------------------------------------------------------------------------


def _run_generate(args: argparse.Namespace) -> int:
    import torch

    from .image import ImageInputError
    from .loading import describe_pipeline, load_pipeline
    from .tiny import TINY_RANDOM

    jobs = _generation_jobs(args)
    if not jobs:
        print("Nothing to do: every photo already has its video (use --overwrite to redo them).")
        return 0

    pipeline = load_pipeline(args.model, args.device, args.dtype, args.attention, args.cpu_offload)
    pipeline.set_progress_bar_config(disable=True)  # the stage bars below replace it
    print(f"Model: {describe_pipeline(pipeline, args.model)}")
    if args.model == TINY_RANDOM:
        print("Note: tiny-random is an untrained model; its videos are noise. Use it to try the software.")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    print(f"Seed: {seed}")

    failures = 0
    for photo, output in jobs:
        print(f"{photo} -> {output}")
        try:
            with _StageBars() as bars:
                pipeline(
                    photo,
                    num_frames=args.frames,
                    sampler=args.sampler,
                    num_inference_steps=args.steps,
                    fit=args.fit,
                    generator=torch.Generator().manual_seed(seed),
                    decode_chunk_size=args.decode_chunk_size,
                    output_path=output,
                    fps=args.fps,
                    loop=args.loop,
                    progress=bars.update,
                )
        except ImageInputError as error:
            failures += 1
            print(f"  skipped: {error}", file=sys.stderr)
            if len(jobs) == 1:
                raise
    print(f"Done: {len(jobs) - failures} video(s) written" + (f", {failures} photo(s) skipped." if failures else "."))
    return 1 if failures else 0


def _generation_jobs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    if not args.photo.exists():
        raise FileNotFoundError(f"No photo or folder at {args.photo}.")
    if args.photo.is_file():
        if args.output.suffix.lower() not in (".mp4", ".gif"):
            raise ValueError(f"The output must end in .mp4 or .gif; got {args.output}.")
        return [(args.photo, args.output)]
    if args.output.suffix.lower() in (".mp4", ".gif"):
        raise ValueError(f"{args.photo} is a folder: give an output folder, not a file ({args.output}).")
    video_format = args.format or "mp4"
    photos = sorted(p for p in args.photo.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"No photos ({', '.join(PHOTO_SUFFIXES)}) in {args.photo}.")
    jobs = [(photo, args.output / f"{photo.stem}.{video_format}") for photo in photos]
    return [(photo, out) for photo, out in jobs if args.overwrite or not out.exists()]


class _StageBars:
    """One tqdm bar per pipeline stage (denoise, decode, export)."""

    def __enter__(self):
        self.bars = {}
        return self

    def update(self, stage: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

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
    from .image import FIT_MODES
    from .schedulers import SAMPLERS
    from .training.data import DEFAULT_FRAMES, DEFAULT_PREPARE_FIT, VIDEO_SUFFIXES
    from .training.objective import LOSS_REDUCTIONS
    from .training.train import INIT_CHOICES, LR_SCHEDULES, MIXED_PRECISION, TrainConfig

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
        "objective, writing checkpoints, metrics.jsonl, TensorBoard logs and finally RUN/pipeline. "
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
    from .training.train import TrainConfig, train

    config = TrainConfig(
        data=str(args.data), output=str(args.output), model=args.model, init=args.init, max_steps=args.max_steps, max_minutes=args.max_minutes,
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


def main(argv: list[str] | None = None) -> int:
    from .hub import DownloadError
    from .training.errors import TrainingStopped

    args = build_parser().parse_args(argv)
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
