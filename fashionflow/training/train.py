"""Training FashionFlow's U-Net and adapter on prepared latent clips: one readable loop on one `Accelerator`.

One process (a GPU, or the CPU):

    python -m fashionflow train DATA -o RUN --model MODEL

Several GPUs, one machine (accelerate is the distributed engine; `accelerate config` for DeepSpeed/FSDP):

    accelerate launch --multi_gpu --num_processes 8 -m fashionflow train DATA -o RUN --model MODEL

Two machines (run on each, --machine_rank 0 and 1):

    accelerate launch --num_machines 2 --machine_rank 0 --main_process_ip HOST --main_process_port 29500 \\
        --num_processes 16 -m fashionflow train DATA -o RUN --model MODEL

The step is the authors' (see `objective.py`), predicting the noise as they did or the velocity
(`--prediction-type`; new models default to the velocity); what the authors' loop lacked is added the way
diffusers' example trainers do it: mixed precision, gradient accumulation and checkpointing, EMA,
checkpoints with resume (including the data position), validation videos and loss, TensorBoard.
RUN holds: config.json, metrics.jsonl, logs/ (TensorBoard), checkpoint-{step}/, validation/, and
at the end pipeline/ (a complete pipeline folder with a model card).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate.logging import get_logger

from ..assembly import assemble_pipeline, model_card, save_pipeline, table
from ..base import files
from ..base.errors import REFUSED_PICKLE, SettingsError, first_sentence, is_disk_full, is_refused_pickle, literal
from ..base.memory import is_out_of_memory
from ..base.options import check
from ..base.seeds import narrow_seed
from .checkpoints import (
    METRICS,
    TRAIN_STATE,
    choose_checkpoint,
    finish_branch,
    list_checkpoints,
    load_ema,
    load_generators,
    prune_checkpoints,
    read_train_state,
    remove_fragments,
    resolve_resume,
    save_ema,
    save_generators,
    start_branch,
)
from .dataset import LatentClipDataset, check_data_fits_model, check_shards, load_index, split_by_video
from .errors import DataError, DiskFullError, OutputFolderError, TrainingStopped
from .objective import Denoiser, choose_prediction_type, diffusion_loss
from .options import INIT_CHOICES, LR_SCHEDULES, MIXED_PRECISION, TrainConfig

logger = get_logger(__name__)

LOCK = ".lock"  # RUN/.lock: held by the training run that writes RUN (base.files.hold_lock)
# What a resumed run keeps: these decide what a checkpoint's weights, optimiser and place in the data mean (the data
# itself, and prediction_type, are checked apart). A resume refuses other values, naming them.
KEPT_ON_RESUME = (
    "model", "init", "batch_size", "gradient_accumulation_steps", "loss_reduction", "mixed_precision", "ema", "seed",
    "validation_videos",
)  # fmt: skip
# What a resume may change, taking effect from its first step (and the validation settings but validation_videos).
CHANGEABLE_ON_RESUME = (
    "learning_rate", "weight_decay", "lr_schedule", "warmup_steps", "max_grad_norm", "max_steps", "epochs",
    "max_minutes", "ema_decay", "gradient_checkpointing", "checkpoint_every", "checkpoints_limit", "log_every",
    "num_workers", "report_to", "cpu",
)  # fmt: skip


@dataclass
class TrainResult:
    run_dir: Path
    pipeline_dir: Path | None
    steps: int
    last_loss: float | None
    last_val_loss: float | None = None
    metrics: list[dict] = field(default_factory=list)


def check_config(config: TrainConfig) -> None:
    """Refuse impossible settings: every rule of `TrainConfig`'s fields (`base.options.check`), one
    `SettingsError` naming each setting (by its flag on the command line)."""
    check(config)


# the run ---------------------------------------------------------------------------------------------------------


def train(config: TrainConfig, show_progress: bool = True) -> TrainResult:
    """Train as `config` says; returns where the run and its pipeline are. See the module docstring."""
    with contextlib.ExitStack() as held:  # the run folder's lock, released however the run ends
        return _train(config, show_progress, held)


def _train(config: TrainConfig, show_progress: bool, held: contextlib.ExitStack) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration
    from tqdm.auto import tqdm

    from ..loading import load_pipeline

    check_config(config)
    run_dir = Path(config.output)
    tracker = _tracker(config.report_to)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=tracker,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        cpu=config.cpu,
    )
    main = accelerator.is_main_process
    logger.info(str(accelerator.state), main_process_only=False)

    # 1. Check everything a mistake could be in before touching RUN, every prepared shard included
    index = load_index(config.data)
    if config.resume != "latest":
        resolve_resume(run_dir, config.resume)  # a checkpoint folder that is not one
    pipeline = load_pipeline(config.model, device=str(accelerator.device), dtype="float32")
    check_data_fits_model(index, pipeline, config.data)
    check_shards(config.data, index)
    train_clips, validation_clips = split_by_video(index["clips"], config.validation_videos)
    if main:  # RUN is this process's from here on (a lock), and what a killed run left is cleared
        _open_run_dir(run_dir, resuming=config.resume is not None, held=held)
    accelerator.wait_for_everyone()
    checkpoint, damaged = choose_checkpoint(run_dir, config.resume)
    choice = _choose_prediction_type(config, pipeline, checkpoint)
    data_fingerprint = _data_fingerprint(index, train_clips)
    if checkpoint is not None:
        _check_kept_settings(config, checkpoint, run_dir, data_fingerprint)
        if main:
            _start_branch(accelerator, run_dir, checkpoint, damaged)
    accelerator.wait_for_everyone()

    # 2. Models: U-Net + adapter train together (one module for accelerate); VAE and CLIP are frozen
    clip_preprocessing, ema = _set_up_models(config, pipeline, accelerator, choice.prediction_type)
    unet, adapter = pipeline.unet, pipeline.adapter

    # 3. Data, optimiser, schedule
    dataset = LatentClipDataset(config.data, train_clips)
    denoiser, optimizer, dataloader, lr_scheduler, max_steps = _optimisation(
        config, accelerator, Denoiser(unet, adapter).train(), dataset
    )
    steps_per_epoch = math.ceil(len(dataloader) / config.gradient_accumulation_steps)
    epochs = math.ceil(max_steps / steps_per_epoch)
    noise_scheduler = pipeline.scheduler  # the published schedule the pipeline samples on, with the run's prediction
    # timesteps, noise and VAE samples come from this process's own generator, saved in every checkpoint
    generator = torch.Generator().manual_seed(narrow_seed(config.seed) * 1_000_003 + accelerator.process_index)
    generators = {f"noise-{accelerator.process_index}": generator}

    # 4. Resume: weights, optimiser, schedule, RNG, EMA, and where in the data the run was
    step, epoch, batches_done, samples_seen = 0, 0, 0, 0
    if checkpoint is not None:
        step, epoch, batches_done, samples_seen = _resume(accelerator, checkpoint, generators, ema, len(dataloader))
        _apply_settings(accelerator, config, optimizer, lr_scheduler, ema, read_train_state(checkpoint).get("settings"))
    elif config.resume == "latest":
        accelerator.print(f"No checkpoint in {run_dir} yet: starting a new run.")

    # 5. Record the run
    effective_batch = config.batch_size * accelerator.num_processes * config.gradient_accumulation_steps
    facts = dict(
        processes=accelerator.num_processes,
        device=str(accelerator.device),
        effective_batch=effective_batch,
        train_clips=len(dataset),
        validation_clips=len(validation_clips),
        steps_per_epoch=steps_per_epoch,
        max_steps=max_steps,
        clip_preprocessing=clip_preprocessing,
        prediction_type=choice.prediction_type,
        prediction_type_reason=choice.reason,
    )
    metrics_path = run_dir / METRICS
    if main:
        files.write_json(run_dir / "config.json", {**asdict(config), "resolved": facts}, sync=True)
        _restore_metrics(metrics_path, checkpoint, after_step=step)
    if tracker:
        accelerator.init_trackers("fashionflow", config=_hparams(config))
    accelerator.print(f"Prediction type: {choice.prediction_type} ({choice.reason}).")
    if choice.warning:
        accelerator.print(f"Warning: {choice.warning}", file=sys.stderr)
    accelerator.print(
        f"Training {sum(p.numel() for p in unet.parameters()) + sum(p.numel() for p in adapter.parameters()):,} "
        f"parameters on {len(dataset)} clips ({len(validation_clips)} held out) | {accelerator.num_processes} "
        f"process(es) x {config.batch_size} clips x {config.gradient_accumulation_steps} accumulation = "
        f"{effective_batch} per step | {max_steps} steps, {epochs} epoch(s) | loss: {config.loss_reduction} over frames"
    )

    # 6. Validation set-up: held-out clips for the loss, stills for the videos
    validation_set = LatentClipDataset(config.data, validation_clips) if validation_clips else None
    stills = _validation_stills(config, validation_set, run_dir if main else None)
    video_frames = config.validation_frames or index["settings"]["frames"]

    def validate(at_step: int) -> float | None:
        if ema is not None:
            ema.store(denoiser.parameters())
            ema.copy_to(denoiser.parameters())
        denoiser.eval()
        try:
            loss = _validation_loss(accelerator, pipeline, Denoiser(unet, adapter), validation_set, config)
            if main and stills:
                _validation_videos(accelerator, pipeline, stills, at_step, run_dir, config, video_frames)
            accelerator.wait_for_everyone()
        finally:
            denoiser.train()
            if ema is not None:
                ema.restore(denoiser.parameters())
        return loss

    def save(at_step: int) -> Path:
        state = dict(
            step=at_step,
            epoch=epoch,
            batches_done=batches_done,
            samples_seen=samples_seen,
            prediction_type=choice.prediction_type,
            settings=asdict(config),  # what a resume keeps or may change (`_check_kept_settings`)
            data=data_fingerprint,
        )
        return _save_checkpoint(accelerator, run_dir, state, ema, generators, config.checkpoints_limit)

    # 7. The loop
    bar = tqdm(total=max_steps, initial=step, desc="train", unit="step", disable=not (show_progress and main))
    interval_losses: list[float] = []
    micro_losses: list[torch.Tensor] = []
    interval_start = started = time.perf_counter()
    out_of_time = False
    saved_step = step if checkpoint is not None else None
    last_loss = last_val = None
    metrics: list[dict] = []
    if step == 0 and (validation_set is not None or stills):
        last_val = validate(0)  # catches assembly mistakes before hours of training (SVD-Xtend does it at step 1)
        if last_val is not None:
            accelerator.log({"val_loss": last_val}, step=0)
    try:
        while step < max_steps and epoch < epochs and not out_of_time:
            dataloader.set_epoch(epoch)
            batches = accelerator.skip_first_batches(dataloader, batches_done) if batches_done else dataloader
            batches_taken = batches_done
            for batch in batches:
                with accelerator.accumulate(denoiser):
                    clip_hidden_states, context_latents, _ = pipeline.encode_condition(batch["still"], generator)
                    loss = diffusion_loss(
                        denoiser,
                        noise_scheduler,
                        batch["latents"],
                        clip_hidden_states,
                        context_latents,
                        config.loss_reduction,
                        generator,
                    )
                    accelerator.backward(loss)
                    grad_norm = None
                    if accelerator.sync_gradients and config.max_grad_norm:
                        grad_norm = accelerator.clip_grad_norm_(denoiser.parameters(), config.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                micro_losses.append(loss.detach())
                batches_taken += 1
                if not accelerator.sync_gradients:
                    continue

                # one optimiser step done
                step_loss = accelerator.gather(torch.stack(micro_losses).mean().reshape(1)).mean().item()
                micro_losses.clear()
                batches_done = batches_taken  # the data position a checkpoint records: whole optimiser steps only
                samples_seen += effective_batch
                step += 1
                if ema is not None:
                    ema.step(denoiser.parameters())
                if not math.isfinite(step_loss):
                    videos = sorted({dataset.clips[i]["source"] for i in batch["index"].tolist()})
                    raise _diverged(step_loss, step, list_checkpoints(run_dir), videos)
                last_loss = step_loss
                interval_losses.append(step_loss)
                bar.update()
                bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr_scheduler.get_last_lr()[0]:.2e}")

                record = None
                validating = (step % config.validation_every == 0 or step == max_steps) and (
                    validation_set is not None or bool(stills)
                )
                if step % config.log_every == 0 or step == max_steps or validating:
                    seconds = (time.perf_counter() - interval_start) / len(interval_losses)
                    record = dict(
                        step=step,
                        epoch=epoch,
                        loss=sum(interval_losses) / len(interval_losses),
                        lr=lr_scheduler.get_last_lr()[0],
                        seconds_per_step=seconds,
                        samples_seen=samples_seen,
                        time=time.time(),
                    )
                    if grad_norm is not None:
                        record["grad_norm"] = float(grad_norm)
                    interval_losses.clear()
                if validating:
                    last_val = validate(step)
                    if last_val is not None:
                        record["val_loss"] = last_val
                if record is not None:
                    if main:
                        _append_metrics(metrics_path, record, metrics)
                    accelerator.log({k: v for k, v in record.items() if k not in ("step", "time")}, step=step)
                    interval_start = time.perf_counter()
                if step % config.checkpoint_every == 0:
                    save(step)
                    saved_step = step
                if config.max_minutes is not None:
                    # decided together: every process must leave the loop at the same step
                    late = torch.tensor(
                        [time.perf_counter() - started > config.max_minutes * 60], device=accelerator.device
                    )
                    out_of_time = bool(accelerator.gather(late).any())
                    if out_of_time:
                        accelerator.print(f"\nTime limit of {config.max_minutes:g} minutes reached at step {step}.")
                if step >= max_steps or out_of_time:
                    break
            else:
                epoch, batches_done = epoch + 1, 0
    except Exception:
        bar.close()  # the error then reads on a line of its own
        raise
    except KeyboardInterrupt:
        bar.close()
        if step and saved_step != step:
            saved = save(step)
            accelerator.print(f"\nInterrupted at step {step}: saved {saved}. Continue with --resume latest.")
        else:
            accelerator.print(
                f"\nInterrupted at step {step}; the last checkpoint has it. Continue with --resume latest."
            )
        accelerator.end_training()
        raise
    bar.close()

    # 8. The trained pipeline (EMA weights when on), a final checkpoint, a model card
    if saved_step != step:
        save(step)
    accelerator.wait_for_everyone()
    pipeline_dir = None
    if main:
        if ema is not None:
            ema.copy_to(accelerator.unwrap_model(denoiser).parameters())
        card_facts = dict(
            steps=step,
            samples_seen=samples_seen,
            last_loss=last_loss,
            last_val_loss=last_val,
            data=index,
            train_clips=len(dataset),
            validation_clips=len(validation_clips),
            effective_batch=effective_batch,
            prediction_type=choice.prediction_type,
            prediction_type_reason=choice.reason,
        )
        pipeline_dir = _save_pipeline(
            config, accelerator, unet, adapter, clip_preprocessing, noise_scheduler, run_dir, card_facts
        )
        accelerator.print(f"Trained pipeline: {pipeline_dir}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(run_dir, pipeline_dir, step, last_loss, last_val, metrics)


# pieces of the run --------------------------------------------------------------------------------------------------


def _set_up_models(config: TrainConfig, pipeline, accelerator, prediction_type: str):
    """The models as the run trains them, in `pipeline`: fresh ones for `init="scratch"`, gradient
    checkpointing, the frozen VAE and CLIP in the precision that is safe for them, the scheduler with
    the run's prediction type, and the EMA copy. Returns (the CLIP preprocessing recorded, the EMA or None)."""
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    from ..models import ConditionAdapter, FashionFlowUNet

    set_seed(narrow_seed(config.seed))  # the same initial weights and data order on every process (numpy: 32 bits)
    if config.init == "scratch":
        pipeline.unet = FashionFlowUNet.from_config(pipeline.unet.config).to(accelerator.device)
        pipeline.adapter = ConditionAdapter.from_config(pipeline.adapter.config).to(accelerator.device)
        clip_preprocessing = "standard"  # a model trained here is fed CLIP correctly, and says so in its config
    else:
        clip_preprocessing = pipeline.config.clip_preprocessing  # fine-tuning keeps the loaded model's setting
    pipeline.register_to_config(clip_preprocessing=clip_preprocessing)
    # the objective and the validation loss and videos all read what the U-Net predicts from this scheduler
    pipeline.scheduler = type(pipeline.scheduler).from_config(
        pipeline.scheduler.config, prediction_type=prediction_type
    )
    pipeline.set_progress_bar_config(disable=True)
    if config.gradient_checkpointing:
        pipeline.unet.enable_gradient_checkpointing()
    frozen_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.mixed_precision, torch.float32)
    for frozen in (pipeline.vae, pipeline.image_encoder):
        frozen.requires_grad_(False).eval()
    pipeline.image_encoder.to(dtype=frozen_dtype)
    pipeline.vae.to(dtype=torch.float32 if frozen_dtype == torch.float16 else frozen_dtype)  # fp16 VAE can overflow
    ema = None
    if config.ema:
        ema = EMAModel(Denoiser(pipeline.unet, pipeline.adapter).parameters(), decay=config.ema_decay)
        ema.to(accelerator.device)
    return clip_preprocessing, ema


