"""The memory and compute plan: made on the meta device, it holds what the same run holds on real tensors."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import CLIPTextModel, T5EncoderModel

import show1_core.cascade as cascade_module
import show1_core.plan.fitting as fitting_module
from show1_core.cascade import CascadeCheckpoints, Show1Cascade
from show1_core.errors import InvalidSettingsError
from show1_core.loading import ModelRole, load_stage_model
from show1_core.memory import POLICY_SETTINGS, MemoryPolicy
from show1_core.plan.fitting import RunConfig, plan_config
from show1_core.plan.meta_models import module_bytes
from show1_core.plan.planner import PlanModels, _run_once, flops_per_part, live_bytes_per_part, placed_weights, plan_cascade
from show1_core.settings import PAPER_SETTINGS, SpeedSettings
from show1_core.text import MAX_TOKENS, EmbeddingCache, EncoderKind

FOLDERS = {
    ModelRole.KEYFRAMES: "show-1-base",
    ModelRole.INTERPOLATION: "show-1-interpolation",
    ModelRole.FIRST_FRAME: "IF-II-L-v1.0",
    ModelRole.PIXEL_SR: "show-1-sr1",
    ModelRole.LATENT_SR: "show-1-sr2",
}
SMALL = replace(
    PAPER_SETTINGS,
    keyframes=replace(PAPER_SETTINGS.keyframes, num_frames=2, width=32, height=32, steps=3),
    interpolation=replace(PAPER_SETTINGS.interpolation, frames_between=1, steps=3),
    first_frame=replace(PAPER_SETTINGS.first_frame, steps=3),
    pixel_sr=replace(PAPER_SETTINGS.pixel_sr, window=2, stride=1, steps=3),
    latent_sr=replace(PAPER_SETTINGS.latent_sr, width=64, height=32, steps=4),
)
"""Every stage, two windows of stage 3 and three denoising steps (the FLOPs are extrapolated from 1 and 2)."""
BALANCED = POLICY_SETTINGS[MemoryPolicy.BALANCED]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def real_models(tiny_root) -> PlanModels:
    """The tiny model set, loaded on the CPU."""
    stage = {role: load_stage_model(tiny_root / folder, role) for role, folder in FOLDERS.items()}
    encoders = {
        EncoderKind.T5: T5EncoderModel.from_pretrained(tiny_root / "show-1-base" / "text_encoder").eval(),
        EncoderKind.CLIP: CLIPTextModel.from_pretrained(tiny_root / "show-1-sr2" / "text_encoder").eval(),
    }
    return PlanModels(torch.device("cpu"), torch.float32, SpeedSettings(), stage, encoders)


def _on_meta(models: PlanModels) -> PlanModels:
    def stage_on_meta(model):
        model = copy.deepcopy(model)
        model.unet = model.unet.to("meta")
        model.vae = None if model.vae is None else model.vae.to("meta")
        return model

    return PlanModels(
        torch.device("meta"),
        models.dtype,
        models.speed,
        {role: stage_on_meta(model) for role, model in models.stage.items()},
        {kind: copy.deepcopy(encoder).to("meta") for kind, encoder in models.encoders.items()},
    )


def _moved_to_the_device(settings, models: PlanModels) -> dict[str, int]:
    """Bytes of the host tensors each part copies to its device: its input video and its two prompt embeddings.

    On an accelerator these copies are real; where the device is the host (the CPU run) moving
    is free, so a plan may exceed the CPU run's bytes by at most this much.
    """
    kf, it, sr, lsr = settings.keyframes, settings.interpolation, settings.pixel_sr, settings.latent_sr
    frames = kf.num_frames + (kf.num_frames - 1) * it.frames_between
    video = {
        "keyframes": 0,
        "interpolation": 3 * kf.num_frames * kf.height * kf.width,
        "first_frame": 3 * kf.height * kf.width,
        "pixel_sr": 3 * frames * kf.height * kf.width,
        "latent_sr": 3 * frames * lsr.height * lsr.width,
    }
    text = {
        role: 2 * MAX_TOKENS * (model.unet.config.encoder_hid_dim or model.unet.config.cross_attention_dim)
        for role, model in models.stage.items()
    }
    moved = {name: 4 * (pixels + text[ModelRole(name)]) for name, pixels in video.items()}
    return {"text_t5": 0, "text_clip": 0, **moved, "pixel_sr": moved["pixel_sr"] + 4 * 3 * (kf.height * sr.scale) * (kf.width * sr.scale)}


def test_the_plan_on_meta_holds_what_the_same_run_holds_on_real_tensors(real_models, meta_models):
    """Part by part, the meta run's live bytes are the CPU run's, plus at most the inputs a device copy would add."""
    planned = live_bytes_per_part(meta_models, SMALL, 4, BALANCED)
    measured = live_bytes_per_part(real_models, SMALL, 4, BALANCED)
    bound = _moved_to_the_device(SMALL, real_models)
    assert planned.keys() == measured.keys() == set(bound)
    for name in planned:
        assert 0 <= planned[name] - measured[name] <= bound[name], (name, planned[name], measured[name])
    assert measured["latent_sr"] > 0 and measured["pixel_sr"] > 0


def test_flops_from_one_and_two_steps_are_the_flops_of_the_full_run(meta_models):
    models = meta_models
    extrapolated = flops_per_part(models, SMALL, 4, BALANCED)
    counted = _run_once(models, SMALL, 4, BALANCED, True, count_flops=True).flops
    assert extrapolated == counted
    assert all(flops > 0 for flops in counted.values())


@pytest.fixture(scope="module")
def meta_models(real_models) -> PlanModels:
    """The same tiny models on the meta device."""
    return _on_meta(real_models)


def test_the_policy_decides_which_weights_are_on_the_accelerator_and_which_in_host_memory(meta_models):
    """One model at a time under balanced, every stage model loaded so far under all-resident; the T5 streams from the
    host under balanced; low-vram drops finished stages from host memory."""
    names = ["text_t5", "keyframes", "interpolation", "first_frame", "pixel_sr"]
    placed = {
        policy: {name: (weights, host) for name, weights, host in placed_weights(meta_models, names, POLICY_SETTINGS[policy])}
        for policy in MemoryPolicy
    }
    size = {role: module_bytes(model.unet) for role, model in meta_models.stage.items()}
    t5 = module_bytes(meta_models.encoders[EncoderKind.T5])
    balanced, resident, low = placed[MemoryPolicy.BALANCED], placed[MemoryPolicy.ALL_RESIDENT], placed[MemoryPolicy.LOW_VRAM]
    assert balanced["interpolation"] == (size[ModelRole.INTERPOLATION], size[ModelRole.KEYFRAMES])
    assert resident["interpolation"] == (size[ModelRole.KEYFRAMES] + size[ModelRole.INTERPOLATION], 0)
    assert low["interpolation"] == (size[ModelRole.INTERPOLATION], 0)
    assert resident["text_t5"] == (t5, 0)
    assert balanced["text_t5"][0] < t5 and balanced["text_t5"][1] == t5
    assert balanced["first_frame"] == (
        size[ModelRole.FIRST_FRAME],
        size[ModelRole.KEYFRAMES] + size[ModelRole.INTERPOLATION] + size[ModelRole.PIXEL_SR],
    )


def test_the_released_keyframe_model_plans_at_its_real_size():
    """The released show-1-base on meta: 3.2 GiB of bf16 weights, and 10.47 TFLOP per guided step at 8 x 64x40,
    as an independent count of the original's UNet gives."""
    plan = plan_cascade(stages=1)
    keyframes = plan.part("keyframes")
    assert 3.2 * 2**30 < keyframes.weights < 3.25 * 2**30
    assert keyframes.flops / PAPER_SETTINGS.keyframes.steps == pytest.approx(10.47e12, rel=0.005)
    assert 0 < keyframes.activations < keyframes.weights


