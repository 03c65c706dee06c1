"""Checkpoint loading: inputs, formats, precision, safety and every error a user can hit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from show1_core.errors import (
    CorruptCheckpointError,
    GatedRepoAccessError,
    HubError,
    InputError,
    MissingFilesError,
    OfflineError,
    StateDictMismatchError,
    UnsafeCheckpointError,
    WrongStageError,
)
from show1_core.loading import ModelRole, load_stage_model, load_text_encoder
from show1_core.loading.convert import convert_checkpoint
from show1_core.loading.hub import resolve_checkpoint
from show1_core.loading.weights import find_weights, read_state_dict


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _unet_output(model, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    config = model.unet.config
    sample = torch.randn(1, config.in_channels, 2, 16, 16)
    text = torch.randn(1, 77, config.encoder_hid_dim or config.cross_attention_dim)
    labels = torch.tensor([250]) if config.class_embed_type else None
    with torch.no_grad():
        return model.unet(sample, 500, text, class_labels=labels).sample


# --- what can be loaded -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["show-1-base", "show-1-interpolation", "show-1-sr1", "IF-II-L-v1.0", "show-1-sr2"])
def test_pipeline_folder_loads_with_its_stage(tiny_models, name):
    model = load_stage_model(tiny_models[name])
    assert (
        model.stage.value
        == {
            "show-1-base": "keyframes",
            "show-1-interpolation": "interpolation",
            "show-1-sr1": "pixel_sr",
            "IF-II-L-v1.0": "first_frame",
            "show-1-sr2": "latent_sr",
        }[name]
    )
    assert (model.noising_scheduler is not None) == (name in ("show-1-sr1", "IF-II-L-v1.0"))
    assert (model.vae is not None) == (name == "show-1-sr2")
    assert not any(p.requires_grad for p in model.unet.parameters())


def test_component_folder_loads_like_the_pipeline_folder(tiny_models):
    whole = load_stage_model(tiny_models["show-1-base"], ModelRole.KEYFRAMES)
    component = load_stage_model(tiny_models["show-1-base"] / "unet", ModelRole.KEYFRAMES)
    assert torch.equal(_unet_output(whole), _unet_output(component))


def test_safetensors_and_sharded_conversion_give_identical_models(tiny_models, tmp_path):
    converted = tmp_path / "base-st"
    written = convert_checkpoint(tiny_models["show-1-base"], converted, max_shard_gb=0.0005)
    assert all(p.suffix in (".safetensors", ".json") for p in written)
    assert (converted / "unet" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    assert not list(converted.rglob("*.bin"))
    original = load_stage_model(tiny_models["show-1-base"]).unet.state_dict()
    again = load_stage_model(converted).unet.state_dict()
    assert original.keys() == again.keys() and all(torch.equal(original[k], again[k]) for k in original)
    t5_bin = load_text_encoder(tiny_models["show-1-base"] / "text_encoder")
    t5_st = load_text_encoder(converted / "text_encoder")
    assert t5_st.encoder.embed_tokens.weight is t5_st.shared.weight  # the tie survives conversion
    ids = torch.tensor([[5, 6, 7, 1]])
    assert torch.allclose(t5_bin(ids).last_hidden_state, t5_st(ids).last_hidden_state, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_precision_on_request(tiny_models, dtype):
    model = load_stage_model(tiny_models["show-1-sr2"], dtype=dtype)
    assert model.unet.dtype == dtype and model.vae.dtype == dtype


def test_t5_in_fp16_keeps_its_overflow_prone_layers_in_fp32(tiny_models):
    t5 = load_text_encoder(tiny_models["show-1-base"] / "text_encoder", dtype=torch.float16)
    dtypes = {name: p.dtype for name, p in t5.named_parameters()}
    assert all(d == torch.float32 for n, d in dtypes.items() if ".wo." in n)
    assert all(d == torch.float16 for n, d in dtypes.items() if ".wo." not in n)


def test_fp16_variant_file_is_found_when_alone(tiny_models, tmp_path):
    folder = _copy(tiny_models["IF-II-L-v1.0"], tmp_path / "if")
    state = {k: v.half() for k, v in read_state_dict(find_weights(folder / "unet")).items()}
    (folder / "unet" / "diffusion_pytorch_model.bin").unlink()
    save_file(state, str(folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    assert load_stage_model(folder, dtype=torch.float16).unet.dtype == torch.float16


# --- safety -------------------------------------------------------------------------------


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_that_carries_code_is_refused_and_never_run(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    weights = folder / "unet" / "diffusion_pytorch_model.bin"
    state = torch.load(weights, weights_only=True)
    marker = tmp_path / "code-ran"
    state["conv_in.weight"] = _RunsCode(marker)
    torch.save(state, weights)
    with pytest.raises(UnsafeCheckpointError, match="could run arbitrary code"):
        load_stage_model(folder)
    assert not marker.exists()


def test_a_pickled_t5_shard_that_carries_code_is_refused_in_one_line_without_unpickling_advice(tiny_models, tmp_path, capsys):
    from show1_core.cli import main

    folder = _copy(tiny_models["show-1-base"], tmp_path / "show-1-base")
    shard = folder / "text_encoder" / "pytorch_model-00001-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    marker = tmp_path / "code-ran"
    state[next(iter(state))] = _RunsCode(marker)
    torch.save(state, shard)
    with pytest.raises(UnsafeCheckpointError, match="could run arbitrary code") as caught:
        load_text_encoder(folder / "text_encoder")
    assert "weights_only" not in str(caught.value) and caught.value.__cause__ is None
    args = ["generate", "a cat", "-o", str(tmp_path / "v.mp4"), "--models-dir", str(tmp_path), "--offline", "--device", "cpu"]
    assert main(args + ["--stages", "1", "--keyframes-steps", "1"]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and "could run arbitrary code" in last and "weights_only" not in err and "Traceback" not in err
    assert not marker.exists()


# --- errors -------------------------------------------------------------------------------


def test_wrong_stage_says_which_stage_it_looks_like(tiny_models):
    with pytest.raises(WrongStageError, match=r"pixel super-resolution.*showlab/show-1-sr1.*keyframes"):
        load_stage_model(tiny_models["show-1-sr1"], ModelRole.KEYFRAMES)


def test_weights_of_another_stage_under_a_config_are_named(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    shutil.copy(tiny_models["show-1-sr1"] / "unet" / "diffusion_pytorch_model.bin", folder / "unet")
    with pytest.raises(StateDictMismatchError, match="look like the pixel super-resolution"):
        load_stage_model(folder, ModelRole.KEYFRAMES)


@pytest.mark.parametrize("edit, message", [("drop", "1 missing"), ("add", "1 unexpected"), ("reshape", "wrong shape")])
def test_missing_extra_and_misshaped_keys(tiny_models, tmp_path, edit, message):
    folder = _copy(tiny_models["show-1-interpolation"], tmp_path / "interp")
    weights = folder / "unet" / "diffusion_pytorch_model.bin"
    state = torch.load(weights, weights_only=True)
    if edit == "drop":
        state.pop("conv_out.bias")
    elif edit == "add":
        state["surplus.weight"] = torch.zeros(1)
    else:
        state["conv_out.bias"] = torch.zeros(7)
    torch.save(state, weights)
    with pytest.raises(StateDictMismatchError, match=message):
        load_stage_model(folder)


@pytest.mark.parametrize(
    "remove, message",
    [
        ("unet/config.json", "config.json is missing"),
        ("unet/diffusion_pytorch_model.bin", "no weights found"),
        ("scheduler/scheduler_config.json", "scheduler_config.json is missing"),
        ("image_noising_scheduler/scheduler_config.json", "image_noising_scheduler"),
    ],
)
def test_missing_files(tiny_models, tmp_path, remove, message):
    folder = _copy(tiny_models["show-1-sr1"], tmp_path / "sr1")
    (folder / remove).unlink()
    with pytest.raises(MissingFilesError, match=message):
        load_stage_model(folder)


def test_missing_shard_of_a_sharded_checkpoint(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    (folder / "text_encoder" / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(MissingFilesError, match="00002"):
        load_text_encoder(folder / "text_encoder")


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_truncated_weights_are_reported_as_corrupt(tiny_models, tmp_path, fmt):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    weights = folder / "unet" / "diffusion_pytorch_model.bin"
    if fmt == "safetensors":
        save_file(torch.load(weights, weights_only=True), str(weights.with_suffix(".safetensors")))
        weights.unlink()
        weights = weights.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError, match="(?i)download"):
        load_stage_model(folder)


def test_config_the_model_class_refuses(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    config = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps(dict(config, time_embedding_type="fourier")))
    with pytest.raises(CorruptCheckpointError, match="does not describe a usable Show1UNet.*fourier"):
        load_stage_model(folder)


def test_known_repo_ids_never_resolve_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "cwd" / "showlab" / "show-1-base").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(MissingFilesError, match="show1 download"):
        resolve_checkpoint("showlab/show-1-base", tmp_path / "models", allow_download=False)


@pytest.mark.parametrize("reference", ["a/..", "../models", "a/b/c"])
def test_malformed_references(tmp_path, reference):
    with pytest.raises(MissingFilesError, match="not a folder, a known checkpoint name or a Hub repo id"):
        resolve_checkpoint(reference, tmp_path)


def test_invalid_config_json(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    (folder / "unet" / "config.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="not valid JSON"):
        load_stage_model(folder)


# --- Hub references -----------------------------------------------------------------------


def _refuse(error: Exception):
    """Stands in for ``huggingface_hub.snapshot_download`` when the Hub answers with ``error``."""

    def snapshot_download(repo_id, **_):
        raise error

    return snapshot_download


@pytest.fixture
def local_hub(tiny_models, monkeypatch):
    from fake_hub import serving

    repos = {"showlab/show-1-interpolation": tiny_models["show-1-interpolation"], "showlab/show-1-base": tiny_models["show-1-base"]}
    with serving(repos, monkeypatch) as hub:
        yield hub


def test_repo_id_downloads_only_what_the_stage_needs_then_reuses_it(local_hub, tmp_path):
    folder = resolve_checkpoint("showlab/show-1-interpolation", tmp_path)
    assert folder == tmp_path / "show-1-interpolation"
    assert not (folder / "text_encoder").exists()  # the 11 GB T5 copy in that repo is skipped
    assert load_stage_model(folder).stage == ModelRole.INTERPOLATION
    fetched = len(local_hub.gets)
    assert resolve_checkpoint("show-1-interpolation", tmp_path) == folder
    assert len(local_hub.gets) == fetched and not any(name.startswith("text_encoder/") for _, name, _ in local_hub.gets)


def test_text_encoder_is_fetched_when_asked(local_hub, tmp_path):
    folder = resolve_checkpoint("show-1-base", tmp_path, with_text_encoder=True)
    assert (folder / "text_encoder" / "pytorch_model.bin.index.json").is_file()
    assert any(name.startswith("text_encoder/") for _, name, _ in local_hub.gets)


def _http_error(cls, status: int):
    response = types.SimpleNamespace(status_code=status, headers={}, request=None)  # what the Hub errors read
    return cls("refused", response=response)


@pytest.mark.parametrize(
    "error_name, expected, message",
    [
        ("GatedRepoError", GatedRepoAccessError, r"accept its licence.*hf auth login"),
        ("RepositoryNotFoundError", HubError, "not found on the Hub"),
        ("LocalEntryNotFoundError", OfflineError, "hf download"),
    ],
)
def test_hub_failures_become_clear_errors(tiny_models, tmp_path, monkeypatch, error_name, expected, message):
    import huggingface_hub
    from huggingface_hub import errors

    cls = getattr(errors, error_name)
    error = cls("offline") if error_name == "LocalEntryNotFoundError" else _http_error(cls, 403 if "Gated" in error_name else 404)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _refuse(error))
    reference = "DeepFloyd/IF-II-L-v1.0" if "Gated" in error_name else "showlab/show-1-sr1"
    with pytest.raises(expected, match=message):
        resolve_checkpoint(reference, tmp_path)


def test_really_offline_hub_gives_manual_download_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"hf download showlab/show-1-sr2 .*--local-dir"):
        resolve_checkpoint("showlab/show-1-sr2", tmp_path)


def test_no_download_when_not_allowed(tmp_path):
    with pytest.raises(MissingFilesError, match="show1 download"):
        resolve_checkpoint("show-1-base", tmp_path, allow_download=False)


def test_nonexistent_local_path(tmp_path):
    with pytest.raises(MissingFilesError, match="not a folder"):
        resolve_checkpoint(str(tmp_path / "nowhere" / "deeper"), tmp_path)


def test_the_folder_a_killed_conversion_left_is_removed_by_the_next_one(tiny_models, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "base-st"
    leftover = tmp_path / f".base-st.partial-{dead.pid}-0123abcd"
    (leftover / "unet").mkdir(parents=True)
    (leftover / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"half")
    running = tmp_path / f".base-st.partial-{os.getpid()}-0123abcd"  # a conversion still running is left alone
    running.mkdir()
    convert_checkpoint(tiny_models["show-1-base"], target)
    assert not leftover.exists() and running.is_dir()
    assert (target / "unet").is_dir()


def test_convert_refuses_to_overwrite_its_source(tiny_models):
    from show1_core.errors import InputError

    with pytest.raises(InputError):
        convert_checkpoint(tiny_models["show-1-base"], tiny_models["show-1-base"])


def test_converted_fp16_checkpoint_is_smaller_and_loads(tiny_models, tmp_path):
    converted = tmp_path / "sr2-fp16"
    convert_checkpoint(tiny_models["show-1-sr2"], converted, dtype=torch.float16)
    tensors = load_file(str(converted / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(t.dtype == torch.float16 for t in tensors.values())
    assert json.loads((converted / "model_index.json").read_text())["_class_name"] == "VideoToVideoSDPipeline"
    assert load_stage_model(converted, dtype=torch.float16).stage == ModelRole.LATENT_SR


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"null", b"[1, 2]"])
def test_a_config_that_is_not_a_json_object_is_named(tiny_models, tmp_path, content):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    (folder / "unet" / "config.json").write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=r"unet/config.json .*download it again"):
        load_stage_model(folder)


def test_a_scheduler_config_with_wrong_types_is_named(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    path = folder / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), num_train_timesteps="many")))
    with pytest.raises(CorruptCheckpointError, match=r"scheduler/scheduler_config.json does not describe a usable"):
        load_stage_model(folder)


def test_random_bytes_in_a_bin_file_are_corrupt_not_unsafe(tiny_models, tmp_path):
    folder = _copy(tiny_models["show-1-base"], tmp_path / "base")
    weights = folder / "unet" / "diffusion_pytorch_model.bin"
    weights.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CorruptCheckpointError, match="download it again") as caught:
        load_stage_model(folder)
    assert not isinstance(caught.value, UnsafeCheckpointError)


def test_the_stage_may_be_named(tiny_models):
    assert load_stage_model(tiny_models["show-1-base"], "keyframes").stage == ModelRole.KEYFRAMES
    with pytest.raises(WrongStageError, match="keyframes"):
        load_stage_model(tiny_models["show-1-sr1"], "keyframes")
    from show1_core.errors import InputError

    with pytest.raises(InputError, match=r"unknown stage 'keyframe'; choose one of keyframes, interpolation"):
        load_stage_model(tiny_models["show-1-base"], "keyframe")


def test_text_encoders_attend_as_the_original_did(tiny_models):
    """transformers 4.29 (the original's) had only eager attention for T5 and CLIP; SDPA rounds differently in fp16."""
    for folder in (tiny_models["show-1-base"], tiny_models["show-1-sr2"]):
        assert load_text_encoder(folder / "text_encoder").config._attn_implementation == "eager"


def test_convert_never_rewrites_an_existing_folder(tiny_models, tmp_path):
    target = tmp_path / "converted"
    convert_checkpoint(tiny_models["show-1-sr1"], target)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="already exists and is not an empty folder; convert into a new folder"):
        convert_checkpoint(tiny_models["show-1-base"], target, dtype=torch.float16)
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted"]
    assert convert_checkpoint(tiny_models["show-1-sr1"], tmp_path / "empty-ok") and (tmp_path / "empty-ok" / "unet").is_dir()


