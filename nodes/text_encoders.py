"""Text encoders as ComfyUI manages its own: a ``ModelPatcher`` on ComfyUI's text-encoder device, kept between prompts.

Inside ComfyUI the encoder is loaded once (on the first prompt that is not cached), wrapped
in a ``ModelPatcher`` whose load and offload devices are ``text_encoder_device()`` and
``text_encoder_offload_device()``, and loaded with ``load_models_gpu`` for each encode, asking
only for the activations an encode needs beyond the weights; ComfyUI offloads it when another
model needs the room and otherwise keeps it for the next prompt. When the policy streams T5
block by block on an accelerator, ComfyUI is asked to free only one block's worth and the
weights stream from the offload device. Outside ComfyUI show1_core's placement is used as is.

The T5 loader also lists T5-v1.1-XXL single files from ComfyUI's ``models/text_encoders``
(``t5xxl_fp16.safetensors``, ``t5xxl_fp8_e4m3fn.safetensors``), the encoder Flux/SD3 users
already have; the tokenizer and config then come from show-1-base (about 1 MB).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors import safe_open
from torch import nn

from show1_core import EncoderKind, MemoryPolicy
from show1_core.host import POLICY_SETTINGS, EncoderPlacement, ModelPlacer, PlacerEncoderPlacement

from .comfy_bridge import ComfyRuntime, comfy_runtime, torch_device
from .model_files import files_in, per_file_version, resolve_file
from .model_folders import comfy_folders, model_roots

COMFY_TEXT_ENCODER_FOLDER = "text_encoders"
"""ComfyUI's ``folder_paths`` name of ``models/text_encoders`` (and the legacy ``models/clip``)."""
T5_MARKER_KEY = "encoder.block.0.layer.0.SelfAttention.q.weight"
ENCODE_ACTIVATION_FACTOR = 64
"""Bytes of activations per (token x hidden x element) an encode may hold at once, generously."""


class EncoderModules(nn.Module):
    """An encoder under one plain parent, as ``ModelPatcher`` expects (it assigns ``device``); named for ComfyUI's log."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder = model


def _container(model: nn.Module, kind: EncoderKind) -> EncoderModules:
    name = "Show1T5Encoder" if kind == EncoderKind.T5 else "Show1CLIPTextEncoder"
    return type(name, (EncoderModules,), {"__doc__": f"Show-1's {kind.value.upper()} text encoder."})(model)


def _largest_leaf_bytes(model: nn.Module) -> int:
    """The largest weight set any one module owns directly: what streaming holds on the device at a time."""
    sizes = [sum(p.numel() * p.element_size() for p in m.parameters(recurse=False)) for m in model.modules()]
    return max(sizes, default=0)


def _activation_bytes(model: nn.Module, element_size: int) -> int:
    hidden = getattr(model.config, "d_model", None) or getattr(model.config, "hidden_size", 1024)
    return 2 * 77 * hidden * element_size * ENCODE_ACTIVATION_FACTOR


class ComfyEncoderPlacement:
    """A text encoder under ComfyUI's model management (see the module docstring)."""

    keeps_model = True

    def __init__(self, runtime: ComfyRuntime, kind: EncoderKind, policy: MemoryPolicy):
        mm = runtime.model_management
        self._mm = mm
        self._patcher_class = runtime.model_patcher.ModelPatcher
        self.kind = kind
        self.device = mm.text_encoder_device()
        self.offload_device = mm.text_encoder_offload_device()
        self.policy = policy
        self.patcher = None

    def _streams(self) -> bool:
        return POLICY_SETTINGS[self.policy].stream_text_encoder and self.device.type != "cpu"

    @contextmanager
    def running(self, model: nn.Module) -> Iterator[nn.Module]:
        """Load the encoder through ``load_models_gpu`` (or stream it after freeing one block's worth)."""
        element_size = next(model.parameters()).element_size()
        if self._streams():
            self._mm.free_memory(_largest_leaf_bytes(model) + _activation_bytes(model, element_size), self.device)
            with ModelPlacer(self.device, self.policy).streamed(model) as running:
                yield running
            return
        if self.patcher is None or self.patcher.model.encoder is not model:
            self.patcher = self._patcher_class(_container(model, self.kind), load_device=self.device, offload_device=self.offload_device)
        self._mm.load_models_gpu([self.patcher], memory_required=_activation_bytes(model, element_size), force_full_load=True)
        yield model

    def release(self, model: nn.Module) -> None:
        """Nothing to do: ComfyUI offloads the kept encoder when it needs the room."""


def encoder_placement(kind: EncoderKind, policy: MemoryPolicy) -> EncoderPlacement:
    """ComfyUI's management inside ComfyUI, else show1_core's placer (released after each encode)."""
    runtime = comfy_runtime()
    if runtime is not None:
        return ComfyEncoderPlacement(runtime, kind, policy)
    return PlacerEncoderPlacement(ModelPlacer(torch_device(), policy))


def encoder_dtype(precision: str, resolved: torch.dtype) -> torch.dtype:
    """``auto`` inside ComfyUI is ComfyUI's text-encoder dtype (fp8 storage computes in fp16); else ``resolved``."""
    runtime = comfy_runtime()
    if precision != "auto" or runtime is None:
        return resolved
    mm = runtime.model_management
    dtype = mm.text_encoder_dtype(mm.text_encoder_device())
    return torch.float16 if dtype in (torch.float8_e4m3fn, torch.float8_e5m2) else dtype


def text_encoder_file_roots() -> list[Path]:
    """Folders searched for single-file text encoders: ComfyUI's ``text_encoders`` folders, then ``<model root>/text_encoders``."""
    roots = comfy_folders(COMFY_TEXT_ENCODER_FOLDER) + [root / COMFY_TEXT_ENCODER_FOLDER for root in model_roots()]
    return list(dict.fromkeys(roots))


@per_file_version
def _has_t5_keys(path: str) -> bool:
    """Whether a ``.safetensors`` file holds T5 encoder weights (read once per file version)."""
    try:
        with safe_open(path, framework="pt") as file:
            return T5_MARKER_KEY in file.keys()
    except Exception:  # an unreadable file is simply not listed
        return False


def t5_file_choices() -> list[str]:
    """Single ``.safetensors`` files holding T5 encoder weights (the loader checks the exact architecture)."""

    return files_in(text_encoder_file_roots(), _has_t5_keys)


def is_file_choice(name: str) -> bool:
    """Whether a T5 loader ``model`` value names a single file rather than a folder or repo id."""
    return str(name).strip().lower().endswith(".safetensors")


def resolve_t5_file(name: str) -> Path:
    """The single-file T5 ``name`` inside the text-encoder folders."""
    return resolve_file(
        name,
        text_encoder_file_roots(),
        "text encoder",
        "Put t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors (the T5-XXL Flux and SD3 use) in models/text_encoders.",
    )
