"""The node pack's contract with ComfyUI: import, node declarations, model folders and input errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from comfy_support import PACK_ROOT, comfy, load_pack, pack_module, tiny_models

from show1_core.errors import GatedRepoAccessError, InputError, MissingFilesError, WrongStageError
from show1_core.host import PlacedModel
from show1_core.settings import PAPER_SETTINGS, SpeedSettings
from show1_core.stages.frames import to_uint8_frames

NODE_IDS = {
    "Show1KeyframeModelLoader",
    "Show1InterpolationModelLoader",
    "Show1PixelSRModelLoader",
    "Show1FirstFrameModelLoader",
    "Show1LatentSRModelLoader",
    "Show1T5Loader",
    "Show1CLIPLoader",
    "Show1TextEncode",
    "Show1Keyframes",
    "Show1Interpolation",
    "Show1PixelSR",
    "Show1LatentSR",
    "Show1VAEEncode",
    "Show1LatentRefine",
    "Show1VAEDecode",
    "Show1KeyframeMotionLoRA",
    "Show1InterpolationMotionLoRA",
    "Show1UpscaleVideo",
    "Show1SpeedSettings",
    "Show1StepCache",
}
COMFY_TYPES = {"IMAGE", "LATENT", "INT", "FLOAT", "STRING", "BOOLEAN", "VAE", "VIDEO"}
MAX_SEED = 0xFFFFFFFFFFFFFFFF


def _run_python(*parts: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter outside the repository (no PYTHONPATH, no ComfyUI)."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SHOW1_MODELS_DIR")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=environment, timeout=300)


IMPORT_LIKE_COMFYUI = f"""
    import importlib.util, sys, types
    comfyui_nodes = types.ModuleType("nodes")  # ComfyUI's own nodes.py is importable as 'nodes'
    sys.modules["nodes"] = comfyui_nodes
    path = {str(PACK_ROOT / "__init__.py")!r}
    name = path.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[{str(PACK_ROOT)!r}])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    assert sys.modules["nodes"] is comfyui_nodes
    import show1_core
    print(show1_core.__file__)
    print(",".join(sorted(module.NODE_CLASS_MAPPINGS)))
    print(",".join(sorted(module.NODE_DISPLAY_NAME_MAPPINGS)))