def _optimisation(config: TrainConfig, accelerator, denoiser, dataset):
    """AdamW, the learning-rate schedule and the data loader, prepared by accelerate; with the run's
    length in optimiser steps. Returns (denoiser, optimizer, dataloader, lr_scheduler, max_steps)."""
    from diffusers.optimization import get_scheduler

    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=True, num_workers=config.num_workers, drop_last=False
    )
    optimizer = torch.optim.AdamW(
        denoiser.parameters(),
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.weight_decay,
        eps=config.adam_epsilon,
    )
    batches = math.ceil(len(dataset) / (config.batch_size * accelerator.num_processes))
    max_steps = config.max_steps or config.epochs * math.ceil(batches / config.gradient_accumulation_steps)
    constant_after_warmup = config.lr_schedule == "constant" and config.warmup_steps
    # the prepared schedule steps once per process per optimiser step (diffusers' examples scale the same way)
    lr_scheduler = get_scheduler(
        "constant_with_warmup" if constant_after_warmup else config.lr_schedule,
        optimizer,
        num_warmup_steps=config.warmup_steps * accelerator.num_processes,
        num_training_steps=max_steps * accelerator.num_processes,
    )
    return (*accelerator.prepare(denoiser, optimizer, dataloader, lr_scheduler), max_steps)


