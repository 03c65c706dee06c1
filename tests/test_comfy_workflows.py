"""The shipped workflows: generated from one source, valid in both formats, runnable on the tiny model set."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy_core_nodes import read_video, write_video
from comfy_executor import Executor, PromptError, ui_to_api, validate_ui_workflow
from comfy_fakes import InterruptProcessingException
from comfy_support import PACK_ROOT, all_classes, comfy, tiny_models
from PIL import Image
from workflow_shrink import shrink

WORKFLOWS = PACK_ROOT / "example_workflows"
SOURCE = PACK_ROOT / "workflow_source"
NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
INPUT_VIDEOS = {"show1_input.mp4": (5, 48, 80), "other_model_output.mp4": (4, 40, 72)}
"""Videos the workflows' Load Video nodes name: (frames, height, width) of the stand-ins written for the tests."""


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return tiny_models(tmp_path_factory)


@pytest.fixture
def fake(tmp_path, monkeypatch, tiny):
    """ComfyUI (fake) with $SHOW1_MODELS_DIR at the tiny set and the workflows' input videos uploaded."""
    installation = comfy(tmp_path, monkeypatch, tiny)
    generator = torch.Generator().manual_seed(0)
    for name, (frames, height, width) in INPUT_VIDEOS.items():
        write_video(installation.root / "input" / name, torch.rand(frames, height, width, 3, generator=generator), 12.0)
    return installation


