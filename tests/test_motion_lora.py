"""Motion LoRA files and adapters: exact round trips, stacking, and every kind of file that must be refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lora_support import RANK, info_for, lora_weights, write_lora
from safetensors.torch import save_file

from show1_core.cli import main
from show1_core.errors import CorruptCheckpointError, InputError, MissingFilesError, StateDictMismatchError, WrongStageError
from show1_core.loading import ModelRole, load_stage_model
from show1_core.motion_lora import (
    active_motion_loras,
    apply_motion_loras,
    load_motion_lora,
    motion_loras,
    parse_lora_spec,
    read_motion_lora_info,
    remove_motion_loras,
    save_motion_lora,
    temporal_attention_targets,
)
from show1_core.settings import KeyframeSettings
from show1_core.stages import PromptEmbeds, generate_keyframes

SETTINGS = KeyframeSettings(num_frames=4, height=8, width=16, steps=2, guidance=9.0)


@pytest.fixture(scope="module")
def keyframe_model(tiny_models):
    return load_stage_model(tiny_models["show-1-base"], ModelRole.KEYFRAMES)


@pytest.fixture(scope="module")
def interpolation_model(tiny_models):
    return load_stage_model(tiny_models["show-1-interpolation"], ModelRole.INTERPOLATION)


@pytest.fixture(scope="module")
def embeds():
    generator = torch.Generator().manual_seed(3)
    return PromptEmbeds(torch.randn(1, 77, 32, generator=generator), torch.randn(1, 77, 32, generator=generator))


def keyframes(model, embeds) -> torch.Tensor:
    with torch.inference_mode():
        return generate_keyframes(model, embeds, SETTINGS, seed=11)


def test_scale_zero_and_removal_give_the_base_models_output_exactly(tmp_path, keyframe_model, embeds):
    unet = keyframe_model.unet
    lora = load_motion_lora(write_lora(tmp_path / "a.safetensors", keyframe_model))
    state = {k: v.clone() for k, v in unet.state_dict().items()}
    modules = dict(unet.named_modules())
    base = keyframes(keyframe_model, embeds)

    with motion_loras(keyframe_model, [lora.with_scale(0.0)]):
        assert active_motion_loras(keyframe_model)  # the adapters are really there, at scale 0
        at_zero = keyframes(keyframe_model, embeds)
    with motion_loras(keyframe_model, [lora]):
        adapted = keyframes(keyframe_model, embeds)
    removed = keyframes(keyframe_model, embeds)

    assert torch.equal(at_zero, base)
    assert (adapted - base).abs().max() > 1e-3
    assert torch.equal(removed, base)
    assert not active_motion_loras(keyframe_model)
    assert all(modules[name] is module for name, module in unet.named_modules()), "the original layers are back"
    assert unet.state_dict().keys() == state.keys()
    assert all(torch.equal(state[k], v) for k, v in unet.state_dict().items())


def test_stacked_loras_add_up_and_the_context_removes_them_after_an_error(tmp_path, keyframe_model, embeds):
    lora = load_motion_lora(write_lora(tmp_path / "a.safetensors", keyframe_model))
    x = torch.randn(1, 3, 4, 8, 16, generator=torch.Generator().manual_seed(0))
    text = embeds.positive
    with torch.no_grad():
        with motion_loras(keyframe_model, [lora]):
            full = keyframe_model.unet(x, 500, text).sample
        with motion_loras(keyframe_model, [lora.with_scale(0.5), lora.with_scale(0.5)]):
            halves = keyframe_model.unet(x, 500, text).sample
        base = keyframe_model.unet(x, 500, text).sample
    assert torch.allclose(full, halves, atol=1e-5) and (full - base).abs().max() > 1e-3

    with pytest.raises(RuntimeError, match="boom"):
        with motion_loras(keyframe_model, [lora]):
            raise RuntimeError("boom")
    assert not active_motion_loras(keyframe_model)


def test_apply_and_remove_by_hand_and_no_stacking_onto_foreign_adapters(tmp_path, keyframe_model):
    lora = load_motion_lora(write_lora(tmp_path / "a.safetensors", keyframe_model))
    names = apply_motion_loras(keyframe_model, [lora])
    try:
        assert active_motion_loras(keyframe_model) == names
        with pytest.raises(InputError, match="already carries LoRA adapters"):
            apply_motion_loras(keyframe_model, [lora])
    finally:
        remove_motion_loras(keyframe_model)
    assert not active_motion_loras(keyframe_model)
    remove_motion_loras(keyframe_model)  # a no-op without adapters


def test_the_file_carries_its_metadata_in_the_diffusers_layout(tmp_path, keyframe_model):
    path = write_lora(tmp_path / "a.safetensors", keyframe_model)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        keys, metadata = list(handle.keys()), handle.metadata()
    assert all(k.startswith("unet.") and (k.endswith(".lora_A.weight") or k.endswith(".lora_B.weight")) for k in keys)
    peft_config = json.loads(metadata["lora_adapter_metadata"])
    assert peft_config["r"] == RANK and set(peft_config["target_modules"]) == set(temporal_attention_targets(keyframe_model.unet))
    info = read_motion_lora_info(path)
    assert info == info_for(keyframe_model)
    assert (info.stage, info.base_checkpoint, info.steps, info.prompts) == (ModelRole.KEYFRAMES, "tiny", 10, ("a square moving right",))


def test_a_lora_for_another_stage_is_refused(tmp_path, keyframe_model, interpolation_model):
    keyframe_lora = load_motion_lora(write_lora(tmp_path / "k.safetensors", keyframe_model))
    with pytest.raises(WrongStageError, match="trained for the keyframes .* cannot adapt the temporal interpolation"):
        apply_motion_loras(interpolation_model, [keyframe_lora])
    assert not active_motion_loras(interpolation_model)


def test_a_lora_trained_on_another_architecture_is_refused(tmp_path, keyframe_model):
    lora = load_motion_lora(write_lora(tmp_path / "k.safetensors", keyframe_model, base_fingerprint="0123456789abcdef"))
    with pytest.raises(StateDictMismatchError, match="different architecture"):
        apply_motion_loras(keyframe_model, [lora])


def test_a_lora_for_a_stage_without_motion_loras_is_refused(tmp_path, keyframe_model):
    path = write_lora(tmp_path / "k.safetensors", keyframe_model, stage=ModelRole.PIXEL_SR)
    with pytest.raises(WrongStageError, match="stages 1 and 2 only"):
        load_motion_lora(path)


def test_a_rank_that_does_not_match_the_tensors_is_refused(tmp_path, keyframe_model):
    weights = lora_weights(keyframe_model.unet, rank=8)
    with pytest.raises(StateDictMismatchError, match="rank-4 layout"):
        save_motion_lora(tmp_path / "bad.safetensors", weights, info_for(keyframe_model))
    tensors = {f"unet.{k}": v for k, v in weights.items()}  # written by hand, past the writer's check
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"show1_motion_lora": info_for(keyframe_model).to_json()})
    with pytest.raises(StateDictMismatchError, match="rank-4 layout"):
        load_motion_lora(tmp_path / "bad.safetensors")


def test_keys_for_modules_the_model_lacks_or_that_are_not_temporal_attention_are_refused(tmp_path, keyframe_model):
    unet = keyframe_model.unet
    target = temporal_attention_targets(unet)[0]
    absent = target.replace("down_blocks.1.", "down_blocks.9.")
    weights = lora_weights(unet, targets=[target])
    weights = {k.replace(target, absent): v for k, v in weights.items()}
    lora = load_motion_lora(save_motion_lora(tmp_path / "absent.safetensors", weights, info_for(keyframe_model, target_modules=(absent,))))
    with pytest.raises(StateDictMismatchError, match="which this keyframes .* model has not"):
        apply_motion_loras(keyframe_model, [lora])

    spatial = "down_blocks.1.attentions.0.to_q"
    weights = lora_weights(unet, targets=[spatial])
    with pytest.raises(StateDictMismatchError, match="not a temporal attention projection"):
        save_motion_lora(tmp_path / "spatial.safetensors", weights, info_for(keyframe_model, target_modules=(spatial,)))


def test_damaged_and_foreign_files_are_refused_with_a_clear_message(tmp_path, keyframe_model):
    good = write_lora(tmp_path / "good.safetensors", keyframe_model).read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (tmp_path / "noise.safetensors").write_bytes(b"\x00\x01 not a safetensors file at all" * 10)
    save_file({"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 4)}, str(tmp_path / "sd_lora.safetensors"))
    for name in ("truncated", "noise"):
        with pytest.raises(CorruptCheckpointError, match="not a readable safetensors file"):
            load_motion_lora(tmp_path / f"{name}.safetensors")
    with pytest.raises(StateDictMismatchError, match="not a Show-1 motion LoRA"):
        load_motion_lora(tmp_path / "sd_lora.safetensors")
    with pytest.raises(MissingFilesError, match="does not exist"):
        load_motion_lora(tmp_path / "missing.safetensors")
    broken = info_for(keyframe_model).to_json().replace('"rank": 4', '"rank": "four"')
    save_file({}, str(tmp_path / "meta.safetensors"), metadata={"show1_motion_lora": broken})
    with pytest.raises(CorruptCheckpointError, match="unreadable Show-1 motion LoRA metadata"):
        load_motion_lora(tmp_path / "meta.safetensors")


def test_nan_weights_are_refused(tmp_path, keyframe_model):
    weights = lora_weights(keyframe_model.unet)
    next(iter(weights.values()))[0, 0] = float("nan")
    with pytest.raises(CorruptCheckpointError, match="not finite"):
        save_motion_lora(tmp_path / "nan.safetensors", weights, info_for(keyframe_model))


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("pan.safetensors", (Path("pan.safetensors"), 1.0)),
        ("pan.safetensors:0.5", (Path("pan.safetensors"), 0.5)),
        ("/loras/pan.safetensors:-1", (Path("/loras/pan.safetensors"), -1.0)),
        ("C:\\loras\\pan.safetensors", (Path("C:\\loras\\pan.safetensors"), 1.0)),
        ("odd:name.safetensors", (Path("odd:name.safetensors"), 1.0)),
    ],
)
def test_lora_specs_name_a_file_and_an_optional_scale(spec, expected):
    assert parse_lora_spec(spec) == expected


@pytest.mark.parametrize("scale", ["nan", "1e9", "-5e1", "inf"])
def test_a_scale_out_of_its_range_is_refused_with_the_range(scale):
    with pytest.raises(InputError, match=r"the strength must be a number from -10 to 10, got"):
        parse_lora_spec(f"pan.safetensors:{scale}")


def test_a_scale_that_is_not_a_number_is_a_bad_strength_not_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="bad strength 'abc'; write FILE:STRENGTH with a number from -10 to 10"):
        parse_lora_spec("pan.safetensors:abc")
    odd = tmp_path / "odd:abc"
    odd.write_bytes(b"")
    assert parse_lora_spec(str(odd)) == (odd, 1.0)  # an existing file whose name holds a colon


def test_the_cli_refuses_an_out_of_range_strength_before_anything_loads(tmp_path, capsys):
    args = ["generate", "a cat", "-o", str(tmp_path / "v.mp4"), "--models-dir", str(tmp_path / "none"), "--offline"]
    for spec, message in [
        ("x.safetensors:1e9", "got 1000000000.0"),
        ("x.safetensors:-50", "from -10 to 10"),
        ("x.safetensors:abc", "bad strength"),
    ]:
        assert main(args + ["--motion-lora", spec]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "does not exist" not in err


def test_loras_read_in_inference_mode_apply_as_comfyui_runs_them(tmp_path, keyframe_model, embeds):
    """ComfyUI runs every node under torch.inference_mode: the file is read there and applied there."""
    path = write_lora(tmp_path / "a.safetensors", keyframe_model)
    with torch.inference_mode():
        lora = load_motion_lora(path)
        with motion_loras(keyframe_model, [lora]):
            inside = keyframes(keyframe_model, embeds)
    with motion_loras(keyframe_model, [load_motion_lora(path)]):
        outside = keyframes(keyframe_model, embeds)
    assert torch.equal(inside, outside) and not active_motion_loras(keyframe_model)


def test_a_failed_apply_leaves_the_original_layers(tmp_path, keyframe_model, monkeypatch):
    lora = load_motion_lora(write_lora(tmp_path / "a.safetensors", keyframe_model))
    modules = dict(keyframe_model.unet.named_modules())

    def fail(*args, **kwargs):
        raise RuntimeError("adapter scales could not be set")

    monkeypatch.setattr(type(keyframe_model.unet), "set_adapters", fail)
    with pytest.raises(RuntimeError, match="could not be set"):
        apply_motion_loras(keyframe_model, [lora])
    assert dict(keyframe_model.unet.named_modules()).keys() == modules.keys()
    assert all(modules[name] is module for name, module in keyframe_model.unet.named_modules())