def _resume(accelerator, checkpoint: Path, generators: dict, ema, batches_per_epoch: int) -> tuple[int, int, int, int]:
    """Load a checkpoint's weights, optimiser, schedule, RNG and EMA; returns where the run was:
    (step, epoch, batches already taken from that epoch, samples seen)."""
    from accelerate.utils import load as safe_load

    if ema is not None and not (checkpoint / "ema.safetensors").is_file():
        raise SettingsError(
            f"{literal(checkpoint)} was saved without EMA weights, but {{ema}} is on: resume it without.",
            settings={"ema": None},
        )
    random_states = checkpoint / f"random_states_{accelerator.process_index}.pkl"
    try:
        safe_load(random_states)  # accelerate skips a file it cannot load safely without a word: say so
    except Exception as error:
        why = REFUSED_PICKLE if is_refused_pickle(error) else "is missing or damaged"
        accelerator.print(
            f"Warning: {random_states} {why}; Python's, NumPy's and torch's global random states start afresh "
            "(the training noise and data order come from the run's own generators, which are restored).",
            file=sys.stderr,
        )
    try:
        accelerator.load_state(str(checkpoint))
        load_generators(generators, checkpoint / f"generators-{accelerator.process_index}.safetensors")
        if ema is not None:
            load_ema(ema, checkpoint / "ema.safetensors")
    except Exception as error:
        raise _unloadable(checkpoint, error) from None
    state = read_train_state(checkpoint)
    step, epoch, batches_done, samples_seen = (state[k] for k in ("step", "epoch", "batches_done", "samples_seen"))
    if batches_done >= batches_per_epoch:
        epoch, batches_done = epoch + 1, 0
    accelerator.print(f"Resuming from {checkpoint} (step {step}, epoch {epoch}, batch {batches_done}).")
    return step, epoch, batches_done, samples_seen


