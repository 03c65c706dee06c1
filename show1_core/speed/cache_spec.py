"""The command line's ``--cache`` values: which stage models cache how.

``--cache [STAGE[,STAGE...]=]METHOD[:NAME=VALUE[,NAME=VALUE...]]``, repeatable, later values overriding
earlier ones for their stages; no stage names every stage model. ``--cache step:threshold=0.05``,
``--cache pixel_sr=pab:interval=3,start=5 --cache latent_sr=off``.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import InputError
from ..settings import CACHE_METHODS, CACHE_PARAMETERS, CacheSettings, StageCaches

STAGE_NAMES = tuple(StageCaches.__dataclass_fields__)
"""The stage models a ``--cache`` value can name (stage 3 runs two: ``first_frame`` and ``pixel_sr``)."""
_TYPES = {"threshold": float, "interval": int, "start": int, "end": int}


def parse_cache_specs(specs: list[str], flag: str = "--cache") -> StageCaches:
    """The stage caches that ``specs`` ask for, each checked; a bad one is refused in one line naming ``flag``."""
    caches = StageCaches()
    for spec in specs:
        stages, cache = _parse_one(spec, flag)
        caches = replace(caches, **dict.fromkeys(stages, cache))
    return caches


def _parse_one(spec: str, flag: str) -> tuple[tuple[str, ...], CacheSettings]:
    head, _, parameters = spec.partition(":")
    stages, _, method = head.rpartition("=")
    names = tuple(name.strip() for name in stages.split(",")) if stages else STAGE_NAMES
    for name in names:
        if name not in STAGE_NAMES:
            raise InputError(f"{flag} {spec!r}: unknown stage {name!r}; choose from {', '.join(STAGE_NAMES)}")
    method = method.strip()
    if method not in CACHE_METHODS:
        raise InputError(f"{flag} {spec!r}: unknown method {method!r}; choose one of {', '.join(CACHE_METHODS)}")
    values = {}
    for item in filter(None, (part.strip() for part in parameters.split(","))):
        name, equals, value = item.partition("=")
        takes = CACHE_PARAMETERS[method]
        if not equals or name not in takes:
            allowed = ", ".join(f"{p}=" for p in takes) or "no parameters"
            raise InputError(f"{flag} {spec!r}: {method} takes {allowed}, not {item!r}")
        try:
            values[name] = _TYPES[name](value)
        except ValueError:
            raise InputError(
                f"{flag} {spec!r}: {name} must be a {'number' if name == 'threshold' else 'whole number'}, got {value!r}"
            ) from None
    try:
        return names, CacheSettings(method, **values)
    except InputError as err:
        raise InputError(f"{flag} {spec!r}: {err}") from None
