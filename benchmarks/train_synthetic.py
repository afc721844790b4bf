"""Proof that `fashionflow train` learns, on a CPU, in under an hour: a small FashionFlow on synthetic clips.

    nice -n 10 python benchmarks/train_synthetic.py            # the full run, v-prediction (see README for times)
    python benchmarks/train_synthetic.py --quick               # a few-minute smoke run of every stage
    nice -n 10 python benchmarks/train_synthetic.py --resume --train-steps 1000   # train the same run further
    nice -n 10 python benchmarks/train_synthetic.py --prediction-type epsilon --vae benchmarks/results/train_synthetic \
        --output OUT                                           # the noise objective, same clips, VAE and budget

Stages, all in-process and nothing downloaded:
1. Synthetic clips (`fashionflow.training.synthetic`): a dressed figure turning and posing on a plain
   background, each clip its own garment colours; some clips are held out.
2. A small diffusers AutoencoderKL trained on their frames for `--vae-steps` (videos one can look at, and a
   colour one can measure, need a VAE that reconstructs these frames; Stable Diffusion's cannot be downloaded
   here), or `--vae` the one of an earlier run. Its own round trip of the held-out clips is measured too: the
   floor of every colour error below.
3. A small pipeline: that VAE, a tiny random CLIP (frozen, as in the paper), a small U-Net + adapter
   with fresh weights -> OUT/untrained/ (also the starting point of training).
4. `prepare` the clips, `train` (the project's own code, as the CLI runs it) for `--train-steps` -> OUT/trained/,
   predicting what `--prediction-type` says (default: train's own choice, v_prediction from these fresh weights).
5. Measures, trained against untrained: the objective of the run's prediction type on training and held-out
   clips (same timesteps and noise for both), and on videos sampled from held-out stills: the colour error of
   the figure to its still, and the frame-to-frame motion energy against the real held-out clips.

Output (default benchmarks/results/train_synthetic/): results.json, strip.png, trained/ and untrained/
(pipeline folders, `--model` loads them), heldout_videos/ (the held-out real clips as MP4), samples/.
Training is bounded by steps, so that two runs on a shared machine compare; the minutes are recorded too.

`--resume` continues an earlier run in OUT instead of starting over: the same clips (re-synthesised from
the recorded seed and checked against the MP4s written then), VAE, prepared data and run (`train
--resume latest`, for `--train-steps` more, or `--train-minutes`), then measures and draws the strip again.
The data settings are the recorded ones; results.json adds up the training time over all sessions."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fashionflow.pipeline import FashionFlowPipeline  # noqa: E402
from fashionflow.training.data import prepare_dataset, vae_fingerprint  # noqa: E402
from fashionflow.training.dataset import LatentClipDataset, load_index, split_by_video  # noqa: E402
from fashionflow.training.objective import Denoiser, diffusion_loss  # noqa: E402
from fashionflow.training.options import PREDICTION_TYPES  # noqa: E402
from fashionflow.training.synthetic import synthetic_clip  # noqa: E402
from fashionflow.training.train import TrainConfig, train  # noqa: E402
from fashionflow.video import export_video  # noqa: E402

FRAME = 64  # pixels, square: the figure fills the frame height
SPLITS = ("train", "heldout")
VAE_CONFIG = dict(
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),  # three blocks: 4x downsampling, 64 px -> 16 x 16 latents
    layers_per_block=1,
    norm_num_groups=4,  # 4 channels per group at full size: with 2, colours were learnt far more slowly
    latent_channels=4,
    sample_size=FRAME,
)
# The VAE's training (see train_vae and README's training benchmark section for what was measured)
VAE_STEPS = 3000
VAE_BATCH = 8  # whole 64 x 64 frames
VAE_LEARNING_RATE = 2e-3  # AdamW, cosine decay to 0 over the steps
VAE_KL_WEIGHT = 0.0
VAE_INITIAL_LOG_VARIANCE = -8.0  # the posterior starts nearly deterministic (std 0.02)
TRAIN_STEPS = 1500  # U-Net and adapter, batch 4: enough to tell the objectives apart (README)
CLIP_CONFIG = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
)
UNET_CONFIG = dict(  # the published layout, three levels instead of four, about 3.7 M parameters
    base_channels=32,
    channel_mults=(1, 2, 4),
    resnet_depths=(1, 1, 1),
    self_attention_levels=(False, False, True),
    temporal_downsample_levels=(False, False, True),
    attention_heads=4,
    attention_head_dim=16,
    mid_attention_heads=4,
    mid_attention_head_dim=16,
    cross_attention_heads=(1, 1, 2),
    context_dim=64,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/train_synthetic"), help="result folder")
    parser.add_argument("--train-videos", type=int, default=64, help="synthetic training videos")
    parser.add_argument("--heldout-videos", type=int, default=8, help="synthetic held-out videos")
    parser.add_argument("--video-frames", type=int, default=32, help="frames per synthetic video")
    parser.add_argument("--frames", type=int, default=16, help="frames per training clip")
    parser.add_argument("--vae-steps", type=int, default=VAE_STEPS, help="optimiser steps of the small VAE")
    parser.add_argument(
        "--vae-minutes", type=float, help="also stop the VAE after this many minutes (default: no limit)"
    )
    parser.add_argument(
        "--vae",
        type=Path,
        help="take the VAE of an earlier run of this benchmark (its OUT or OUT/untrained) instead of training one: "
        "two runs that differ only in what they train then share it (its clips must be these: same seed and counts)",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        help=f"U-Net and adapter optimiser steps (with --resume: steps more); default {TRAIN_STEPS} "
        "unless --train-minutes is given",
    )
    parser.add_argument(
        "--train-minutes",
        type=float,
        help="also stop training after this many minutes (a shared machine: prefer steps)",
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--sample-steps", type=int, default=25, help="dpm++ steps for the sampled videos")
    parser.add_argument(
        "--prediction-type",
        choices=PREDICTION_TYPES,
        help="what the U-Net learns to predict (default: train's choice: v_prediction from fresh weights; "
        "with --resume, the run's own)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared machine 2 threads ran 6x slower)",
    )
    parser.add_argument("--quick", action="store_true", help="seconds per stage: a smoke run, numbers mean nothing")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output for --train-minutes more (same clips, VAE and data), then measure again",
    )
    args = parser.parse_args()
    if args.train_steps is None and args.train_minutes is None:
        args.train_steps = TRAIN_STEPS
    if args.resume:
        return args  # the data settings come from the earlier run's results.json
    if args.quick:
        args.train_videos, args.heldout_videos, args.vae_steps, args.train_steps = 8, 2, 20, 20
    return args


# 1. data ----------------------------------------------------------------------------------------------------------


def make_clips(args, folder: Path) -> dict[str, np.ndarray]:
    """Synthetic videos written as MP4 under folder/train and folder/heldout; returns them as arrays."""
    clips = synthesise_clips(args)
    for name, clip in clips.items():
        export_video(list(clip), folder / name.split("-")[0] / f"{name}.mp4")
    return clips


def synthesise_clips(settings) -> dict[str, np.ndarray]:
    """The run's clips, named split-NNNN, drawn from its seed: the same arrays every time for the same settings."""
    rng = np.random.default_rng(settings.seed)
    clips = {}
    for split, count in zip(SPLITS, (settings.train_videos, settings.heldout_videos)):
        for i in range(count):
            clips[f"{split}-{i:04d}"] = synthetic_clip(rng, settings.video_frames, FRAME, FRAME)
    return clips


