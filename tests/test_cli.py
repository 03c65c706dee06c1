"""The ``show1`` command on the tiny model set, through the same code path as the released weights."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from show1_core.cli import main

REPO = Path(__file__).resolve().parent.parent
SMALL = [
    "--keyframes-width", "32", "--keyframes-height", "16", "--keyframes-steps", "2",
    "--interpolation-steps", "2", "--first-frame-steps", "2", "--pixel-sr-steps", "1",
    "--latent-sr-width", "64", "--latent-sr-height", "32", "--latent-sr-steps", "2", "--latent-sr-strength", "0.5",
]  # fmt: skip


def _frames(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def _show1(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ``show1`` command of this checkout as a user runs it: a new process, its exit code and output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "show1_core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


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


def test_tiny_models_refuses_a_folder_that_holds_anything_unless_asked(tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["tiny-models", str(models), "--format", "safetensors"]) == 0
    weights = models / "show-1-base" / "unet" / "diffusion_pytorch_model.safetensors"
    before = weights.read_bytes()
    capsys.readouterr()
    assert main(["tiny-models", str(models), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {models} is not empty (it holds IF-II-L-v1.0, show-1-base,") and "--overwrite" in err
    assert err.count("\n") == 1 and weights.read_bytes() == before
    assert not list(models.rglob("*.bin"))

    assert main(["tiny-models", str(models), "--seed", "1", "--overwrite"]) == 0
    assert not weights.exists() and (weights.parent / "diffusion_pytorch_model.bin").is_file()  # no stale safetensors beside

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(["tiny-models", str(a_file)]) == 2
    assert capsys.readouterr().err == f"error: {a_file} is a file; give a new or empty folder for the tiny models\n"
    assert a_file.read_text() == "mine"


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
        (["--cache", "teacache"], "--cache 'teacache': unknown method 'teacache'; choose one of off, step, pab, taylorseer"),
        (["--cache", "stage9=step"], "unknown stage 'stage9'; choose from keyframes, interpolation, first_frame, pixel_sr, latent_sr"),
        (["--cache", "pab:threshold=0.1"], "pab takes interval=, start=, end=, not 'threshold=0.1'"),
        (["--cache", "step:threshold=2"], "cache threshold must be a number from 0 to 1"),
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


def test_the_cache_flag_chooses_each_stage_models_cache_later_values_winning():
    from show1_core.cli import _speed_from, build_parser
    from show1_core.settings import CacheSettings, StageCaches

    flags = ["--cache", "step:threshold=0.1,start=3", "--cache", "pixel_sr,first_frame=pab:interval=3,end=100", "--cache", "latent_sr=off"]
    step, pab = CacheSettings("step", threshold=0.1, start=3), CacheSettings("pab", interval=3, end=100)
    expected = StageCaches(keyframes=step, interpolation=step, first_frame=pab, pixel_sr=pab, latent_sr=CacheSettings())
    assert _speed_from(build_parser().parse_args(["generate", "a cat", *flags])).cache == expected
    assert build_parser().parse_args(["demo", "--cache", "step"]).cache == ["step"]


def test_a_missing_attention_kernel_or_a_lora_on_fp8_weights_is_refused_before_anything_loads(tmp_path, capsys, monkeypatch):
    import show1_core.speed.attention as attention

    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: None)
    argv = ["generate", "a cat", "-o", str(tmp_path / "cat.mp4"), "--models-dir", str(tmp_path), "--offline", "--device", "cpu"]
    assert main(argv + ["--attention", "xformers"]) == 2
    assert "pip install xformers" in capsys.readouterr().err
    assert main(argv + ["--fp8", "--motion-lora", str(tmp_path / "pan.safetensors")]) == 2
    assert "motion LoRAs cannot adapt" in capsys.readouterr().err


# --- settings checked before the first step, values out of range, progress --------------


def test_out_of_range_settings_are_all_refused_before_anything_loads(tmp_path):
    """Each bad value is named with its flag and range in one error; the empty models folder is never reached."""
    bad = {
        "--keyframes-guidance": "-1", "--interpolation-guidance": "nan", "--pixel-sr-guidance": "inf",
        "--first-frame-noise-level": "-1", "--pixel-sr-noise-level": "5000", "--latent-sr-width": "0",
        "--keyframes-height": "100000", "--latent-sr-steps": "50", "--latent-sr-strength": "0.01",
    }  # fmt: skip
    done = _show1("generate", "a cat", "--models-dir", str(tmp_path), "--offline", *[x for item in bad.items() for x in item], cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "8 settings cannot be used" in done.stderr
    for message in [
        "--keyframes-guidance must be a number from 0 to 100 (1 or less: no guidance), got -1.0",
        "--interpolation-guidance must be a number from 0 to 100 (1 or less: no guidance), got nan",
        "--pixel-sr-guidance must be a number from 0 to 100 (1 or less: no guidance), got inf",
        "--first-frame-noise-level must be a whole number from 0 to 999",
        "--pixel-sr-noise-level must be a whole number from 0 to 999 (a level of the noising scheduler), got 5000",
        "--latent-sr-width must be a whole number from 1 to 4096, got 0",
        "--keyframes-height must be a whole number from 1 to 4096, got 100000",
        "--latent-sr-strength 0.01 with 50 steps leaves no step to run; use a strength of at least 0.02",
    ]:
        assert message in done.stderr
    assert "show1 download" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_settings_a_later_stage_cannot_use_are_refused_before_the_first_stage(tiny_root, tmp_path):
    """The stage-4 VAE's size step and the keyframe model's are read from the configs before stage 1 runs."""
    done = _show1(
        "generate",
        "a cat",
        "--models-dir",
        str(tiny_root),
        "--offline",
        "--device",
        "cpu",
        *SMALL,
        "--latent-sr-width",
        "60",
        "--keyframes-width",
        "36",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--latent-sr-width must be a multiple of 8 for the stage-4 VAE, got 60; the nearest is 64" in done.stderr
    assert "--keyframes-width must be a multiple of 8 for the keyframes (stage 1) model" in done.stderr
    assert "loading" not in done.stderr and "step" not in done.stderr, "refused before any model loads or any step"
    assert list(tmp_path.iterdir()) == []


def test_sizes_beyond_the_devices_memory_are_refused_with_an_estimate(tiny_root, tmp_path):
    """In range, but 4081 frames at 4096x4096 need terabytes: refused with the estimate, not an allocator error."""
    done = _show1(
        "generate",
        "a cat",
        "--models-dir",
        str(tiny_root),
        "--offline",
        "--device",
        "cpu",
        "--stages",
        "3",
        "--keyframes-width",
        "1024",
        "--keyframes-height",
        "1024",
        "--keyframes-num-frames",
        "256",
        "--interpolation-frames-between",
        "15",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    needed = re.search(r"the pixel super-resolution \(stage 3\) needs at least ([\d.]+) GiB at 4096x4096 with 4081 frames", done.stderr)
    assert needed and float(needed.group(1)) > 500, done.stderr
    assert "the cpu device has; use a smaller size" in done.stderr
    assert "loading" not in done.stderr


def test_generate_shows_each_phase_closes_each_bar_with_its_stage_and_sums_up_the_time(tiny_root, tmp_path):
    done = _show1(
        "generate", "a cat", "--models-dir", str(tiny_root), "--offline", "--device", "cpu", "--stages", "2", *SMALL, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in re.split(r"[\r\n]", done.stderr) if line.strip()]
    announced = [line for line in lines if line.endswith("…")]
    assert announced == [
        "encoding the prompt (T5-XXL, stages 1-3) …",
        "loading show-1-base …",
        "loading show-1-interpolation …",
        "writing the outputs …",
    ]
    # The keyframes bar is finished (2/2, then a line end) before the next model starts loading.
    assert re.search(r"keyframes: 100%[^\r\n]*2/2[^\r\n]*\nloading show-1-interpolation …\n", done.stderr)
    assert re.search(r"interpolation: 100%[^\r\n]*2/2[^\r\n]*\nwriting the outputs …\n", done.stderr)
    summary = done.stderr[done.stderr.index("time per phase (total ") :].splitlines()
    phases = [re.fullmatch(r"  (.+?) +(\d+\.\d) s", line).group(1) for line in summary[1:]]
    assert phases == [
        "encoding the prompt (T5-XXL, stages 1-3)",
        "loading show-1-base",
        "keyframes (stage 1)",
        "loading show-1-interpolation",
        "temporal interpolation (stage 2)",
        "writing the outputs",
    ]
    assert "wrote" in done.stdout and "time per phase" not in done.stdout


# --- damaged configs, the wrong stage and a wrong --models-dir, in one line ---------------------------


def _generate_one_line_error(models: Path, tmp_path: Path, capsys) -> str:
    args = ["generate", "a cat", "-o", str(tmp_path / "v.mp4"), "--models-dir", str(models), "--offline", "--device", "cpu"]
    assert main(args + ["--stages", "1", "--keyframes-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith("error: ")
    return err.splitlines()[-1]


@pytest.mark.parametrize(
    "file, entry, value",
    [
        ("unet/config.json", "block_out_channels", "abc"),
        ("unet/config.json", "attention_head_dim", 0),
        ("scheduler/scheduler_config.json", "num_train_timesteps", 0),
    ],
)
def test_a_config_with_numbers_no_model_can_use_is_named_in_one_line(tiny_models, tmp_path, capsys, file, entry, value):
    models = tmp_path / "models"
    shutil.copytree(tiny_models["show-1-base"], models / "show-1-base")
    path = models / "show-1-base" / file
    path.write_text(json.dumps({**json.loads(path.read_text()), entry: value}))
    assert _generate_one_line_error(models, tmp_path, capsys) == (
        f"error: {path} holds {entry}: {value!r}, where positive whole numbers are expected; the config is damaged. "
        "Download the checkpoint again"
    )


def test_another_stages_unet_is_named_before_any_size_is_checked_against_it(tiny_models, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_models["show-1-base"], models / "show-1-base")
    shutil.rmtree(models / "show-1-base" / "unet")
    shutil.copytree(tiny_models["show-1-sr1"] / "unet", models / "show-1-base" / "unet")
    line = _generate_one_line_error(models, tmp_path, capsys)
    assert "holds the pixel super-resolution (stage 3) model (showlab/show-1-sr1), but the keyframes (stage 1)" in line
    assert "multiple of" not in line


def test_a_models_dir_that_is_a_file_or_one_checkpoint_folder_says_what_was_expected(tiny_root, tmp_path, capsys):
    a_file = tmp_path / "models.txt"
    a_file.write_text("")
    assert _generate_one_line_error(a_file, tmp_path, capsys) == (
        f"error: the models folder {a_file} is a file; give the folder that holds the checkpoint folders (show-1-base, ...)"
    )
    line = _generate_one_line_error(tiny_root / "show-1-base", tmp_path, capsys)
    assert line.startswith(f"error: the models folder {tiny_root / 'show-1-base'} is one checkpoint folder") and f"({tiny_root})" in line
