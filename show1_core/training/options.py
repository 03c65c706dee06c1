"""Names the training options accept, importable without torch (the command line builds its parser from them)."""

TRAINABLE_STAGE_NAMES = ("keyframes", "interpolation")
"""Stages a motion LoRA can be trained for (``Stage`` values): the two that decide the motion."""
OPTIMIZERS = ("auto", "adamw", "adamw8bit")
"""``adamw``, ``adamw8bit`` (bitsandbytes) or ``auto`` (8-bit on CUDA when bitsandbytes is installed)."""
