"""Cascade settings as plain data: dotted names for per-prompt overrides, and dicts that travel to Ray workers."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..errors import InputError
from ..settings import STAGE_FIELDS, CascadeSettings

PROMPT_FIELDS = ("negative_prompt", "latent_negative_prompt")
OVERRIDABLE = (
    tuple(f"{stage}.{f.name}" for stage in STAGE_FIELDS for f in dataclasses.fields(getattr(CascadeSettings(), stage))) + PROMPT_FIELDS
)
"""Settings a prompt file's entry may set for itself (the seed has its own field)."""


def with_overrides(settings: CascadeSettings, overrides: Mapping[str, Any], where: str) -> CascadeSettings:
    """``settings`` with dotted ``overrides`` applied; values are checked later, with the rest of the settings."""
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise InputError(f"{where}: unknown setting(s) {', '.join(unknown)}; choose from {', '.join(OVERRIDABLE)}")
    stages: dict[str, dict[str, Any]] = {}
    top = {}
    for key, value in overrides.items():
        stage, _, name = key.partition(".")
        if name:
            stages.setdefault(stage, {})[name] = value
        else:
            top[key] = value
    changed = {stage: dataclasses.replace(getattr(settings, stage), **values) for stage, values in stages.items()}
    return dataclasses.replace(settings, **changed, **top)


def settings_to_dict(settings: CascadeSettings) -> dict[str, Any]:
    """Every setting as nested plain data (JSON-ready)."""
    return dataclasses.asdict(settings)


def settings_from_dict(data: Mapping[str, Any]) -> CascadeSettings:
    """The :class:`CascadeSettings` of :func:`settings_to_dict`'s output."""
    defaults = CascadeSettings()
    stages = {stage: type(getattr(defaults, stage))(**data[stage]) for stage in STAGE_FIELDS}
    return CascadeSettings(**stages, **{key: value for key, value in data.items() if key not in STAGE_FIELDS})
