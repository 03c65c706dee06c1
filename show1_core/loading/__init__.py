"""Finding, downloading and loading Show-1 checkpoints."""

from .components import load_scheduler, load_text_encoder, load_unet, load_vae
from .detect import stage_of_unet_config
from .registry import CHECKPOINT_FOR_STAGE, KNOWN_CHECKPOINTS, T5_CHECKPOINT, T5_DOWNLOAD_GB, KnownCheckpoint, ModelRole, known_checkpoint
from .stage_model import StageModel, load_stage_model
from .weights import DTYPES, parse_dtype, read_state_dict

__all__ = [
    "CHECKPOINT_FOR_STAGE",
    "DTYPES",
    "KNOWN_CHECKPOINTS",
    "KnownCheckpoint",
    "ModelRole",
    "StageModel",
    "T5_CHECKPOINT",
    "T5_DOWNLOAD_GB",
    "known_checkpoint",
    "load_scheduler",
    "load_stage_model",
    "load_text_encoder",
    "load_unet",
    "load_vae",
    "parse_dtype",
    "read_state_dict",
    "stage_of_unet_config",
]