def _unloadable(checkpoint: Path, error: Exception) -> Exception:
    """A checkpoint that passed the cheap checks and still failed to load, in words (never torch's advice)."""
    if is_out_of_memory(error):
        return error
    if is_refused_pickle(error):
        why = f"a file in it {REFUSED_PICKLE}"
    elif isinstance(error, (RuntimeError, KeyError)) and ("size mismatch" in str(error) or "Missing key" in str(error)):
        why = "its weights do not fit this model (another --model, or another U-Net configuration)"
    else:
        why = f"it is damaged ({first_sentence(str(error)) or type(error).__name__})"
    return DataError(f"Cannot resume from {literal(checkpoint)}: {literal(why)}. Resume from another checkpoint.")


def _data_fingerprint(index: dict, train_clips: list[dict]) -> str:
    """What identifies the data a run trains on, wherever DATA lies: its settings and its training clips."""
    clips = sorted(clip["id"] for clip in train_clips)
    return hashlib.sha256(json.dumps([index["fingerprint"], clips]).encode()).hexdigest()[:16]


def _check_kept_settings(config: TrainConfig, checkpoint: Path, run_dir: Path, data_fingerprint: str) -> None:
    """Refuse a resume that changes what a checkpoint's weights, optimiser and data position mean (`KEPT_ON_RESUME`,
    the data), naming each such setting with its value; every other setting takes effect (`_apply_settings`)."""
    state = read_train_state(checkpoint)
    trained = state.get("settings")
    if trained is None:  # a checkpoint from before settings were recorded: the run's last config.json
        try:
            trained = json.loads((run_dir / "config.json").read_text())
        except (OSError, ValueError):
            return
    given = asdict(config)
    changed = [name for name in KEPT_ON_RESUME if name in trained and _differs(trained[name], given[name])]
    if changed:
        listed = " and ".join(f"{{{name}}} (not {literal(given[name])})" for name in changed)
        may = ", ".join(f"{{{name}}}" for name in CHANGEABLE_ON_RESUME)
        raise SettingsError(
            f"{literal(checkpoint)} was trained with {listed}: a resumed run keeps these settings, since they decide "
            f"what its weights, optimiser and place in the data mean. Give them as they were. A resume may change "
            f"{may} and the validation settings; for other changes, start a new run (--model RUN/pipeline continues "
            "from the trained weights).",
            settings={**{name: trained[name] for name in changed}, **dict.fromkeys(CHANGEABLE_ON_RESUME)},
        )
    if state.get("data", data_fingerprint) != data_fingerprint:
        raise DataError(
            f"{literal(config.data)} is not the data {literal(checkpoint)} was trained on (other clips, or clips "
            "prepared with other settings): a resumed run continues its place in the same data. Resume with that "
            "data, or start a new run."
        )


