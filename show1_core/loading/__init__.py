"""Finding, downloading and loading Show-1 checkpoints."""

from .components import load_scheduler, load_text_encoder, load_unet, load_vae
from .registry import KNOWN_CHECKPOINTS, KnownCheckpoint, Stage, known_checkpoint
from .stage_model import StageModel, load_stage_model
from .weights import parse_dtype, read_state_dict

__all__ = [
    "KNOWN_CHECKPOINTS",
    "KnownCheckpoint",
    "Stage",
    "StageModel",
    "known_checkpoint",
    "load_scheduler",
    "load_stage_model",
    "load_text_encoder",
    "load_unet",
    "load_vae",
    "parse_dtype",
    "read_state_dict",
]