def test_a_failed_conversion_leaves_no_folder(tiny_models, tmp_path):
    source = _copy(tiny_models["show-1-sr1"], tmp_path / "sr1")
    (source / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"truncated")
    with pytest.raises(CorruptCheckpointError):
        convert_checkpoint(source, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr1"]


def test_a_shard_index_naming_files_outside_its_folder_is_refused_by_every_reader(tiny_models, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = _copy(tiny_models["show-1-base"], tmp_path / "ckpt" / "show-1-base")
    index = folder / "text_encoder" / "pytorch_model.bin.index.json"
    data = json.loads(index.read_text())
    first = sorted(set(data["weight_map"].values()))[0]
    shutil.move(folder / "text_encoder" / first, outside / first)
    data["weight_map"] = {k: f"../../../outside/{first}" if v == first else v for k, v in data["weight_map"].items()}
    index.write_text(json.dumps(data))
    message = "names the shard '../../../outside/.*', outside its folder"
    with pytest.raises(CorruptCheckpointError, match=message):
        read_state_dict(index)
    with pytest.raises(CorruptCheckpointError, match=message):
        load_text_encoder(folder / "text_encoder")
    with pytest.raises(CorruptCheckpointError, match=message):
        convert_checkpoint(folder, tmp_path / "converted")
    assert not (tmp_path / "converted").exists()
