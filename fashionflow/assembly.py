"""Putting a FashionFlowPipeline together from its parts, and saving it as a folder with its model card.

Every pipeline FashionFlow makes comes through here: the published weights converted and joined to
Stable Diffusion's VAE and CLIP (`hub`), a trained U-Net and adapter joined to their model's VAE and
CLIP (`training`), tiny random models (`tiny`, the training benchmark). So every one has the same
components, the published noise schedule unless told otherwise, and its models in eval mode, as
`from_pretrained` leaves them; and every folder is written whole, with a model card of one layout.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .base.files import atomic_folder


def assemble_pipeline(
    vae,
    image_encoder,
    feature_extractor,
    unet,
    adapter,
    *,
    scheduler=None,
    clip_preprocessing: str = "published-checkpoint",
    untrained: bool = False,
    tiny_vae=None,
):
    """A FashionFlowPipeline of these parts (`scheduler`: the published one unless given), every model in eval mode."""
    from .pipeline import FashionFlowPipeline
    from .schedulers import published_scheduler

    pipeline = FashionFlowPipeline(
        vae=vae,
        image_encoder=image_encoder,
        feature_extractor=feature_extractor,
        unet=unet,
        adapter=adapter,
        scheduler=scheduler if scheduler is not None else published_scheduler(),
        clip_preprocessing=clip_preprocessing,
        untrained=untrained,
        tiny_vae=tiny_vae,
    )
    for model in (pipeline.vae, pipeline.image_encoder, pipeline.unet, pipeline.adapter, pipeline.tiny_vae):
        if model is not None:
            model.eval()  # the VAE decodes differently in training mode
    return pipeline


def random_image_encoder(clip_config: Mapping) -> tuple:
    """(CLIP vision model with random weights, an image processor sized to it) of a CLIPVisionConfig's settings."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from ._compat import clip_image_processor_class

    config = CLIPVisionConfig(**clip_config)
    processor = clip_image_processor_class()(
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
    )
    return CLIPVisionModel(config), processor


def clip_tokens(image_encoder) -> int:
    """The tokens of CLIP's last hidden state (patches and the class token): what the adapter mixes."""
    config = image_encoder.config
    return (config.image_size // config.patch_size) ** 2 + 1


def save_pipeline(pipeline, folder: str | os.PathLike, card: str, files: Mapping[str, str] | None = None) -> Path:
    """Write `folder` whole or not at all: the pipeline (safetensors), its model card (README.md) and
    any other text `files` (name -> text); an earlier folder there is replaced."""
    with atomic_folder(folder) as staging:
        pipeline.save_pretrained(staging, safe_serialization=True)
        (staging / "README.md").write_text(card)
        for name, text in (files or {}).items():
            (staging / name).write_text(text)
    return Path(folder)


# the model card ------------------------------------------------------------------------------------------------


def model_card(
    title: str,
    made: str,
    sections: Sequence[tuple[str | None, str]],
    tags: Sequence[str] = (),
    license: str | None = None,
) -> str:
    """A pipeline folder's README.md: front matter (diffusers, image-to-video), `title`, how it was
    `made`, how to load it, then `sections` as (heading or None, markdown)."""
    from . import __version__

    front = ["library_name: diffusers", "pipeline_tag: image-to-video", f"tags: [{', '.join(['fashionflow', *tags])}]"]
    if license:
        front.append(f"license: {license}")
    parts = [
        "---\n" + "\n".join(front) + "\n---",
        f"# {title}",
        f"{made} (fashionflow {__version__}, {datetime.date.today().isoformat()}). Load it with",
        '```python\nfrom fashionflow import FashionFlowPipeline\npipe = FashionFlowPipeline.from_pretrained("path/to/this/folder")\n```',
        "or `python -m fashionflow generate PHOTO.jpg -o video.mp4 --model FOLDER`, or `python app.py --model FOLDER`.",
    ]
    for heading, body in sections:
        parts.append(f"## {heading}\n\n{body.strip()}" if heading else body.strip())
    return "\n\n".join(parts) + "\n"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def bullets(items: Sequence[str]) -> str:
    """A markdown list (items may run over several lines)."""
    return "\n".join(f"- {item}" for item in items)
