"""The four cascade stages, each a function over loaded models that returns ``(B, C, T, H, W)`` video."""

from ..embeds import PromptEmbeds
from .first_frame import upscale_bilinear, upscale_first_frame
from .interpolation import interpolate_frames, interpolated_fps, interpolated_length
from .keyframes import generate_keyframes
from .latent_sr import decode_latents, encode_video, prepare_input, refine_latents, super_resolve_latent
from .pixel_sr import super_resolve_pixels, window_starts
from .progress import StepCallback, StepEvent

__all__ = [
    "PromptEmbeds",
    "StepCallback",
    "StepEvent",
    "decode_latents",
    "encode_video",
    "generate_keyframes",
    "interpolate_frames",
    "interpolated_fps",
    "interpolated_length",
    "prepare_input",
    "refine_latents",
    "super_resolve_latent",
    "super_resolve_pixels",
    "upscale_bilinear",
    "upscale_first_frame",
    "window_starts",
]