"""


def test_the_pack_imports_like_comfyui_imports_it_with_no_comfyui_present():
    result = _run_python(
        """
        import importlib.util
        assert importlib.util.find_spec("comfy") is None and importlib.util.find_spec("folder_paths") is None
        """,
        IMPORT_LIKE_COMFYUI,
    )
    assert result.returncode == 0, result.stderr
    _, classes, names = result.stdout.strip().splitlines()
    assert set(classes.split(",")) == NODE_IDS == set(names.split(","))


def test_a_git_clone_without_pip_install_finds_show1_core_next_to_the_pack():
    result = _run_python(
        """
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        import importlib.util
        assert importlib.util.find_spec("show1_core") is None
        path_before = list(sys.path)
        """,
        IMPORT_LIKE_COMFYUI,
        """
        import show1_core.loading.components, show1_core.stages.sampling  # subpackages resolve too
        assert sys.path == path_before, "the pack changed sys.path"
        """,
    )
    assert result.returncode == 0, result.stderr
    core_file, classes, _ = result.stdout.strip().splitlines()
    assert Path(core_file).parent.parent == PACK_ROOT
    assert set(classes.split(",")) == NODE_IDS


def _inputs(cls):
    declared = cls.INPUT_TYPES()
    assert set(declared) <= {"required", "optional", "hidden"} and "required" in declared
    return [(name, spec) for section in ("required", "optional") for name, spec in declared.get(section, {}).items()]


@pytest.mark.parametrize("node_id", sorted(NODE_IDS))
def test_node_declaration_follows_the_conventions(node_id):
    pack = load_pack()
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    assert node_id.startswith("Show1") and pack.NODE_DISPLAY_NAME_MAPPINGS[node_id]
    assert cls.CATEGORY.split("/")[0] == "Show-1"
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 40
    assert callable(getattr(cls, cls.FUNCTION))
    assert isinstance(cls.RETURN_TYPES, tuple) and len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS)
    assert not getattr(cls, "OUTPUT_NODE", False)
    for type_name in cls.RETURN_TYPES:
        assert type_name in COMFY_TYPES or type_name.startswith("SHOW1_")
    for name, spec in _inputs(cls):
        input_type, options = spec[0], spec[1]
        assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        if isinstance(input_type, list):
            assert options["default"] in input_type
        elif input_type in ("INT", "FLOAT"):
            assert options["min"] <= options["default"] <= options["max"], f"{node_id}.{name}"
        else:
            assert input_type in COMFY_TYPES or input_type.startswith("SHOW1_"), f"{node_id}.{name}: {input_type}"
        if name == "seed":
            assert (input_type, options["min"], options["max"], options["default"]) == ("INT", 0, MAX_SEED, PAPER_SETTINGS.seed)


def test_loaders_say_they_download_and_each_model_type_fits_one_stage_node():
    pack = load_pack()
    produced, consumed = {}, {}
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        for type_name in cls.RETURN_TYPES:
            produced.setdefault(type_name, []).append(node_id)
        for _, spec in _inputs(cls):
            if isinstance(spec[0], str) and spec[0].startswith("SHOW1_"):
                consumed.setdefault(spec[0], set()).add(node_id)
        if node_id.endswith("Loader"):
            assert "(Down)load" in pack.NODE_DISPLAY_NAME_MAPPINGS[node_id]
    model_types = {t for t in produced if t.endswith("_MODEL")}
    assert model_types == {
        "SHOW1_KEYFRAME_MODEL",
        "SHOW1_INTERPOLATION_MODEL",
        "SHOW1_PIXEL_SR_MODEL",
        "SHOW1_FIRST_FRAME_MODEL",
        "SHOW1_LATENT_SR_MODEL",
    }
    assert all(len([n for n in produced[t] if n.endswith("Loader")]) == 1 for t in model_types)
    assert produced["SHOW1_KEYFRAME_MODEL"] == ["Show1KeyframeModelLoader", "Show1KeyframeMotionLoRA"]
    assert produced["SHOW1_INTERPOLATION_MODEL"] == ["Show1InterpolationModelLoader", "Show1InterpolationMotionLoRA"]
    assert consumed["SHOW1_KEYFRAME_MODEL"] == {"Show1Keyframes", "Show1KeyframeMotionLoRA"}
    assert consumed["SHOW1_INTERPOLATION_MODEL"] == {"Show1Interpolation", "Show1InterpolationMotionLoRA"}
    assert consumed["SHOW1_PIXEL_SR_MODEL"] == consumed["SHOW1_FIRST_FRAME_MODEL"] == {"Show1PixelSR", "Show1UpscaleVideo"}
    assert consumed["SHOW1_LATENT_SR_MODEL"] == {
        "Show1LatentSR",
        "Show1VAEEncode",
        "Show1LatentRefine",
        "Show1VAEDecode",
        "Show1UpscaleVideo",
    }
    assert consumed["SHOW1_T5_EMBEDS"] == {"Show1Keyframes", "Show1Interpolation", "Show1PixelSR", "Show1UpscaleVideo"}
    assert consumed["SHOW1_CLIP_EMBEDS"] == {"Show1LatentSR", "Show1LatentRefine", "Show1UpscaleVideo"}


def _defaults(node_id: str) -> dict:
    cls = load_pack().NODE_CLASS_MAPPINGS[node_id]
    return {name: spec[1].get("default") for name, spec in _inputs(cls)}


def test_widget_defaults_are_the_papers_settings():
    kf, it, ff, sr, ls = (
        asdict(s)
        for s in (
            PAPER_SETTINGS.keyframes,
            PAPER_SETTINGS.interpolation,
            PAPER_SETTINGS.first_frame,
            PAPER_SETTINGS.pixel_sr,
            PAPER_SETTINGS.latent_sr,
        )
    )
    keyframes = _defaults("Show1Keyframes")
    assert {k: keyframes[k] for k in ("width", "height", "steps", "guidance", "fps")} == {
        k: kf[k] for k in ("width", "height", "steps", "guidance", "fps")
    }
    assert keyframes["frames"] == kf["num_frames"]
    interpolation = _defaults("Show1Interpolation")
    assert {k: interpolation[k] for k in ("frames_between", "steps", "guidance")} == {
        k: it[k] for k in ("frames_between", "steps", "guidance")
    }
    assert interpolation["fps"] == kf["fps"]
    pixel = _defaults("Show1PixelSR")
    assert {k: pixel[k] for k in ("steps", "guidance", "noise_level")} == {k: sr[k] for k in ("steps", "guidance", "noise_level")}
    assert {k: pixel[f"first_frame_{k}"] for k in ("steps", "guidance", "noise_level")} == ff
    assert pixel["fps"] == 8.0
    latent = _defaults("Show1LatentSR")
    assert {k: latent[k] for k in ("width", "height", "steps", "strength", "guidance")} == {
        k: ls[k] for k in ("width", "height", "steps", "strength", "guidance")
    }
    text = _defaults("Show1TextEncode")
    assert (text["negative_prompt"], text["clip_negative_prompt"]) == (
        PAPER_SETTINGS.negative_prompt,
        PAPER_SETTINGS.latent_negative_prompt,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_models(tmp_path_factory)


def test_models_show1_is_registered_and_searched_after_the_environment_root(tmp_path, monkeypatch, tiny):
    fake = comfy(tmp_path, monkeypatch, tiny)
    folder_paths = fake.modules["folder_paths"]
    folder_paths.add_model_folder_path("show1", "/data/show1")  # as an extra_model_paths.yaml 'show1:' entry does
    folders = pack_module("model_folders")
    comfyui_root = str(fake.root / "models" / "show1")
    folders.register_model_folder()
    folders.register_model_folder()
    assert folder_paths.get_folder_paths("show1") == ["/data/show1", comfyui_root]
    assert folders.model_roots() == [tiny, Path("/data/show1"), Path(comfyui_root)]
    folder_paths.folder_names_and_paths.pop("show1")
    monkeypatch.delenv("SHOW1_MODELS_DIR")
    assert folders.model_roots() == [Path(comfyui_root)] and folders.download_root() == Path(comfyui_root)


def test_without_comfyui_the_models_root_is_the_environment_root(monkeypatch, tiny):
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(tiny))
    assert pack_module("model_folders").model_roots() == [tiny]


def test_loader_choices_are_the_repo_id_and_matching_local_folders(tmp_path, monkeypatch, tiny):
    comfy(tmp_path, monkeypatch, tiny)
    pack = load_pack().NODE_CLASS_MAPPINGS
    choices = {node_id: pack[node_id].INPUT_TYPES()["required"]["model"][0] for node_id in pack if node_id.endswith("Loader")}
    assert choices["Show1KeyframeModelLoader"] == ["showlab/show-1-base", "show-1-base"]
    assert choices["Show1InterpolationModelLoader"] == ["showlab/show-1-interpolation", "show-1-interpolation"]
    assert choices["Show1PixelSRModelLoader"] == ["showlab/show-1-sr1", "show-1-sr1"]
    assert choices["Show1FirstFrameModelLoader"] == ["DeepFloyd/IF-II-L-v1.0", "IF-II-L-v1.0"]
    assert choices["Show1LatentSRModelLoader"] == ["showlab/show-1-sr2", "show-1-sr2"]
    assert choices["Show1T5Loader"] == ["showlab/show-1-base", "show-1-base", "show-1-interpolation", "show-1-sr1"]
    assert choices["Show1CLIPLoader"] == ["showlab/show-1-sr2", "show-1-sr2"]


def test_a_repo_id_is_downloaded_into_models_show1_on_first_use(tmp_path, monkeypatch, tiny):
    fake = comfy(tmp_path, monkeypatch, None)
    hub = sys.modules["show1_core.loading.hub"]
    downloads = []

    def download(repo_id, target, patterns, checkpoint=None):
        downloads.append((repo_id, target))
        import shutil

        shutil.copytree(tiny / checkpoint.name, target)
        return target

    monkeypatch.setattr(hub, "download", download)
    loader = load_pack().NODE_CLASS_MAPPINGS["Show1KeyframeModelLoader"]
    assert loader.VALIDATE_INPUTS("showlab/show-1-base") is True
    (handle,) = loader().load("showlab/show-1-base", "fp32", "balanced")
    assert downloads == [("showlab/show-1-base", fake.root / "models" / "show1" / "show-1-base")]
    assert handle.model.source == fake.root / "models" / "show1" / "show-1-base"
    loader().load("showlab/show-1-base", "fp32", "balanced")
    assert len(downloads) == 1, "a downloaded checkpoint is found again, not downloaded twice"
    assert "show-1-base" in loader.INPUT_TYPES()["required"]["model"][0]


def test_the_gated_if_model_error_says_what_to_do_in_comfyui(tmp_path, monkeypatch):
    comfy(tmp_path, monkeypatch, None)

    def gated(*args, **kwargs):
        raise GatedRepoAccessError("DeepFloyd/IF-II-L-v1.0 is gated: accept its licence")

    monkeypatch.setattr(sys.modules["show1_core.loading.hub"], "download", gated)
    loader = load_pack().NODE_CLASS_MAPPINGS["Show1FirstFrameModelLoader"]
    with pytest.raises(GatedRepoAccessError, match="accept its licence.*remove the IF-II-L loader"):
        loader().load("DeepFloyd/IF-II-L-v1.0", "auto", "balanced")


@pytest.mark.parametrize(
    "name, error, message",
    [
        ("../show-1-base", InputError, "'..' are not allowed"),
        ("show-1-base/../../x", InputError, "'..' are not allowed"),
        ("/etc", InputError, "absolute paths"),
        ("C:\\models\\x", InputError, "absolute paths"),
        ("", InputError, "no model was chosen"),
        ("unknown-model", MissingFilesError, "no checkpoint folder 'unknown-model'"),
    ],
)
def test_model_names_resolve_only_inside_the_model_roots(name, error, message, monkeypatch, tiny):
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(tiny))
    folders = pack_module("model_folders")
    with pytest.raises(error, match=message):
        folders.resolve_model(name)
    assert message in load_pack().NODE_CLASS_MAPPINGS["Show1KeyframeModelLoader"].VALIDATE_INPUTS(name)


def test_a_linked_model_name_is_checked_when_the_loader_runs():
    """ComfyUI passes linked inputs to VALIDATE_INPUTS as None; the name is checked at run time instead."""
    assert load_pack().NODE_CLASS_MAPPINGS["Show1T5Loader"].VALIDATE_INPUTS(None) is True


def test_links_out_of_a_model_root_are_refused(tmp_path, monkeypatch, tiny):
    root = tmp_path / "models"
    root.mkdir()
    (root / "inside").symlink_to(tiny / "show-1-base")
    shutil.copytree(tiny / "show-1-base", root / "store")
    (root / "show-1-base").mkdir()
    (root / "show-1-base" / "unet").symlink_to(root / "store" / "unet")  # links that stay in the root are fine
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(root))
    folders = pack_module("model_folders")
    with pytest.raises(InputError, match="outside the Show-1 models folder"):
        folders.resolve_model("inside")
    assert folders.resolve_model("show-1-base") == root / "show-1-base"


# --- every path a load opens stays inside the roots ----------------------------------------


@pytest.mark.parametrize("repo_id", ["showlab/show-1-sr1", "SHOWLAB/Show-1-SR1"])
def test_a_repo_id_does_not_resolve_through_a_link_out_of_the_root(tmp_path, monkeypatch, tiny, repo_id):
    root = tmp_path / "models"
    root.mkdir()
    (root / "show-1-sr1").symlink_to(tiny / "show-1-sr1")
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(root))
    with pytest.raises(InputError, match="outside the Show-1 models folder"):
        pack_module("model_folders").resolve_model(repo_id)
    assert "outside the Show-1 models folder" in load_pack().NODE_CLASS_MAPPINGS["Show1PixelSRModelLoader"].VALIDATE_INPUTS(repo_id)


@pytest.mark.parametrize("linked", ["unet", "unet/diffusion_pytorch_model.bin", "scheduler/scheduler_config.json"])
def test_a_link_inside_a_model_folder_that_leads_out_is_refused(tmp_path, monkeypatch, tiny, linked):
    root = tmp_path / "models"
    shutil.copytree(tiny / "show-1-base", root / "partial")
    target = root / "partial" / linked
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    target.symlink_to(tiny / "show-1-base" / linked)
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(root))
    with pytest.raises(
        InputError, match=re.escape(f"$SHOW1_MODELS_DIR/partial/{linked} is a link that leads outside the Show-1 models folder")
    ):
        pack_module("model_folders").resolve_model("partial")
    assert "outside" in load_pack().NODE_CLASS_MAPPINGS["Show1KeyframeModelLoader"].VALIDATE_INPUTS("partial")


def test_a_link_loop_inside_a_model_folder_is_walked_once(tmp_path, monkeypatch, tiny):
    root = tmp_path / "models"
    shutil.copytree(tiny / "show-1-base", root / "looped")
    (root / "looped" / "unet" / "again").symlink_to(root / "looped")
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(root))
    assert pack_module("model_folders").resolve_model("looped") == root / "looped"


@pytest.mark.parametrize(
    "name, message",
    [
        (".", "'.' is the models folder itself"),
        ("./.", "'.' is the models folder itself"),
        ("x" * 300, "at most 255 bytes"),
        ("a\0b", "NUL"),
    ],
)
def test_dot_and_impossible_names_fail_validation_cleanly(monkeypatch, tiny, name, message):
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(tiny))
    with pytest.raises(InputError, match=message):
        pack_module("model_folders").resolve_model(name)
    assert message in load_pack().NODE_CLASS_MAPPINGS["Show1KeyframeModelLoader"].VALIDATE_INPUTS(name)


@pytest.mark.parametrize(
    "name, message",
    [
        ("a\0b.safetensors", "NUL"),
        ("x" * 300 + ".safetensors", "at most 255 bytes"),
        ("motion/" + "x" * 300 + "/a.safetensors", "at most 255 bytes"),
    ],
)
@pytest.mark.parametrize(
    "node_id, module, resolve",
    [("Show1KeyframeMotionLoRA", "lora_files", "resolve_lora"), ("Show1T5Loader", "text_encoders", "resolve_t5_file")],
)
def test_impossible_file_names_fail_validation_cleanly(tmp_path, monkeypatch, name, message, node_id, module, resolve):
    """LoRA and single-file text encoder names get the checks model folder names get, before any file system call."""
    comfy(tmp_path, monkeypatch, tmp_path / "show1")
    for folder in ("loras", "text_encoders"):
        (tmp_path / "show1" / folder).mkdir(parents=True)
    with pytest.raises(InputError, match=message):
        getattr(pack_module(module), resolve)(name)
    assert message in load_pack().NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS(name)


def test_a_loader_pointed_at_another_stage_says_which_stage_it_found(monkeypatch, tiny):
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(tiny))
    pack = load_pack().NODE_CLASS_MAPPINGS
    with pytest.raises(WrongStageError, match="pixel super-resolution"):
        pack["Show1KeyframeModelLoader"]().load("show-1-sr1", "fp32", "balanced")
    with pytest.raises(WrongStageError, match="no CLIP"):
        pack["Show1CLIPLoader"]().load("show-1-base", "fp32", "balanced")


def test_image_batches_convert_to_videos_and_back():
    convert = pack_module("image_video")
    images = torch.rand(5, 8, 12, 3)
    video = convert.image_to_video(images, "images")
    assert video.shape == (1, 3, 5, 8, 12) and video.min() >= -1 and video.max() <= 1
    assert torch.allclose(convert.video_to_image(video), images, atol=1e-6)
    stage_video = (torch.rand(1, 3, 4, 8, 12) * 3 - 1.5).half()  # an fp16 stage output, thresholded to +-1.5
    back = convert.image_to_video(convert.video_to_image(stage_video), "x", torch.float16)
    assert (to_uint8_frames(back) == to_uint8_frames(stage_video)).all()


@pytest.mark.parametrize(
    "value, message",
    [
        (torch.rand(3, 8, 8, 4), "4 channels \\(RGBA\\)"),
        (torch.rand(3, 8, 8, 1), "3 \\(RGB\\) channels"),
        (torch.rand(0, 8, 8, 3), "is empty"),
        (torch.rand(1, 3, 8, 8, 3), "needs an IMAGE batch \\[frames, height, width, channels\\]"),
        (torch.full((2, 8, 8, 3), float("nan")), "NaN"),
        ("frames", "needs an IMAGE frame batch, got str"),
    ],
)
def test_bad_frame_batches_are_explained(value, message):
    with pytest.raises(InputError, match=message):
        pack_module("image_video").image_to_video(value, "images")


@pytest.mark.parametrize(
    "latent, message",
    [
        ({"samples": torch.zeros(4, 8, 8)}, "must be \\[batch, channels, frames, height, width\\] or \\[frames"),
        (torch.zeros(1, 4, 2, 8, 8), "needs a LATENT"),
    ],
)
def test_bad_latents_are_explained(latent, message):
    with pytest.raises(InputError, match=message):
        pack_module("image_video").latent_samples(latent, "latent")


def test_frame_latents_of_an_image_vae_are_one_video():
    frames = torch.randn(5, 4, 6, 8)
    video = pack_module("image_video").latent_samples({"samples": frames}, "latent")
    assert video.shape == (1, 4, 5, 6, 8) and torch.equal(video[0, :, 2], frames[2])


STAGE_LOADERS = [
    "Show1KeyframeModelLoader",
    "Show1InterpolationModelLoader",
    "Show1PixelSRModelLoader",
    "Show1FirstFrameModelLoader",
    "Show1LatentSRModelLoader",
]


def _socket_type(value: object) -> str:
    """The socket type a loader's output value belongs on (its class name if none)."""
    types = pack_module("types")
    if isinstance(value, PlacedModel):
        return types.MODEL_TYPE[value.model.stage]
    if isinstance(value, types.EncoderHandle):
        return types.ENCODER_TYPE[value.kind]
    if isinstance(value, (pack_module("core_vae").UnusableCoreVAE, sys.modules["comfy.sd"].VAE)):
        return "VAE"
    return type(value).__name__


