"""The released Show-1 checkpoints and what each stage needs from them.

The paper's settings per stage are the defaults of :mod:`show1_core.settings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any


class ModelRole(str, Enum):
    """The role of each of the cascade's five models, in the order they run.

    The four cascade stages are not the same list: stage 3 runs two models, IF-II-L for the
    first frame (:attr:`FIRST_FRAME`) and the pixel SR UNet for the rest (:attr:`PIXEL_SR`).
    """

    KEYFRAMES = "keyframes"
    INTERPOLATION = "interpolation"
    FIRST_FRAME = "first_frame"
    PIXEL_SR = "pixel_sr"
    LATENT_SR = "latent_sr"

    @property
    def title(self) -> str:
        """Human-readable name used in messages and progress bars."""
        return ROLE_TITLES[self]


ROLE_TITLES = {
    ModelRole.KEYFRAMES: "keyframes (stage 1)",
    ModelRole.INTERPOLATION: "temporal interpolation (stage 2)",
    ModelRole.FIRST_FRAME: "IF-II-L first-frame super-resolution (stage 3)",
    ModelRole.PIXEL_SR: "pixel super-resolution (stage 3)",
    ModelRole.LATENT_SR: "expert latent super-resolution (stage 4)",
}


@dataclass(frozen=True)
class KnownCheckpoint:
    """One released repository and the parts of it a stage needs."""

    name: str
    repo_id: str
    stage: ModelRole
    components: tuple[str, ...]
    approx_download_gb: float
    licence_url: str | None = None
    """Set for gated repositories: where to accept the licence before downloading."""
    component_patterns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Narrower download patterns for components whose folder holds several weight variants."""

    def allow_patterns(self, components: list[str]) -> list[str]:
        """Hub file patterns to download: only these components, one weight variant each."""
        narrow = dict(self.component_patterns)
        patterns = ["model_index.json"]
        for part in components:
            patterns += list(narrow.get(part, (f"{part}/*",)))
        return patterns

    def expected_config(self, component: str) -> dict[str, Any]:
        """The released (or best recovered) config of one component, see PROVENANCE.md."""
        path = resources.files(__package__).joinpath("known_configs", self.name, f"{component}.json")
        return json.loads(path.read_text())


KNOWN_CHECKPOINTS: dict[str, KnownCheckpoint] = {
    c.name: c
    for c in (
        KnownCheckpoint("show-1-base", "showlab/show-1-base", ModelRole.KEYFRAMES, ("unet", "scheduler"), 3.5),
        KnownCheckpoint("show-1-interpolation", "showlab/show-1-interpolation", ModelRole.INTERPOLATION, ("unet", "scheduler"), 3.5),
        KnownCheckpoint("show-1-sr1", "showlab/show-1-sr1", ModelRole.PIXEL_SR, ("unet", "scheduler", "image_noising_scheduler"), 1.6),
        KnownCheckpoint(
            "IF-II-L-v1.0",
            "DeepFloyd/IF-II-L-v1.0",
            ModelRole.FIRST_FRAME,
            ("unet", "scheduler", "image_noising_scheduler"),
            2.5,
            licence_url="https://huggingface.co/DeepFloyd/IF-II-L-v1.0",
            component_patterns=(("unet", ("unet/config.json", "unet/*.fp16.*")),),
        ),
        KnownCheckpoint(
            "show-1-sr2", "showlab/show-1-sr2", ModelRole.LATENT_SR, ("unet", "scheduler", "vae", "text_encoder", "tokenizer"), 3.7
        ),
    )
}

T5_CHECKPOINT = KNOWN_CHECKPOINTS["show-1-base"]
"""The T5-XXL text encoder used by stages 1-3 ships in the base repository (19 GB fp32 .bin)."""
T5_DOWNLOAD_GB = 19.1

CHECKPOINT_FOR_STAGE: dict[ModelRole, KnownCheckpoint] = {c.stage: c for c in KNOWN_CHECKPOINTS.values()}


def known_checkpoint(name_or_repo: str) -> KnownCheckpoint | None:
    """Look a checkpoint up by local folder name (``show-1-base``) or repo id (``showlab/show-1-base``)."""
    if name_or_repo in KNOWN_CHECKPOINTS:
        return KNOWN_CHECKPOINTS[name_or_repo]
    for checkpoint in KNOWN_CHECKPOINTS.values():
        if checkpoint.repo_id.lower() == name_or_repo.lower():
            return checkpoint
    return None
