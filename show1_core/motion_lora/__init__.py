"""Motion LoRAs: low-rank adapters on the temporal attention of the keyframe and interpolation models.

Train one with ``show1 train-motion`` (:mod:`show1_core.training`); use it with
``show1 generate --motion-lora FILE[:SCALE]``, the *Show-1 Motion LoRA* ComfyUI node, or here::

    lora = load_motion_lora("pan_left.safetensors", scale=0.8)
    with motion_loras(keyframe_model, [lora]):
        video = generate_keyframes(keyframe_model, embeds)

or, through the stage runner, ``run_keyframes(with_motion_loras(placed, [lora]), embeds)``.
"""

from .adapters import active_motion_loras, apply_motion_loras, check_fits, check_speed_allows_loras, motion_loras, remove_motion_loras
from .files import MotionLora, MotionLoraInfo, load_motion_lora, parse_lora_spec, read_motion_lora_info, save_motion_lora
from .placement import MotionLoraPlacement, with_motion_loras
from .targets import TRAINABLE_STAGES, temporal_attention_targets, unet_fingerprint

__all__ = [
    "TRAINABLE_STAGES",
    "MotionLora",
    "MotionLoraInfo",
    "MotionLoraPlacement",
    "active_motion_loras",
    "apply_motion_loras",
    "check_speed_allows_loras",
    "check_fits",
    "load_motion_lora",
    "motion_loras",
    "parse_lora_spec",
    "read_motion_lora_info",
    "remove_motion_loras",
    "save_motion_lora",
    "temporal_attention_targets",
    "unet_fingerprint",
    "with_motion_loras",
]
