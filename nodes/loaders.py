"""Loader nodes: one per stage model and one per text encoder, each with its own output type."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from show1_core import (
    CHECKPOINT_FOR_STAGE,
    T5_DOWNLOAD_GB,
    EmbeddingCache,
    EncoderKind,
    GatedRepoAccessError,
    MemoryPolicy,
    MissingFilesError,
    ModelRole,
    Show1Error,
    SpeedSettings,
    TextEncoder,
    TextEncoderSpec,
    WrongStageError,
    embeddings_cache_dir,
    known_checkpoint,
    load_stage_model,
    parse_dtype,
    resolve_t5_tokenizer,
)
from show1_core.host import PlacedModel, apply_speed, default_dtype

from .comfy_bridge import torch_device
from .core_vae import core_vae
from .model_folders import (
    ENCODER_REPO,
    FOLDER_NAME,
    check_model_name,
    client_safe,
    display_path,
    download_root,
    encoder_choices,
    encoder_of_folder,
    model_roots,
    public_message,
    resolve_model,
    stage_choices,
)
from .placement import placed_stage
from .speed import speed_socket
from .text_encoders import encoder_dtype, encoder_placement, is_file_choice, resolve_t5_file, t5_file_choices
from .types import ENCODER_TITLE, ENCODER_TYPE, MODEL_TYPE, EncoderHandle, expect_speed
from .widgets import Input, combo_input, memory_input, precision_input

LOADER_CATEGORY = "Show-1/loaders"
GATED_HINT = (
    " In ComfyUI you can instead remove the IF-II-L loader: Show-1 Pixel Super-Resolution then upscales the first "
    "frame bilinearly (less detailed results)."
)


def resolve_precision(precision: str) -> torch.dtype:
    """``auto`` -> fp16 on an accelerator, fp32 on the CPU; otherwise the named precision."""
    return default_dtype(torch_device()) if precision == "auto" else parse_dtype(precision)


def _download_tooltip(repo_id: str, size_gb: float, what: str) -> str:
    name = known_checkpoint(repo_id).name
    return (
        f"The {what}. {repo_id} is downloaded into models/{FOLDER_NAME}/{name} on first use (about {size_gb} GB); "
        f"any checkpoint folder in models/{FOLDER_NAME} (or $SHOW1_MODELS_DIR) with this model is listed too."
    )


def _stage_model_name(stage: ModelRole) -> str:
    return f"{stage.title} model"


def _encoder_name(kind: EncoderKind) -> str:
    return f"{ENCODER_TITLE[kind]} text encoder"


def _encoder_download_gb(kind: EncoderKind) -> float:
    """T5 is fetched alone (its fp32 weights); CLIP comes with the rest of show-1-sr2."""
    return T5_DOWNLOAD_GB if kind == EncoderKind.T5 else known_checkpoint(ENCODER_REPO[kind]).approx_download_gb


def stage_output_tooltip(stage: ModelRole) -> str:
    """The tooltip of a stage loader's ``model`` output: the model and the one socket type it connects to."""
    return f"The {_stage_model_name(stage)}, for the Show-1 nodes that take {MODEL_TYPE[stage]} only."


def encoder_output_tooltip(kind: EncoderKind) -> str:
    """The tooltip of a text-encoder loader's ``encoder`` output: the encoder and the one socket type it connects to."""
    return f"The {_encoder_name(kind)}, for the Show-1 nodes that take {ENCODER_TYPE[kind]} only."


