"""Names the training options accept, importable without torch (the command line builds its parser from them)."""

OPTIMIZERS = ("auto", "adamw", "adamw8bit")
"""``adamw``, ``adamw8bit`` (bitsandbytes) or ``auto`` (8-bit on CUDA when bitsandbytes is installed)."""
