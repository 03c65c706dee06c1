"""How a run builds its models: the ``show1 generate`` options that are not stage settings, in one place for the
command, the batch workers and Python users."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .settings import SpeedSettings


@dataclass(frozen=True)
class ModelSetup:
    """Where the checkpoints are, which stages run, and how their models are placed and run."""

    stages: int = 4
    first_frame_model: bool = True
    """Upscale stage 3's first frame with IF-II-L (else bilinearly)."""
    clean_caption: bool = False
    precision: str | None = None
    """``fp16``, ``bf16`` or ``fp32``; ``None``: fp16 on an accelerator, fp32 on the CPU."""
    memory: str = "balanced"
    """A :class:`~show1_core.memory.MemoryPolicy` value."""
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    motion_loras: tuple[str, ...] = ()
    """``FILE[:SCALE]`` of each motion LoRA, as ``--motion-lora`` takes them."""
    models_dir: str | None = None
    """Where checkpoints live or are downloaded (``None``: ``$SHOW1_MODELS_DIR`` or the default)."""
    offline: bool = False
    """Never download; a missing checkpoint is an error."""
    device: str | None = None
    """``cuda``, ``cuda:1``, ``mps`` or ``cpu`` (``None``: the best available)."""

    def cascade(self):
        """A :class:`~show1_core.cascade.Show1Cascade` over the checkpoints (downloaded on first use unless offline),
        with the motion LoRAs read first (a bad file is found before any download) and the on-disk embedding cache."""
        from .cascade import CascadeCheckpoints, Show1Cascade
        from .loading.hub import default_models_dir
        from .loading.weights import parse_dtype
        from .motion_lora import load_motion_lora, parse_lora_spec
        from .text import EmbeddingCache, embeddings_cache_dir

        loras = [load_motion_lora(*parse_lora_spec(spec)) for spec in self.motion_loras]
        checkpoints = CascadeCheckpoints.resolve(
            self.models_dir, self.stages, use_first_frame_model=self.first_frame_model, allow_download=not self.offline
        )
        return Show1Cascade(
            checkpoints,
            device=self.device,
            dtype=parse_dtype(self.precision) if self.precision else None,
            policy=self.memory,
            cache=EmbeddingCache(embeddings_cache_dir(Path(self.models_dir or default_models_dir()))),
            motion_loras=loras,
            speed=self.speed,
        )