def _show1(*args: str) -> subprocess.CompletedProcess:
    """The ``show1`` command of this checkout, in a new process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "show1_core", *args], env=env, capture_output=True, text=True, timeout=300)


def test_show1_plan_prints_the_table_and_the_fewest_options_that_fit():
    """Stage 1 at the released size needs 3.7 GiB in fp16 with balanced; 3.5 GiB fit once guidance runs as two passes."""
    done = _show1("plan", "--stages", "1", "--accelerator-memory", "3.5")
    assert done.returncode == 0, done.stderr
    assert "| 1 keyframes | 3.22 |" in done.stdout
    assert "Needs 3.7 GiB, more than 3.5 GiB" in done.stdout
    assert "Fits in 3.5 GiB with --split-guidance:" in done.stdout


def test_show1_plan_refuses_settings_out_of_range_before_planning():
    done = _show1("plan", "--keyframes-steps", "0")
    assert done.returncode == 2
    assert "--keyframes-steps must be a whole number from 1 to 1000, got 0" in done.stderr


def test_the_cascade_refuses_before_loading_a_run_whose_plan_does_not_fit_and_names_what_fits(tiny_root, monkeypatch):
    """On an accelerator with less memory than the planned peak, the run stops before any phase, naming the options
    that fit; with enough memory it runs."""
    checkpoints = CascadeCheckpoints.resolve(tiny_root, stages=1, allow_download=False)
    folders = {ModelRole.KEYFRAMES: checkpoints.keyframes}

    def build(speed):
        return PlanModels.of_folders(folders, checkpoints.t5, torch.float32, speed)

    peak = plan_config(build, SMALL, 1, RunConfig(), True, count_flops=False).peak_accelerator
    streamed = plan_config(build, SMALL, 1, RunConfig(speed=SpeedSettings(stream_blocks=True)), True, count_flops=False).peak_accelerator
    assert streamed < peak
    cascade = Show1Cascade(checkpoints, device="cpu", dtype=torch.float32, cache=EmbeddingCache())
    monkeypatch.setattr(cascade_module, "accelerator_memory_bytes", lambda device: peak - 1)
    phases = []
    with pytest.raises(InvalidSettingsError, match=r"the run needs [\d.]+ GiB with balanced \(planned: 1 keyframes\), more than") as caught:
        cascade.run("a cat", SMALL, stages=1, on_phase=phases.append)
    assert phases == []
    assert "it fits with --" in str(caught.value)
    monkeypatch.setattr(cascade_module, "accelerator_memory_bytes", lambda device: peak)
    assert cascade.run("a cat", SMALL, stages=1).keyframes.shape[2] == SMALL.keyframes.num_frames
    plans = []
    monkeypatch.setattr(cascade_module, "refuse_unless_it_fits", lambda *args: plans.append(args))
    cascade.run("a dog", replace(SMALL, seed=SMALL.seed + 1), stages=1)  # planned to fit before: a batch worker does not
    assert plans == []  # plan every video (each with its own seed) again
    cascade.run("a dog", replace(SMALL, keyframes=replace(SMALL.keyframes, steps=1)), stages=1)
    assert len(plans) == 1


def test_a_preset_sets_every_stages_defaults_and_a_stage_flag_overrides_it():
    from show1_core.cli import _settings_from, build_parser

    args = build_parser().parse_args(["plan", "--preset", "demo-app", "--pixel-sr-steps", "60"])
    settings = _settings_from(args)
    steps = [getattr(settings, stage).steps for stage in ("keyframes", "interpolation", "first_frame", "pixel_sr", "latent_sr")]
    assert steps == [75, 50, 50, 60, 50]
    paper = _settings_from(build_parser().parse_args(["plan"]))
    assert paper == PAPER_SETTINGS


def test_a_run_the_meta_device_cannot_plan_goes_ahead_with_a_warning(tiny_root, monkeypatch):
    """The plan is advice: a model without shape-only kernels must not stop a run the real checks let through."""
    checkpoints = CascadeCheckpoints.resolve(tiny_root, stages=1, allow_download=False)
    cascade = Show1Cascade(checkpoints, device="cpu", dtype=torch.float32, cache=EmbeddingCache())
    monkeypatch.setattr(cascade_module, "accelerator_memory_bytes", lambda device: 1)

    def unplannable(*args, **kwargs):
        raise NotImplementedError("aten::some_op has no meta kernel")

    monkeypatch.setattr(fitting_module, "plan_run", unplannable)
    with pytest.warns(UserWarning, match=r"could not plan this run's memory \(NotImplementedError: aten::some_op"):
        result = cascade.run("a cat", SMALL, stages=1)
    assert result.keyframes.shape[2] == SMALL.keyframes.num_frames
