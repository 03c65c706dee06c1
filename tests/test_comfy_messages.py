"""What the nodes' errors say to the ComfyUI client: read once after ComfyUI's prefix, and no server paths.

ComfyUI shows a ``VALIDATE_INPUTS`` message as ``"<input name> - <message>"`` and sends run-time
exception messages to the browser, so a message must not repeat the input name and must name
model folders from their model root (``models/show1/show-1-base``), never by the server's
absolute path.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from comfy_support import comfy, load_pack, pack_module, tiny_models

from show1_core.errors import MissingFilesError, OfflineError, WrongStageError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_models(tmp_path_factory)


@pytest.fixture
def models_show1(tmp_path, monkeypatch) -> Path:
    """A fake ComfyUI whose only model root is its ``models/show1`` folder."""
    fake = comfy(tmp_path, monkeypatch, None)
    root = fake.root / "models" / "show1"
    root.mkdir(parents=True)
    return root


def _validation_details(node_id: str, model: str) -> str:
    """What ComfyUI's validate_inputs puts in the error's details for a failed VALIDATE_INPUTS."""
    result = load_pack().NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS(model)
    assert isinstance(result, str), f"{model!r} should fail validation"
    return f"model - {result}"


@pytest.mark.parametrize("model", ["../show-1-base", "/etc", ".", "no-such-model", "x" * 300])
def test_a_refused_model_name_does_not_repeat_the_input_name(models_show1, model):
    details = _validation_details("Show1KeyframeModelLoader", model)
    assert not details.startswith("model - model"), details


def _assert_public(message: str, server_path: Path, expected: str) -> None:
    assert str(server_path) not in message, message
    assert expected in message, message


@pytest.mark.parametrize(
    "model, expected",
    [
        ("no-such-model", "no checkpoint folder 'no-such-model' in models/show1. Put the folder there"),
        ("../show-1-base", "Show-1 model folders (models/show1)"),
        ("afile", "models/show1/afile is a file"),
        ("linked", "models/show1/linked is a link that leads outside the Show-1 models folder models/show1."),
    ],
)
def test_validation_names_model_folders_from_the_models_root(models_show1, tiny, tmp_path, model, expected):
    (models_show1 / "afile").write_text("not a checkpoint")
    (models_show1 / "linked").symlink_to(tiny / "show-1-base")
    details = _validation_details("Show1KeyframeModelLoader", model)
    _assert_public(details, tmp_path, expected)
    assert str(tiny) not in details, "the target of a link out of the root is not shown either"


def test_each_kind_of_root_has_its_own_name(tmp_path, monkeypatch, tiny):
    fake = comfy(tmp_path, monkeypatch, tiny)
    fake.modules["folder_paths"].add_model_folder_path("show1", str(tmp_path / "elsewhere"))  # extra_model_paths.yaml
    folders = pack_module("model_folders")
    labels = [root.label for root in folders.labelled_model_roots()]
    assert labels == ["$SHOW1_MODELS_DIR", "<show1 folder 1 of extra_model_paths.yaml>", "models/show1"]
    assert folders.display_path(tiny / "show-1-base" / "unet") == "$SHOW1_MODELS_DIR/show-1-base/unet"
    assert folders.display_path(tmp_path / "elsewhere" / "x") == "<show1 folder 1 of extra_model_paths.yaml>/x"


def test_show1_core_errors_raised_by_a_loader_name_the_folder_from_its_root(models_show1, tiny, tmp_path):
    """show1_core names the real path (right for the show1 command); the loader node rewrites it for the client."""
    shutil.copytree(tiny / "show-1-base", models_show1 / "broken")
    (models_show1 / "broken" / "unet" / "diffusion_pytorch_model.bin").unlink()
    with pytest.raises(MissingFilesError) as caught:
        load_pack().NODE_CLASS_MAPPINGS["Show1KeyframeModelLoader"]().load("broken", "fp32", "balanced")
    _assert_public(str(caught.value), tmp_path, "models/show1/broken/unet")
    assert str(tmp_path) in str(caught.value.__cause__), "the server's log keeps the real path"


def test_a_hub_error_names_the_download_folder_from_its_root(models_show1, tmp_path, monkeypatch):
    def offline(repo_id, target, patterns, checkpoint=None):
        raise OfflineError(f"cannot download {repo_id}: copy the folder to {target}.")

    monkeypatch.setattr(sys.modules["show1_core.loading.hub"], "download", offline)
    with pytest.raises(OfflineError) as caught:
        load_pack().NODE_CLASS_MAPPINGS["Show1PixelSRModelLoader"]().load("showlab/show-1-sr1", "fp32", "balanced")
    _assert_public(str(caught.value), tmp_path, "copy the folder to models/show1/show-1-sr1.")


def test_a_text_encoder_error_names_the_folder_from_its_root(models_show1, tiny, tmp_path):
    shutil.copytree(tiny / "show-1-sr2", models_show1 / "show-1-sr2")
    with pytest.raises(WrongStageError) as caught:
        load_pack().NODE_CLASS_MAPPINGS["Show1T5Loader"]().load("show-1-sr2", "fp32", "balanced")
    _assert_public(str(caught.value), tmp_path, "models/show1/show-1-sr2 holds no T5 (stages 1-3) text encoder")

    shutil.copytree(tiny / "show-1-base", models_show1 / "no-weights")
    for weights in (models_show1 / "no-weights" / "text_encoder").glob("*.bin*"):
        weights.unlink()
    (t5,) = load_pack().NODE_CLASS_MAPPINGS["Show1T5Loader"]().load("no-weights", "fp32", "balanced")
    with pytest.raises(MissingFilesError) as caught:
        load_pack().NODE_CLASS_MAPPINGS["Show1TextEncode"]().encode("a prompt", "", "low resolution, blur", False, t5=t5)
    _assert_public(str(caught.value), tmp_path, "models/show1/no-weights/text_encoder")


def test_a_lone_surrogate_prompt_through_the_api_is_an_input_error_not_a_unicode_error(tmp_path, monkeypatch, tiny):
    from show1_core.errors import InputError

    comfy(tmp_path, monkeypatch, tiny)
    classes = load_pack().NODE_CLASS_MAPPINGS
    (t5,) = classes["Show1T5Loader"]().load("show-1-base", "fp32", "balanced")
    with pytest.raises(InputError, match=r"the prompt holds '\\udce9' at character 4, which is not text"):
        classes["Show1TextEncode"]().encode("caf\udce9", "", "", False, t5=t5)


def test_a_corrupt_video_file_is_named_from_comfyuis_input_folder_in_one_line(tmp_path, monkeypatch):
    from show1_core.errors import InputError

    fake = comfy(tmp_path, monkeypatch, None)
    load_pack()
    source = fake.root / "input" / "broken.mp4"

    class CorruptFile:
        """Core's VideoFromFile over a corrupt file: PyAV raises InvalidDataError (a ValueError) naming the path."""

        def get_components(self):
            raise ValueError(f"[Errno 1094995529] Invalid data found when processing input: '{source}'")

    with pytest.raises(InputError) as caught:
        pack_module("video_node").components_of(CorruptFile())
    message = str(caught.value)
    assert message == (
        "the video cannot be read ([Errno 1094995529] Invalid data found when processing input: 'input/broken.mp4'); "
        "load a complete video file"
    )
    assert str(fake.root) not in message


def test_a_missing_single_file_t5_is_named_from_the_text_encoders_root(models_show1, tmp_path):
    details = _validation_details("Show1T5Loader", "no-such-t5.safetensors")
    _assert_public(details, tmp_path, "no-such-t5.safetensors")
