"""Show-1 Text Encode: one prompt for the whole cascade, encoded by T5 (stages 1-3) and/or CLIP (stage 4)."""

from __future__ import annotations

from show1_core import PAPER_SETTINGS, EncoderKind, InputError, PromptEmbeds

from .model_folders import client_safe
from .types import CLIP_EMBEDS, CLIP_ENCODER, T5_EMBEDS, T5_ENCODER, Embeddings, EncoderHandle, expect_encoder
from .widgets import socket

DEFAULT_PROMPT = "a panda playing guitar on the beach"


class TextEncode:
    """Encodes a prompt and its negative prompts for the Show-1 stages.

    Connect the T5 encoder for stages 1-3 and the CLIP encoder for stage 4 (either or both).
    Embeddings are cached per encoder and prompt, in memory and on disk, so the 19 GB T5
    encoder is only loaded for prompts it has not seen.
    """

    FUNCTION = "encode"
    CATEGORY = "Show-1"
    RETURN_TYPES = (T5_EMBEDS, CLIP_EMBEDS)
    RETURN_NAMES = ("t5_embeds", "clip_embeds")
    OUTPUT_TOOLTIPS = (
        "T5 embeddings of the prompt and negative prompt, for the keyframes, interpolation and pixel SR stages.",
        "CLIP embeddings of the prompt and CLIP negative prompt, for the expert latent SR stage.",
    )
    DESCRIPTION = (
        "Encodes one prompt for the Show-1 cascade: T5 embeddings for stages 1-3 and CLIP embeddings for stage 4 "
        "(connect the encoders you need). Embeddings are cached, so the T5 encoder only loads for new prompts."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The prompt, the negative prompts and the two (optional) encoders."""
        return {
            "required": {
                "prompt": ("STRING", {"default": DEFAULT_PROMPT, "multiline": True, "tooltip": "What the video shows."}),
                "negative_prompt": (
                    "STRING",
                    {
                        "default": PAPER_SETTINGS.negative_prompt,
                        "multiline": True,
                        "tooltip": "Negative prompt of the T5 stages 1-3 (the paper leaves it empty).",
                    },
                ),
                "clip_negative_prompt": (
                    "STRING",
                    {
                        "default": PAPER_SETTINGS.latent_negative_prompt,
                        "multiline": True,
                        "tooltip": "Negative prompt of the CLIP-conditioned stage 4 (the paper uses 'low resolution, blur').",
                    },
                ),
                "clean_caption": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Clean the prompt as DeepFloyd IF does before T5 encoding (needs the ftfy and "
                        "beautifulsoup4 packages). Off: lower-cased and stripped, as the paper runs.",
                    },
                ),
            },
            "optional": {
                "t5": socket(T5_ENCODER, "The T5 text encoder (Show-1 T5 loader) for stages 1-3."),
                "clip": socket(CLIP_ENCODER, "The CLIP text encoder (Show-1 CLIP loader) for stage 4."),
            },
        }

    @client_safe
    def encode(
        self,
        prompt: str,
        negative_prompt: str,
        clip_negative_prompt: str,
        clean_caption: bool,
        t5: EncoderHandle | None = None,
        clip: EncoderHandle | None = None,
    ) -> tuple[Embeddings | None, Embeddings | None]:
        """Embeddings from each connected encoder (``None`` for an unconnected one)."""
        if t5 is None and clip is None:
            raise InputError("Show-1 Text Encode needs a text encoder: connect the T5 loader, the CLIP loader, or both")
        t5_embeds = clip_embeds = None
        if t5 is not None:
            handle = expect_encoder(t5, EncoderKind.T5, "t5")
            t5_embeds = Embeddings(EncoderKind.T5, _encode(handle, prompt, negative_prompt, clean_caption))
        if clip is not None:
            handle = expect_encoder(clip, EncoderKind.CLIP, "clip")
            clip_embeds = Embeddings(EncoderKind.CLIP, _encode(handle, prompt, clip_negative_prompt, False))
        return (t5_embeds, clip_embeds)


def _encode(handle: EncoderHandle, prompt: str, negative: str, clean_caption: bool) -> PromptEmbeds:
    """Encode (the encoder loads, under ComfyUI's model management, only for prompts not in the cache)."""
    return handle.encoder.encode(prompt, negative, clean_caption)
