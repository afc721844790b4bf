"""Conversion of the authors' published FashionFlow checkpoint into diffusers model folders.

The published file `FashionFlow_checkpoint.pth` is a pickled dict `{'net': U-Net state dict,
'adapter': adapter state dict}` (training saves also hold `'opt'`). It is read with
`torch.load(weights_only=True)` only, which refuses anything but tensors and plain
containers. A pair of `.safetensors` state dicts in the same naming works too.

Key mapping
-----------
This table is the one place that relates the published key names to ours. A published
key is `<container prefix><block path><parameter>`: the prefix rule (first table) and then
at most one block rule (second table) rename it; anything else is kept as it is.
`{i}`, `{j}` and `{axis}` stand for one path segment (a level index, a block index,
`spatial` / `temporal`). Shapes are kept, except `conv_output.spatial_conv.weight`
([C, C, 1, 1], a 1x1 conv), which becomes a Linear weight [C, C].
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from .base.errors import INPUT, FashionFlowError, first_sentence
from .models.adapter import ConditionAdapter
from .models.unet import FashionFlowUNet


def _rules(text: str) -> list[tuple[str, str]]:
    """(published, ours) pairs from a table of two columns; lines starting with # are comments."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(published, ours) for published, ours in rows]


UNET_PREFIX_RULES = _rules(
    """
    # published prefix              ours
    to_timestep_cond.1.               time_embedding.linear.
    downs.{i}.0.                      down_levels.{i}.time_resnet.
    downs.{i}.1.{j}.                  down_levels.{i}.resnets.{j}.
    downs.{i}.2.                      down_levels.{i}.self_attention.
    downs.{i}.3.                      down_levels.{i}.downsample.
    downs.{i}.4.                      down_levels.{i}.cross_attention.
    ups.{i}.0.                        up_levels.{i}.time_resnet.
    ups.{i}.1.{j}.                    up_levels.{i}.resnets.{j}.
    ups.{i}.2.                        up_levels.{i}.self_attention.
    ups.{i}.3.                        up_levels.{i}.upsample.
    ups.{i}.4.                        up_levels.{i}.cross_attention.
    mid_block1.                       mid_block1.
    mid_attn.                         mid_attn.
    mid_block2.                       mid_block2.
    """
)

UNET_BLOCK_RULES = _rules(
    """
    # resnet blocks: the Linear of Sequential(SiLU, Linear)
    timestep_mlp.1.                   time_proj.
    # spatio-temporal self-attention
    {axis}_rel_pos_bias.net.0.0.      {axis}_rel_pos_bias.mlp.0.
    {axis}_rel_pos_bias.net.1.0.      {axis}_rel_pos_bias.mlp.2.
    {axis}_rel_pos_bias.net.2.        {axis}_rel_pos_bias.mlp.4.
    ff.proj_in.0.                     ff.proj_in.
    ff.proj_out.0.g                   ff.norm.g
    ff.proj_out.1.                    ff.proj_out.
    # down/upsampling: the conv of Sequential(Rearrange, Conv) / Sequential(Conv, Identity, Rearrange)
    down_space.1.                     down_space.
    down_time.1.                      down_time.
    up_space.0.                       up_space.
    up_time.0.                        up_time.
    # cross-attention blocks
    layernorm_2.                      attn_norm.
    attention_2.q_proj.               attn.to_q.
    attention_2.k_proj.               attn.to_k.
    attention_2.v_proj.               attn.to_v.
    attention_2.out_proj.             attn.to_out.
    layernorm_3.                      mlp_norm.
    linear_geglu_1.                   mlp_in.
    linear_geglu_2.                   mlp_out.
    conv_output.spatial_conv.         proj_out.
    """
)

ADAPTER_PREFIX_RULES = _rules(
    """
    vae2clip.                         latent_to_tokens.
    linear1.                          token_mixer.
    """
)

