"""Training checkpoints: RUN/checkpoint-{step}/, written whole or not at all, found again by `--resume`.

A checkpoint holds what `accelerator.save_state` writes (the U-Net + adapter weights, optimiser,
learning-rate schedule, accelerate's RNG states), plus, written here as safetensors and JSON:

    ema.safetensors            the EMA weights and counters (when EMA is on)
    generators.safetensors     each process's noise generator (timesteps, noise, VAE samples)
    metrics.jsonl              the run's metrics up to this step: a resume from here restores this history
    train_state.json           step, epoch, batches already taken from that epoch, samples seen, the
                               prediction type trained (a resumed run keeps it; absent before it was recorded:
                               those runs trained "epsilon"), the settings and the data it was trained with

One history per run folder. Resuming from a checkpoint older than the newest starts a new branch:
the later checkpoints (the old branch's, or damaged ones skipped over) are moved to
RUN/abandoned/after-step-{step}-{time}/, so that "latest" follows the new branch and the metrics
hold each step once. A small journal written first (`.new-branch.json`) makes that move complete
even when a kill interrupts it. Old checkpoints are pruned by renaming them to a partial name
first (`base.files.remove_folder`): a kill while pruning leaves nothing that looks like a checkpoint.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
import zipfile
from pathlib import Path

import torch

from ..base import files
from .errors import DataError

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
METRICS = "metrics.jsonl"
TRAIN_STATE = "train_state.json"
ABANDONED = "abandoned"
BRANCH_JOURNAL = ".new-branch.json"
# what a checkpoint folder may hold (accelerate's files and ours): a folder of only these is one of ours
CHECKPOINT_FILES = (
    "model*.safetensors", "model*.bin", "optimizer*.bin", "scheduler*.bin", "sampler*.bin", "dl_state_dict*.bin",
    "random_states_*.pkl", "scaler.pt", "custom_checkpoint_*.pkl", "generators-*.safetensors", "ema.safetensors",
    METRICS, TRAIN_STATE,
)  # fmt: skip


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of the run's current branch, oldest step first (a checkpoint is complete once
    its train_state.json is in; while a new branch is being started, those it leaves behind are not listed)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    branch = _read_journal(run_dir)
    found = [
        (int(match[1]), path)
        for path in run_dir.iterdir()
        if (match := CHECKPOINT_PATTERN.match(path.name)) and (path / TRAIN_STATE).is_file()
    ]
    if branch is not None:
        found = [(step, path) for step, path in found if step < branch["step"] or path.name == branch.get("keep")]
    return [path for _, path in sorted(found)]


def resolve_resume(run_dir: str | Path, resume: str | None) -> Path | None:
    """The checkpoint `--resume` names: None (fresh run), "latest" (the highest step in RUN, or None
    when RUN has none yet, so that a restarted job simply begins), or a checkpoint folder."""
    if resume is None:
        return None
    if resume == "latest":
        checkpoints = list_checkpoints(run_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume)
    if not (path / TRAIN_STATE).is_file():
        raise DataError(f"No training checkpoint at {path} (expected a checkpoint-STEP folder with train_state.json).")
    return path


def choose_checkpoint(run_dir: str | Path, resume: str | None) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The checkpoint to resume from, checked (`checkpoint_problem`), and the damaged ones passed over:
    "latest" falls back to the newest whole checkpoint; a checkpoint named explicitly that is damaged is refused."""
    if resume is None:
        return None, []
    if resume != "latest":
        checkpoint = resolve_resume(run_dir, resume)
        problem = checkpoint_problem(checkpoint)
        if problem:
            raise DataError(f"Cannot resume from {checkpoint}: {problem}. Resume from another checkpoint.")
        return checkpoint, []
    damaged = []
    for checkpoint in reversed(list_checkpoints(run_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint, damaged
        damaged.append((checkpoint, problem))
    if damaged:
        names = ", ".join(path.name for path, _ in damaged)
        raise DataError(
            f"Every checkpoint in {run_dir} is damaged ({names}; {damaged[0][0].name}: {damaged[0][1]}): "
            "nothing to resume from. Start a new run in another folder."
        )
    return None, []


def checkpoint_problem(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint, read cheaply (safetensors headers and sizes, the directories of
    torch's zip files, train_state.json): a sentence naming the file, or None when it looks whole."""
    try:
        state = read_train_state(checkpoint)
        int(state["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{TRAIN_STATE} is missing or unreadable"
    if not any(checkpoint.glob("model*.safetensors")) and not any(checkpoint.glob("model*.bin")):
        return "it holds no model weights (model.safetensors)"
    for required in ("optimizer.bin", "scheduler.bin"):
        if not (checkpoint / required).is_file():
            return f"{required} is missing"
    for path in sorted(checkpoint.iterdir()):
        try:
            if path.suffix == ".safetensors":
                files.safetensors_header(path)
            elif path.suffix in (".bin", ".pkl", ".pt"):
                with zipfile.ZipFile(path):  # torch.save's format; opening reads the directory at its end
                    pass
        except files.DamagedFile as error:
            return f"{path.name} is damaged: {error}"
        except (OSError, zipfile.BadZipFile):
            return f"{path.name} is damaged: cut short, or not what torch.save writes"
    return None


def read_train_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / TRAIN_STATE).read_text())


def prune_checkpoints(run_dir: str | Path, keep: int | None) -> list[Path]:
    """Delete all but the `keep` newest complete checkpoints (none when keep is None); returns the deleted ones."""
    if keep is None:
        return []
    checkpoints = list_checkpoints(run_dir)
    doomed = checkpoints[:-keep] if keep > 0 else checkpoints
    for path in doomed:
        files.remove_folder(path)
    return doomed


def remove_fragments(run_dir: Path) -> list[Path]:
    """Remove checkpoint-STEP folders without train_state.json that hold only checkpoint files (what a kill
    while an older version pruned left); returns the incomplete ones that hold anything else, left alone."""
    kept = []
    for path in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if not CHECKPOINT_PATTERN.match(path.name) or not path.is_dir() or (path / TRAIN_STATE).is_file():
            continue
        contents = list(path.iterdir())
        if all(item.is_file() and any(fnmatch.fnmatch(item.name, p) for p in CHECKPOINT_FILES) for item in contents):
            files.remove_folder(path)
        else:
            kept.append(path)
    return kept


def start_branch(run_dir: Path, checkpoint: Path) -> tuple[list[Path], Path | None]:
    """Resuming from `checkpoint`: move the run's checkpoints from its step on (other than itself) out of the
    way, to RUN/abandoned/after-step-{step}-{time}/; returns (the ones moved, where to)."""
    step = read_train_state(checkpoint)["step"]
    later = [
        path
        for path in list_checkpoints(run_dir) + _incomplete(run_dir)
        if step_of_name(path) >= step and path.resolve() != checkpoint.resolve()
    ]
    if not later:
        return [], None
    name = f"after-step-{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    destination, n = run_dir / ABANDONED / name, 1
    while destination.exists():  # two new branches within a second
        n += 1
        destination = run_dir / ABANDONED / f"{name}-{n}"
    keep = checkpoint.name if checkpoint.parent.resolve() == run_dir.resolve() else None
    journal = {"step": step, "keep": keep, "to": destination.relative_to(run_dir).as_posix()}
    files.write_json(run_dir / BRANCH_JOURNAL, journal, sync=True)
    finish_branch(run_dir)
    return sorted(later, key=step_of_name), destination


def finish_branch(run_dir: Path) -> None:
    """Complete a move `start_branch` began (a kill may have stopped it), then forget it."""
    branch = _read_journal(run_dir)
    if branch is None:
        return
    destination = run_dir / branch["to"]
    for path in sorted(run_dir.iterdir()):
        if CHECKPOINT_PATTERN.match(path.name) and step_of_name(path) >= branch["step"] and path.name != branch["keep"]:
            destination.mkdir(parents=True, exist_ok=True)
            path.rename(destination / path.name)
    files.sync_file(run_dir)
    (run_dir / BRANCH_JOURNAL).unlink()


def step_of_name(path: Path) -> int:
    match = CHECKPOINT_PATTERN.match(path.name)
    return int(match[1]) if match else -1


def _incomplete(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.iterdir() if CHECKPOINT_PATTERN.match(p.name) and not (p / TRAIN_STATE).is_file()]


def _read_journal(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / BRANCH_JOURNAL).read_text())
    except (OSError, ValueError):
        return None


def save_ema(ema, path: Path) -> None:
    from safetensors.torch import save_file

    state = ema.state_dict()
    tensors = {f"shadow.{i:05d}": p.detach().cpu().contiguous() for i, p in enumerate(state.pop("shadow_params"))}
    save_file(tensors, str(path), metadata={"counters": json.dumps(state)})


def load_ema(ema, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        state = json.loads(file.metadata()["counters"])
        state["shadow_params"] = [file.get_tensor(key) for key in sorted(file.keys())]
    ema.load_state_dict(state)


def save_generators(generators: dict[str, torch.Generator], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({name: g.get_state() for name, g in generators.items()}, str(path))


def load_generators(generators: dict[str, torch.Generator], path: Path) -> None:
    from safetensors.torch import load_file

    states = load_file(str(path))
    for name, generator in generators.items():
        generator.set_state(states[name])
