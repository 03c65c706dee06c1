"""Show-1 Step Cache: reuse UNet work between denoising steps, added to the speed settings a loader takes."""

from __future__ import annotations

import inspect
from dataclasses import replace

from show1_core import CACHE_METHODS, CacheSettings, Show1Error, SpeedSettings, StageCaches
from show1_core.host import LIMITS

from .speed import CATEGORY
from .types import SPEED, expect_speed
from .widgets import Input, combo_input, int_input, limited_input, socket

TO_THE_END = 0
"""The ``end`` widget's value for "cache to the last step"."""


def end_input() -> Input:
    """The step from which every step computes in full again (0: none)."""
    return int_input(
        TO_THE_END,
        TO_THE_END,
        int(LIMITS["cache.end"].high),
        "The step (from 0) from which every step computes in full again; 0: cache to the last step.",
    )


class StepCacheNode:
    """Step caching for the Show-1 stage models: skip the UNet work that barely changes between denoising steps.

    Connect its speed output to the speed input of a Show-1 model loader; chain it after Show-1 Speed Settings to keep
    those options. Every model loaded with it caches this way; use one node per loader to cache each stage
    differently. It changes the results: docs/PERFORMANCE.md says by how much it was measured to.
    """

    FUNCTION = "settings"
    CATEGORY = CATEGORY
    RETURN_TYPES = (SPEED,)
    RETURN_NAMES = ("speed",)
    OUTPUT_TOOLTIPS = ("The speed settings with this step cache, for the speed input of the Show-1 model loaders.",)
    DESCRIPTION = inspect.cleandoc(__doc__)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The method and its parameters; the speed input is optional."""
        return {
            "required": {
                "method": combo_input(
                    list(CACHE_METHODS),
                    "step",
                    "step: show1's whole-step skip, the UNet's last prediction reused while its input's estimated change "
                    "stays under the threshold. pab: diffusers' Pyramid Attention Broadcast, attention outputs reused "
                    "between every interval-th step. taylorseer: diffusers' TaylorSeer, attention outputs extrapolated "
                    "between every interval-th step. off: no cache.",
                ),
                "threshold": limited_input(
                    "cache.threshold",
                    CacheSettings.threshold,
                    "step only: the largest estimated relative change of the prediction a skipped step may accumulate; "
                    "higher skips more. 0 skips nothing.",
                    step=0.01,
                ),
                "interval": limited_input(
                    "cache.interval",
                    CacheSettings.interval,
                    "pab and taylorseer only: attention computes every interval-th step and is reused in between. 1 skips nothing.",
                ),
                "start": limited_input(
                    "cache.start",
                    CacheSettings.start,
                    "The first step (from 0, in every denoising loop) that may reuse work; earlier steps compute in full. "
                    "taylorseer needs at least 1.",
                ),
                "end": end_input(),
            },
            "optional": {
                "speed": socket(SPEED, "Optional: the options of Show-1 Speed Settings to add the cache to."),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, method=None, threshold=None, interval=None, start=None, end=None) -> bool | str:
        """Refuse an unknown method or a parameter out of range before the run, naming the widget."""
        if None in (method, threshold, interval, start, end):
            return True
        try:
            cache_settings(method, threshold, interval, start, end)
        except Show1Error as err:
            return f"Show-1 Step Cache: {err}"
        return True

    def settings(
        self, method: str, threshold: float, interval: int, start: int, end: int, speed: SpeedSettings | None = None
    ) -> tuple[SpeedSettings]:
        """``speed`` (or the defaults) with this cache for every stage model."""
        base = SpeedSettings() if speed is None else expect_speed(speed, "speed")
        cache = cache_settings(method, threshold, interval, start, end)
        return (replace(base, cache=StageCaches.every(cache)),)


def cache_settings(method: str, threshold: float, interval: int, start: int, end: int) -> CacheSettings:
    """The widgets as :class:`CacheSettings`, passing only the parameters ``method`` takes."""
    values = {"threshold": threshold, "interval": interval, "start": start, "end": None if end == TO_THE_END else end}
    if method == "off" or method not in CACHE_METHODS:
        return CacheSettings(method)
    takes = ("threshold",) if method == "step" else ("interval",)
    return CacheSettings(method, **{name: values[name] for name in (*takes, "start", "end")})
