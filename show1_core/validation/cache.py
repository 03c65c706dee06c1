"""The checks of a step cache's settings (:class:`~show1_core.settings.CacheSettings`), without any model."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from .ranges import LIMITS, Problem

if TYPE_CHECKING:
    from ..settings import CacheSettings


def cache_problems(cache: "CacheSettings") -> list[Problem]:
    """Every problem of one cache's settings: an unknown method, a parameter out of range or of another method.

    Each names the setting and what it allows, in one line.
    """
    from ..settings import CACHE_METHODS, CACHE_PARAMETERS, CacheSettings

    if cache.method not in CACHE_METHODS:
        return [Problem("cache method", f"{cache.method!r} is unknown; choose one of {', '.join(CACHE_METHODS)}")]
    takes = CACHE_PARAMETERS[cache.method]
    problems = []
    for name in ("threshold", "interval", "start", "end"):
        value = getattr(cache, name)
        if name not in takes:
            if value != getattr(CacheSettings, name):
                allowed = ", ".join(takes) or "no parameters"
                problems.append(Problem(f"cache {name}", f"is not a parameter of the {cache.method} method; it takes {allowed}"))
        elif value is not None or name != "end":
            problems += LIMITS[f"cache.{name}"].problems(f"cache {name}", value)
    if not problems and "end" in takes and cache.end is not None and cache.end <= cache.start:
        problems.append(Problem("cache end", f"must be after cache start ({cache.start}), got {cache.end}"))
    if not problems and cache.method == "taylorseer" and cache.start < 1:
        problems.append(Problem("cache start", "must be at least 1 for taylorseer (it extrapolates from steps computed before it), got 0"))
    if cache.method == "taylorseer" and importlib.util.find_spec("diffusers.hooks.taylorseer_cache") is None:
        problems.append(Problem("cache method", "taylorseer needs diffusers 0.36 or newer: pip install -U 'diffusers>=0.36,<0.43'"))
    return problems
