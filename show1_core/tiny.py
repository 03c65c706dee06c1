"""A complete set of tiny, randomly initialised Show-1 models in the released layout.

``write_tiny_models(DIR)`` creates one folder per released repository, under the released
names (``show-1-base``, ``show-1-interpolation``, ``show-1-sr1``, ``show-1-sr2``,
``IF-II-L-v1.0``), with the released block structure, scheduler configs, file names and
weight formats (pickled ``.bin``, the T5 encoder in two shards with an index), plus T5 and
CLIP tokenizers built locally. Everything that runs on the real folders runs unchanged
on these; random weights produce noise, not pictures.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import string
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from huggingface_hub import save_torch_state_dict, split_torch_state_dict_into_shards

from .errors import InputError
from .loading.registry import KNOWN_CHECKPOINTS
from .models import Show1UNet

TEXT_WIDTH = 32
"""Width of the tiny T5 and CLIP encoders (4096 and 1024 in the released models)."""
CHANNELS = 32
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model"
MODEL_INDEX = {
    "show-1-base": "TextToVideoIFPipeline",
    "show-1-interpolation": "TextToVideoIFInterpPipeline",
    "show-1-sr1": "TextToVideoIFSuperResolutionPipeline_Cond",
    "show-1-sr2": "VideoToVideoSDPipeline",
    "IF-II-L-v1.0": "IFSuperResolutionPipeline",
}
_VOCABULARY = (
    "a an the of on in at with and video photo panda playing guitar beach sunset burning car driving rainbow "
    "low resolution blur cat dog city night sky red blue green bright dark running flying water fire tree"
).split()


def tiny_unet_config(config: dict[str, Any]) -> dict[str, Any]:
    """A released UNet config (block types, depth) at toy width."""
    blocks = len(config["down_block_types"])
    tiny = dict(config)
    tiny.update(
        block_out_channels=[CHANNELS] * blocks,
        layers_per_block=1,
        attention_head_dim=8,
        cross_attention_dim=CHANNELS,
        sample_size=32,
    )
    if config.get("encoder_hid_dim") is not None:
        tiny.update(encoder_hid_dim=TEXT_WIDTH, addition_embed_type_num_heads=4)
    else:
        tiny.update(cross_attention_dim=TEXT_WIDTH)
    return tiny


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _save_weights(model: torch.nn.Module, folder: Path, stem: str, fmt: str, sharded: bool = False) -> None:
    """The model's weights in the released file layout: one file, or (``sharded``) two files and an index."""
    state = model.state_dict()
    total = sum(t.numel() * t.element_size() for t in state.values())
    size = int(total * 0.6) if sharded else 2 * total
    if fmt == "safetensors":
        save_torch_state_dict(state, folder, filename_pattern=stem + "{suffix}.safetensors", max_shard_size=size)
        return
    split = split_torch_state_dict_into_shards(state, filename_pattern=stem + "{suffix}.bin", max_shard_size=size)
    folder.mkdir(parents=True, exist_ok=True)
    for filename, names in split.filename_to_tensors.items():
        torch.save({name: state[name].contiguous() for name in names}, folder / filename)
    if split.is_sharded:
        _write_json(folder / f"{stem}.bin.index.json", {"metadata": split.metadata, "weight_map": split.tensor_to_filename})


def _t5_tokenizer(folder: Path) -> None:
    import sentencepiece as spm

    rng = random.Random(0)
    sentences = [" ".join(rng.choice(_VOCABULARY) for _ in range(8)) for _ in range(2000)]
    sentences.append(" ".join(string.ascii_lowercase + string.digits + ".,!?'-:;"))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=96,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(model.getvalue())
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "T5Tokenizer",
            "model_max_length": 512,
            "extra_ids": 0,
            "eos_token": "</s>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
        },
    )


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2/CLIP convention)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _clip_tokenizer(folder: Path) -> int:
    """A byte-level BPE vocabulary in CLIP's format; returns its size."""
    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols]
    merges = []
    for word in _VOCABULARY[:24]:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.append(pieces[0])
    vocab = list(dict.fromkeys(vocab)) + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": 77,
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
        },
    )
    return len(vocab)


def tiny_t5_config():
    """The T5 encoder's config (gated-GELU, as T5-XXL) at toy width, for the tiny T5 tokenizer's 96 tokens."""
    from transformers import T5Config

    return T5Config(
        d_model=TEXT_WIDTH,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        vocab_size=96,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        tie_word_embeddings=False,
    )


