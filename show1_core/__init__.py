"""show1_core: the Show-1 text-to-video cascade on PyTorch, diffusers and transformers.

The names in ``__all__`` are the public face a Python user reads in the README: the cascade, the
stage functions' settings, loading, motion LoRAs and the errors. They are imported on first use,
so ``import show1_core`` itself is instant. What only a host application such as the ComfyUI node
pack needs (placing models, memory policy settings, limits and checks) is in :mod:`show1_core.host`;
the node pack imports nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "cascade": ("CascadeCheckpoints", "CascadeResult", "Phase", "Show1Cascade"),
    "console": ("RunDisplay",),
    "embeds": ("PromptEmbeds",),
    "errors": (
        "CheckpointError",
        "CorruptCheckpointError",
        "GatedRepoAccessError",
        "GenerationCancelled",
        "HubError",
        "InputError",
        "InvalidSettingsError",
        "MissingFilesError",
        "NonFiniteOutputError",
        "OfflineError",
        "OutOfMemoryError",
        "Show1Error",
        "StateDictMismatchError",
        "UnsafeCheckpointError",
        "WrongStageError",
    ),
    "loading": (
        "CHECKPOINT_FOR_STAGE",
        "DTYPES",
        "KNOWN_CHECKPOINTS",
        "KnownCheckpoint",
        "ModelRole",
        "StageModel",
        "T5_CHECKPOINT",
        "T5_DOWNLOAD_GB",
        "known_checkpoint",
        "load_stage_model",
        "parse_dtype",
    ),
    "loading.hub": ("DEFAULT_MODELS_DIR_ENV", "default_models_dir", "resolve_checkpoint", "resolve_t5_tokenizer"),
    "loading.t5_file": ("load_t5_file",),
    "memory": ("MemoryPolicy",),
    "model_setup": ("ModelSetup",),
    "motion_lora": (
        "MotionLora",
        "MotionLoraInfo",
        "load_motion_lora",
        "motion_loras",
        "parse_lora_spec",
        "read_motion_lora_info",
        "with_motion_loras",
    ),
    "settings": (
        "ATTENTION_BACKENDS",
        "CACHE_METHODS",
        "COMPILE_BACKENDS",
        "PAPER_SETTINGS",
        "CacheSettings",
        "CascadeSettings",
        "FirstFrameSettings",
        "InterpolationSettings",
        "KeyframeSettings",
        "LatentSRSettings",
        "PixelSRSettings",
        "SpeedSettings",
        "StageCaches",
    ),
    "stages": ("StepCallback", "StepEvent", "interpolated_fps"),
    "text": ("EmbeddingCache", "EncoderKind", "TextEncoder", "TextEncoderSpec", "embeddings_cache_dir"),
}
if TYPE_CHECKING:  # the lazy names above, for editors and type checkers (tests/test_public_surface.py keeps them equal)
    from .cascade import CascadeCheckpoints, CascadeResult, Phase, Show1Cascade
    from .console import RunDisplay
    from .embeds import PromptEmbeds
    from .errors import (
        CheckpointError,
        CorruptCheckpointError,
        GatedRepoAccessError,
        GenerationCancelled,
        HubError,
        InputError,
        InvalidSettingsError,
        MissingFilesError,
        NonFiniteOutputError,
        OfflineError,
        OutOfMemoryError,
        Show1Error,
        StateDictMismatchError,
        UnsafeCheckpointError,
        WrongStageError,
    )
    from .loading import (
        CHECKPOINT_FOR_STAGE,
        DTYPES,
        KNOWN_CHECKPOINTS,
        T5_CHECKPOINT,
        T5_DOWNLOAD_GB,
        KnownCheckpoint,
        ModelRole,
        StageModel,
        known_checkpoint,
        load_stage_model,
        parse_dtype,
    )
    from .loading.hub import DEFAULT_MODELS_DIR_ENV, default_models_dir, resolve_checkpoint, resolve_t5_tokenizer
    from .loading.t5_file import load_t5_file
    from .memory import MemoryPolicy
    from .model_setup import ModelSetup
    from .motion_lora import (
        MotionLora,
        MotionLoraInfo,
        load_motion_lora,
        motion_loras,
        parse_lora_spec,
        read_motion_lora_info,
        with_motion_loras,
    )
    from .settings import (
        ATTENTION_BACKENDS,
        CACHE_METHODS,
        COMPILE_BACKENDS,
        PAPER_SETTINGS,
        CacheSettings,
        CascadeSettings,
        FirstFrameSettings,
        InterpolationSettings,
        KeyframeSettings,
        LatentSRSettings,
        PixelSRSettings,
        SpeedSettings,
        StageCaches,
    )
    from .stages import StepCallback, StepEvent, interpolated_fps
    from .text import EmbeddingCache, EncoderKind, TextEncoder, TextEncoderSpec, embeddings_cache_dir

_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'show1_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
