"""Workarounds for third-party behaviour, each with the reason it exists."""

import logging


class _EmptyKeepInFp32Warning(logging.Filter):
    """diffusers 0.42 warns on every `ModelMixin.to(dtype)` that "there are modules that should be
    kept in float32: []" (its list defaults to [] and is then tested against None). With an empty
    list there is nothing to warn about; other lists still get through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("There are modules in") or ": []." not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_EmptyKeepInFp32Warning())


class _TinyAutoencoderOwnConfigWarning(logging.Filter):
    """AutoencoderTiny registers `block_out_channels` in its own config (diffusers 0.42) but does not
    take it back as an argument, so every saved one warns, when loaded, that the key "will be ignored"."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            "were passed to AutoencoderTiny" in message
            and message.startswith("The config attributes {'block_out_channels'")
            and message.count(":") == 1
        )


logging.getLogger("diffusers.configuration_utils").addFilter(_TinyAutoencoderOwnConfigWarning())


def clip_image_processor_class():
    """CLIP's PIL-based image processor: bit-identical to the transformers 4.x one the checkpoint was
    trained with (also for the checkpoint's [0, 1]-float quirk), with or without torchvision installed.
    transformers 5 otherwise picks a torchvision backend when it can, which resizes differently."""
    import transformers

    try:
        return transformers.CLIPImageProcessorPil
    except AttributeError:  # transformers 4.x: the PIL implementation is the only one
        return transformers.CLIPImageProcessor