def tiny_clip_config(vocab_size: int):
    """The stage-4 CLIP text model's config at toy width, for a vocabulary of ``vocab_size`` tokens."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        hidden_size=TEXT_WIDTH,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        max_position_embeddings=77,
        projection_dim=TEXT_WIDTH,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def tiny_vae_config() -> dict[str, Any]:
    """The show-1-sr2 VAE config (same depth and scale) at toy width."""
    return dict(
        KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("vae"), block_out_channels=[8, 8, 8, 8], layers_per_block=1, norm_num_groups=4
    )


def _write_t5(root: Path, fmt: str) -> None:
    from transformers import T5EncoderModel

    _t5_tokenizer(root / "tokenizer")
    config = tiny_t5_config()
    model = T5EncoderModel(config)
    _write_json(root / "text_encoder" / "config.json", {**config.to_dict(), "architectures": ["T5EncoderModel"]})
    _save_weights(model, root / "text_encoder", "pytorch_model" if fmt == "bin" else "model", fmt, sharded=True)


def _write_clip(root: Path, fmt: str) -> None:
    from transformers import CLIPTextModel

    config = tiny_clip_config(_clip_tokenizer(root / "tokenizer"))
    model = CLIPTextModel(config)
    _write_json(root / "text_encoder" / "config.json", {**config.to_dict(), "architectures": ["CLIPTextModel"]})
    _save_weights(model, root / "text_encoder", "pytorch_model" if fmt == "bin" else "model", fmt)


def _write_unet(root: Path, name: str, fmt: str) -> None:
    config = tiny_unet_config(KNOWN_CHECKPOINTS[name].expected_config("unet"))
    cls = UNet2DConditionModel if config["down_block_types"][0].endswith("2D") else Show1UNet
    model = cls.from_config(config)
    with torch.no_grad():  # as in the parity fixtures: a quiet output layer keeps random nets stable
        model.conv_out.weight.mul_(0.1)
        model.conv_out.bias.mul_(0.1)
    _write_json(root / "unet" / "config.json", dict(model.config))
    _save_weights(model, root / "unet", DIFFUSERS_WEIGHTS, fmt)


def _write_vae(root: Path, fmt: str) -> None:
    model = AutoencoderKL.from_config(tiny_vae_config())
    _write_json(root / "vae" / "config.json", dict(model.config))
    _save_weights(model, root / "vae", DIFFUSERS_WEIGHTS, fmt)


def _model_index(root: Path, name: str, components: list[str]) -> None:
    libraries = {
        "unet": ["showone.models.unet_3d_condition", "UNet3DConditionModel"],
        "text_encoder": ["transformers", "CLIPTextModel" if name == "show-1-sr2" else "T5EncoderModel"],
        "tokenizer": ["transformers", "CLIPTokenizer" if name == "show-1-sr2" else "T5Tokenizer"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if name == "IF-II-L-v1.0":
        libraries["unet"] = ["diffusers", "UNet2DConditionModel"]
    index: dict[str, Any] = {"_class_name": MODEL_INDEX[name], "_diffusers_version": "0.19.3", "_name_or_path": name}
    for component in components:
        if component.endswith("scheduler"):
            index[component] = ["diffusers", json.loads((root / component / "scheduler_config.json").read_text())["_class_name"]]
        else:
            index[component] = libraries[component]
    _write_json(root / "model_index.json", index)


def _check_directory(directory: Path, overwrite: bool) -> None:
    """Refuse a file, and a folder that holds anything unless ``overwrite``; with it, remove the checkpoint folders."""
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file; give a new or empty folder for the tiny models")
    held = sorted(item.name for item in directory.iterdir()) if directory.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        raise InputError(
            f"{directory} is not empty (it holds {shown}); tiny random models would replace checkpoints there. Give a new "
            "or empty folder, or pass --overwrite to replace the tiny models' folders"
        )
    for name in KNOWN_CHECKPOINTS if overwrite else ():
        shutil.rmtree(directory / name, ignore_errors=True)  # no stale weights of another format are left beside new ones


def write_tiny_models(directory: Path | str, fmt: str = "bin", seed: int = 0, overwrite: bool = False) -> dict[str, Path]:
    """Write the tiny model set into ``directory``; returns the folder of each checkpoint.

    Args:
        fmt: ``"bin"`` (the released repositories' pickled format) or ``"safetensors"``.
        seed: initialisation seed; the same seed writes the same weights.
        overwrite: write into a folder that holds something, replacing its checkpoint folders of the
            released names (otherwise :class:`InputError`: one slip must not replace downloaded checkpoints).
    """
    if fmt not in ("bin", "safetensors"):
        raise ValueError(f"fmt must be 'bin' or 'safetensors', got {fmt!r}")
    directory = Path(directory)
    _check_directory(directory, overwrite)
    folders = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, checkpoint in KNOWN_CHECKPOINTS.items():
            root = directory / name
            components = list(checkpoint.components)
            _write_unet(root, name, fmt)
            for scheduler in (c for c in components if c.endswith("scheduler")):
                _write_json(root / scheduler / "scheduler_config.json", checkpoint.expected_config(scheduler))
            if name == "show-1-sr2":
                _write_vae(root, fmt)
                _write_clip(root, fmt)
            elif name != "IF-II-L-v1.0":
                _write_t5(root, fmt)
                components += ["text_encoder", "tokenizer"]
            _model_index(root, name, components)
            folders[name] = root
    return folders
