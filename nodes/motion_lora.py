"""Show-1 Motion LoRA nodes: a keyframe or interpolation model in, the same model with a motion LoRA out.

The node never changes the model the loader returned (ComfyUI caches node outputs, and one
loaded model may feed several branches). It returns a new handle whose placement applies the
LoRAs while the stage runs, once the model is on its device, and removes them afterwards, also
after an error or a Cancel, so the loaded model is exactly the plain one between runs. Chained
Motion LoRA nodes stack their LoRAs.
"""

from __future__ import annotations

from show1_core import ModelRole, MotionLora, Show1Error, WrongStageError, load_motion_lora, with_motion_loras
from show1_core.host import PlacedModel, check_fits

from .loaders import LOADER_CATEGORY
from .lora_files import lora_choices, resolve_lora
from .model_folders import client_safe, public_message
from .types import MODEL_TYPE, expect_stage
from .widgets import combo_input, limited_input, socket

NO_LORA = "(no motion LoRA found)"


MOTION_LORA_DESCRIPTION = """Applies a motion LoRA (from `show1 train-motion`) to a Show-1 {stage} model while its stage runs.

The LoRA changes only the temporal attention, so the motion follows the training clips while appearance and text
alignment stay the model's. Strength 0 gives exactly the plain model's output. Files are listed from
models/show1/loras and models/loras (only motion LoRAs of this stage). Chain several nodes to stack LoRAs."""


def motion_lora_output_tooltip(stage: ModelRole) -> str:
    """The tooltip of a Motion LoRA node's ``model`` output."""
    return f"The same {stage.title} model, run with the motion LoRA (the loaded model is not changed)."


class MotionLoraNode:
    """A motion LoRA applied to one stage's model; each subclass declares its stage and its ComfyUI attributes."""

    FUNCTION = "apply"
    CATEGORY = LOADER_CATEGORY
    RETURN_NAMES = ("model",)
    STAGE: ModelRole
    RETURN_TYPES: tuple[str]
    OUTPUT_TOOLTIPS: tuple[str]
    DESCRIPTION: str

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The model, the LoRA file and its strength."""
        choices = lora_choices(cls.STAGE) or [NO_LORA]
        return {
            "required": {
                "model": socket(MODEL_TYPE[cls.STAGE], f"The {cls.STAGE.title} model (its loader, or another Motion LoRA node)."),
                "lora_name": combo_input(
                    choices,
                    choices[0],
                    f"A motion LoRA trained for the {cls.STAGE.title} model, from models/show1/loras or models/loras.",
                ),
                "strength": limited_input(
                    "motion_lora.strength",
                    1.0,
                    step=0.05,
                    tooltip="How strongly the LoRA applies: 1 as trained, 0 exactly the plain model, between them a blend of the motion.",
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, lora_name: str | None) -> bool | str:
        """Refuse names outside the LoRA folders, missing files and LoRAs of another stage before the run starts."""
        if lora_name is None:
            return True
        try:
            _read(lora_name, cls.STAGE, 1.0)
        except Show1Error as err:
            return public_message(str(err))
        return True

    @client_safe
    def apply(self, model: PlacedModel, lora_name: str, strength: float) -> tuple[PlacedModel]:
        """Check the LoRA against the model and return a handle that runs the model with it."""
        handle = expect_stage(model, self.STAGE, "model")
        lora = _read(lora_name, self.STAGE, strength)
        check_fits(handle.model, lora)
        return (with_motion_loras(handle, [lora]),)


def _read(name: str, stage: ModelRole, strength: float) -> MotionLora:
    lora = load_motion_lora(resolve_lora(name), strength)
    if lora.info.stage != stage:
        raise WrongStageError(f"{name} is a motion LoRA for the {lora.info.stage.title} model, not the {stage.title} model")
    return lora


class KeyframeMotionLora(MotionLoraNode):
    """Motion LoRA for the keyframe model (stage 1)."""

    STAGE = ModelRole.KEYFRAMES
    RETURN_TYPES = (MODEL_TYPE[STAGE],)
    OUTPUT_TOOLTIPS = (motion_lora_output_tooltip(STAGE),)
    DESCRIPTION = MOTION_LORA_DESCRIPTION.format(stage=STAGE.title)


class InterpolationMotionLora(MotionLoraNode):
    """Motion LoRA for the interpolation model (stage 2)."""

    STAGE = ModelRole.INTERPOLATION
    RETURN_TYPES = (MODEL_TYPE[STAGE],)
    OUTPUT_TOOLTIPS = (motion_lora_output_tooltip(STAGE),)
    DESCRIPTION = MOTION_LORA_DESCRIPTION.format(stage=STAGE.title)
