"""T5-v1.1-XXL from one file, as ComfyUI users keep it (fp16, fp8, scaled fp8), and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from show1_core.errors import CorruptCheckpointError, WrongStageError
from show1_core.loading import load_text_encoder
from show1_core.loading.t5_file import load_t5_file
from show1_core.text import EmbeddingCache, EncoderKind, TextEncoder, TextEncoderSpec

PROMPT = "a panda playing guitar on the beach"
FP8_MAX = 448.0


@pytest.fixture(scope="module")
def t5_folder(tiny_models) -> Path:
    return tiny_models["show-1-base"]


@pytest.fixture(scope="module")
def folder_weights(t5_folder) -> dict[str, torch.Tensor]:
    """The tiny T5 weights as ComfyUI's files hold them: transformers names, the tied embedding once."""
    weights = load_text_encoder(t5_folder / "text_encoder").state_dict()
    return {key: value.clone() for key, value in weights.items() if key != "encoder.embed_tokens.weight"}


def fp16_file(weights: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Write ``t5xxl_fp16``-style; return the float32 weights the file stands for."""
    save_file({key: value.half() for key, value in weights.items()}, str(path))
    return {key: value.half().float() for key, value in weights.items()}


def scaled_fp8_file(weights: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Write a scaled ``t5xxl_fp8_e4m3fn_scaled``-style file (per-tensor scale_weight, scaled_fp8 marker)."""
    tensors: dict[str, torch.Tensor] = {"scaled_fp8": torch.empty(0, dtype=torch.float8_e4m3fn)}
    meant = {}
    for key, value in weights.items():
        if key.endswith(".weight") and value.ndim == 2 and key != "shared.weight":
            scale = value.abs().max() / FP8_MAX
            quantised = (value / scale).to(torch.float8_e4m3fn)
            tensors[key], tensors[key.removesuffix(".weight") + ".scale_weight"] = quantised, scale.reshape(())
            meant[key] = quantised.float() * scale
        else:
            tensors[key], meant[key] = value.half(), value.half().float()
    save_file(tensors, str(path))
    return meant


def embeddings(folder: Path, weights_file: Path | None = None, loader=None) -> torch.Tensor:
    spec = TextEncoderSpec(folder, EncoderKind.T5, weights_file=weights_file)
    return TextEncoder(spec, cache=EmbeddingCache(), loader=loader).encode(PROMPT, "").positive


def reference(folder: Path, meant: dict[str, torch.Tensor]) -> torch.Tensor:
    """The folder-form encoder with its weights replaced by what the file stands for."""
    from show1_core.text import load_tokenizer

    def load():
        model = load_text_encoder(folder / "text_encoder")
        model.load_state_dict(meant | {"encoder.embed_tokens.weight": meant["shared.weight"]})
        return load_tokenizer(folder / "tokenizer", EncoderKind.T5), model

    return embeddings(folder, loader=load)


@pytest.mark.parametrize("writer", [fp16_file, scaled_fp8_file])
def test_a_single_file_gives_the_folder_forms_embeddings_within_its_rounding(t5_folder, folder_weights, tmp_path, writer):
    path = tmp_path / "t5xxl.safetensors"
    meant = writer(folder_weights, path)
    from_file = embeddings(t5_folder, weights_file=path)
    assert (from_file - reference(t5_folder, meant)).abs().max() < 1e-6  # exactly the file's weights
    folder_form = embeddings(t5_folder)
    difference = (from_file - folder_form).abs().max() / folder_form.abs().max()
    assert 0 < difference < (2e-3 if writer is fp16_file else 0.15)  # the precision's rounding, no more


def test_unscaled_fp8_files_load_as_their_values(t5_folder, folder_weights, tmp_path):
    path = tmp_path / "t5xxl_fp8_e4m3fn.safetensors"
    save_file({key: value.to(torch.float8_e4m3fn) for key, value in folder_weights.items()}, str(path))
    model = load_t5_file(path, t5_folder / "text_encoder" / "config.json", torch.float32)
    for key, value in folder_weights.items():
        assert torch.equal(model.state_dict()[key], value.to(torch.float8_e4m3fn).float()), key


def test_fp16_keeps_t5s_overflow_prone_layers_in_float32_as_transformers_does(t5_folder, folder_weights, tmp_path):
    path = tmp_path / "t5xxl_fp16.safetensors"
    fp16_file(folder_weights, path)
    model = load_t5_file(path, t5_folder / "text_encoder" / "config.json", torch.float16)
    dtypes = {key: value.dtype for key, value in model.state_dict().items()}
    assert all(dtype == torch.float32 for key, dtype in dtypes.items() if ".wo." in key)
    assert dtypes["encoder.block.0.layer.0.SelfAttention.q.weight"] == torch.float16


def test_the_cache_tells_a_file_from_the_folder(t5_folder, folder_weights, tmp_path):
    path = tmp_path / "t5xxl_fp16.safetensors"
    fp16_file(folder_weights, path)
    assert TextEncoderSpec(t5_folder, EncoderKind.T5).key != TextEncoderSpec(t5_folder, EncoderKind.T5, weights_file=path).key


@pytest.mark.parametrize(
    "tensors, message",
    [
        ({"shared.weight": torch.zeros(256384, 1, dtype=torch.float8_e4m3fn), "encoder.block.0.x": torch.zeros(1)}, "umt5-xxl \\(Wan"),
        ({"text_model.encoder.layers.0.mlp.fc1.weight": torch.zeros(2, 2)}, "is a CLIP text encoder"),
        ({"model.diffusion_model.x": torch.zeros(2)}, "holds no T5 encoder weights"),
    ],
)
def test_other_encoders_are_refused_with_what_they_are(t5_folder, tmp_path, tensors, message):
    path = tmp_path / "other.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(WrongStageError, match=message):
        load_t5_file(path, t5_folder / "text_encoder" / "config.json")


def test_a_t5_of_another_size_is_refused_naming_the_mismatch(t5_folder, folder_weights, tmp_path):
    path = tmp_path / "t5_small.safetensors"
    save_file({k: (v[:, :16] if k == "shared.weight" else v).contiguous() for k, v in folder_weights.items()}, str(path))
    with pytest.raises(WrongStageError, match="not the T5-v1.1-XXL encoder.*mis-shaped shared.weight"):
        load_t5_file(path, t5_folder / "text_encoder" / "config.json")


def test_a_truncated_file_is_called_damaged(t5_folder, folder_weights, tmp_path):
    path = tmp_path / "t5xxl_fp16.safetensors"
    fp16_file(folder_weights, path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptCheckpointError, match="truncated or damaged: download it again"):
        load_t5_file(path, t5_folder / "text_encoder" / "config.json")
