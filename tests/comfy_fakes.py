"""Stand-ins for the ComfyUI modules the pack uses, with the behaviour it relies on.

Read from ComfyUI's source (Comfy-Org/ComfyUI and comfyanonymous/ComfyUI):

* ``comfy.utils.ProgressBar.update_absolute`` clamps the value and calls the global hook set by
  ``set_progress_bar_global_hook``; ``main.py``'s ``hijack_progress`` installs a hook that first
  calls ``comfy.model_management.throw_exception_if_processing_interrupted()``, which raises
  ``InterruptProcessingException`` (and clears the flag) once Cancel was pressed. That is how a
  running node is cancelled: :meth:`FakeComfy.install_progress_hook` installs the same hook.
* ``comfy.model_patcher.ModelPatcher(model, load_device, offload_device)`` assigns
  ``model.device`` when it loads or unloads (so a diffusers model, whose ``device`` is a
  read-only property, cannot be wrapped directly).
* ``comfy.model_management.load_models_gpu`` wraps each patcher in a ``LoadedModel`` (whose
  ``model`` is the patcher), loads it onto its load device and inserts it at the front of the
  module-global ``current_loaded_models`` list, unless an equal entry is there already;
  ``LoadedModel.model_unload()`` detaches the patcher (weights back to its offload device) and
  returns True; ``free_memory`` unloads entries and pops them from that list;
  ``unload_all_models`` is ``free_memory(1e30, ...)`` for every loaded model.
* ``comfy.sd.VAE(sd=state_dict)`` builds an image VAE from (diffusers-format) weights; its
  ``decode`` takes 4-D latents ``[N, 4, h, w]`` and returns ``[N, H, W, 3]`` frames in 0..1
  (``process_output``: ``(x + 1) / 2`` clamped, then ``movedim(1, -1)``); ``encode`` takes
  ``[N, H, W, 3]`` in 0..1 and returns ``[N, 4, h, w]`` raw latents (ComfyUI ``sd.py``).
* ``comfy.cli_args.args.preview_method`` is a ``LatentPreviewMethod`` (default ``NoPreviews``,
  ``--preview-method``) and ``args.preview_size`` the largest preview side (default 512).
  ``latent_preview.get_previewer(device, latent_format)`` returns ``None`` for ``NoPreviews``,
  else (for ``auto``/``latent2rgb``, or ``taesd`` without a TAESD file) a ``Latent2RGBPreviewer``
  of the format's ``latent_rgb_factors``; its ``decode_latent_to_preview_image(format, x0)``
  maps frame 0 of ``x0`` (``[B, C, h, w]``, or ``[B, C, T, h, w]``) to RGB, ``(x + 1) / 2``
  to 0..255, and returns ``("JPEG", PIL image, MAX_PREVIEW_RESOLUTION)`` (ComfyUI
  ``latent_preview.py``). ``comfy.latent_formats.SD15`` carries SD latents' ``latent_rgb_factors``
  (4x3; the fake's numbers are not ComfyUI's) and ``taesd_decoder_name``.
* ``text_encoder_device()``/``text_encoder_offload_device()`` are where ComfyUI runs and parks
  text encoders (the CPU here); ``text_encoder_dtype()`` is float16 unless a ``--*-text-enc``
  flag says otherwise, on the CPU too (``comfy/model_management.py``). ``folder_paths``
  predefines ``text_encoders`` as ``models/text_encoders`` and ``models/clip``.
* ``folder_paths.add_model_folder_path`` registers (or extends) a model folder name;
  ``get_folder_paths`` raises ``KeyError`` for an unknown name.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
from PIL import Image


class InterruptProcessingException(Exception):
    """Raised by ``throw_exception_if_processing_interrupted`` after Cancel (as ComfyUI's)."""


class FakeLoadedModel:
    """``comfy.model_management.LoadedModel`` as far as unloading goes."""

    def __init__(self, patcher: "FakeModelPatcher"):
        self.model = patcher

    def model_unload(self, memory_to_free=None, unpatch_weights=True) -> bool:
        self.model.unpatch_model(self.model.offload_device)
        return True


@dataclass
class ComfyLog:
    """What the fake runtime was asked to do."""

    loads: list[tuple[Any, bool]] = field(default_factory=list)
    """(patcher, force_full_load) per model passed to ``load_models_gpu``."""
    memory_required: list[int] = field(default_factory=list)
    """``memory_required`` of each ``load_models_gpu`` call."""
    freed: list[int] = field(default_factory=list)
    unload_all: int = 0
    progress: list[tuple[int, int, Any]] = field(default_factory=list)
    """(value, total, preview) per progress-bar update that reached the hook."""
    previewed: list[torch.Tensor] = field(default_factory=list)
    """The x0 tensors handed to a previewer."""


class FakeModelPatcher:
    """``comfy.model_patcher.ModelPatcher`` as far as loading goes: it assigns ``model.device``."""

    def __init__(self, model: torch.nn.Module, load_device: torch.device, offload_device: torch.device, size: int = 0):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        if not hasattr(self.model, "device") or self.model.device is None:
            self.model.device = offload_device

    def patch_model(self, device_to: torch.device) -> torch.nn.Module:
        """Load the weights onto ``device_to`` (the real one also applies patches)."""
        self.model.to(device_to)
        self.model.device = device_to
        return self.model

    def unpatch_model(self, device_to: torch.device) -> None:
        """Move the weights back to ``device_to``."""
        self.model.to(device_to)
        self.model.device = device_to


class FakeComfy:
    """A ComfyUI installation rooted at ``root`` (models/, input/, output/), as importable modules."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for sub in ("models", "input", "output", "temp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.log = ComfyLog()
        self.interrupted = False
        self.modules = {
            "comfy": self._package(),
            "comfy.model_management": self._model_management(),
            "comfy.utils": self._utils(),
            "comfy.model_patcher": self._model_patcher(),
            "folder_paths": self._folder_paths(),
            "comfy.sd": self._sd(),
            "comfy.cli_args": self._cli_args(),
            "comfy.latent_formats": self._latent_formats(),
            "latent_preview": self._latent_preview(),
        }

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeComfy":
        """Make the modules importable for the rest of the test."""
        for name, module in self.modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        return self

    @property
    def mm(self) -> ModuleType:
        """The fake ``comfy.model_management``."""
        return self.modules["comfy.model_management"]

    @property
    def loaded(self) -> list[FakeModelPatcher]:
        """The patchers ComfyUI holds as loaded (``current_loaded_models``' models)."""
        return [entry.model for entry in self.mm.current_loaded_models]

    def install_progress_hook(self) -> None:
        """What ComfyUI's ``main.py`` does at start-up: a progress hook that honours Cancel first."""

        def hook(value, total, preview_image, prompt_id=None, node_id=None):
            self.mm.throw_exception_if_processing_interrupted()
            self.log.progress.append((value, total, preview_image))

        self.modules["comfy.utils"].set_progress_bar_global_hook(hook)

    def _package(self) -> ModuleType:
        package = ModuleType("comfy")
        package.__path__ = []
        return package

    def _model_management(self) -> ModuleType:
        mm = ModuleType("comfy.model_management")
        cpu = torch.device("cpu")
        mm.InterruptProcessingException = InterruptProcessingException
        mm.OOM_EXCEPTION = torch.cuda.OutOfMemoryError
        mm.get_torch_device = lambda: cpu
        mm.unet_offload_device = lambda: cpu
        mm.text_encoder_device = lambda: cpu
        mm.text_encoder_offload_device = lambda: cpu
        mm.text_encoder_dtype = lambda device=None: torch.float16  # ComfyUI's default, on the CPU too
        mm.intermediate_device = lambda: cpu
        mm.intermediate_dtype = lambda: torch.float32
        mm.soft_empty_cache = lambda force=False: None
        mm.current_loaded_models = []

        def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None, force_full_load=False):
            self.log.memory_required.append(memory_required)
            for patcher in models:
                patcher.patch_model(patcher.load_device)
                self.log.loads.append((patcher, force_full_load))
                if patcher not in self.loaded:
                    mm.current_loaded_models.insert(0, FakeLoadedModel(patcher))

        def unload_all_models():
            self.log.unload_all += 1
            for entry in mm.current_loaded_models:
                entry.model_unload()
            mm.current_loaded_models.clear()

        def free_memory(memory_required, device, keep_loaded=()):
            self.log.freed.append(memory_required)

        def interrupt_current_processing(value=True):
            self.interrupted = value

        def processing_interrupted():
            return self.interrupted

        def throw_exception_if_processing_interrupted():
            if self.interrupted:
                self.interrupted = False
                raise InterruptProcessingException()

        for function in (
            load_models_gpu,
            unload_all_models,
            free_memory,
            interrupt_current_processing,
            processing_interrupted,
            throw_exception_if_processing_interrupted,
        ):
            setattr(mm, function.__name__, function)
        return mm

    def _utils(self) -> ModuleType:
        utils = ModuleType("comfy.utils")
        utils.PROGRESS_BAR_HOOK = None

        def set_progress_bar_global_hook(function):
            utils.PROGRESS_BAR_HOOK = function

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total = total
                self.current = 0
                self.hook = utils.PROGRESS_BAR_HOOK
                self.node_id = node_id

            def update_absolute(self, value, total=None, preview=None):
                if total is not None:
                    self.total = total
                self.current = min(value, self.total)
                if self.hook is not None:
                    self.hook(self.current, self.total, preview, node_id=self.node_id)

            def update(self, value):
                self.update_absolute(self.current + value)

        def common_upscale(samples, width, height, upscale_method, crop):
            """ComfyUI's ``comfy/utils.py:common_upscale`` for ``[B, C, H, W]`` and the ``interpolate`` modes."""
            if crop == "center":
                old_width = samples.shape[-1]
                old_height = samples.shape[-2]
                old_aspect = old_width / old_height
                new_aspect = width / height
                x = 0
                y = 0
                if old_aspect > new_aspect:
                    x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
                elif old_aspect < new_aspect:
                    y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
                s = samples.narrow(-2, y, old_height - y * 2).narrow(-1, x, old_width - x * 2)
            else:
                s = samples
            utils.upscale_calls.append((tuple(samples.shape), width, height, upscale_method, crop))
            return torch.nn.functional.interpolate(s, size=(height, width), mode=upscale_method)

        utils.set_progress_bar_global_hook = set_progress_bar_global_hook
        utils.ProgressBar = ProgressBar
        utils.common_upscale = common_upscale
        utils.upscale_calls = []
        return utils

    def _sd(self) -> ModuleType:
        """``comfy.sd`` with its ``VAE``.

        As ``comfy/sd.py`` ``VAE.__init__`` does for diffusers-format weights, it always builds the
        SD1.x/SD2.x layout (its fixed ``ddconfig``: ch 128, ch_mult 1,2,4,4, 2 res blocks, 4
        latent channels) and loads with ``strict=False`` (shape mismatches still raise); decode
        returns ``[N, H, W, 3]`` in 0..1 and encode takes ``[N, H, W, 3]``, as its
        ``decode``/``encode``.
        """
        module = ModuleType("comfy.sd")

        class VAE:
            def __init__(self, sd=None, device=None, config=None, dtype=None, metadata=None):
                from diffusers import AutoencoderKL

                self.model = AutoencoderKL(
                    block_out_channels=(128, 256, 512, 512),
                    down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4,
                    layers_per_block=2,
                    latent_channels=4,
                ).eval()
                self.model.load_state_dict(sd, strict=False)

            def decode(self, samples_in, vae_options={}):
                with torch.no_grad():
                    return ((self.model.decode(samples_in.float()).sample + 1.0) / 2.0).clamp(0, 1).movedim(1, -1)

            def decode_tiled(self, samples, tile_x=None, tile_y=None, overlap=None, tile_t=None, overlap_t=None):
                return self.decode(samples)

            def encode(self, pixel_samples):
                with torch.no_grad():
                    return self.model.encode(pixel_samples.movedim(-1, 1) * 2 - 1).latent_dist.mode()

        module.VAE = VAE
        return module

    def _cli_args(self) -> ModuleType:
        module = ModuleType("comfy.cli_args")

        class LatentPreviewMethod(Enum):
            NoPreviews = "none"
            Auto = "auto"
            Latent2RGB = "latent2rgb"
            TAESD = "taesd"

        module.LatentPreviewMethod = LatentPreviewMethod
        module.args = SimpleNamespace(preview_method=LatentPreviewMethod.NoPreviews, preview_size=512)
        return module

    def _latent_formats(self) -> ModuleType:
        module = ModuleType("comfy.latent_formats")

        class SD15:
            latent_channels = 4
            latent_rgb_factors_bias = None
            taesd_decoder_name = "taesd_decoder"

            def __init__(self):
                self.latent_rgb_factors = [[0.3, 0.2, 0.3], [0.3, 0.5, 0.2], [-0.3, 0.2, 0.3], [-0.2, -0.3, -0.7]]

        module.SD15 = SD15
        return module

    def _latent_preview(self) -> ModuleType:
        module = ModuleType("latent_preview")
        fake = self

        class Latent2RGBPreviewer:
            def __init__(self, factors):
                self.factors = torch.tensor(factors).transpose(0, 1)

            def decode_latent_to_preview_image(self, preview_format, x0):
                fake.log.previewed.append(x0)
                frame = x0[0, :, 0] if x0.ndim == 5 else x0[0]
                rgb = torch.nn.functional.linear(frame.movedim(0, -1).float(), self.factors)
                pixels = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).to(torch.uint8)
                return ("JPEG", Image.fromarray(pixels.numpy()), fake.args.preview_size)

        def get_previewer(device, latent_format):
            if fake.args.preview_method.value == "none":
                return None
            return Latent2RGBPreviewer(latent_format.latent_rgb_factors)

        module.get_previewer = get_previewer
        return module

    @property
    def args(self) -> SimpleNamespace:
        """``comfy.cli_args.args`` (set ``preview_method`` to turn previews on)."""
        return self.modules["comfy.cli_args"].args

    def _model_patcher(self) -> ModuleType:
        module = ModuleType("comfy.model_patcher")
        module.ModelPatcher = FakeModelPatcher
        return module

    def _folder_paths(self) -> ModuleType:
        fp = ModuleType("folder_paths")
        fp.base_path = str(self.root)
        fp.models_dir = str(self.root / "models")
        fp.folder_names_and_paths = {
            "text_encoders": ([str(self.root / "models" / "text_encoders"), str(self.root / "models" / "clip")], {".safetensors"}),
        }

        def add_model_folder_path(folder_name, full_folder_path, is_default=False):
            paths, _ = fp.folder_names_and_paths.setdefault(folder_name, ([], set()))
            if full_folder_path not in paths:
                paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)

        def get_folder_paths(folder_name):
            return fp.folder_names_and_paths[folder_name][0][:]

        def get_annotated_filepath(name):
            return os.path.join(str(self.root / "input"), name)

        def exists_annotated_filepath(name):
            return os.path.exists(get_annotated_filepath(name))

        def get_save_image_path(filename_prefix, output_dir, image_width=0, image_height=0):
            subfolder, filename = os.path.split(os.path.normpath(filename_prefix))
            folder = os.path.join(output_dir, subfolder)
            os.makedirs(folder, exist_ok=True)
            counter = 1 + sum(1 for f in os.listdir(folder) if f.startswith(filename + "_"))
            return folder, filename, counter, subfolder, filename_prefix

        fp.add_model_folder_path = add_model_folder_path
        fp.get_folder_paths = get_folder_paths
        fp.get_input_directory = lambda: str(self.root / "input")
        fp.get_output_directory = lambda: str(self.root / "output")
        fp.get_temp_directory = lambda: str(self.root / "temp")
        fp.get_annotated_filepath = get_annotated_filepath
        fp.exists_annotated_filepath = exists_annotated_filepath
        fp.get_save_image_path = get_save_image_path
        return fp