@pytest.mark.parametrize("node_id", STAGE_LOADERS + ["Show1T5Loader", "Show1CLIPLoader"])
def test_each_loader_returns_the_outputs_it_declares(tmp_path, monkeypatch, tiny, node_id):
    comfy(tmp_path, monkeypatch, tiny)
    loader = load_pack().NODE_CLASS_MAPPINGS[node_id]
    local_folder = loader.INPUT_TYPES()["required"]["model"][0][1]
    outputs = loader().load(local_folder, "fp32", "balanced")
    assert tuple(map(_socket_type, outputs)) == loader.RETURN_TYPES


def test_speed_settings_come_from_one_node_into_every_stage_loader():
    pack = load_pack().NODE_CLASS_MAPPINGS
    node = pack["Show1SpeedSettings"]()
    assert node.settings("sdpa", "off", False, False, False) == (SpeedSettings(),)
    assert node.settings("native", "aot_eager", True, True, True) == (
        SpeedSettings(
            attention="native", compile=True, compile_backend="aot_eager", fp8_weights=True, stream_blocks=True, split_guidance=True
        ),
    )
    for loader in STAGE_LOADERS:
        assert pack[loader].INPUT_TYPES()["optional"]["speed"][0] == "SHOW1_SPEED"
    for loader in ("Show1T5Loader", "Show1CLIPLoader"):
        assert "optional" not in pack[loader].INPUT_TYPES()