def _differs(trained, given) -> bool:
    if isinstance(trained, str) and isinstance(given, str) and Path(trained).is_dir() and Path(given).is_dir():
        return Path(trained).resolve() != Path(given).resolve()  # one model folder, named two ways
    return trained != (list(given) if isinstance(given, tuple) else given)


def _apply_settings(accelerator, config: TrainConfig, optimizer, lr_scheduler, ema, trained: dict | None) -> None:
    """The settings a resume may change take effect: the restored optimiser and schedule carry the values they
    were saved with (learning rate, weight decay, ...), replaced here by the ones given; says what changed."""
    for group in optimizer.param_groups:
        group.update(
            initial_lr=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=(config.adam_beta1, config.adam_beta2),
            eps=config.adam_epsilon,
        )
    schedule = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate's wrapper holds the torch schedule
    schedule.base_lrs = [config.learning_rate for _ in optimizer.param_groups]
    # every schedule diffusers' get_scheduler makes is a LambdaLR: the rate is base * rule(step)
    rates = [base * rule(schedule.last_epoch) for base, rule in zip(schedule.base_lrs, schedule.lr_lambdas)]
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    schedule._last_lr = rates
    if ema is not None:
        ema.decay = config.ema_decay
    if trained:
        given = asdict(config)
        changes = [
            f"{name} {trained[name]} -> {given[name]}"
            for name in CHANGEABLE_ON_RESUME
            if name in trained and _differs(trained[name], given[name])
        ]
        if changes:
            accelerator.print(f"Changed on resume: {', '.join(changes)}.")


