"""Motion LoRA training pieces: the objective, clip reading and sampling, checkpoints and resuming, the command line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from show1_core.cli import main
from show1_core.errors import InputError
from show1_core.loading import ModelRole, load_stage_model
from show1_core.loading.registry import KNOWN_CHECKPOINTS
from show1_core.motion_lora import load_motion_lora, read_motion_lora_info, temporal_attention_targets
from show1_core.training.clips import Clip, caption_for, fit_frames, load_clips, read_frames, sample_window, short_clips
from show1_core.training.objective import VLB_LAMBDA, NoiseSchedule, diffusion_loss
from show1_core.training.state import load_state, save_state
from show1_core.training.trainer import CaptionEmbeddings, TrainingSettings, checkpoint_folder, train_motion_lora
from show1_core.video_io import write_video

SCHEDULER = KNOWN_CHECKPOINTS["show-1-base"].expected_config("scheduler")


# --- the objective -------------------------------------------------------------------------------


def test_the_loss_is_noise_mse_plus_the_weighted_bound_which_trains_only_the_variance():
    schedule = NoiseSchedule(SCHEDULER)
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 2, 4, 4, generator=generator) * 2 - 1
    noise = torch.randn(clean.shape, generator=generator)
    timesteps = torch.tensor([0, 10, 900])
    noisy = schedule.add_noise(clean, noise, timesteps)
    prediction = torch.randn(3, 6, 2, 4, 4, generator=generator).requires_grad_(True)

    terms = diffusion_loss(prediction, clean, noisy, noise, timesteps, schedule)
    assert torch.allclose(terms.mse, torch.nn.functional.mse_loss(prediction[:, :3], noise))
    assert torch.allclose(terms.total, terms.mse + VLB_LAMBDA * 1000 * terms.vlb)
    terms.vlb.backward()
    assert prediction.grad[:, :3].abs().max() == 0 and prediction.grad[:, 3:].abs().max() > 0


def test_the_bound_vanishes_for_the_true_noise_and_posterior_variance_and_grows_otherwise():
    schedule = NoiseSchedule(SCHEDULER)
    generator = torch.Generator().manual_seed(1)
    clean = torch.rand(2, 3, 2, 4, 4, generator=generator) * 2 - 1
    noise = torch.randn(clean.shape, generator=generator)
    timesteps = torch.tensor([20, 500])
    noisy = schedule.add_noise(clean, noise, timesteps)
    posterior = -torch.ones_like(clean)  # v = -1: exactly the DDPM posterior variance
    exact = schedule.variational_bound(clean, noisy, timesteps, noise, posterior)
    assert exact.abs().max() < 1e-4
    wrong_variance = schedule.variational_bound(clean, noisy, timesteps, noise, torch.ones_like(clean))
    wrong_noise = schedule.variational_bound(clean, noisy, timesteps, noise + 0.5, posterior)
    assert (wrong_variance > exact).all() and wrong_variance[0] > 1e-3  # beta_t and the posterior differ most at small t
    assert (wrong_noise > 1e-3).all()
    # t = 0: the decoder's likelihood of the 256-level image, in bits per dimension
    zero = torch.zeros(1, dtype=torch.long)
    nll = schedule.variational_bound(clean[:1], schedule.add_noise(clean[:1], noise[:1], zero), zero, noise[:1], posterior[:1])
    assert math.isfinite(nll.item()) and 0 < nll.item() < 8


def test_a_v_prediction_scheduler_is_refused():
    with pytest.raises(InputError, match="epsilon"):
        NoiseSchedule({**SCHEDULER, "prediction_type": "v_prediction"})


# --- clips -----------------------------------------------------------------------------------------


def moving_square_video(frames: int = 12, height: int = 30, width: int = 60) -> torch.Tensor:
    """``(1, 3, F, H, W)`` in [-1, 1]: a white square moving right on black."""
    video = -torch.ones(1, 3, frames, height, width)
    for f in range(frames):
        video[:, :, f, 10:20, 2 + 4 * f : 12 + 4 * f] = 1.0
    return video


@pytest.mark.parametrize("suffix", ["mp4", "gif", "webp"])
def test_clips_are_read_fitted_and_sampled_at_the_stages_rate(tmp_path, suffix):
    path = write_video(moving_square_video(), tmp_path / f"square.{suffix}", fps=8.0)
    frames, fps = read_frames(path)
    assert frames.shape[0] == 12 and frames.shape[-1] == 3 and fps == pytest.approx(8.0, rel=0.05)
    clip = load_clips(tmp_path, "a square", height=8, width=16)[0]
    assert clip.frames.shape == (12, 3, 8, 16) and clip.frames.dtype == torch.uint8 and clip.caption == "a square"
    window = sample_window(clip, 3, 2.0, torch.Generator().manual_seed(0))  # every 4th frame at 2 fps
    assert window.shape == (3, 3, 8, 16) and window.min() >= -1 and window.max() <= 1
    columns = ((window.mean(0) + 1) / 2).sum(1).argmax(-1)  # brightest column per frame moves right
    assert (columns[1:] > columns[:-1]).all()


def test_fitting_covers_the_target_and_crops_the_centre():
    frames = np.zeros((1, 20, 100, 3), dtype=np.uint8)
    frames[:, :, 45:55] = 255  # a bar in the middle of a wide frame
    fitted = fit_frames(frames, height=8, width=16)
    assert fitted.shape == (1, 3, 8, 16)
    assert fitted[0, 0, :, 7:9].float().mean() > 200 and fitted[0, 0, :, :3].float().mean() < 10


def test_short_clips_are_sampled_evenly_and_slow_ones_with_a_random_start():
    clip = Clip(Path("c.mp4"), "c", torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 3, 2, 2).clone(), fps=30.0)
    values = lambda window: ((window[0, :, 0, 0] + 1) * 127.5).round().long().tolist()  # noqa: E731
    assert values(sample_window(clip, 3, 2.0, torch.Generator().manual_seed(0))) == [0, 2, 4]  # too short for 2 fps
    assert values(sample_window(clip, 8, None, torch.Generator().manual_seed(0))) == [0, 1, 1, 2, 2, 3, 3, 4]
    long_clip = Clip(Path("l.mp4"), "l", torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 3, 2, 2).clone(), 10.0)
    windows = [values(sample_window(long_clip, 3, 5.0, torch.Generator().manual_seed(s))) for s in range(5)]
    assert all(w[1] - w[0] == 2 and w[2] - w[1] == 2 for w in windows)  # 10 fps sampled at 5 fps
    assert len({w[0] for w in windows}) > 1  # from random starting points


def test_captions_come_from_a_txt_beside_the_clip_or_the_prompt(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.txt").write_text("  a dog running left \n")
    (tmp_path / "b.mp4").write_bytes(b"")
    assert caption_for(tmp_path / "a.mp4", "fallback") == "a dog running left"
    assert caption_for(tmp_path / "b.mp4", "fallback") == "fallback"
    with pytest.raises(InputError, match="b.mp4 has no caption: write b.txt"):
        caption_for(tmp_path / "b.mp4", None)


def test_unreadable_clips_and_empty_folders_are_explained(tmp_path):
    with pytest.raises(InputError, match="holds no video clips"):
        load_clips(tmp_path, "x", 8, 16)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="cannot read the video"):
        load_clips(tmp_path, "x", 8, 16)


# --- training state --------------------------------------------------------------------------------


def test_training_state_round_trips_without_pickle(tmp_path):
    state = {"step": 3, "loss": 0.5, "nested": {1: [torch.ones(2), (0.9, 0.99)], "none": None}, "flag": True}
    loaded = load_state(save_state(tmp_path / "s.safetensors", state))
    assert loaded["step"] == 3 and loaded["loss"] == 0.5 and loaded["flag"] is True and loaded["nested"]["none"] is None
    assert torch.equal(loaded["nested"][1][0], torch.ones(2)) and loaded["nested"][1][1] == [0.9, 0.99]


# --- the training loop -----------------------------------------------------------------------------


@pytest.fixture
def keyframe_model(tiny_models):
    return load_stage_model(tiny_models["show-1-base"], ModelRole.KEYFRAMES)


def square_clips(count: int = 3) -> list[Clip]:
    clips = []
    for i in range(count):
        frames = torch.zeros(8, 3, 8, 16, dtype=torch.uint8)
        for f in range(8):
            frames[f, :, 2:6, i + f : i + f + 4] = 255
        clips.append(Clip(Path(f"clip{i}.mp4"), f"square {i % 2}", frames, fps=2.0))
    return clips


def embeddings_for(clips: list[Clip]) -> CaptionEmbeddings:
    generator = torch.Generator().manual_seed(0)
    return CaptionEmbeddings({c.caption: torch.randn(1, 8, 32, generator=generator) for c in clips}, torch.zeros(1, 8, 32))


def quick_settings(**changes) -> TrainingSettings:
    values = dict(frames=4, fps=2.0, height=8, width=16, rank=2, steps=4, learning_rate=1e-2, batch_size=1, checkpoint_every=2)
    return TrainingSettings(**(values | changes))


def test_resuming_from_a_checkpoint_ends_with_the_same_weights_as_one_run(tmp_path, keyframe_model):
    clips, embeddings = square_clips(), embeddings_for(square_clips())
    straight = train_motion_lora(keyframe_model, clips, embeddings, quick_settings(), tmp_path / "a.safetensors", "tiny", progress=False)
    assert [p.name for p in straight.checkpoints] == ["step-000002.safetensors"]

    first = train_motion_lora(
        keyframe_model, clips, embeddings, quick_settings(steps=2, checkpoint_every=1), tmp_path / "b.safetensors", "tiny", progress=False
    )
    folder = checkpoint_folder(first.path)
    assert sorted(p.name for p in folder.iterdir()) == ["step-000001.safetensors", "step-000001.state.safetensors"]
    resumed = train_motion_lora(
        keyframe_model,
        clips,
        embeddings,
        quick_settings(checkpoint_every=1),
        tmp_path / "b.safetensors",
        "tiny",
        resume=True,
        progress=False,
    )
    assert resumed.steps == 4
    a, b = load_motion_lora(straight.path), load_motion_lora(resumed.path)
    assert a.weights.keys() == b.weights.keys()
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert any(v.abs().max() > 0 for k, v in a.weights.items() if "lora_B" in k)  # it trained
    info = read_motion_lora_info(resumed.path)
    assert (info.steps, info.prompts, info.rank, info.base_checkpoint) == (4, ("square 0", "square 1"), 2, "tiny")
    assert [p.name for p in sorted(folder.glob("step-*"))][-2:] == ["step-000003.safetensors", "step-000003.state.safetensors"]
    assert len(list(folder.glob("step-*.state.safetensors"))) == 2  # older checkpoints pruned


def test_resuming_with_other_settings_is_refused(tmp_path, keyframe_model):
    clips, embeddings = square_clips(), embeddings_for(square_clips())
    train_motion_lora(
        keyframe_model, clips, embeddings, quick_settings(steps=2, checkpoint_every=1), tmp_path / "a.safetensors", "tiny", progress=False
    )
    with pytest.raises(InputError, match=r"other training settings or data \(rank\)"):
        train_motion_lora(
            keyframe_model, clips, embeddings, quick_settings(rank=4), tmp_path / "a.safetensors", "tiny", resume=True, progress=False
        )


def test_training_leaves_the_model_as_loaded_and_refuses_other_stages(tmp_path, keyframe_model, tiny_models):
    state = {k: v.clone() for k, v in keyframe_model.unet.state_dict().items()}
    clips = square_clips()
    result = train_motion_lora(
        keyframe_model, clips, embeddings_for(clips), quick_settings(steps=1), tmp_path / "a.safetensors", "tiny", progress=False
    )
    assert keyframe_model.unet.state_dict().keys() == state.keys()
    assert all(torch.equal(state[k], v) for k, v in keyframe_model.unet.state_dict().items())
    assert not any(p.requires_grad for p in keyframe_model.unet.parameters())
    lora = load_motion_lora(result.path)
    assert set(lora.info.target_modules) == set(temporal_attention_targets(keyframe_model.unet))

    pixel_sr = load_stage_model(tiny_models["show-1-sr1"], ModelRole.PIXEL_SR)
    with pytest.raises(InputError, match="motion LoRAs adapt the keyframes"):
        train_motion_lora(pixel_sr, clips, embeddings_for(clips), quick_settings(), tmp_path / "b.safetensors", "tiny", progress=False)
    with pytest.raises(InputError, match="multiples of 8"):
        train_motion_lora(
            keyframe_model, clips, embeddings_for(clips), quick_settings(height=12), tmp_path / "c.safetensors", "tiny", progress=False
        )


def test_the_interpolation_model_trains_on_conditioned_windows(tmp_path, tiny_models):
    model = load_stage_model(tiny_models["show-1-interpolation"], ModelRole.INTERPOLATION)
    clips = square_clips()
    result = train_motion_lora(
        model, clips, embeddings_for(clips), quick_settings(frames=5, fps=8.0, steps=2), tmp_path / "i.safetensors", "tiny", progress=False
    )
    info = read_motion_lora_info(result.path)
    assert info.stage == ModelRole.INTERPOLATION and info.frames == 5


# --- the command line ------------------------------------------------------------------------------


def test_train_motion_then_generate_with_the_lora_from_the_command_line(tmp_path, tiny_root, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(2):
        write_video(moving_square_video(frames=10), clips / f"pan{i}.mp4", fps=8.0)
    (clips / "pan0.txt").write_text("a square sliding right")
    out = tmp_path / "pan.safetensors"
    args = [
        "train-motion",
        str(clips),
        "-o",
        str(out),
        "--prompt",
        "a square",
        "--models-dir",
        str(tiny_root),
        "--offline",
        "--steps",
        "2",
        "--rank",
        "2",
        "--width",
        "16",
        "--height",
        "8",
        "--frames",
        "3",
        "--checkpoint-every",
        "1",
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    info = read_motion_lora_info(out)
    assert info.stage == ModelRole.KEYFRAMES and info.base_checkpoint == "showlab/show-1-base" and info.steps == 2
    assert info.prompts == ("a square", "a square sliding right")
    assert "wrote" in capsys.readouterr().out
    assert main(args + ["--resume", "--steps", "3"]) == 0 and read_motion_lora_info(out).steps == 3

    video = tmp_path / "v.gif"
    generate = [
        "generate",
        "a square",
        "-o",
        str(video),
        "--stages",
        "1",
        "--models-dir",
        str(tiny_root),
        "--offline",
        "--device",
        "cpu",
        "--keyframes-steps",
        "2",
        "--keyframes-width",
        "16",
        "--keyframes-height",
        "8",
        "--keyframes-num-frames",
        "3",
    ]
    assert main(generate + ["--motion-lora", f"{out}:0.7"]) == 0 and video.is_file()
    (tmp_path / "broken.safetensors").write_bytes(b"junk")
    assert main(generate + ["--overwrite", "--motion-lora", str(tmp_path / "broken.safetensors")]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err


def test_train_motion_explains_missing_captions_before_loading_anything(tmp_path, capsys):
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert main(["train-motion", str(tmp_path), "-o", str(tmp_path / "x.safetensors"), "--offline"]) == 2
    assert "clip.mp4 has no caption" in capsys.readouterr().err
    assert main(["train-motion", str(tmp_path), "-o", str(tmp_path / "x.pt"), "--prompt", "p"]) == 2
    assert "must be a .safetensors file" in capsys.readouterr().err


# --- clips without motion, captions that are not UTF-8, seeds that are not integers ----------------


def test_a_single_frame_clip_is_refused_and_short_clips_are_named(tmp_path, tiny_root, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(moving_square_video(frames=1), clips / "still.gif", fps=8.0)
    out = tmp_path / "still.safetensors"
    args = [
        "train-motion",
        str(clips),
        "-o",
        str(out),
        "--prompt",
        "a square",
        "--models-dir",
        str(tiny_root),
        "--offline",
        "--steps",
        "1",
        "--rank",
        "2",
        "--width",
        "16",
        "--height",
        "8",
        "--frames",
        "3",
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(args) == 2
    assert "still.gif has 1 frame: a still image has no motion to learn" in capsys.readouterr().err
    assert not out.exists()

    short = Clip(Path("short.mp4"), "s", torch.zeros(4, 3, 2, 2, dtype=torch.uint8), fps=8.0)
    long = Clip(Path("long.mp4"), "l", torch.zeros(9, 3, 2, 2, dtype=torch.uint8), fps=8.0)
    assert short_clips([short, long], 8) == (
        "notice: 1 of 2 clips have fewer than the 8 frames of a sample, so frames repeat and the motion they teach is slower: short.mp4 (4)"
    )
    assert short_clips([long], 8) is None


def test_a_caption_that_is_not_utf8_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "clip.txt").write_bytes(b"caf\xe9 in the rain")
    assert main(["train-motion", str(tmp_path), "-o", str(tmp_path / "x.safetensors"), "--offline"]) == 2
    err = capsys.readouterr().err
    assert err == "error: the caption clip.txt is not UTF-8 text (byte 3); save it as UTF-8\n"


@pytest.mark.parametrize("seed", [1.5, "7", True, float("nan"), -1])
def test_training_seeds_are_whole_numbers(seed):
    with pytest.raises(InputError, match="seed must be a whole number"):
        TrainingSettings(frames=3, fps=8.0, height=8, width=16, seed=seed).check()
