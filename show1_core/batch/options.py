"""What a batch runs with: the models' setup every worker builds, how the work is spread, and the fingerprint
of everything that decides a video (to refuse mixing settings in one output folder)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..model_setup import ModelSetup
from ..settings import PAPER_SETTINGS, CascadeSettings
from .items import BatchItem
from .settings_dict import settings_to_dict

MODES = ("video", "stage")
"""``video``: each worker runs whole cascades; ``stage``: one pool of workers per stage, as a pipeline."""
POOLS = ("text", "keyframes", "interpolation", "pixel_sr", "latent_sr")
"""The stage pools of ``--by stage``, in pipeline order: T5 encoding, stages 1-3 (stage 3 with its IF-II-L first
frame), and stage 4 with its CLIP encoding."""
POOL_OF_PART = {
    "text_t5": "text",
    "keyframes": "keyframes",
    "interpolation": "interpolation",
    "first_frame": "pixel_sr",
    "pixel_sr": "pixel_sr",
    "text_clip": "latent_sr",
    "latent_sr": "latent_sr",
}
"""The pool each part of a run belongs to (the parts :mod:`show1_core.plan` counts)."""


@dataclass(frozen=True)
class Spread:
    """How a batch's work is spread over Ray workers."""

    by: str = "video"
    """One of :data:`MODES`."""
    workers: int | None = None
    """``--by video``: how many cascades run at once (``None``: as many as the workers' resource allows)."""
    per_worker: float = 1.0
    """Units of :attr:`worker_resource` each worker takes (a fraction shares one GPU between workers)."""
    worker_resource: str | None = None
    """``GPU``, ``CPU`` or a custom Ray resource to schedule workers on (``None``: GPUs where the cluster has them, else CPUs)."""
    pool_sizes: Mapping[str, int] = field(default_factory=dict)
    """``--by stage``: workers per pool of :data:`POOLS`; pools not named are sized by their share of the compute."""
    ray_address: str | None = None
    """An existing Ray cluster to join (``None``: start one on this machine)."""


@dataclass(frozen=True)
class BatchOptions:
    """Everything a batch runs with besides its prompts and output folder."""

    settings: CascadeSettings = PAPER_SETTINGS
    """Every item's settings (an entry's own on top); its seed is the batch's base seed."""
    samples: int = 1
    """Videos per prompt."""
    setup: ModelSetup = field(default_factory=ModelSetup)
    spread: Spread = field(default_factory=Spread)
    overwrite: bool = False
    """Regenerate the videos an output folder holds with other settings (refused otherwise)."""


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def output_settings(item: BatchItem, setup: ModelSetup, lora_digests: Mapping[str, str]) -> dict[str, Any]:
    """What decides ``item``'s video besides its prompt and seed: its stage settings, the stages run, the first-frame
    model, caption cleaning, precision, fp8 weights, step caches and the motion LoRAs (by content). Memory policies
    and the other speed options give the same video, so a batch may change them between runs."""
    settings = settings_to_dict(item.settings)
    del settings["seed"]
    return {
        "settings": settings,
        "stages": setup.stages,
        "first_frame_model": setup.first_frame_model,
        "clean_caption": setup.clean_caption,
        "precision": setup.precision or "default",
        "fp8_weights": setup.speed.fp8_weights,
        "cache": asdict(setup.speed.cache),
        "motion_loras": [lora_digests[spec] for spec in setup.motion_loras],
    }


def lora_digests(setup: ModelSetup) -> dict[str, str]:
    """``{spec: "sha256-prefix:scale"}`` of each motion LoRA (read once, before any work)."""
    from ..motion_lora import parse_lora_spec

    digests = {}
    for spec in setup.motion_loras:
        path, scale = parse_lora_spec(spec)
        digests[spec] = f"{_file_digest(Path(path).expanduser())}:{scale:g}"
    return digests


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A short, stable hash of :func:`output_settings`."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