def _start_branch(accelerator, run_dir: Path, checkpoint: Path, damaged: list[tuple[Path, str]]) -> None:
    """Say which damaged checkpoints were passed over, and move the checkpoints after the one resumed out of the
    way (`checkpoints.start_branch`): "latest" follows this run from now on."""
    for path, problem in damaged:
        accelerator.print(
            f"Warning: {path.name} is damaged ({problem}): resuming from {checkpoint.name}, the newest whole "
            "checkpoint.",
            file=sys.stderr,
        )
    moved, destination = start_branch(run_dir, checkpoint)
    if moved:
        accelerator.print(
            f"Resuming from {checkpoint.name} starts a new branch of this run: the later "
            f"{', '.join(path.name for path in moved)} moved to {destination} (delete them when not needed)."
        )


def _diverged(loss: float, step: int, kept: list[Path], videos: list[str]) -> TrainingStopped:
    """The loss became NaN or infinite: the videos of the batch (whose latents were checked finite as they were
    read, so the model diverged), what was kept, and what to change."""
    advice = "try a lower {learning_rate}, {max_grad_norm}, or bf16 instead of fp16 ({mixed_precision})."
    settings: dict[str, object] = {"learning_rate": None, "max_grad_norm": 1, "mixed_precision": None}
    if kept:
        settings["resume"] = str(kept[-1])
        where = f"The last good checkpoint is {literal(kept[-1])} (resume from it: {{resume}}); "
    else:
        where = "No checkpoint had been saved yet; "
    batch = f" (the last batch's clips, from {literal(', '.join(videos))}, held finite values: the model diverged)"
    return TrainingStopped(
        f"The loss became {loss} at step {step}{batch if videos else ''}: training stopped. {where}{advice}",
        settings=settings,
    )


def _choose_prediction_type(config: TrainConfig, pipeline, checkpoint: Path | None):
    """`choose_prediction_type` with this run's facts: the model, its weights' state, the checkpoint resumed."""
    if config.init == "scratch":
        untrained_because = "init: scratch, fresh weights"
    elif pipeline.config.untrained:
        untrained_because = f"the model {config.model} is marked untrained"
    else:
        untrained_because = None
    resumed = None
    if checkpoint is not None:
        # checkpoints from before the choice existed were all trained on the noise
        resumed = read_train_state(checkpoint).get("prediction_type", "epsilon")
    return choose_prediction_type(
        config.prediction_type,
        model=config.model,
        model_prediction_type=pipeline.scheduler.config.prediction_type,
        untrained_because=untrained_because,
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_prediction_type=resumed,
    )


def _tracker(report_to: str | None):
    if report_to != "tensorboard":
        return report_to
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        logger.warning("TensorBoard is not installed: no logs/ (metrics.jsonl is still written).")
        return None
    return "tensorboard"


def _hparams(config: TrainConfig) -> dict:
    """TensorBoard's hparams take only scalars and strings."""
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in asdict(config).items()}