# Cross-attention head counts cannot be read off the weights; these are the published ones.
PUBLISHED_CROSS_ATTENTION_HEADS = (1, 1, 2, 4)
# The published adapter pools an 80 x 64 latent (a 640 x 512 portrait frame).
PUBLISHED_LATENT_SIZE = (80, 64)

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class CheckpointError(FashionFlowError, ValueError):
    """The file is not a FashionFlow checkpoint this converter can read."""

    kind = INPUT

    def __init__(self, message: str, missing: Iterable[str] = (), unexpected: Iterable[str] = ()):
        self.missing, self.unexpected = sorted(missing), sorted(unexpected)
        for title, keys in (("missing keys", self.missing), ("unexpected keys", self.unexpected)):
            if keys:
                shown = "\n  ".join(keys[:25]) + (f"\n  ... and {len(keys) - 25} more" if len(keys) > 25 else "")
                message += f"\n{len(keys)} {title}:\n  {shown}"
        super().__init__(message)


# key renaming -----------------------------------------------------------------------------------


@functools.cache
def _pattern(template: str) -> re.Pattern:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^.]+?)", re.escape(template)))


def _rename_start(key: str, rules, source: int) -> tuple[str, str]:
    """Split `key` into (renamed start, rest) by the first rule whose `source` column matches its start."""
    for rule in rules:
        match = _pattern(rule[source]).match(key)
        if match:
            return rule[1 - source].format(**match.groupdict()), key[match.end() :]
    return "", key


def rename_key(key: str, prefix_rules, block_rules=(), *, to_published: bool = False) -> str:
    """Published key -> our key (or the reverse with `to_published`)."""
    source = 1 if to_published else 0
    prefix, rest = _rename_start(key, prefix_rules, source)
    block, rest = _rename_start(rest, block_rules, source)
    return prefix + block + rest


def rename_unet_key(key: str, to_published: bool = False) -> str:
    return rename_key(key, UNET_PREFIX_RULES, UNET_BLOCK_RULES, to_published=to_published)


def rename_adapter_key(key: str, to_published: bool = False) -> str:
    return rename_key(key, ADAPTER_PREFIX_RULES, to_published=to_published)


# reading checkpoints -----------------------------------------------------------------------------


def load_published_checkpoint(*paths: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read (unet_state_dict, adapter_state_dict) in the published naming.

    Takes the authors' `.pth` file, or two `.safetensors` state dicts (U-Net and adapter, in
    either order: the adapter is the one with `vae2clip.weight`).
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if len(paths) == 1 and paths[0].suffix in CHECKPOINT_SUFFIXES:
        return _load_pickled_checkpoint(paths[0])
    if len(paths) == 2 and all(p.suffix == ".safetensors" for p in paths):
        first, second = (_load_safetensors(p) for p in paths)
        return (second, first) if "vae2clip.weight" in first else (first, second)
    raise CheckpointError(
        "Give either the published .pth checkpoint (FashionFlow_checkpoint.pth) or two .safetensors "
        f"state dicts (U-Net and adapter); got: {', '.join(map(str, paths))}"
    )


def _load_pickled_checkpoint(path: Path):
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the download or copy did not finish. Fetch it again.")
    try:
        # weights_only: tensors and plain containers only, never arbitrary objects from the pickle.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on pickle protocols: not for users
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(_unreadable_checkpoint(path, error)) from None
    if not isinstance(checkpoint, Mapping) or not {"net", "adapter"} <= set(checkpoint):
        found = sorted(map(str, checkpoint))[:10] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path} is not a FashionFlow checkpoint: expected a dict with 'net' (U-Net) and 'adapter' "
            f"state dicts; found {found}."
        )
    return _strip_module_prefix(checkpoint["net"]), _strip_module_prefix(checkpoint["adapter"])


def _unreadable_checkpoint(path: Path, error: Exception) -> str:
    """Why torch.load refused `path`, in words; never torch's advice to turn its safety off."""
    import pickle

    text = str(error)
    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in text:
        return (
            f"{path} holds Python objects besides tensors, and those are never loaded, since loading them could "
            "run code hidden in the file. A checkpoint of weights has none: this is not the published "
            "checkpoint, or it has been altered. Download it again from the authors' link."
        )
    if isinstance(error, (EOFError, RuntimeError)) and (not text or "zip archive" in text or "corrupted" in text):
        return f"{path} is incomplete or damaged (it ends early or its contents are corrupt). Download it again."
    if isinstance(error, (KeyError, pickle.UnpicklingError, UnicodeDecodeError, ValueError, EOFError)):
        return f"{path} is not a PyTorch checkpoint: its contents are not what torch.save writes. Check the file."
    return (
        f"{path} is not a PyTorch checkpoint of tensors that can be read ({first_sentence(text) or type(error).__name__}). "
        "Check that it is FashionFlow_checkpoint.pth, or download it again."
    )


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except Exception as error:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({first_sentence(str(error)) or type(error).__name__}). "
            "Check the file, or download it again."
        ) from None


