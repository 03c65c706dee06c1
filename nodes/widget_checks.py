"""The stage nodes' ``VALIDATE_INPUTS``: show1_core's settings checks applied to a node's own widgets.

ComfyUI calls ``VALIDATE_INPUTS`` when a prompt is queued, before any node runs, with the
values of the inputs its signature names, and skips its own min/max check for those inputs
(the show1_core checks cover the same ranges, and what min/max cannot: NaN, and steps with a
strength that leaves no step to run). A linked input arrives as ``None`` and is checked when
the node runs. Checks across nodes cannot be made here (the keyframe size against the pixel
SR model's size step, a noise level against the noising scheduler of the model wired in):
``VALIDATE_INPUTS`` sees neither other nodes' widgets nor the models; the stage functions
check those when the node runs, before its first step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, TypeVar

from show1_core import Problem

S = TypeVar("S")


def widget_problems(check: Callable[[S], list[Problem]], defaults: S, **widgets: object) -> list[str]:
    """What ``check`` finds in ``defaults`` with the given widget values (``None``: linked, left to run time)."""
    given = {name: value for name, value in widgets.items() if value is not None}
    return [str(problem) for problem in check(replace(defaults, **given))]


def verdict(problems: list[str]) -> bool | str:
    """``True``, or the problems as ComfyUI shows a failed ``VALIDATE_INPUTS``."""
    return "; ".join(problems) or True
