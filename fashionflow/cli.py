"""Command line: `python -m fashionflow {generate,download,convert} ...` (also installed as `fashionflow`)."""

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
    from .pipeline import DEFAULT_NUM_FRAMES
    from .runtime import DECODERS
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
        "--decode-chunk-size", type=int, help="frames per decoder call (default: chosen from the device and its memory)"
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
        help="full: the VAE's decoder, for final videos (default); tiny: TAESD, a quick preview decoded ~10x faster",
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

    pipeline = load_pipeline(args.model, args.device, args.dtype, args.attention, args.cpu_offload, args.compile)
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
                result = pipeline(
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
                    decoder=args.decoder,
                )
            if result.compile_seconds:
                print(f"  compiled for this video size in {result.compile_seconds:.1f} s (once per size)")
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


def main(argv: list[str] | None = None) -> int:
    from .hub import DownloadError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, DownloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
