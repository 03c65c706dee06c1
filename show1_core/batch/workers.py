"""The work a Ray worker does on one row of a batch: a whole cascade (``--by video``) or one stage pool's part
(``--by stage``). Plain callables that Ray Data runs as actors: each builds its models once, in ``__init__``.

A row is plain data: ``name``, ``spec`` (the item as JSON: prompt and settings), ``tensors`` (the stage
outputs so far, as safetensors bytes), ``fps``, ``seconds`` (each pool's time, as JSON) and ``error``
(empty, or why the item failed: later pools pass a failed row on untouched). An item's own failure
never stops the worker: it is recorded and the batch goes on.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any, Callable

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..cascade import Show1Cascade, video_fps
from ..embeds import PromptEmbeds
from ..errors import Show1Error
from ..model_setup import ModelSetup
from ..text import EncoderKind
from ..video_io import video_frames
from .options import POOL_OF_PART
from .settings_dict import settings_from_dict

Row = dict[str, Any]
POOL_OF_STEP = {**POOL_OF_PART, "interpolated": "interpolation"}
"""The stage pool each step :meth:`Show1Cascade.run` starts (its ``on_start`` names) belongs to, for the time summary."""


def item_row(name: str, prompt: str, settings: dict[str, Any]) -> Row:
    """The row an item enters the pipeline as."""
    spec = json.dumps({"prompt": prompt, "settings": settings})
    return {"name": name, "spec": spec, "tensors": b"", "fps": 0.0, "seconds": "{}", "error": ""}


def _failed(row: Row, err: Exception) -> Row:
    if not isinstance(err, Show1Error):  # not a deliberate error: its traceback goes to the worker's log
        traceback.print_exc()
    reason = str(err).strip() or type(err).__name__
    return {**row, "tensors": b"", "error": f"{type(err).__name__}: {reason}"}


def _add_seconds(row: Row, pool: str, seconds: float) -> str:
    spent = json.loads(row.get("seconds") or "{}")
    spent[pool] = spent.get(pool, 0.0) + seconds
    return json.dumps(spent)


def final_frames(video: torch.Tensor) -> torch.Tensor:
    """The uint8 ``(frames, height, width, 3)`` a video file holds, as ``show1 generate`` writes it."""
    return torch.from_numpy(video_frames(video.clamp(-1, 1)))


class CascadeWorker:
    """``--by video``: whole cascades, with the models kept loaded (under the memory policy) between items."""

    def __init__(self, setup: ModelSetup):
        self.setup = setup
        self.cascade = setup.cascade()

    def __call__(self, row: Row) -> Row:
        if row.get("error"):
            return row
        spec = json.loads(row["spec"])
        spent: dict[str, float] = {}
        clock = {"part": None, "since": time.perf_counter()}

        def start(part: str | None) -> None:
            now = time.perf_counter()
            if clock["part"] is not None:
                pool = POOL_OF_STEP[clock["part"]]
                spent[pool] = spent.get(pool, 0.0) + now - clock["since"]
            clock.update(part=part, since=now)

        try:
            settings = settings_from_dict(spec["settings"])
            with torch.inference_mode():
                result = self.cascade.run(
                    spec["prompt"], settings, stages=self.setup.stages, clean_caption=self.setup.clean_caption, on_start=start
                )
            name, video = result.final
            start(None)
            return {**row, "tensors": save_tensors({"frames": final_frames(video)}), "fps": result.fps[name], "error": "",
                    "seconds": json.dumps(spent)}  # fmt: skip
        except Exception as err:  # noqa: BLE001 - one item's failure is recorded; the batch goes on
            return _failed(row, err)


class StagePoolWorker:
    """``--by stage``: one pool's part of every item (:data:`~show1_core.batch.options.POOLS`), its models loaded once."""

    def __init__(self, pool: str, setup: ModelSetup):
        self.pool = pool
        self.setup = setup
        self.cascade: Show1Cascade = setup.cascade()
        self._work: Callable[[dict[str, torch.Tensor], Any, str], dict[str, torch.Tensor]] = getattr(self, f"_{pool}")

    def __call__(self, row: Row) -> Row:
        if row.get("error"):
            return row
        began = time.perf_counter()
        try:
            spec = json.loads(row["spec"])
            settings = settings_from_dict(spec["settings"])
            tensors = load_tensors(row["tensors"]) if row["tensors"] else {}
            with torch.inference_mode():
                tensors = self._work(tensors, settings, spec["prompt"])
            fps = video_fps(settings, self.setup.stages)
            return {**row, "tensors": save_tensors(tensors), "fps": fps, "error": "",
                    "seconds": _add_seconds(row, self.pool, time.perf_counter() - began)}  # fmt: skip
        except Exception as err:  # noqa: BLE001 - one item's failure is recorded; the batch goes on
            return _failed(row, err)

    def _finish(self, video: torch.Tensor, stage: int, carried: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The stage's video as the final frames after the last stage run, else passed on (with ``carried``)."""
        if stage == self.setup.stages:
            return {"frames": final_frames(video)}
        return {**carried, "video": video.contiguous()}

    def _text(self, tensors, settings, prompt):
        embeds = self.cascade.encode(EncoderKind.T5, prompt, settings.negative_prompt, self.setup.clean_caption)
        return {"t5_positive": embeds.positive.contiguous(), "t5_negative": embeds.negative.contiguous()}

    @staticmethod
    def _t5(tensors: dict[str, torch.Tensor]) -> PromptEmbeds:
        return PromptEmbeds(tensors["t5_positive"], tensors["t5_negative"])

    def _keyframes(self, tensors, settings, prompt):
        return self._finish(self.cascade.keyframes(self._t5(tensors), settings), 1, tensors)

    def _interpolation(self, tensors, settings, prompt):
        video = self.cascade.interpolate(tensors.pop("video"), self._t5(tensors), settings)
        return self._finish(video, 2, tensors)

    def _pixel_sr(self, tensors, settings, prompt):
        video, _ = self.cascade.super_resolve_pixels(tensors.pop("video"), self._t5(tensors), settings)
        return self._finish(video, 3, {})

    def _latent_sr(self, tensors, settings, prompt):
        clip = self.cascade.encode(EncoderKind.CLIP, prompt, settings.latent_negative_prompt, self.setup.clean_caption)
        return self._finish(self.cascade.super_resolve_latent(tensors.pop("video"), clip, settings), 4, {})