def write_heldout_videos(clips: dict[str, np.ndarray], folder: Path) -> None:
    """The held-out clips for evaluation tools, enlarged 2x (nearest): the pipeline refuses photos under
    128 pixels, so a tool that takes a clip's first frame as the still needs them at least that big;
    generation fits them back to the model's 64 x 64 frame."""
    for name, clip in clips.items():
        if name.startswith("heldout"):
            export_video(list(clip.repeat(2, axis=1).repeat(2, axis=2)), folder / f"{name}.mp4")


# 2. the small VAE ---------------------------------------------------------------------------------------------------


def train_vae(frames: np.ndarray, steps: int, minutes: float | None, seed: int) -> tuple[torch.nn.Module, dict]:
    """A small AutoencoderKL fitted to the frames ([0, 1] pixels, as FashionFlow feeds its VAE), `steps` steps or
    `minutes`, whichever ends first.

    What made the earlier one (18 dB, 45.6 on the colour measure) too poor to judge colour, measured: its KL term
    (weight 1e-6, tiny, but AdamW scales every parameter's step to the learning rate whatever the gradient's size)
    held the posterior's noise at a standard deviation of 0.7-0.8 against 0.5 for its means, so the decoder saw
    mostly noise; and GroupNorm with 2 channels per group at full size left flat colours (the background) nearly
    invisible to the network: every uniform image, whatever its colour, came back as the same grey. So: no KL term
    (the latents are scaled to unit variance below in any case), a posterior that starts nearly deterministic,
    4 channels per group, whole frames rather than 32 x 32 crops (GroupNorm's statistics are the frame's), and a
    cosine decay of the learning rate."""
    from diffusers import AutoencoderKL
    from diffusers.optimization import get_cosine_schedule_with_warmup

    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE_CONFIG)
    with torch.no_grad():  # quant_conv's output is (means, log-variances) of the latents
        vae.quant_conv.bias[VAE_CONFIG["latent_channels"] :] += VAE_INITIAL_LOG_VARIANCE
    data = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (n, 3, H, W)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=VAE_LEARNING_RATE, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    start, losses = time.perf_counter(), []
    while len(losses) < steps and (minutes is None or time.perf_counter() - start < minutes * 60):
        batch = data[torch.randint(0, len(data), (VAE_BATCH,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator)).sample
        loss = F.mse_loss(reconstruction, batch) + VAE_KL_WEIGHT * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    vae.eval()
    with torch.no_grad():  # SD's convention: scale latents to unit variance
        std = vae.encode(data[:: max(1, len(data) // 256)]).latent_dist.sample(generator).std().item()
        vae.register_to_config(scaling_factor=1.0 / std)
    minutes_taken = (time.perf_counter() - start) / 60
    return vae, {"steps": len(losses), "minutes": minutes_taken, "final_loss": float(np.mean(losses[-20:]))}


def reuse_vae(run: Path) -> tuple[torch.nn.Module, dict]:
    """The VAE of an earlier run of this benchmark (OUT or OUT/untrained), with the facts it recorded."""
    from diffusers import AutoencoderKL

    folder = next((f for f in (run / "untrained" / "vae", run / "vae") if f.is_dir()), None)
    if folder is None:
        sys.exit(f"--vae: {run} holds no untrained/vae or vae folder (the output of an earlier run of this benchmark).")
    facts = {"steps": None}
    results = next((r for r in (run / "results.json", run.parent / "results.json") if r.is_file()), None)
    if results is not None:
        facts = {k: v for k, v in json.loads(results.read_text())["vae"].items() if k in ("steps", "minutes")}
    return AutoencoderKL.from_pretrained(folder).eval(), {**facts, "from": str(run)}


@torch.no_grad()
def measure_vae(vae, frames: np.ndarray, clip_frames: int) -> dict:
    """Of the held-out clips' frames (whole clips of clip_frames, one after the other): reconstruction PSNR, the
    colour measure of the round trip (each whole clip against its first frame), and the posterior's noise against
    its signal: the mean posterior standard deviation and the standard deviation of the posterior means."""
    data = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    posterior = vae.encode(data).latent_dist
    mse = F.mse_loss(vae.decode(posterior.mode()).sample.clamp(0, 1), data).item()
    round_trip = (vae.decode(posterior.mode()).sample.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round()
    clips = np.split(frames, len(frames) // clip_frames)
    colour = [colour_error(r, c[0]) for r, c in zip(np.split(round_trip.astype(np.uint8), len(clips)), clips)]
    return {
        "psnr_db": 10 * math.log10(1 / mse),
        "colour_error": float(np.mean(colour)),
        "posterior_std": posterior.std.mean().item(),
        "latent_std": posterior.mean.std().item(),
    }


# 3. the small pipeline ---------------------------------------------------------------------------------------------


def build_pipeline(vae, seed: int) -> FashionFlowPipeline:
    from fashionflow.assembly import assemble_pipeline, clip_tokens, random_image_encoder
    from fashionflow.models import ConditionAdapter, FashionFlowUNet

    latent = FRAME // 2 ** (len(VAE_CONFIG["block_out_channels"]) - 1)
    torch.manual_seed(seed)
    image_encoder, feature_extractor = random_image_encoder(CLIP_CONFIG)
    unet = FashionFlowUNet(**UNET_CONFIG)
    adapter = ConditionAdapter(
        latent_size=(latent, latent), clip_tokens=clip_tokens(image_encoder), context_dim=CLIP_CONFIG["hidden_size"]
    )
    return assemble_pipeline(
        vae, image_encoder, feature_extractor, unet, adapter, clip_preprocessing="standard", untrained=True
    )


# 5. measures --------------------------------------------------------------------------------------------------------


@torch.no_grad()
def objective(pipeline, dataset, scheduler, draws: int = 4) -> float:
    """Mean of the training objective over the clips, `draws` (timestep, noise) pairs each, fixed by seed;
    its target is what `scheduler`'s prediction type says (the run's, for the untrained model too)."""
    denoiser = Denoiser(pipeline.unet, pipeline.adapter).eval()
    losses = []
    for i in range(len(dataset)):
        item = dataset[i]
        for d in range(draws):
            generator = torch.Generator().manual_seed(1000 * i + d)
            hidden, context_latents, _ = pipeline.encode_condition(item["still"][None], generator)
            loss = diffusion_loss(
                denoiser, scheduler, item["latents"][None], hidden, context_latents, "mean", generator
            )
            losses.append(loss.item())
    return float(np.mean(losses))


def figure_colour(frame: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """Mean RGB of the pixels that are not the background (the figure), or None when there are none."""
    mask = np.abs(frame.astype(np.float64) - background).sum(-1) > 60
    return frame[mask].astype(np.float64).mean(0) if mask.sum() >= 8 else None


def colour_error(video: np.ndarray, still: np.ndarray) -> float:
    """RMS distance (0-255 RGB) between the figure's mean colour in frames 1.. and in the still.
    A frame where no figure is found counts as the still's figure against the background."""
    background = np.median(np.concatenate([still[0], still[-1], still[:, 0], still[:, -1]]), axis=0)
    target = figure_colour(still, background)
    errors = []
    for frame in video[1:]:
        colour = figure_colour(frame, background)
        colour = background if colour is None else colour
        errors.append(np.sqrt(((colour - target) ** 2).mean()))
    return float(np.mean(errors))


def motion_energy(video: np.ndarray) -> float:
    """Mean absolute frame-to-frame difference, 0-255."""
    v = video.astype(np.float64)
    return float(np.abs(v[1:] - v[:-1]).mean())


@torch.no_grad()
def vae_round_trip(vae, video: np.ndarray) -> np.ndarray:
    """Frames (f, H, W, 3) uint8 encoded (the distribution's mode) and decoded by the VAE: what it keeps of them."""
    pixels = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255
    decoded = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(0, 1)
    return (decoded.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def as_photo(frame: np.ndarray) -> Image.Image:
    """A frame as a photo the pipeline accepts: photos under 128 pixels are refused (too little detail for a
    shop photo), so small frames are enlarged 2x with nearest-neighbour; the pipeline fits them back down."""
    image = Image.fromarray(frame)
    while min(image.size) < 128:
        image = image.resize((image.width * 2, image.height * 2), Image.NEAREST)
    return image


def sample_videos(
    pipeline, stills, frames: int, steps: int, folder: Path | None, sampler: str = "dpm++", seed: int = 0
) -> list[np.ndarray]:
    """One video per (name, still), each from its own generator seeded `seed`; also written to folder/NAME.mp4."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for name, still in stills:
        output = pipeline(
            as_photo(still),
            num_frames=frames,
            sampler=sampler,
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            output_path=None if folder is None else folder / f"{name}.mp4",
        )
        videos.append((output.frames[0] * 255).round().astype(np.uint8))
    return videos


def heldout_clips(clips: dict[str, np.ndarray], data: Path, frames: int) -> tuple[list, list[np.ndarray]]:
    """The held-out windows `prepare` took (recorded in DATA/heldout): [(name, still)] and the real clips."""
    stills, real = [], []
    for clip in load_index(data / "heldout")["clips"]:
        video = clips[Path(clip["source"]).stem][clip["start"] : clip["start"] + frames]
        stills.append((Path(clip["source"]).stem, video[0]))
        real.append(video)
    return stills, real


# the run ------------------------------------------------------------------------------------------------------------


def start_run(args, out: Path, timings: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Stages 1-3 of a fresh run: clips, VAE, untrained pipeline, prepared data. Returns (clips, VAE facts)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    t = time.perf_counter()
    clips = make_clips(args, out / "videos")
    write_heldout_videos(clips, out / "heldout_videos")
    timings["synthesise_s"] = time.perf_counter() - t
    print(f"1. {len(clips)} synthetic clips of {args.video_frames} frames, {FRAME} x {FRAME}")

    t = time.perf_counter()
    frames = {split: np.concatenate([c for name, c in clips.items() if name.startswith(split)]) for split in SPLITS}
    if args.vae:
        vae, vae_facts = reuse_vae(args.vae)
        print(f"2. VAE of {args.vae}")
    else:
        vae, vae_facts = train_vae(frames["train"], args.vae_steps, args.vae_minutes, args.seed)
        print(f"2. VAE: {vae_facts['steps']} steps in {vae_facts['minutes']:.1f} min")
    vae_facts.update(measure_vae(vae, frames["heldout"], args.video_frames), fingerprint=vae_fingerprint(vae))
    timings["vae_s"] = time.perf_counter() - t
    print(
        f"   held-out reconstruction PSNR {vae_facts['psnr_db']:.1f} dB, colour error {vae_facts['colour_error']:.1f}; "
        "posterior std "
        f"{vae_facts['posterior_std']:.3f} against latent means' std {vae_facts['latent_std']:.3f}"
    )

    pipeline = build_pipeline(vae, args.seed)
    pipeline.save_pretrained(out / "untrained", safe_serialization=True)
    print(f"3. untrained pipeline -> {out / 'untrained'}")

    t = time.perf_counter()
    data = out / "data"
    # held-out clips in their own DATA: training never sees them
    for part in ("train", "heldout"):
        prepare_dataset(
            out / "videos" / part, data / part, str(out / "untrained"), args.frames, seed=args.seed, show_progress=False
        )
    timings["prepare_s"] = time.perf_counter() - t
    return clips, vae_facts


def reopen_run(args, out: Path) -> tuple[dict[str, np.ndarray], dict, dict]:
    """For --resume: the earlier run's settings (copied into args), its clips and its results.json."""
    import av

    missing = [p for p in ("results.json", "untrained", "data/train", "data/heldout", "run") if not (out / p).exists()]
    if missing:
        sys.exit(f"--resume: {out} lacks {', '.join(missing)}; run the benchmark without --resume first.")
    earlier = json.loads((out / "results.json").read_text())
    kept = ("train_videos", "heldout_videos", "video_frames", "frames", "batch_size", "learning_rate", "seed", "quick")
    for name in kept:  # the clips, data and optimiser must be the earlier run's
        setattr(args, name, earlier["settings"][name])
    clips = synthesise_clips(args)
    for name in (n for n in clips if n.startswith("heldout")):
        with av.open(str(out / "videos" / "heldout" / f"{name}.mp4")) as container:  # H.264: close to the clip
            written = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
        if written.shape != clips[name].shape or np.abs(written.astype(int) - clips[name]).mean() > 8:
            sys.exit(f"--resume: the re-synthesised {name} does not match {out}/videos/heldout/{name}.mp4.")
    return clips, earlier["vae"], earlier


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    out = args.output
    timings = {}
    if args.resume:
        clips, vae_facts, earlier = reopen_run(args, out)
        timings = {k: v for k, v in earlier["timings_s"].items() if k != "evaluate_s"}
        sessions = earlier.get("train_sessions") or [
            {
                "steps": earlier["train"]["steps"],
                "minutes": earlier["timings_s"]["train_s"] / 60,
                "torch_threads": earlier["torch_threads"],
            }
        ]
        print(
            f"1-3. reopened {out}: {len(clips)} clips, VAE and data of the earlier run, at step {sessions[-1]['steps']}"
        )
    else:
        clips, vae_facts = start_run(args, out, timings)
        sessions = []
    data = out / "data"

    t = time.perf_counter()
    done = sessions[-1]["steps"] if sessions else 0
    config = TrainConfig(
        data=str(data / "train"),
        output=str(out / "run"),
        model=str(out / "untrained"),
        init="model",
        max_steps=done + args.train_steps if args.train_steps else 1_000_000_000,
        max_minutes=args.train_minutes,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        checkpoint_every=250,  # a kill loses at most a few minutes: --resume continues from here
        log_every=25,
        validation_every=10_000_000,
        resume="latest" if args.resume else None,
        prediction_type=args.prediction_type,
    )
    result = train(config, show_progress=False)
    session_s = time.perf_counter() - t
    timings["train_s"] = timings.get("train_s", 0.0) + session_s
    sessions.append(
        {
            "steps": result.steps,
            "minutes": session_s / 60,
            "torch_threads": torch.get_num_threads(),
            "load_average_1min_at_end": os.getloadavg()[0],  # the machine is shared: how busy it was
        }
    )
    shutil.rmtree(out / "trained", ignore_errors=True)
    shutil.copytree(result.pipeline_dir, out / "trained")
    print(
        f"4. trained to step {result.steps} ({session_s / 60:.1f} min this session, "
        f"{timings['train_s'] / 60:.1f} min in all) -> {out / 'trained'}"
    )

    t = time.perf_counter()
    trained = FashionFlowPipeline.from_pretrained(out / "trained")
    untrained = FashionFlowPipeline.from_pretrained(out / "untrained")
    for p in (trained, untrained):
        p.set_progress_bar_config(disable=True)
    train_index, heldout_index = load_index(data / "train"), load_index(data / "heldout")
    prediction_type = trained.scheduler.config.prediction_type  # the run's, as train resolved it
    train_set = LatentClipDataset(data / "train", split_by_video(train_index["clips"], 0)[0][: args.heldout_videos * 2])
    heldout_set = LatentClipDataset(data / "heldout", heldout_index["clips"])
    losses = {
        name: {
            "train": objective(p, train_set, trained.scheduler),
            "heldout": objective(p, heldout_set, trained.scheduler),
        }
        for name, p in (("trained", trained), ("untrained", untrained))
    }

    stills, real = heldout_clips(clips, data, args.frames)
    shutil.rmtree(out / "samples", ignore_errors=True)
    sampled = {
        name: sample_videos(p, stills, args.frames, args.sample_steps, out / "samples" / name)
        for name, p in (("trained", trained), ("untrained", untrained))
    }
    # the best any model can score with this VAE: the real clips encoded and decoded, nothing else
    through_vae = [vae_round_trip(trained.vae, video) for video in real]
    videos = {"real held-out clips": real, "real clips through the VAE": through_vae}
    videos.update(trained=sampled["trained"], untrained=sampled["untrained"])
    rows = {}
    for name, vids in videos.items():
        rows[name] = {
            "colour_error": float(np.mean([colour_error(v, s) for v, (_, s) in zip(vids, stills)])),
            "motion_energy": float(np.mean([motion_energy(v) for v in vids])),
        }
    real_motion = rows["real held-out clips"]["motion_energy"]
    timings["evaluate_s"] = time.perf_counter() - t

    strip = [
        np.concatenate(list(videos[name][0][:: max(1, args.frames // 8)]), axis=1)
        for name in ("real held-out clips", "trained", "untrained")
    ]
    picture = Image.fromarray(np.concatenate(strip, axis=0))  # rows: real clip, trained, untrained
    picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(out / "strip.png", optimize=True)

    results = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "vae": vae_facts,
        "train": {
            "steps": result.steps,
            "clips_seen": result.steps * args.batch_size,
            "last_loss": result.last_loss,
            "prediction_type": prediction_type,
        },
        "train_sessions": sessions,
        "loss": losses,
        "videos": rows,
        "timings_s": timings,
        "torch_threads": torch.get_num_threads(),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))

    threads = "/".join(str(s["torch_threads"]) for s in sessions)
    print(
        f"\nSynthetic fashion clips, {FRAME} x {FRAME}, {args.frames} frames; {result.steps} training steps "
        f"({timings['train_s'] / 60:.1f} min in {len(sessions)} session(s), batch {args.batch_size}) on "
        f"{threads} CPU threads; prediction type {prediction_type} (the losses are its objective)\n"
    )
    print("| model | training loss | held-out loss | colour error to the still (0-255) | motion energy (x real) |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        loss = losses.get(name)
        train_loss = f"{loss['train']:.4f}" if loss else "-"
        held_loss = f"{loss['heldout']:.4f}" if loss else "-"
        ratio = row["motion_energy"] / real_motion if real_motion else float("nan")
        print(
            f"| {name} | {train_loss} | {held_loss} | {row['colour_error']:.1f} | {row['motion_energy']:.2f} ({ratio:.2f}x) |"
        )
    print(
        f"\nVAE: {'of ' + vae_facts['from'] if 'from' in vae_facts else str(vae_facts['steps']) + ' steps'}, "
        f"held-out PSNR {vae_facts['psnr_db']:.1f} dB. Results: {out / 'results.json'}"
    )


if __name__ == "__main__":
    main()