class ModelLoader:
    """A loader node: a checkpoint (known repo id or local folder), its precision and memory policy.

    Each loader declares its outputs (``RETURN_TYPES``, ``RETURN_NAMES``, ``OUTPUT_TOOLTIPS``) and
    ``DESCRIPTION`` in its own class body.
    """

    FUNCTION = "load"
    CATEGORY = LOADER_CATEGORY
    RETURN_TYPES: tuple[str, ...]
    RETURN_NAMES: tuple[str, ...]
    OUTPUT_TOOLTIPS: tuple[str, ...]
    DESCRIPTION: str

    @classmethod
    def model_input(cls) -> Input:
        """The ``model`` combo: the repo id (the default), local choices, and where a download goes."""
        raise NotImplementedError

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The checkpoint, its precision and its memory policy."""
        return {"required": {"model": cls.model_input(), "precision": precision_input(), "memory": memory_input()}}

    @classmethod
    def VALIDATE_INPUTS(cls, model: str | None) -> bool | str:
        """Refuse unknown names, paths outside the model folders and ``..`` before the run starts.

        A linked ``model`` (``None`` here, as ComfyUI passes links) is checked when the node runs.
        """
        if model is None:
            return True
        try:
            check_model_name(model)
        except Show1Error as err:
            return public_message(str(err))
        return True


class StageModelLoader(ModelLoader):
    """Loads one stage's checkpoint folder (downloading a known repo id on first use)."""

    STAGE: ModelRole

    @classmethod
    def model_input(cls) -> Input:
        """The stage's released repo id (the default), then the local folders holding this stage's UNet."""
        checkpoint = CHECKPOINT_FOR_STAGE[cls.STAGE]
        tooltip = _download_tooltip(checkpoint.repo_id, checkpoint.approx_download_gb, _stage_model_name(cls.STAGE))
        return combo_input(stage_choices(cls.STAGE), checkpoint.repo_id, tooltip)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The checkpoint, its precision and memory policy, and optional speed settings."""
        return {**super().INPUT_TYPES(), "optional": {"speed": speed_socket()}}

    @client_safe
    def load(self, model: str, precision: str, memory: str, speed: SpeedSettings | None = None) -> tuple[PlacedModel]:
        """Resolve (or download) the folder and load the stage's UNet, schedulers and VAE, run as ``speed`` says."""
        speed = SpeedSettings() if speed is None else expect_speed(speed, "speed")
        try:
            folder = resolve_model(model)
        except GatedRepoAccessError as err:
            raise GatedRepoAccessError(f"{err}{GATED_HINT}") from err
        stage_model = load_stage_model(folder, self.STAGE, dtype=resolve_precision(precision))
        apply_speed(stage_model, speed, torch_device())
        return (placed_stage(stage_model, MemoryPolicy(memory)),)


class KeyframeModelLoader(StageModelLoader):
    """Loads the Show-1 base model (stage 1, showlab/show-1-base) that generates low-resolution keyframes from text."""

    STAGE = ModelRole.KEYFRAMES
    RETURN_TYPES = (MODEL_TYPE[STAGE],)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = (stage_output_tooltip(STAGE),)
    DESCRIPTION = inspect.cleandoc(__doc__)


class InterpolationModelLoader(StageModelLoader):
    """Loads the Show-1 interpolation model (stage 2, showlab/show-1-interpolation) that adds frames between keyframes."""

    STAGE = ModelRole.INTERPOLATION
    RETURN_TYPES = (MODEL_TYPE[STAGE],)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = (stage_output_tooltip(STAGE),)
    DESCRIPTION = inspect.cleandoc(__doc__)


class PixelSRModelLoader(StageModelLoader):
    """Loads the Show-1 pixel super-resolution model (stage 3, showlab/show-1-sr1): x4 upscaling in pixel space."""

    STAGE = ModelRole.PIXEL_SR
    RETURN_TYPES = (MODEL_TYPE[STAGE],)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = (stage_output_tooltip(STAGE),)
    DESCRIPTION = inspect.cleandoc(__doc__)


class FirstFrameModelLoader(StageModelLoader):
    """Loads DeepFloyd IF-II-L (DeepFloyd/IF-II-L-v1.0), which the paper uses to upscale the first frame of stage 3.

    The repository is gated: accept its licence on huggingface.co and log in (hf auth login) before the first download.
    """

    STAGE = ModelRole.FIRST_FRAME
    RETURN_TYPES = (MODEL_TYPE[STAGE],)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = (stage_output_tooltip(STAGE),)
    DESCRIPTION = inspect.cleandoc(__doc__)


class LatentSRModelLoader(StageModelLoader):
    """Loads the Show-1 expert latent super-resolution model (stage 4, showlab/show-1-sr2): UNet, scheduler and VAE.

    Its VAE also comes out as a core VAE, so core VAE Decode/Encode work on Show-1 video latents and back.
    """

    STAGE = ModelRole.LATENT_SR
    RETURN_TYPES = (MODEL_TYPE[STAGE], "VAE")
    RETURN_NAMES = ("model", "vae")
    OUTPUT_TOOLTIPS = (
        stage_output_tooltip(STAGE),
        "The show-1-sr2 VAE for core VAE Decode, VAE Decode (Tiled) and VAE Encode: it decodes Show-1's 5-D video "
        "latents to frames and encodes frames to one video latent.",
    )
    DESCRIPTION = inspect.cleandoc(__doc__)

    def load(self, model: str, precision: str, memory: str, speed: SpeedSettings | None = None) -> tuple[PlacedModel, object]:
        """The stage-4 model and its VAE as a core ComfyUI VAE."""
        (stage,) = super().load(model, precision, memory, speed)
        return (stage, core_vae(stage.model))