def _open_run_dir(run_dir: Path, resuming: bool, held: contextlib.ExitStack) -> None:
    """Make RUN this process's (a lock, held until the run ends) and clear what a killed run left."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputFolderError(f"{run_dir} exists and is not a folder.")
    try:
        files.check_writable(run_dir)
    except OSError as error:
        raise OutputFolderError(f"Cannot write to {run_dir}: {error.strerror or error}.") from None
    try:
        held.enter_context(files.hold_lock(run_dir / LOCK))
    except files.LockHeld as refused:
        who = refused.holder
        holder = f"process {who['pid']} on {who['host']}" if {"pid", "host"} <= who.keys() else "another process"
        since = f", since {time.strftime('%Y-%m-%d %H:%M', time.localtime(who['since']))}" if "since" in who else ""
        raise OutputFolderError(
            f"{literal(run_dir)} is in use by another training run ({holder}{since}): two runs in one folder "
            "would mix their checkpoints and metrics. Wait for it to end, stop it, or choose another output folder."
        ) from None
    finish_branch(run_dir)
    earlier = list_checkpoints(run_dir)
    if not resuming and (earlier or (run_dir / "pipeline").exists()):
        what = earlier[-1].name if earlier else "pipeline/"
        raise OutputFolderError(
            f"{literal(run_dir)} already holds a training run ({what}): pass {{resume}} to continue it, "
            "or choose another output folder.",
            settings={"resume": "latest"},
        )
    files.remove_partials(run_dir)  # a checkpoint or pipeline a killed run was writing, or pruning
    for fragment in remove_fragments(run_dir):
        print(f"Warning: {fragment} is an incomplete checkpoint holding other files; left as it is.", file=sys.stderr)


def _save_checkpoint(accelerator, run_dir: Path, state: dict, ema, generators, limit: int | None) -> Path:
    """RUN/checkpoint-{step}, written by every process into one staging folder and renamed once
    complete (`base.files`); older ones are pruned only then, so a crash while saving never costs the
    previous checkpoint."""
    final = run_dir / f"checkpoint-{state['step']}"
    partial = files.partial_path(final, token="staging")  # the same on every process
    try:
        if accelerator.is_main_process:
            files.clear_folder(partial)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        save_generators(generators, partial / f"generators-{accelerator.process_index}.safetensors")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if ema is not None:
                save_ema(ema, partial / "ema.safetensors")
            if (run_dir / METRICS).is_file():  # the history up to this step, which a resume from here restores
                shutil.copyfile(run_dir / METRICS, partial / METRICS)
            files.write_json(partial / TRAIN_STATE, state)
            files.replace_folder(partial, final, sync=True)  # on the disk before it is renamed into place
    except Exception as error:
        files.clear_folder(partial)  # a full disk's partial checkpoint must not keep the last free space
        if is_disk_full(error):
            kept = list_checkpoints(run_dir)
            last = f"The last whole checkpoint is {literal(kept[-1].name)}" if kept else "No checkpoint was saved yet"
            raise DiskFullError(
                f"Could not save {final.name}: the disk holding {literal(run_dir)} is full. {last}; free some space "
                "and continue with {resume}.",
                settings={"resume": "latest"},
            ) from None
        raise
    if accelerator.is_main_process:
        prune_checkpoints(run_dir, limit)
    accelerator.wait_for_everyone()
    return final


def _append_metrics(path: Path, record: dict, kept: list[dict]) -> None:
    kept.append(record)
    files.append_line(path, json.dumps(record))


def _restore_metrics(path: Path, checkpoint: Path | None, after_step: int) -> None:
    """The run's history as it was at the checkpoint resumed (its own copy; a checkpoint from before copies were
    kept: RUN's lines up to its step), written whole: lines logged after it, by the interrupted run or by a
    branch left behind, are dropped (the steps are about to be redone). A fresh run starts an empty history."""
    source = checkpoint / METRICS if checkpoint is not None and (checkpoint / METRICS).is_file() else path
    if not source.is_file():
        return
    kept = []
    for line in source.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= after_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut off by a kill
    files.write_lines(path, kept, sync=True)


@torch.no_grad()
def _validation_loss(accelerator, pipeline, denoiser, validation_set, config: TrainConfig) -> float | None:
    """The objective on the held-out clips, with the same timestep, noise and VAE sample for a clip at every
    evaluation (a generator seeded by the clip), so that values are comparable along the run."""
    from accelerate.utils import gather_object

    if validation_set is None:
        return None
    totals = []
    with accelerator.split_between_processes(list(range(len(validation_set)))) as mine:
        for i in mine:
            item = validation_set[i]
            generator = torch.Generator().manual_seed(10_000 + i)
            still = item["still"][None].to(accelerator.device)
            latents = item["latents"][None].to(accelerator.device)
            clip_hidden_states, context_latents, _ = pipeline.encode_condition(still, generator)
            with accelerator.autocast():
                loss = diffusion_loss(
                    denoiser,
                    pipeline.scheduler,
                    latents,
                    clip_hidden_states,
                    context_latents,
                    config.loss_reduction,
                    generator,
                )
            totals.append(loss.item())
    totals = gather_object(totals)
    return sum(totals) / len(totals) if totals else None


def _validation_stills(config: TrainConfig, validation_set, run_dir: Path | None) -> list[tuple[str, object]]:
    """(name, image) pairs for validation videos: the given photos, else the first held-out clips' stills."""
    from PIL import Image

    from ..image import MIN_SIDE, PHOTO_SUFFIXES, load_image

    stills = []
    for given in config.validation_stills:
        path = Path(given)
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if path.is_dir() else [path]
        stills += [(p.stem, load_image(p)) for p in paths]
    if not stills and validation_set is not None:
        for i in range(min(config.max_validation_stills, len(validation_set))):
            pixels = (validation_set[i]["still"] * 255).round().byte().permute(1, 2, 0).numpy()
            name = validation_set.clips[i]["id"].replace("/", "-")
            stills.append((name, Image.fromarray(pixels)))
    stills = stills[: config.max_validation_stills] if not config.validation_stills else stills
    # held-out stills of a small model can be under the pipeline's photo minimum: enlarge them (nearest,
    # so the pipeline's fit brings back the same frame) rather than refuse them
    stills = [(name, _at_least(image, MIN_SIDE)) for name, image in stills]
    if run_dir is not None and stills:
        folder = run_dir / "validation" / "stills"
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in stills:
            image.save(folder / f"{name}.png")
    return stills


def _at_least(image, side: int):
    from PIL import Image

    while min(image.size) < side:
        image = image.resize((image.width * 2, image.height * 2), Image.NEAREST)
    return image


