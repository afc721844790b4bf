"""Training checkpoints: RUN/checkpoint-{step}/, written whole or not at all, found again by `--resume`.

A checkpoint holds what `accelerator.save_state` writes (the U-Net + adapter weights, optimiser,
learning-rate schedule, accelerate's RNG states), plus, written here as safetensors and JSON:

    ema.safetensors            the EMA weights and counters (when EMA is on)
    generators.safetensors     each process's noise generator (timesteps, noise, VAE samples)
    train_state.json           step, epoch, batches already taken from that epoch, samples seen, and the
                               prediction type trained (a resumed run keeps it; absent before it was recorded:
                               those runs trained "epsilon")
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from .errors import DataError

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints in `run_dir`, oldest step first (a checkpoint is complete once its train_state.json is in)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [
        (int(match[1]), path)
        for path in run_dir.iterdir()
        if (match := CHECKPOINT_PATTERN.match(path.name)) and (path / "train_state.json").is_file()
    ]
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
    if not (path / "train_state.json").is_file():
        raise DataError(f"No training checkpoint at {path} (expected a checkpoint-STEP folder with train_state.json).")
    return path


def read_train_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "train_state.json").read_text())


def prune_checkpoints(run_dir: str | Path, keep: int | None) -> list[Path]:
    """Delete all but the `keep` newest complete checkpoints (none when keep is None); returns the deleted ones."""
    if keep is None:
        return []
    checkpoints = list_checkpoints(run_dir)
    doomed = checkpoints[:-keep] if keep > 0 else checkpoints
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


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
