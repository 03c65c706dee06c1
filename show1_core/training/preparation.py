"""Getting a training run ready: the stage's frame settings, the training precision and the cached T5 embeddings."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from ..loading.components import load_text_encoder
from ..loading.registry import ModelRole
from ..loading.weights import parse_dtype
from ..memory import ModelPlacer
from ..settings import PAPER_SETTINGS
from ..stages.interpolation import interpolated_fps
from ..text import EmbeddingCache, EncoderKind, TextEncoder, TextEncoderSpec, load_tokenizer
from .trainer import CaptionEmbeddings


def stage_defaults(stage: ModelRole) -> dict:
    """Frames, frame rate and size a stage sees at inference with the paper's settings."""
    keyframes, interpolation = PAPER_SETTINGS.keyframes, PAPER_SETTINGS.interpolation
    if stage == ModelRole.INTERPOLATION:
        return dict(
            frames=interpolation.frames_between + 2,
            fps=interpolated_fps(keyframes.fps, interpolation.frames_between),
            height=keyframes.height,
            width=keyframes.width,
        )
    return dict(frames=keyframes.num_frames, fps=keyframes.fps, height=keyframes.height, width=keyframes.width)


def training_dtype(device: torch.device, precision: str | None) -> torch.dtype:
    """The base weights' precision: as asked, else bf16 on a GPU that has it (fp16 otherwise) and fp32 on the CPU."""
    if precision:
        return parse_dtype(precision)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def encode_captions(t5_folder: Path, captions: list[str], device: torch.device, cache_dir: Path | None) -> CaptionEmbeddings:
    """T5 embeddings of every caption and of the empty prompt, loading the encoder at most once (cached on disk)."""
    spec = TextEncoderSpec(t5_folder, EncoderKind.T5, dtype=torch.float32 if device.type == "cpu" else torch.float16)

    @functools.cache
    def load_once():
        return load_tokenizer(t5_folder / "tokenizer", EncoderKind.T5), load_text_encoder(t5_folder / "text_encoder", dtype=spec.dtype)

    encoder = TextEncoder(spec, ModelPlacer(device), EmbeddingCache(cache_dir), loader=load_once)
    by_caption, empty = {}, None
    for caption in captions:
        embeds = encoder.encode(caption, "")
        by_caption[caption], empty = embeds.positive.float(), embeds.negative.float()
    return CaptionEmbeddings(by_caption=by_caption, empty=empty)
