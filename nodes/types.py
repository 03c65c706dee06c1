"""Socket types of the Show-1 pack and the values that travel on them.

Every model socket has its own type, so ComfyUI refuses to wire the model of one stage
into another stage (or T5 embeddings into the CLIP-conditioned stage 4). The nodes check
the values again at run time, because an API-format prompt can be written by hand. A model
socket carries a :class:`~show1_core.host.PlacedModel`: the loaded stage, how it reaches the
accelerator, and its memory policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from show1_core import EncoderKind, InputError, ModelRole, PromptEmbeds, SpeedSettings, TextEncoder
from show1_core.host import PlacedModel

KEYFRAME_MODEL = "SHOW1_KEYFRAME_MODEL"
INTERPOLATION_MODEL = "SHOW1_INTERPOLATION_MODEL"
PIXEL_SR_MODEL = "SHOW1_PIXEL_SR_MODEL"
FIRST_FRAME_MODEL = "SHOW1_FIRST_FRAME_MODEL"
LATENT_SR_MODEL = "SHOW1_LATENT_SR_MODEL"
T5_ENCODER = "SHOW1_T5"
CLIP_ENCODER = "SHOW1_CLIP"
T5_EMBEDS = "SHOW1_T5_EMBEDS"
CLIP_EMBEDS = "SHOW1_CLIP_EMBEDS"
SPEED = "SHOW1_SPEED"
"""Speed settings for the stage-model loaders (a :class:`~show1_core.SpeedSettings`)."""

MODEL_TYPE = {
    ModelRole.KEYFRAMES: KEYFRAME_MODEL,
    ModelRole.INTERPOLATION: INTERPOLATION_MODEL,
    ModelRole.PIXEL_SR: PIXEL_SR_MODEL,
    ModelRole.FIRST_FRAME: FIRST_FRAME_MODEL,
    ModelRole.LATENT_SR: LATENT_SR_MODEL,
}
ENCODER_TYPE = {EncoderKind.T5: T5_ENCODER, EncoderKind.CLIP: CLIP_ENCODER}
EMBEDS_TYPE = {EncoderKind.T5: T5_EMBEDS, EncoderKind.CLIP: CLIP_EMBEDS}
ENCODER_TITLE = {EncoderKind.T5: "T5 (stages 1-3)", EncoderKind.CLIP: "CLIP (stage 4)"}


@dataclass
class EncoderHandle:
    """A text encoder (loaded lazily, on a cache miss) and its embeddings cache."""

    encoder: TextEncoder

    @property
    def kind(self) -> EncoderKind:
        """T5 or CLIP."""
        return self.encoder.spec.kind


@dataclass(frozen=True)
class Embeddings:
    """Prompt embeddings tagged with the encoder that made them."""

    kind: EncoderKind
    embeds: PromptEmbeds


def expect_stage(value: object, stage: ModelRole, input_name: str) -> PlacedModel:
    """The placed stage on ``input_name``; a clear error for anything else or another stage's model."""
    if not isinstance(value, PlacedModel):
        raise InputError(
            f"the {input_name!r} input needs a {MODEL_TYPE[stage]} from the Show-1 {stage.title} loader, got {type(value).__name__}"
        )
    value.model.require(stage)
    return value


def expect_encoder(value: object, kind: EncoderKind, input_name: str) -> EncoderHandle:
    """The text encoder on ``input_name``; a clear error for the other encoder or anything else."""
    if not isinstance(value, EncoderHandle) or value.kind != kind:
        got = ENCODER_TITLE[value.kind] if isinstance(value, EncoderHandle) else type(value).__name__
        raise InputError(f"the {input_name!r} input needs the {ENCODER_TITLE[kind]} text encoder, got {got}")
    return value


def expect_embeddings(value: object, kind: EncoderKind, input_name: str) -> PromptEmbeds:
    """The prompt embeddings on ``input_name``; a clear error for embeddings of the other encoder."""
    if value is None:
        raise InputError(
            f"the {input_name!r} input carries no embeddings: connect the {ENCODER_TITLE[kind]} text encoder "
            "to the Show-1 Text Encode node that feeds it"
        )
    if not isinstance(value, Embeddings) or value.kind != kind:
        got = f"{ENCODER_TITLE[value.kind]} embeddings" if isinstance(value, Embeddings) else type(value).__name__
        raise InputError(f"the {input_name!r} input needs {ENCODER_TITLE[kind]} embeddings, got {got}")
    return value.embeds


def expect_speed(value: object, input_name: str) -> SpeedSettings:
    """The speed settings on ``input_name``; a clear error for anything else."""
    if not isinstance(value, SpeedSettings):
        raise InputError(f"the {input_name!r} input needs {SPEED} from Show-1 Speed Settings, got {type(value).__name__}")
    return value
