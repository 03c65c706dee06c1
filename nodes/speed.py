"""Show-1 Speed Settings: how the stage models run, wired into the loaders' optional ``speed`` input."""

from __future__ import annotations

import inspect

from show1_core import ATTENTION_BACKENDS, COMPILE_BACKENDS, Show1Error, SpeedSettings
from show1_core.host import check_attention_backend

from .comfy_bridge import torch_device
from .types import SPEED
from .widgets import Input, combo_input, socket

CATEGORY = "Show-1/loaders"
COMPILE_OFF = "off"


def boolean_input(tooltip: str) -> Input:
    """A BOOLEAN toggle, off by default."""
    return ("BOOLEAN", {"default": False, "tooltip": tooltip})


def speed_socket() -> Input:
    """The optional ``speed`` input of a stage-model loader."""
    return socket(
        SPEED,
        "Optional: speed options from Show-1 Speed Settings (attention kernel, compile, fp8, block streaming, "
        "split guidance) or Show-1 Step Cache. Unconnected: the model runs as the original does.",
    )


class SpeedSettingsNode:
    """Speed options for the Show-1 stage models: attention kernel, torch.compile, fp8 weights, block streaming, split guidance.

    Connect it to the optional speed input of any Show-1 model loader (one node can feed several). Every option except
    fp8_weights leaves the results unchanged; docs/PERFORMANCE.md says what each one was measured to do.
    """

    FUNCTION = "settings"
    CATEGORY = CATEGORY
    RETURN_TYPES = (SPEED,)
    RETURN_NAMES = ("speed",)
    OUTPUT_TOOLTIPS = ("Speed settings for the speed input of the Show-1 model loaders.",)
    DESCRIPTION = inspect.cleandoc(__doc__)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """One widget per option; the defaults change nothing."""
        return {
            "required": {
                "attention": combo_input(
                    list(ATTENTION_BACKENDS),
                    "sdpa",
                    "Attention kernel. sdpa: PyTorch's scaled-dot-product attention, as today. The others run through "
                    "diffusers' attention dispatcher: native (PyTorch again), flash (flash-attn), sage (SageAttention), "
                    "xformers; those three need their package and an NVIDIA GPU, and round differently.",
                ),
                "compile": combo_input(
                    [COMPILE_OFF, *COMPILE_BACKENDS],
                    COMPILE_OFF,
                    "torch.compile each repeated UNet block (regional compilation): the first step compiles, later steps, "
                    "windows and stages with the same shapes reuse it. inductor is the one that speeds up; aot_eager and "
                    "eager only check that compiling works. Same results.",
                ),
                "fp8_weights": boolean_input(
                    "Store the UNet weights in fp8 (e4m3fn), computing in the loader's precision: about half the weight "
                    "memory. Changes the results slightly (docs/PERFORMANCE.md); motion LoRAs cannot be applied."
                ),
                "stream_blocks": boolean_input(
                    "Keep the UNet in RAM and move one block at a time to the GPU while it runs (least GPU memory, slower). "
                    "Same results; motion LoRAs cannot be applied."
                ),
                "split_guidance": boolean_input(
                    "Run classifier-free guidance as two passes of one video instead of one batch of two: less activation "
                    "memory, a little slower. Same results."
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, attention: str | None) -> bool | str:
        """Refuse an attention kernel that is not installed (with the command that installs it) before the run starts."""
        if attention is None:
            return True
        try:
            check_attention_backend(attention, torch_device())
        except Show1Error as err:
            return str(err)
        return True

    def settings(self, attention: str, compile: str, fp8_weights: bool, stream_blocks: bool, split_guidance: bool) -> tuple[SpeedSettings]:
        """The settings as one value for the loaders."""
        compiled = {} if compile == COMPILE_OFF else {"compile": True, "compile_backend": compile}
        speed = SpeedSettings(
            attention=attention, fp8_weights=fp8_weights, stream_blocks=stream_blocks, split_guidance=split_guidance, **compiled
        )
        return (speed,)
