"""The ``show1`` command on the tiny model set, through the same code path as the released weights."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from show1_core.cli import main

SMALL = [
    "--keyframes-width", "32", "--keyframes-height", "16", "--keyframes-steps", "2",
    "--interpolation-steps", "2", "--first-frame-steps", "2", "--pixel-sr-steps", "1",
    "--latent-sr-width", "64", "--latent-sr-height", "32", "--latent-sr-steps", "2", "--latent-sr-strength", "0.5",
]  # fmt: skip


def _frames(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def test_generate_runs_all_stages_and_writes_every_output(tiny_root, tmp_path, capsys):
    output = tmp_path / "panda.mp4"
    argv = ["generate", "a panda playing guitar", "-o", str(output), "--models-dir", str(tiny_root), "--offline"]
    assert main(argv + ["--device", "cpu", "--format", "gif", "--save-intermediate", *SMALL]) == 0
    assert _frames(output) == 29
    with Image.open(tmp_path / "panda.gif") as gif:
        assert gif.n_frames == 29 and gif.size == (64, 32)
    with Image.open(tmp_path / "panda_sheet.png") as sheet:
        assert sheet.size == (8 * 64, 4 * 32)
    assert _frames(tmp_path / "panda_keyframes.mp4") == 8
    assert _frames(tmp_path / "panda_pixel_sr.mp4") == 29
    assert "wrote" in capsys.readouterr().out


def test_generate_can_stop_early_and_skip_the_gated_model(tiny_root, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("show-1-base", "show-1-interpolation", "show-1-sr1"):
        shutil.copytree(tiny_root / name, models / name)  # no IF-II-L, no stage-4 model
    output = tmp_path / "out.mp4"
    argv = ["generate", "a cat", "-o", str(output), "--models-dir", str(models), "--offline", "--stages", "3"]
    assert main(argv + ["--no-first-frame-model", "--device", "cpu", *SMALL]) == 0
    assert _frames(output) == 29


def test_missing_models_offline_say_how_to_download(tmp_path, capsys):
    assert main(["generate", "a cat", "--models-dir", str(tmp_path), "--offline", "--device", "cpu"]) == 2
    assert "show1 download" in capsys.readouterr().err


def test_gated_first_frame_model_explains_the_licence(tiny_root, tmp_path, monkeypatch, capsys):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    class Response:
        status_code, headers, request = 403, {}, None

    def refuse(repo_id, **_):
        raise GatedRepoError("gated", response=Response())

    models = tmp_path / "models"
    shutil.copytree(tiny_root, models, ignore=shutil.ignore_patterns("IF-II-L-v1.0"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    assert main(["generate", "a cat", "--models-dir", str(models), "--device", "cpu", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "https://huggingface.co/DeepFloyd/IF-II-L-v1.0" in err and "hf auth login" in err and "--no-first-frame-model" in err


def test_tiny_models_command_uses_the_released_names(tmp_path):
    assert main(["tiny-models", str(tmp_path), "--format", "safetensors"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["IF-II-L-v1.0", "show-1-base", "show-1-interpolation", "show-1-sr1", "show-1-sr2"]
    assert (tmp_path / "show-1-sr2" / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_convert_command(tiny_root, tmp_path):
    assert main(["convert", str(tiny_root / "show-1-sr1"), str(tmp_path / "sr1"), "--precision", "fp16"]) == 0
    assert (tmp_path / "sr1" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "sr1" / "image_noising_scheduler" / "scheduler_config.json").is_file()


def test_demo_runs_every_stage_and_says_it_is_noise(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "random" in out.lower() and "noise" in out.lower()
    assert _frames(tmp_path / "demo.mp4") == 29
    for stage in ("keyframes", "interpolated", "pixel_sr"):
        assert (tmp_path / f"demo_{stage}.mp4").is_file()


@pytest.mark.skipif(shutil.which("show1") is None, reason="the console script is installed by `pip install -e .`")
def test_console_script_is_installed():
    done = subprocess.run(["show1", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "generate" in done.stdout


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "show1_core", "generate", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "--pixel-sr-stride" in done.stdout and "default 7" in done.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "x.avi"], "unsupported output format"),
        (["--format", "gif,mkv"], "mkv"),
        (["--seed", "-3"], "seed"),
        (["--device", "quantum"], "unknown device"),
        (["--device", "cuda:7"], "cuda"),
    ],
)
def test_bad_requests_fail_before_any_model_loads(tmp_path, capsys, extra, message):
    """Checked first: the (empty) models folder would otherwise be the error."""
    assert main(["generate", "a cat", "--models-dir", str(tmp_path), "--offline", *extra]) == 2
    assert message in capsys.readouterr().err


def test_speed_flags_become_the_cascades_speed_settings():
    from show1_core.cli import _speed_from, build_parser
    from show1_core.settings import SpeedSettings

    flags = ["--attention", "native", "--compile", "--compile-backend", "eager", "--fp8", "--stream-blocks", "--split-guidance"]
    assert _speed_from(build_parser().parse_args(["generate", "a cat", *flags])) == SpeedSettings(
        attention="native", compile=True, compile_backend="eager", fp8_weights=True, stream_blocks=True, split_guidance=True
    )
    assert _speed_from(build_parser().parse_args(["generate", "a cat"])) == SpeedSettings()


def test_a_missing_attention_kernel_or_a_lora_on_fp8_weights_is_refused_before_anything_loads(tmp_path, capsys, monkeypatch):
    import show1_core.speed.attention as attention

    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: None)
    argv = ["generate", "a cat", "-o", str(tmp_path / "cat.mp4"), "--models-dir", str(tmp_path), "--offline", "--device", "cpu"]
    assert main(argv + ["--attention", "xformers"]) == 2
    assert "pip install xformers" in capsys.readouterr().err
    assert main(argv + ["--fp8", "--motion-lora", str(tmp_path / "pan.safetensors")]) == 2
    assert "motion LoRAs cannot adapt" in capsys.readouterr().err