def test_the_step_cache_node_adds_its_cache_for_every_stage_model_to_the_speed_settings_it_is_given():
    from show1_core import CacheSettings, StageCaches

    node = load_pack().NODE_CLASS_MAPPINGS["Show1StepCache"]
    (speed,) = node().settings("step", 0.1, 2, 3, 0)
    assert speed == SpeedSettings(cache=StageCaches.every(CacheSettings("step", threshold=0.1, start=3)))
    (chained,) = node().settings("pab", 0.1, 3, 2, 40, speed=SpeedSettings(split_guidance=True))
    assert chained == SpeedSettings(split_guidance=True, cache=StageCaches.every(CacheSettings("pab", interval=3, end=40)))
    assert node().settings("off", 0.5, 7, 9, 3) == (SpeedSettings(),)
    assert node.VALIDATE_INPUTS("step", 0.1, 2, 3, 0) is True
    assert node.VALIDATE_INPUTS("step", 0.1, 2, 5, 5) == "Show-1 Step Cache: cache end must be after cache start (5), got 5"
    assert "cache start must be at least 1 for taylorseer" in node.VALIDATE_INPUTS("taylorseer", 0.1, 2, 0, 0)
    assert "choose one of off, step, pab, taylorseer" in node.VALIDATE_INPUTS("fastest", 0.1, 2, 2, 0)