def _strip_module_prefix(state_dict) -> dict[str, torch.Tensor]:
    """State dicts saved from a DistributedDataParallel wrapper carry a 'module.' prefix."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"Expected a state dict of tensors; got {type(state_dict).__name__}.")
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


# config inference --------------------------------------------------------------------------------


def infer_unet_config(state_dict: Mapping[str, torch.Tensor], cross_attention_heads=None) -> dict:
    """The FashionFlowUNet config that a published-naming state dict was made with."""
    sd = state_dict
    try:
        base, in_channels, conv_in_k, _ = sd["conv_in.spatial_conv.weight"].shape
        levels = sorted({int(k.split(".")[1]) for k in sd if k.startswith("downs.")})
        if not levels or levels != list(range(len(levels))):
            raise KeyError("downs.0")
        attending = [i for i in levels if f"downs.{i}.2.spatial_attn.to_q.weight" in sd]
        config = dict(
            in_channels=in_channels,
            base_channels=base,
            channel_mults=[sd[f"downs.{i}.0.block1.project.spatial_conv.weight"].shape[0] // base for i in levels],
            resnet_depths=[len({k.split(".")[3] for k in sd if k.startswith(f"downs.{i}.1.")}) for i in levels],
            self_attention_levels=[i in attending for i in levels],
            temporal_downsample_levels=[f"downs.{i}.3.down_time.1.weight" in sd for i in levels],
            mid_attention_heads=sd["mid_attn.spatial_rel_pos_bias.net.2.weight"].shape[0],
            mid_attention_head_dim=_head_dim(sd, "mid_attn."),
            context_dim=sd["downs.0.4.attention_2.k_proj.weight"].shape[1],
            resnet_kernel_size=sd["downs.0.0.block1.project.spatial_conv.weight"].shape[-1],
            conv_in_kernel_size=conv_in_k,
            conv_in_temporal_kernel_size=sd["conv_in.temporal_conv.weight"].shape[-1],
            conv_out_kernel_size=sd["conv_out.spatial_conv.weight"].shape[-1],
            conv_out_temporal_kernel_size=sd["conv_out.temporal_conv.weight"].shape[-1],
        )
        if attending:
            config["attention_heads"] = sd[f"downs.{attending[0]}.2.spatial_rel_pos_bias.net.2.weight"].shape[0]
            config["attention_head_dim"] = _head_dim(sd, f"downs.{attending[0]}.2.")
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as error:
        raise _not_a_checkpoint("U-Net", state_dict, FashionFlowUNet, rename_unet_key, error) from None

    if cross_attention_heads is None:
        if len(levels) != len(PUBLISHED_CROSS_ATTENTION_HEADS):
            raise CheckpointError(
                f"This U-Net has {len(levels)} levels; the published cross-attention head counts are for "
                f"{len(PUBLISHED_CROSS_ATTENTION_HEADS)}. Pass cross_attention_heads (one count per level)."
            )
        cross_attention_heads = PUBLISHED_CROSS_ATTENTION_HEADS
    config["cross_attention_heads"] = list(cross_attention_heads)
    return config


def _head_dim(sd, prefix: str) -> int:
    heads = sd[prefix + "spatial_rel_pos_bias.net.2.weight"].shape[0]
    return sd[prefix + "spatial_attn.to_q.weight"].shape[0] // heads


def infer_adapter_config(state_dict: Mapping[str, torch.Tensor], latent_size=None) -> dict:
    """The ConditionAdapter config of a published-naming adapter state dict.

    The pooled latent is flattened, so its height and width are not in the weights: the
    published 80 x 64 latent is assumed when the size fits, else a square one, else
    `latent_size` must be given.
    """
    try:
        context_dim, in_features = state_dict["vae2clip.weight"].shape
        clip_tokens, mixed_tokens = state_dict["linear1.weight"].shape
    except (KeyError, ValueError) as error:
        raise _not_a_checkpoint("adapter", state_dict, ConditionAdapter, rename_adapter_key, error) from None
    pool = 2
    if latent_size is None:
        side = round(in_features**0.5)
        if in_features == (PUBLISHED_LATENT_SIZE[0] // pool) * (PUBLISHED_LATENT_SIZE[1] // pool):
            latent_size = PUBLISHED_LATENT_SIZE
        elif side * side == in_features:
            latent_size = (side * pool, side * pool)
        else:
            raise CheckpointError(
                f"The adapter takes {in_features} pooled latent pixels, which is neither the published 80 x 64 latent "
                "nor a square one; give latent_size (height, width) explicitly."
            )
    return dict(
        latent_size=list(latent_size),
        latent_channels=mixed_tokens - clip_tokens,
        pool_size=pool,
        clip_tokens=clip_tokens,
        context_dim=context_dim,
    )


def _not_a_checkpoint(what, state_dict, model_class, rename, error) -> CheckpointError:
    with torch.device("meta"):
        expected = {rename(k, to_published=True) for k in model_class().state_dict()}
    found = set(state_dict)
    return CheckpointError(
        f"This is not a FashionFlow {what} state dict (could not read {error}); compared with the published layout:",
        missing=expected - found,
        unexpected=found - expected,
    )


# conversion -------------------------------------------------------------------------------------------


def _load_renamed(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], rename, what: str):
    ours = model.state_dict()
    renamed = {rename(k): v for k, v in state_dict.items()}
    missing = {rename(k, to_published=True) for k in ours.keys() - renamed.keys()}
    unexpected = {k for k, v in state_dict.items() if rename(k) not in ours}
    if missing or unexpected:
        raise CheckpointError(f"The {what} state dict does not match the FashionFlow layout.", missing, unexpected)
    mismatched = []
    for key, tensor in renamed.items():
        target = ours[key].shape
        if tensor.shape != target:
            if tensor.numel() == ours[key].numel() and tensor.squeeze().shape == ours[key].squeeze().shape:
                renamed[key] = tensor.reshape(target)  # 1x1 conv weight -> Linear weight
            else:
                mismatched.append(f"{rename(key, to_published=True)}: {tuple(tensor.shape)}, expected {tuple(target)}")
    if mismatched:
        raise CheckpointError(f"{len(mismatched)} {what} tensors have the wrong shape:\n  " + "\n  ".join(mismatched))
    model.load_state_dict(renamed, strict=True)
    return model.eval()  # like from_pretrained


def convert_unet(state_dict: Mapping[str, torch.Tensor], cross_attention_heads=None) -> FashionFlowUNet:
    """A FashionFlowUNet holding a published-naming U-Net state dict."""
    unet = FashionFlowUNet(**infer_unet_config(state_dict, cross_attention_heads))
    return _load_renamed(unet, state_dict, rename_unet_key, "U-Net")


def convert_adapter(state_dict: Mapping[str, torch.Tensor], latent_size=None) -> ConditionAdapter:
    """A ConditionAdapter holding a published-naming adapter state dict."""
    adapter = ConditionAdapter(**infer_adapter_config(state_dict, latent_size))
    return _load_renamed(adapter, state_dict, rename_adapter_key, "adapter")


def convert_checkpoint(
    *checkpoint: str | Path,
    output_dir: str | Path | None = None,
    cross_attention_heads=None,
    latent_size=None,
) -> tuple[FashionFlowUNet, ConditionAdapter]:
    """Convert the published checkpoint (one .pth, or U-Net + adapter .safetensors).

    With `output_dir`, writes `output_dir/unet` and `output_dir/adapter` as diffusers folders
    (config.json + diffusion_pytorch_model.safetensors) that `from_pretrained` loads.
    """
    unet_sd, adapter_sd = load_published_checkpoint(*checkpoint)
    unet = convert_unet(unet_sd, cross_attention_heads)
    adapter = convert_adapter(adapter_sd, latent_size)
    if output_dir is not None:
        output_dir = Path(output_dir)
        unet.save_pretrained(output_dir / "unet", safe_serialization=True)
        adapter.save_pretrained(output_dir / "adapter", safe_serialization=True)
    return unet, adapter
