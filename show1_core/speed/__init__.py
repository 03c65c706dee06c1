"""Speed options of the stage models: attention backend, regional compilation, fp8 weights, block streaming, step caching.

:func:`apply_speed` applies a :class:`~show1_core.settings.SpeedSettings` to a loaded stage model;
the stages read its ``split_guidance`` themselves, and each denoising loop takes its step cache
from :func:`~.loop_cache.denoise_cache` (show1's whole-step skip, :mod:`.step_skip`, or diffusers'
attention caches, :mod:`.layer_cache`). docs/PERFORMANCE.md says what each option guarantees and
what it was measured to do.
"""

from .apply import apply_speed
from .attention import PACKAGES, check_attention_backend, set_attention_backend
from .compile import compile_repeated_blocks, repeated_blocks
from .fp8 import FP8, store_in_fp8
from .streaming import stream_blocks

__all__ = [
    "FP8",
    "PACKAGES",
    "apply_speed",
    "check_attention_backend",
    "compile_repeated_blocks",
    "repeated_blocks",
    "set_attention_backend",
    "store_in_fp8",
    "stream_blocks",
]
