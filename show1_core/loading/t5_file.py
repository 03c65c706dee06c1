"""T5-v1.1-XXL from one ``.safetensors`` file, as Flux/SD3 users keep it in ComfyUI's ``models/text_encoders``.

Such files (``t5xxl_fp16.safetensors``, ``t5xxl_fp8_e4m3fn.safetensors``, ...) hold the
transformers ``T5EncoderModel`` weights under their transformers key names, in fp16, bf16
or fp8; "scaled" fp8 files add a per-tensor ``<layer>.scale_weight`` (the real weight is
``weight * scale_weight``) and a ``scaled_fp8`` marker. It is the same encoder DeepFloyd IF
and Show-1 use. The architecture comes from the T5 config Show-1 ships (show-1-base's
``text_encoder/config.json``); a file whose tensors do not fit it exactly is refused, with
what it looks like instead (umt5 of Wan, a CLIP text encoder, a truncated file).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..errors import CorruptCheckpointError, WrongStageError
from .components import ORIGINAL_ATTENTION, read_json

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
SCALE_SUFFIXES = (".scale_weight", ".scale_input")
MARKERS = ("scaled_fp8",)
UMT5_VOCAB = 256384
"""umt5-xxl's vocabulary (Wan's text encoder); T5-v1.1-XXL's is 32128."""


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as file:
            return {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CorruptCheckpointError(
            f"{path} cannot be read as safetensors ({err}); it is truncated or damaged: download it again"
        ) from err


def _refuse_other_models(path: Path, tensors: dict[str, torch.Tensor], vocab_size: int) -> None:
    if any(key.startswith(("text_model.", "transformer.text_model.")) for key in tensors):
        raise WrongStageError(f"{path} is a CLIP text encoder, not T5-v1.1-XXL; pick a t5xxl_*.safetensors file")
    shared = tensors.get("shared.weight", tensors.get("encoder.embed_tokens.weight"))
    if shared is None or not any(key.startswith("encoder.block.") for key in tensors):
        raise WrongStageError(f"{path} holds no T5 encoder weights (no shared.weight / encoder.block.*); pick a t5xxl_*.safetensors file")
    if shared.shape[0] == UMT5_VOCAB:
        raise WrongStageError(
            f"{path} has a {UMT5_VOCAB}-token vocabulary: it is umt5-xxl (Wan's text encoder), not T5-v1.1-XXL "
            f"({vocab_size} tokens), which Show-1 and DeepFloyd IF use; pick t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors"
        )


def _dequantised(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights in float32: fp8 tensors times their ``scale_weight``, scale and marker entries dropped."""
    weights = {}
    for key, tensor in tensors.items():
        if key in MARKERS or key.endswith(SCALE_SUFFIXES):
            continue
        value = tensor.to(torch.float32)
        scale = tensors.get(key.removesuffix(".weight") + ".scale_weight") if key.endswith(".weight") else None
        if scale is not None and tensor.dtype in FP8_DTYPES:
            value = value * scale.to(torch.float32)
        weights[key] = value
    weights.setdefault("encoder.embed_tokens.weight", weights.get("shared.weight"))
    return weights


def _check_fits(path: Path, model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mis_shaped = [
        f"{k} {tuple(weights[k].shape)} (expected {expected[k]})"
        for k in expected
        if k in weights and tuple(weights[k].shape) != expected[k]
    ]
    if missing or unexpected or mis_shaped:
        details = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}" if unexpected else "",
                f"mis-shaped {', '.join(mis_shaped[:3])}{' ...' if len(mis_shaped) > 3 else ''}" if mis_shaped else "",
            )
            if part
        )
        raise WrongStageError(
            f"{path} is not the T5-v1.1-XXL encoder Show-1 uses ({details}); pick t5xxl_fp16.safetensors or "
            "t5xxl_fp8_e4m3fn.safetensors, or the T5 of showlab/show-1-base"
        )


def load_t5_file(path: Path, config_file: Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A ``T5EncoderModel`` from a single-file checkpoint, computing in ``dtype`` (fp8 weights are dequantised to it).

    As transformers loads T5 in fp16, the overflow-prone ``wo`` layers stay in float32.
    """
    from transformers import T5Config, T5EncoderModel

    path = Path(path)
    config = T5Config.from_dict(read_json(Path(config_file)))
    config._attn_implementation = ORIGINAL_ATTENTION
    tensors = _read_tensors(path)
    _refuse_other_models(path, tensors, config.vocab_size)
    weights = _dequantised(tensors)
    with torch.device("meta"):
        model = T5EncoderModel(config)
    _check_fits(path, model, weights)
    keep_fp32 = tuple(f".{name}." for name in (T5EncoderModel._keep_in_fp32_modules or ())) if dtype == torch.float16 else ()
    state = {key: value.to(torch.float32 if any(part in key for part in keep_fp32) else dtype) for key, value in weights.items()}
    model.load_state_dict(state, assign=True)
    return model.eval()