class TextEncoderLoader(ModelLoader):
    """Prepares a text encoder; its weights load only when a prompt is not in the embeddings cache."""

    KIND: EncoderKind

    @classmethod
    def choices(cls) -> list[str]:
        """The repo id that ships the encoder and the local folders holding one."""
        return encoder_choices(cls.KIND)

    @classmethod
    def model_input(cls) -> Input:
        """The repo id that ships the encoder (the default), then :meth:`choices`."""
        repo_id = ENCODER_REPO[cls.KIND]
        return combo_input(cls.choices(), repo_id, _download_tooltip(repo_id, _encoder_download_gb(cls.KIND), _encoder_name(cls.KIND)))

    def _source(self, model: str) -> tuple[Path, Path | None]:
        """The checkpoint folder (tokenizer, config, weights) and no single weights file."""
        folder = resolve_model(model, with_text_encoder=True)
        if encoder_of_folder(folder) != self.KIND:
            raise WrongStageError(
                f"{display_path(folder)} holds no {ENCODER_TITLE[self.KIND]} text encoder (text_encoder/ and tokenizer/); "
                f"use {ENCODER_REPO[self.KIND]}"
            )
        return folder, None

    @client_safe
    def load(self, model: str, precision: str, memory: str) -> tuple[EncoderHandle]:
        """Resolve (or download) the encoder; it loads on the first prompt not in the embeddings cache, then ComfyUI keeps it."""
        folder, weights_file = self._source(model)
        dtype = encoder_dtype(precision, resolve_precision(precision))
        spec = TextEncoderSpec(folder, self.KIND, dtype, weights_file=weights_file)
        cache = EmbeddingCache(embeddings_cache_dir(folder.parent))
        encoder = TextEncoder(spec, cache=cache, placement=encoder_placement(self.KIND, MemoryPolicy(memory)))
        return (EncoderHandle(encoder),)


class T5Loader(TextEncoderLoader):
    """Prepares the T5-XXL text encoder of stages 1-3: from showlab/show-1-base (19 GB in fp32), or one file.

    The file may be the T5-XXL that Flux and SD3 users keep in models/text_encoders (t5xxl_fp16.safetensors 9.5 GB,
    t5xxl_fp8_e4m3fn.safetensors 4.9 GB; the same encoder DeepFloyd IF uses); its tokenizer and config then come from
    show-1-base (about 1 MB). It loads on the first prompt that is not cached, and ComfyUI keeps it loaded for the
    next prompts unless it needs the room.
    """

    KIND = EncoderKind.T5
    RETURN_TYPES = (ENCODER_TYPE[KIND],)
    RETURN_NAMES = ("encoder",)
    OUTPUT_TOOLTIPS = (encoder_output_tooltip(KIND),)
    DESCRIPTION = inspect.cleandoc(__doc__)

    @classmethod
    def choices(cls) -> list[str]:
        """The repo id, folders holding a T5, then T5 single files from models/text_encoders."""
        return encoder_choices(cls.KIND) + t5_file_choices()

    @classmethod
    def VALIDATE_INPUTS(cls, model: str | None) -> bool | str:
        """Folders and repo ids as every loader; a single file must be inside the text-encoder folders."""
        if model is None or not is_file_choice(model):
            return super().VALIDATE_INPUTS(model)
        try:
            resolve_t5_file(model)
        except Show1Error as err:
            return public_message(str(err))
        return True

    def _source(self, model: str) -> tuple[Path, Path | None]:
        if not is_file_choice(model):
            return super()._source(model)
        weights_file = resolve_t5_file(model)
        for root in model_roots():
            try:
                return resolve_t5_tokenizer(root, allow_download=False), weights_file
            except MissingFilesError:
                continue
        return resolve_t5_tokenizer(download_root(), allow_download=True), weights_file


class CLIPLoader(TextEncoderLoader):
    """Prepares the CLIP text encoder of the expert latent super-resolution stage (shipped in showlab/show-1-sr2)."""

    KIND = EncoderKind.CLIP
    RETURN_TYPES = (ENCODER_TYPE[KIND],)
    RETURN_NAMES = ("encoder",)
    OUTPUT_TOOLTIPS = (encoder_output_tooltip(KIND),)
    DESCRIPTION = inspect.cleandoc(__doc__)