def _validation_videos(accelerator, pipeline, stills, step: int, run_dir: Path, config: TrainConfig, frames: int):
    """MP4s through FashionFlowPipeline, fixed seeds on CPU generators: validation/step-0001000/<still>-seed<seed>.mp4."""
    import numpy as np

    folder = run_dir / "validation" / f"step-{step:07d}"
    strips = []
    for name, image in stills:
        for seed in config.validation_seeds:
            with accelerator.autocast():
                output = pipeline(
                    image,
                    num_frames=frames,
                    sampler=config.validation_sampler,
                    num_inference_steps=config.validation_steps,
                    generator=torch.Generator().manual_seed(seed),
                    output_type="np",
                    output_path=folder / f"{name}-seed{seed}.mp4",
                )
            video = output.frames[0]  # (f, H, W, 3) in [0, 1]
            strips.append(np.concatenate(list(video[:: max(1, len(video) // 8)]), axis=1))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard" and strips:
            tracker.writer.add_image("validation/frames", np.concatenate(strips, axis=0), step, dataformats="HWC")


def _save_pipeline(
    config, accelerator, unet, adapter, clip_preprocessing, scheduler, run_dir: Path, facts: dict
) -> Path:
    """RUN/pipeline: the trained U-Net and adapter with the model's own VAE and CLIP (reloaded in float32,
    untouched by mixed precision) and the run's scheduler (the model's schedule, the run's prediction type),
    written whole (`assembly.save_pipeline`), with a model card."""
    from ..loading import load_pipeline

    base = load_pipeline(config.model, device="cpu", dtype="float32")
    trained = [accelerator.unwrap_model(model).to("cpu", torch.float32) for model in (unet, adapter)]
    pipeline = assemble_pipeline(
        base.vae,
        base.image_encoder,
        base.feature_extractor,
        *trained,
        scheduler=type(scheduler).from_config(scheduler.config),
        clip_preprocessing=clip_preprocessing,
    )
    final = save_pipeline(pipeline, run_dir / "pipeline", _model_card(config, accelerator, clip_preprocessing, facts))
    # training continues on the device with these modules after a mid-run call; put them back
    unet.to(accelerator.device)
    adapter.to(accelerator.device)
    return final


def _model_card(config: TrainConfig, accelerator, clip_preprocessing: str, facts: dict) -> str:
    data = facts["data"]
    settings = data["settings"]
    if accelerator.device.type == "cuda":
        hardware = f"{accelerator.num_processes} x {torch.cuda.get_device_name(accelerator.device)}"
    else:
        processor = platform.processor() or platform.machine()
        hardware = f"{accelerator.num_processes} x {accelerator.device.type} ({processor})"
    loss = f"{facts['last_loss']:.5f}" if facts["last_loss"] is not None else "n/a"
    val = f"{facts['last_val_loss']:.5f}" if facts["last_val_loss"] is not None else "n/a (no held-out clips)"
    init = "from scratch" if config.init == "scratch" else f"fine-tuned from {config.model}"
    target = {"epsilon": "the noise", "v_prediction": "the velocity (v-prediction)"}[facts["prediction_type"]]
    precision = config.mixed_precision + (", gradient checkpointing" if config.gradient_checkpointing else "")
    if config.ema:
        precision += f", EMA {config.ema_decay:g} (these are the EMA weights)"
    rows = [
        (
            "data",
            f"`{config.data}`: {facts['train_clips']} training clips, {facts['validation_clips']} held out, from "
            f"{data['videos']} videos ({len(data['skipped'])} skipped)",
        ),
        (
            "clips",
            f"{settings['frames']} frames of {settings['frame_height']} x {settings['frame_width']} pixels, "
            f'fit "{settings["fit"]}"',
        ),
        (
            "steps",
            f"{facts['steps']} optimiser steps, {facts['samples_seen']} clips seen, "
            f"{facts['effective_batch']} clips per step",
        ),
        (
            "objective",
            "the published step: one timestep per clip, frame 0 clean with a zero target, per-frame MSE, "
            f"{config.loss_reduction} over frames",
        ),
        (
            "prediction type",
            f"`{facts['prediction_type']}`: the U-Net predicts {target} ({facts['prediction_type_reason']}); "
            "samplers read it from `scheduler/scheduler_config.json`",
        ),
        (
            "optimiser",
            f"AdamW, lr {config.learning_rate:g} ({config.lr_schedule}, {config.warmup_steps} warm-up steps), "
            f"weight decay {config.weight_decay:g}",
        ),
        ("precision", precision),
        ("last training loss", loss),
        ("last validation loss", val),
        ("hardware", hardware),
        ("CLIP preprocessing", f'"{clip_preprocessing}"'),
    ]
    return model_card(
        "FashionFlow model trained with `python -m fashionflow train`",
        f"U-Net and condition adapter {init}; VAE, CLIP and noise schedule from `{config.model}`. "
        "Trained by `python -m fashionflow train`",
        [(None, table(("", ""), rows)), (None, "The full settings are in the run's `config.json`.")],
    )


__all__ = ["INIT_CHOICES", "LR_SCHEDULES", "MIXED_PRECISION", "TrainConfig", "TrainResult", "check_config", "train"]