def test_an_attention_kernel_that_is_not_installed_is_refused_before_the_run_with_its_pip_command(monkeypatch):
    import show1_core.speed.attention as attention

    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: None)
    validate = load_pack().NODE_CLASS_MAPPINGS["Show1SpeedSettings"].VALIDATE_INPUTS
    assert "pip install sageattention" in validate("sage")
    assert validate("sdpa") is True and validate(None) is True


def test_a_stage_loader_applies_its_speed_settings_and_refuses_anything_else(monkeypatch, tiny):
    monkeypatch.setenv("SHOW1_MODELS_DIR", str(tiny))
    loader = load_pack().NODE_CLASS_MAPPINGS["Show1PixelSRModelLoader"]()
    speed = SpeedSettings(attention="native", split_guidance=True)
    (handle,) = loader.load("show-1-sr1", "fp32", "balanced", speed=speed)
    assert handle.model.speed == speed
    assert loader.load("show-1-sr1", "fp32", "balanced")[0].model.speed == SpeedSettings()
    with pytest.raises(InputError, match="Show-1 Speed Settings"):
        loader.load("show-1-sr1", "fp32", "balanced", speed="fast")


def test_importing_the_pack_imports_nothing_from_comfyui():
    """As docs/ARCHITECTURE.md says: ComfyUI modules are looked up when a node runs or lists its models, never at import."""
    code = f"""
import importlib.abc, importlib.util, sys
COMFY = {{"comfy", "comfy_api", "comfy_extras", "folder_paths", "latent_preview", "server", "execution"}}
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in COMFY:
            raise AssertionError("imported " + name)
sys.meta_path.insert(0, Guard())
spec = importlib.util.spec_from_file_location(
    "custom_nodes.show1", {str(PACK_ROOT / "__init__.py")!r}, submodule_search_locations=[{str(PACK_ROOT)!r}]
)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
print(len(module.NODE_CLASS_MAPPINGS))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) == len(NODE_IDS)


WIDGET_SETTINGS = {
    "seed": "seed",
    "frames": "keyframes.num_frames",
    "frames_between": "interpolation.frames_between",
    "noise_level": "pixel_sr.noise_level",
    "first_frame_steps": "first_frame.steps",
    "first_frame_guidance": "first_frame.guidance",
    "first_frame_noise_level": "first_frame.noise_level",
    "fps": "keyframes.fps",
    "stage3_width": "keyframes.width",
    "stage3_height": "keyframes.height",
    "pixel_sr_steps": "pixel_sr.steps",
    "latent_sr_steps": "latent_sr.steps",
    "strength": "latent_sr.strength",
}
"""The setting each number widget sets, where its name alone does not say (else ``<node's stage>.<widget>``)."""
NODE_STAGE = {
    "Show1Keyframes": "keyframes",
    "Show1Interpolation": "interpolation",
    "Show1PixelSR": "pixel_sr",
    "Show1LatentSR": "latent_sr",
    "Show1LatentRefine": "latent_sr",
    "Show1VAEEncode": "latent_sr",
    "Show1UpscaleVideo": "latent_sr",
    "Show1StepCache": "cache",
}
NOT_A_SETTING = {("Show1Interpolation", "window_batch"), ("Show1StepCache", "end")}
"""0 stands for the setting's ``None`` (all windows), which a number widget cannot hold."""


def test_every_number_widget_takes_its_range_from_the_table_the_command_line_checks():
    """One table of limits: each INT/FLOAT widget's min/max is the range ``show1_core.host.LIMITS`` gives its setting, and the
    checks the command line runs (``settings_problems``) accept that range's ends and refuse what lies beyond them."""
    from show1_core.validation.ranges import LIMITS, check

    checked = 0
    for node_id, cls in load_pack().NODE_CLASS_MAPPINGS.items():
        declared = cls.INPUT_TYPES()
        for name, (kind, options) in {**declared["required"], **declared.get("optional", {})}.items():
            if kind not in ("INT", "FLOAT") or (node_id, name) in NOT_A_SETTING:
                continue
            if node_id.endswith("MotionLoRA"):
                setting = "motion_lora.strength"
            else:
                setting = WIDGET_SETTINGS.get(name, f"{NODE_STAGE[node_id]}.{name}")
            limit, step = LIMITS[setting], options["step"]
            low = limit.low + step if limit.low_open else -(-limit.low // step) * step if limit.whole else limit.low
            assert (options["min"], options["max"]) == pytest.approx((low, limit.high)), f"{node_id}.{name} vs {setting}"
            assert check(setting, options["min"]) == [] and check(setting, options["max"]) == [], f"{setting} refuses its widget's ends"
            beyond = [limit.low] if limit.low_open else [limit.low - 1]
            assert all(check(setting, value) for value in beyond + [limit.high + 1]), f"{setting} accepts beyond its range"
            checked += 1
    assert checked >= 40
