"""Applying motion LoRAs to a loaded stage model and taking them off again.

Adapters are peft LoRA layers wrapped around the temporal-attention projections (through
diffusers' ``PeftAdapterMixin``), never merged into the base weights: each adapted layer
computes ``base(x) + scale * alpha / rank * B(A(x))``. Scale 0 therefore leaves every output
bit-identical, and :func:`remove_motion_loras` puts the original ``nn.Linear`` modules back,
so the model is exactly the loaded one again.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from ..errors import InputError, StateDictMismatchError, WrongStageError
from ..loading.stage_model import StageModel
from ..settings import SpeedSettings
from .files import MotionLora
from .targets import unet_fingerprint

ADAPTER_PREFIX = "show1_motion_"


def check_speed_allows_loras(speed: SpeedSettings, what: str) -> None:
    """Refuse adapters on a UNet whose weights are stored in fp8 or streamed block by block (they need the weights as loaded)."""
    if speed.fp8_weights or speed.stream_blocks:
        option = "fp8_weights" if speed.fp8_weights else "stream_blocks"
        raise InputError(f"motion LoRAs cannot adapt a {what} model loaded with {option}; load it without that option")


def check_fits(model: StageModel, lora: MotionLora) -> None:
    """Refuse a LoRA made for another stage, another architecture, or modules the UNet lacks, and a UNet
    whose weights are stored in fp8 or streamed block by block (adapters need the weights as loaded)."""
    info = lora.info
    check_speed_allows_loras(model.speed, model.stage.title)
    if model.stage != info.stage:
        raise WrongStageError(
            f"{lora.name} was trained for the {info.stage.title} model ({info.base_checkpoint}); it cannot adapt the "
            f"{model.stage.title} model"
        )
    fingerprint = unet_fingerprint(model.unet)
    if fingerprint != info.base_fingerprint:
        raise StateDictMismatchError(
            f"{lora.name} was trained on {info.base_checkpoint} (architecture {info.base_fingerprint}), but this "
            f"{model.stage.title} model has a different architecture ({fingerprint}); use a LoRA trained on this checkpoint"
        )
    modules = dict(model.unet.named_modules())
    for name in info.target_modules:
        layer = modules.get(name)
        a, b = lora.weights[f"{name}.lora_A.weight"], lora.weights[f"{name}.lora_B.weight"]
        if not isinstance(layer, torch.nn.Linear) or (a.shape[1], b.shape[0]) != (layer.in_features, layer.out_features):
            raise StateDictMismatchError(f"{lora.name} adapts {name}, which this {model.stage.title} model has not (or not in that shape)")


def active_motion_loras(model: StageModel) -> list[str]:
    """Names of the adapters currently on the model's UNet."""
    return list(getattr(model.unet, "peft_config", None) or {})


def _has_adapter_layers(model: StageModel) -> bool:
    """Whether any peft layer wraps a module (also after a failed load that left no config behind)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(module, BaseTunerLayer) for module in model.unet.modules())


def apply_motion_loras(model: StageModel, loras: Sequence[MotionLora]) -> list[str]:
    """Add ``loras`` to the model's UNet, stacked, each at its own scale; returns the adapter names.

    The LoRA weights take the UNet's device and precision. Every LoRA is checked before the
    first one is applied. A model that already carries adapters is refused: remove them first.
    """
    unet = model.unet
    if active_motion_loras(model) or _has_adapter_layers(model):
        raise InputError(
            f"the {model.stage.title} model already carries LoRA adapters ({', '.join(active_motion_loras(model))}); "
            "remove them before applying others"
        )
    for lora in loras:
        check_fits(model, lora)
    names = []
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # stacking adapters is intended
            for index, lora in enumerate(loras):
                name = f"{ADAPTER_PREFIX}{index}"
                # cloned here, outside inference mode: tensors read inside it (as ComfyUI runs nodes) cannot become parameters
                weights = {k: v.to(unet.device, unet.dtype).clone() for k, v in lora.weights.items()}
                unet.load_lora_adapter(weights, prefix=None, adapter_name=name, metadata=lora.info.peft_config(), low_cpu_mem_usage=True)
                names.append(name)
            if names:
                unet.set_adapters(names, weights=[lora.scale for lora in loras])
    except BaseException:
        remove_motion_loras(model)
        raise
    return names


def remove_motion_loras(model: StageModel) -> None:
    """Take every adapter off the model's UNet, restoring its original layers (a no-op without adapters)."""
    if active_motion_loras(model) or _has_adapter_layers(model):
        model.unet.unload_lora()


@contextmanager
def motion_loras(model: StageModel, loras: Sequence[MotionLora]) -> Iterator[StageModel]:
    """Apply ``loras`` for the duration of a ``with`` block, removing them afterwards (also after an error)."""
    if not loras:
        yield model
        return
    apply_motion_loras(model, loras)
    try:
        yield model
    finally:
        remove_motion_loras(model)
