"""The Show-1 Motion LoRA nodes: LoRA files from ComfyUI's folders, exact results, and the loaded model left untouched."""

from __future__ import annotations

import pytest
import torch
from comfy_support import comfy, load_pack, pack_module
from lora_support import write_lora
from safetensors.torch import save_file

from show1_core.errors import InputError, StateDictMismatchError
from show1_core.motion_lora import active_motion_loras, load_motion_lora, motion_loras
from show1_core.settings import KeyframeSettings
from show1_core.stages import generate_keyframes

SEED, STEPS = 7, 2
SETTINGS = KeyframeSettings(num_frames=3, height=8, width=16, steps=STEPS, guidance=9.0)


def nodes() -> dict[str, type]:
    return load_pack().NODE_CLASS_MAPPINGS


@pytest.fixture
def fake(tmp_path, monkeypatch, tiny_root):
    fake = comfy(tmp_path, monkeypatch, tiny_root)
    fake.modules["folder_paths"].add_model_folder_path("loras", str(fake.root / "models" / "loras"))
    return fake


@pytest.fixture
def setup(fake):
    """Both models and embeddings, loaded by the pack's nodes, and LoRA files in both LoRA folders."""
    (keyframes,) = nodes()["Show1KeyframeModelLoader"]().load("show-1-base", "fp32", "balanced")
    (interpolation,) = nodes()["Show1InterpolationModelLoader"]().load("show-1-interpolation", "fp32", "balanced")
    (t5,) = nodes()["Show1T5Loader"]().load("show-1-base", "fp32", "balanced")
    t5_embeds, _ = nodes()["Show1TextEncode"]().encode("a square", "", "", False, t5=t5)
    show1_loras, comfy_loras = fake.root / "models" / "show1" / "loras", fake.root / "models" / "loras"
    write_lora(show1_loras / "pan_right.safetensors", keyframes.model, seed=1)
    write_lora(comfy_loras / "motion" / "zoom.safetensors", keyframes.model, seed=2)
    write_lora(comfy_loras / "interp_pan.safetensors", interpolation.model, seed=3)
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(comfy_loras / "sdxl_style.safetensors"))
    (comfy_loras / "notes.txt").write_text("not a LoRA")
    return dict(keyframes=keyframes, interpolation=interpolation, t5_embeds=t5_embeds, show1=show1_loras, comfy=comfy_loras)


def run_keyframes(handle, embeds):
    (images, _) = nodes()["Show1Keyframes"]().generate(handle, embeds, 16, 8, 3, STEPS, 9.0, SEED, 2.0)
    return images


def test_each_node_lists_the_motion_loras_of_its_stage_from_both_folders(setup):
    keyframe_choices = nodes()["Show1KeyframeMotionLoRA"].INPUT_TYPES()["required"]["lora_name"][0]
    interpolation_choices = nodes()["Show1InterpolationMotionLoRA"].INPUT_TYPES()["required"]["lora_name"][0]
    assert keyframe_choices == ["motion/zoom.safetensors", "pan_right.safetensors"]
    assert interpolation_choices == ["interp_pan.safetensors"]


def test_the_node_runs_the_stage_with_the_lora_and_leaves_the_loaded_model_untouched(setup, fake):
    loaded, embeds = setup["keyframes"], setup["t5_embeds"]
    placement = loaded.placement
    plain = run_keyframes(loaded, embeds)
    node = nodes()["Show1KeyframeMotionLoRA"]()
    (adapted_handle,) = node.apply(loaded, "pan_right.safetensors", 1.0)
    assert adapted_handle is not loaded and loaded.placement is placement and not active_motion_loras(loaded.model)

    adapted = run_keyframes(adapted_handle, embeds)
    lora = load_motion_lora(setup["show1"] / "pan_right.safetensors")
    with torch.inference_mode(), motion_loras(loaded.model, [lora]):
        expected = generate_keyframes(loaded.model, embeds.embeds, SETTINGS, SEED)
    video_to_image = pack_module("image_video").video_to_image
    assert torch.equal(adapted, video_to_image(expected)) and not torch.equal(adapted, plain)
    assert not active_motion_loras(loaded.model)
    assert torch.equal(run_keyframes(loaded, embeds), plain), "the loader's output still gives the plain model"
    assert len(fake.log.loads) == 3  # every run went through ComfyUI's model management

    (at_zero,) = node.apply(loaded, "pan_right.safetensors", 0.0)
    assert torch.equal(run_keyframes(at_zero, embeds), plain)


