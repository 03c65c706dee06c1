"""What a host application needs beyond the Python face: the node pack imports these.

A Python user runs :class:`show1_core.Show1Cascade` or the stage functions; a host with its own
model management and widgets (the ComfyUI node pack) also needs to place each stage's models
itself (:class:`PlacedModel`, :class:`Placement`, the ``run_*`` runner), the meaning of each memory
policy, the speed options applied to a loaded model, and the limits and checks of every setting
(:data:`LIMITS`, the ``*_problems`` functions) to declare and validate its widgets with.
"""

from __future__ import annotations

from .loading import stage_of_unet_config
from .memory import POLICY_SETTINGS, ModelPlacer, PolicySettings, default_device, default_dtype, resolve_device
from .motion_lora import check_fits
from .plan.fitting import advisory
from .plan.stage_plan import planned_activation_bytes, two_steps
from .runner import (
    PlacedModel,
    Placement,
    PlacerPlacement,
    place,
    run_interpolation,
    run_keyframes,
    run_latent_refine,
    run_latent_sr,
    run_pixel_sr,
    run_vae_decode,
    run_vae_encode,
)
from .speed import apply_speed, check_attention_backend
from .stages import window_starts
from .text import EncoderPlacement, PlacerEncoderPlacement
from .validation.cascade import validate_cascade
from .validation.models import ModelLimits
from .validation.ranges import (
    LIMITS,
    MAX_GUIDANCE,
    MAX_LORA_STRENGTH,
    MAX_NOISE_LEVEL,
    MAX_SIZE,
    Problem,
    first_frame_problems,
    interpolation_problems,
    keyframe_problems,
    latent_sr_problems,
    pixel_sr_problems,
    settings_problems,
)

__all__ = [
    "EncoderPlacement",
    "LIMITS",
    "MAX_GUIDANCE",
    "MAX_LORA_STRENGTH",
    "MAX_NOISE_LEVEL",
    "MAX_SIZE",
    "ModelLimits",
    "ModelPlacer",
    "POLICY_SETTINGS",
    "PlacedModel",
    "Placement",
    "PlacerEncoderPlacement",
    "PlacerPlacement",
    "PolicySettings",
    "Problem",
    "advisory",
    "apply_speed",
    "check_attention_backend",
    "check_fits",
    "default_device",
    "default_dtype",
    "first_frame_problems",
    "interpolation_problems",
    "keyframe_problems",
    "latent_sr_problems",
    "pixel_sr_problems",
    "place",
    "planned_activation_bytes",
    "resolve_device",
    "run_interpolation",
    "run_keyframes",
    "run_latent_refine",
    "run_latent_sr",
    "run_pixel_sr",
    "run_vae_decode",
    "run_vae_encode",
    "settings_problems",
    "stage_of_unet_config",
    "two_steps",
    "validate_cascade",
    "window_starts",
]
