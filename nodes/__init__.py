"""The Show-1 ComfyUI nodes: a thin layer over show1_core.

Imported relatively by the pack root; importing it imports nothing from ComfyUI (every
ComfyUI module is looked up at run time, see :mod:`.comfy_bridge`; ``models/show1`` is
registered with ``folder_paths`` the first time a loader lists its models).
"""

from .latent_nodes import LatentRefine, VAEDecode, VAEEncode
from .loaders import (
    CLIPLoader,
    FirstFrameModelLoader,
    InterpolationModelLoader,
    KeyframeModelLoader,
    LatentSRModelLoader,
    PixelSRModelLoader,
    T5Loader,
)
from .motion_lora import InterpolationMotionLora, KeyframeMotionLora
from .speed import SpeedSettingsNode
from .stage_nodes import Interpolation, Keyframes, LatentSR, PixelSR
from .step_cache import StepCacheNode
from .text_nodes import TextEncode
from .video_node import UpscaleVideo

NODES = {
    "Show1KeyframeModelLoader": (KeyframeModelLoader, "(Down)load Show-1 Keyframe Model (stage 1)"),
    "Show1InterpolationModelLoader": (InterpolationModelLoader, "(Down)load Show-1 Interpolation Model (stage 2)"),
    "Show1PixelSRModelLoader": (PixelSRModelLoader, "(Down)load Show-1 Pixel SR Model (stage 3)"),
    "Show1FirstFrameModelLoader": (FirstFrameModelLoader, "(Down)load IF-II-L First-Frame Model (stage 3, gated)"),
    "Show1LatentSRModelLoader": (LatentSRModelLoader, "(Down)load Show-1 Expert Latent SR Model (stage 4)"),
    "Show1T5Loader": (T5Loader, "(Down)load Show-1 T5 Text Encoder (stages 1-3)"),
    "Show1CLIPLoader": (CLIPLoader, "(Down)load Show-1 CLIP Text Encoder (stage 4)"),
    "Show1TextEncode": (TextEncode, "Show-1 Text Encode"),
    "Show1Keyframes": (Keyframes, "Show-1 Keyframes (stage 1)"),
    "Show1Interpolation": (Interpolation, "Show-1 Frame Interpolation (stage 2)"),
    "Show1PixelSR": (PixelSR, "Show-1 Pixel Super-Resolution (stage 3)"),
    "Show1LatentSR": (LatentSR, "Show-1 Expert Latent Super-Resolution (stage 4)"),
    "Show1VAEEncode": (VAEEncode, "Show-1 VAE Encode (stage 4 latents)"),
    "Show1LatentRefine": (LatentRefine, "Show-1 Latent Refine (stage 4)"),
    "Show1VAEDecode": (VAEDecode, "Show-1 VAE Decode (stage 4 latents)"),
    "Show1UpscaleVideo": (UpscaleVideo, "Show-1 Upscale Video (stages 3-4)"),
    "Show1KeyframeMotionLoRA": (KeyframeMotionLora, "Show-1 Motion LoRA (stage 1 keyframes)"),
    "Show1InterpolationMotionLoRA": (InterpolationMotionLora, "Show-1 Motion LoRA (stage 2 interpolation)"),
    "Show1SpeedSettings": (SpeedSettingsNode, "Show-1 Speed Settings"),
    "Show1StepCache": (StepCacheNode, "Show-1 Step Cache"),
}

NODE_CLASS_MAPPINGS = {node_id: cls for node_id, (cls, _) in NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, (_, name) in NODES.items()}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