def _builder():
    """``workflow_source/build.py`` as a module."""
    spec = importlib.util.spec_from_file_location("show1_workflows_build", SOURCE / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    spec.loader.exec_module(build)
    return build


def test_the_committed_workflows_are_what_build_py_generates():
    generated = _builder().build_all()
    committed = {p.relative_to(WORKFLOWS): p.read_text() for p in WORKFLOWS.rglob("*.json")}
    assert set(committed) == set(generated)
    for path, text in generated.items():
        assert committed[path] == text, f"example_workflows/{path} is stale: run python workflow_source/build.py"


def test_every_template_has_a_current_thumbnail_that_is_a_diagram_not_noise():
    """ComfyUI's Templates browser shows ``<name>.jpg`` beside ``<name>.json``; its JPEG comment names the
    workflow it was drawn for, and it is drawn in a few flat colours (noise or a photo would not be)."""
    build = _builder()
    keys = build.thumbnail_keys(build.build_all())
    assert sorted(WORKFLOWS.glob("*.jpg")) == sorted(WORKFLOWS / path for path in keys)
    for path, key in keys.items():
        with Image.open(WORKFLOWS / path) as image:
            assert image.format == "JPEG" and image.size[0] == image.size[1] >= 256
            assert image.info.get("comment") == key.encode(), f"example_workflows/{path} is stale: run python workflow_source/build.py"
            pixels = torch.from_numpy(np.array(image.convert("RGB"))).reshape(-1, 3).int() // 16
        _, counts = torch.unique(pixels, dim=0, return_counts=True)
        assert counts.sort(descending=True).values[:6].sum() > 0.9 * len(pixels), f"{path} is not a flat-coloured diagram"


def _note(workflow: dict) -> str:
    (note,) = [node for node in workflow["nodes"] if node["type"] == "Note"]
    return note["widgets_values"][0]


@pytest.mark.parametrize("name", NAMES)
def test_every_template_opens_with_a_note_naming_its_models_and_where_they_go(name):
    workflow = _load(WORKFLOWS / f"{name}.json")
    note = _note(workflow)
    assert "ComfyUI/models/show1/" in note
    repos = {
        "Show1KeyframeModelLoader": "show-1-base", "Show1T5Loader": "show-1-base", "Show1InterpolationModelLoader": "show-1-interpolation",
        "Show1PixelSRModelLoader": "show-1-sr1", "Show1FirstFrameModelLoader": "IF-II-L-v1.0", "Show1LatentSRModelLoader": "show-1-sr2",
        "Show1CLIPLoader": "show-1-sr2",
    }  # fmt: skip
    types = {node["type"] for node in workflow["nodes"]}
    for loader, repo in repos.items():
        assert (repo in note) == any(repos[t] == repo for t in types if t in repos), f"{repo} in the note of {name}"
    assert ("Upload a video first" in note) == ("LoadVideo" in types)
    if "Show1T5Loader" in types:
        assert "models/text_encoders" in note
    if "Show1FirstFrameModelLoader" in types:
        assert "Gated" in note and "hf auth login" in note


@pytest.mark.parametrize("name", NAMES)
def test_the_layout_fits_the_frontend(name):
    """No two nodes overlap (Load Video keeps room for its preview), and every title fits its node."""
    names = {**_builder().node_classes()[1], "Note": "Note"}
    from workflow_graph import PREVIEW_HEIGHTS, title_width  # beside build.py, which put its folder on the path

    nodes = _load(WORKFLOWS / f"{name}.json")["nodes"]
    for node in nodes:
        assert node["size"][0] >= title_width(node.get("title") or names[node["type"]]), f"{node['type']}'s title is cut"
        assert node["size"][1] >= PREVIEW_HEIGHTS.get(node["type"], 0)
    for first, second in itertools.combinations(nodes, 2):
        (x1, y1), (w1, h1), (x2, y2), (w2, h2) = first["pos"], first["size"], second["pos"], second["size"]
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1, f"{first['type']} overlaps {second['type']}"


def test_every_workflow_ships_in_both_formats_where_comfyui_looks_for_templates():
    """ComfyUI serves the first of these folders it finds and logs a rename hint for all but ``example_workflows``."""
    assert NAMES == sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json"))
    assert len(NAMES) == 4
    assert [name for name in ("example", "examples", "workflow", "workflows") if (PACK_ROOT / name).exists()] == []


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_is_valid(name, fake):
    assert validate_ui_workflow(_load(WORKFLOWS / f"{name}.json"), all_classes()) == []


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_files_describe_the_same_graph(name, fake):
    api = {node_id: {k: v for k, v in node.items() if k != "_meta"} for node_id, node in _load(WORKFLOWS / "api" / f"{name}.json").items()}
    assert ui_to_api(_load(WORKFLOWS / f"{name}.json"), all_classes()) == api


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_validates_unchanged(name, fake):
    _, outputs = Executor(all_classes()).validate(_load(WORKFLOWS / "api" / f"{name}.json"))
    assert outputs


def _check_shapes(prompt: dict, outputs: dict) -> None:
    """Every Show-1 node's outputs have the shapes docs/COMFYUI.md and the help pages document, from its actual inputs."""

    def source(node_id: str, name: str):
        link = prompt[node_id]["inputs"][name]
        return outputs[link[0]][link[1]]

    for node_id, node in prompt.items():
        kind, inputs, result = node["class_type"], node["inputs"], outputs.get(node_id)
        if kind == "Show1Keyframes":
            assert result[0].shape == (inputs["frames"], inputs["height"], inputs["width"], 3)
            assert result[1] == inputs["fps"]
        elif kind == "Show1Interpolation":
            frames, height, width, _ = source(node_id, "images").shape
            assert result[0].shape == (frames + (frames - 1) * inputs["frames_between"], height, width, 3)
            assert result[1] == source(node_id, "fps") * (inputs["frames_between"] + 1)
        elif kind == "Show1PixelSR":
            frames, height, width, _ = source(node_id, "images").shape
            assert result[0].shape == (frames, 4 * height, 4 * width, 3)
            assert result[1] == source(node_id, "fps")
        elif kind == "Show1LatentSR":
            assert result[0].shape == (source(node_id, "images").shape[0], inputs["height"], inputs["width"], 3)
        elif kind == "Show1UpscaleVideo":
            source_parts, parts = source(node_id, "video").get_components(), result[0].get_components()
            assert parts.images.shape == (source_parts.images.shape[0], inputs["height"], inputs["width"], 3)
            assert parts.frame_rate == source_parts.frame_rate
        elif kind == "Show1VAEEncode":
            frames = source(node_id, "images").shape[0]
            assert result[0]["samples"].shape == (1, 4, frames, inputs["height"] // 8, inputs["width"] // 8)
        elif kind == "Show1VAEDecode":
            _, _, frames, height, width = source(node_id, "latent")["samples"].shape
            assert result[0].shape == (frames, 8 * height, 8 * width, 3)
        if kind.startswith("Show1") and kind not in ("Show1TextEncode",) and not kind.endswith("Loader"):
            for value in result:
                tensor = value["samples"] if isinstance(value, dict) else value
                if isinstance(tensor, torch.Tensor):
                    assert torch.isfinite(tensor).all()
                    assert tensor.device.type == "cpu" and tensor.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_runs_on_the_tiny_models(name, fake, monkeypatch):
    """Every workflow runs; the video it saves has the frames its last stage made and, for a loaded video, its audio."""
    import comfy_core_nodes

    audio = {"waveform": torch.zeros(1, 2, 4410), "sample_rate": 44100}
    read_plain = comfy_core_nodes.read_video

    def read_with_audio(path: Path):
        video = read_plain(path)
        return comfy_core_nodes.Video(video.images, video.frame_rate, audio)

    monkeypatch.setattr(comfy_core_nodes, "read_video", read_with_audio)
    prompt = shrink(_load(WORKFLOWS / "api" / f"{name}.json"))
    execution = Executor(all_classes()).run(prompt)
    _check_shapes(prompt, execution.outputs)
    (save_id,) = [i for i, node in prompt.items() if node["class_type"] == "SaveVideo"]
    (saved,) = execution.ui[save_id]["images"]
    video = read_video(fake.root / "output" / saved["subfolder"] / saved["filename"])
    source, index = prompt[save_id]["inputs"]["video"]
    if prompt[source]["class_type"] == "CreateVideo":
        frames_link = prompt[source]["inputs"]["images"]
        frames = execution.outputs[frames_link[0]][frames_link[1]]
    else:  # a node that outputs VIDEO itself (Show-1 Upscale Video)
        frames = execution.outputs[source][index].get_components().images
    assert video.images.shape == frames.shape
    saved_audio = execution.outputs[source][index].get_components().audio
    loads_video = any(node["class_type"] == "LoadVideo" for node in prompt.values())
    assert (saved_audio is audio) == loads_video, "the loaded video's audio must reach Save Video"
    assert fake.log.progress, "no progress reached ComfyUI's hook"


def test_validation_reports_what_comfyui_reports(fake):
    prompt = _load(WORKFLOWS / "api" / "show1_text_to_video.json")
    ids = {node["class_type"]: node_id for node_id, node in prompt.items()}
    broken = copy.deepcopy(prompt)
    broken[ids["Show1LatentSR"]]["inputs"]["clip_embeds"] = [ids["Show1TextEncode"], 0]  # T5 embeddings into stage 4
    broken[ids["Show1Interpolation"]]["inputs"]["model"] = [ids["Show1KeyframeModelLoader"], 0]  # wrong model
    broken[ids["Show1Keyframes"]]["inputs"]["steps"] = 0
    broken[ids["Show1Keyframes"]]["inputs"]["seed"] = 2**64
    broken[ids["Show1KeyframeModelLoader"]]["inputs"]["precision"] = "fp8"
    del broken[ids["Show1PixelSR"]]["inputs"]["images"]
    with pytest.raises(PromptError) as caught:
        Executor(all_classes()).validate(broken)
    assert caught.value.error_types() >= {
        "prompt_outputs_failed_validation",
        "return_type_mismatch",
        "value_smaller_than_min",
        "value_bigger_than_max",
        "value_not_in_list",
        "required_input_missing",
    }
    mismatches = [e["details"] for node in caught.value.node_errors.values() for e in node["errors"] if e["type"] == "return_type_mismatch"]
    assert any("SHOW1_T5_EMBEDS" in d and "SHOW1_CLIP_EMBEDS" in d for d in mismatches)
    assert any("SHOW1_KEYFRAME_MODEL" in d and "SHOW1_INTERPOLATION_MODEL" in d for d in mismatches)


def test_stage_nodes_check_their_own_widgets_when_the_prompt_is_queued(fake):
    """What min/max cannot catch is refused in validation, before any node runs: steps and a strength that leave
    no step, NaN guidance, and a noise level the noising schedulers lack (their 1000 levels are 0 to 999)."""
    prompt = _load(WORKFLOWS / "api" / "show1_text_to_video.json")
    ids = {node["class_type"]: node_id for node_id, node in prompt.items()}
    broken = copy.deepcopy(prompt)
    broken[ids["Show1LatentSR"]]["inputs"].update(steps=2, strength=0.4)
    broken[ids["Show1Keyframes"]]["inputs"]["guidance"] = float("nan")
    broken[ids["Show1PixelSR"]]["inputs"]["noise_level"] = 1000
    with pytest.raises(PromptError) as caught:
        Executor(all_classes()).validate(broken)
    errors = {node["class_type"]: node["errors"] for node in caught.value.node_errors.values()}
    assert {e["type"] for e in errors["Show1LatentSR"]} == {"custom_validation_failed"}
    assert "latent_sr.strength 0.4 with 2 steps leaves no step to run" in errors["Show1LatentSR"][0]["details"]
    assert "keyframes.guidance must be a number from 0 to 100" in errors["Show1Keyframes"][0]["details"]
    assert [e["extra_info"]["input_name"] for e in errors["Show1Keyframes"]] == ["guidance"], "reported against guidance alone"
    assert [e["type"] for e in errors["Show1PixelSR"]] == ["value_bigger_than_max"]
    classes = all_classes()
    assert "leaves no step" in classes["Show1LatentRefine"].VALIDATE_INPUTS(steps=2, strength=0.4, guidance=15.0)
    assert classes["Show1LatentRefine"].VALIDATE_INPUTS(steps=None, strength=0.4, guidance=15.0) is True, "linked: checked at run time"
    assert "first_frame.guidance" in classes["Show1PixelSR"].VALIDATE_INPUTS(guidance=7.0, first_frame_guidance=-1.0)

    zero_fps = copy.deepcopy(prompt)
    zero_fps[ids["Show1Keyframes"]]["inputs"]["fps"] = 0.0
    with pytest.raises(PromptError) as caught:
        Executor(classes).validate(zero_fps)
    (keyframes_errors,) = [node["errors"] for node in caught.value.node_errors.values()]
    assert [(e["type"], e["extra_info"]["input_name"]) for e in keyframes_errors] == [("value_smaller_than_min", "fps")]

    upscale = _load(WORKFLOWS / "api" / "show1_upscale_any_video.json")
    node = next(node for node in upscale.values() if node["class_type"] == "Show1UpscaleVideo")
    node["inputs"].update(latent_sr_steps=2, strength=0.4)  # stage 3 would run before stage 4 refused these
    with pytest.raises(PromptError) as caught:
        Executor(classes).validate(upscale)
    problems = caught.value.node_errors[next(k for k, v in upscale.items() if v is node)]["errors"]
    assert {p["type"] for p in problems} == {"custom_validation_failed"}
    assert all("leaves no step to run" in p["details"] for p in problems)


@pytest.mark.parametrize(
    "model, message",
    [("../../etc", "'..' are not allowed"), ("/etc", "absolute paths"), ("no-such-model", "no checkpoint folder 'no-such-model'")],
)
def test_validation_explains_bad_model_names(model, message, fake):
    prompt = _load(WORKFLOWS / "api" / "show1_keyframes_preview.json")
    loader = next(i for i, node in prompt.items() if node["class_type"] == "Show1KeyframeModelLoader")
    prompt[loader]["inputs"]["model"] = model
    with pytest.raises(PromptError) as caught:
        Executor(all_classes()).validate(prompt)
    (error,) = caught.value.node_errors[loader]["errors"]
    assert error["type"] == "custom_validation_failed" and message in error["details"]


def test_validation_needs_an_output_node_and_known_nodes(fake):
    prompt = _load(WORKFLOWS / "api" / "show1_keyframes_preview.json")
    without_output = {i: n for i, n in prompt.items() if n["class_type"] not in ("SaveVideo", "CreateVideo")}
    with pytest.raises(PromptError, match="no outputs"):
        Executor(all_classes()).validate(without_output)
    unknown = copy.deepcopy(prompt)
    unknown["1"]["class_type"] = "Show1NoSuchNode"
    with pytest.raises(PromptError, match="may not be installed"):
        Executor(all_classes()).validate(unknown)


def test_cancel_stops_a_running_stage_through_comfyuis_progress_hook(fake):
    """Cancel pressed as the stage starts: ComfyUI's hook raises on the next update (after step 1) and nothing downstream runs."""
    prompt = shrink(_load(WORKFLOWS / "api" / "show1_keyframes_preview.json"))
    keyframes = next(node for node in prompt.values() if node["class_type"] == "Show1Keyframes")
    keyframes["inputs"]["steps"] = 5
    utils = fake.modules["comfy.utils"]
    comfy_hook = utils.PROGRESS_BAR_HOOK

    def user_presses_cancel_as_the_stage_starts(value, total, preview, prompt_id=None, node_id=None):
        comfy_hook(value, total, preview, node_id=node_id)
        fake.mm.interrupt_current_processing()

    utils.set_progress_bar_global_hook(user_presses_cancel_as_the_stage_starts)
    with pytest.raises(InterruptProcessingException):
        Executor(all_classes()).run(prompt)
    assert [(value, total) for value, total, _ in fake.log.progress] == [(0, 5)]
    assert not any((fake.root / "output").rglob("*.mp4"))
    assert not fake.mm.processing_interrupted()


def test_the_ui_validator_catches_broken_workflows(fake):
    workflow = _load(WORKFLOWS / "show1_text_to_video.json")
    nodes = {node["type"]: node for node in workflow["nodes"]}
    keyframes = nodes["Show1Keyframes"]
    seed_at = keyframes["widgets_values"].index("fixed")
    del keyframes["widgets_values"][seed_at]  # the seed's control value missing
    steps, guidance = keyframes["widgets_values"][3:5]
    keyframes["widgets_values"][3:5] = [guidance, steps]  # two widgets swapped
    clip_link = next(i["link"] for i in nodes["Show1LatentSR"]["inputs"] if i["name"] == "clip_embeds")
    next(link for link in workflow["links"] if link[0] == clip_link)[5] = "SHOW1_T5_EMBEDS"
    nodes["Show1PixelSR"]["inputs"] = [i for i in nodes["Show1PixelSR"]["inputs"] if i["name"] != "images"]
    errors = "\n".join(validate_ui_workflow(workflow, all_classes()))
    assert "7 widgets_values for 8 widgets" in errors
    keyframes["widgets_values"].insert(seed_at, "fixed")
    errors = "\n".join(validate_ui_workflow(workflow, all_classes()))
    assert "widget 'steps' holds 9.0, not a INT" in errors
    assert f"link {clip_link}: type 'SHOW1_T5_EMBEDS' differs from Show1TextEncode output 1" in errors
    assert "required input 'images' is not connected" in errors


def test_validation_finds_dependency_cycles(fake):
    prompt = _load(WORKFLOWS / "api" / "show1_mixed_stage4_on_other_frames.json")
    scale = next(i for i, node in prompt.items() if node["class_type"] == "ImageScale")
    prompt[scale]["inputs"]["image"] = [scale, 0]
    with pytest.raises(PromptError) as caught:
        Executor(all_classes()).validate(prompt)
    assert "dependency_cycle" in caught.value.error_types()


def test_keyframes_preview_runs_exactly_as_shipped(fake):
    """One shipped API workflow runs byte-for-byte unchanged (paper settings) on the tiny models.

    The others are run above with sizes and steps lowered: at the paper's settings the tiny
    models still need over an hour of CPU for stage 3 (500 UNet calls at 256x160).
    """
    prompt = _load(WORKFLOWS / "api" / "show1_keyframes_preview.json")
    execution = Executor(all_classes()).run(prompt)
    _check_shapes(prompt, execution.outputs)
    (keyframes_id,) = [i for i, node in prompt.items() if node["class_type"] == "Show1Keyframes"]
    assert execution.outputs[keyframes_id][0].shape == (8, 40, 64, 3)