def test_chained_nodes_stack_their_loras(setup):
    loaded, embeds = setup["keyframes"], setup["t5_embeds"]
    node = nodes()["Show1KeyframeMotionLoRA"]()
    (first,) = node.apply(loaded, "pan_right.safetensors", 0.8)
    (both,) = node.apply(first, "motion/zoom.safetensors", -0.5)
    loras = [
        load_motion_lora(setup["show1"] / "pan_right.safetensors", 0.8),
        load_motion_lora(setup["comfy"] / "motion" / "zoom.safetensors", -0.5),
    ]
    with torch.inference_mode(), motion_loras(loaded.model, loras):
        expected = generate_keyframes(loaded.model, embeds.embeds, SETTINGS, SEED)
    assert torch.equal(run_keyframes(both, embeds), pack_module("image_video").video_to_image(expected))
    assert not active_motion_loras(loaded.model)


@pytest.mark.parametrize(
    "name, message",
    [
        ("../pan_right.safetensors", "'..' are not allowed"),
        ("/etc/passwd", "absolute paths"),
        ("C:\\loras\\x.safetensors", "absolute paths"),
        ("missing.safetensors", "no LoRA file 'missing.safetensors'"),
        ("interp_pan.safetensors", "for the temporal interpolation (stage 2) model, not the keyframes"),
        ("sdxl_style.safetensors", "not a Show-1 motion LoRA"),
        ("notes.txt", "not a readable safetensors file"),
    ],
)
def test_names_are_checked_before_the_run(setup, name, message):
    node = nodes()["Show1KeyframeMotionLoRA"]
    assert message in node.VALIDATE_INPUTS(name)
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        node().apply(setup["keyframes"], name, 1.0)


@pytest.mark.parametrize("name", ["../pan_right.safetensors", "missing.safetensors", "notes.txt"])
def test_lora_messages_name_folders_from_comfyuis_models_folder_not_the_servers_paths(setup, fake, name):
    node = nodes()["Show1KeyframeMotionLoRA"]
    messages = [node.VALIDATE_INPUTS(name)]
    with pytest.raises(Exception) as caught:
        node().apply(setup["keyframes"], name, 1.0)
    messages.append(str(caught.value))
    for message in messages:
        assert str(fake.root) not in message and "models/loras" in message, message


def test_a_linked_name_is_checked_when_the_node_runs():
    assert nodes()["Show1KeyframeMotionLoRA"].VALIDATE_INPUTS(None) is True


def test_links_out_of_a_lora_folder_are_refused(setup, tmp_path):
    outside = write_lora(tmp_path / "elsewhere" / "x.safetensors", setup["keyframes"].model)
    (setup["comfy"] / "linked.safetensors").symlink_to(outside)
    with pytest.raises(InputError, match="links outside its LoRA folder"):
        nodes()["Show1KeyframeMotionLoRA"]().apply(setup["keyframes"], "linked.safetensors", 1.0)


def test_the_wrong_model_or_a_lora_of_another_architecture_is_refused(setup, monkeypatch):
    node = nodes()["Show1KeyframeMotionLoRA"]()
    with pytest.raises(InputError, match="needs a SHOW1_KEYFRAME_MODEL"):
        node.apply("not a model", "pan_right.safetensors", 1.0)
    write_lora(setup["show1"] / "other.safetensors", setup["keyframes"].model, base_fingerprint="0" * 16)
    with pytest.raises(StateDictMismatchError, match="different architecture"):
        node.apply(setup["keyframes"], "other.safetensors", 1.0)
