"""The Python cascade checks every stage's settings, models and memory before its first step,
and reports its progress only through its hooks."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from show1_core.cascade import CascadeCheckpoints, Phase, Show1Cascade
from show1_core.errors import InvalidSettingsError
from show1_core.loading import ModelRole
from show1_core.settings import PAPER_SETTINGS
from show1_core.text import EmbeddingCache
from show1_core.validation.memory import stage_memory_bytes
from show1_core.validation.models import ModelLimits

SMALL = replace(
    PAPER_SETTINGS,
    keyframes=replace(PAPER_SETTINGS.keyframes, num_frames=2, width=16, height=16, steps=1),
    interpolation=replace(PAPER_SETTINGS.interpolation, steps=1),
    first_frame=replace(PAPER_SETTINGS.first_frame, steps=1),
    pixel_sr=replace(PAPER_SETTINGS.pixel_sr, steps=1),
    latent_sr=replace(PAPER_SETTINGS.latent_sr, width=64, height=32, steps=2, strength=0.5),
)


@pytest.fixture
def cascade(tiny_root) -> Show1Cascade:
    checkpoints = CascadeCheckpoints.resolve(tiny_root, allow_download=False)
    return Show1Cascade(checkpoints, device="cpu", cache=EmbeddingCache())


def test_the_cascade_refuses_a_later_stages_settings_before_the_first_step(cascade):
    """A stage-4 size off the VAE's step and a stage-3 noise level: both named, before any model loads or any step."""
    settings = replace(
        SMALL,
        latent_sr=replace(SMALL.latent_sr, width=60),
        pixel_sr=replace(SMALL.pixel_sr, noise_level=1000),
    )
    seen = []
    with pytest.raises(InvalidSettingsError) as caught:
        cascade.run("a cat", settings, callback=seen.append, on_phase=seen.append, on_start=seen.append)
    assert seen == []
    assert [setting for setting, _ in caught.value.problems] == ["pixel_sr.noise_level"]  # the range first, alone
    with pytest.raises(InvalidSettingsError, match="latent_sr.width must be a multiple of 8 for the stage-4 VAE, got 60"):
        cascade.run("a cat", replace(settings, pixel_sr=SMALL.pixel_sr), callback=seen.append, on_phase=seen.append)
    assert seen == []


def test_the_cascade_checks_each_setting_once_and_its_stage_runs_do_not_check_again(cascade, monkeypatch):
    """One validation entry per run: every range is checked once, up front, and no stage's own check runs after it."""
    ranges = importlib.import_module("show1_core.validation.ranges")
    stage_inputs = importlib.import_module("show1_core.validation.stage_inputs")
    checked, stage_checks = [], []
    range_check = ranges.check
    monkeypatch.setattr(ranges, "check", lambda setting, value: checked.append(setting) or range_check(setting, value))
    for name in [n for n in vars(stage_inputs) if n.startswith("check_") and n.endswith("_inputs")]:
        for module in (stage_inputs, *[m for m in sys.modules.values() if getattr(m, name, None) is getattr(stage_inputs, name)]):
            monkeypatch.setattr(module, name, lambda *args, _name=name, **kwargs: stage_checks.append(_name))
    cascade.run("a cat", SMALL)
    assert stage_checks == []
    assert "latent_sr.steps" in checked and "seed" in checked
    assert sorted(checked) == sorted(set(checked)), "a setting was checked more than once"


def test_the_python_cascade_prints_nothing_and_reports_phases_through_its_hooks(cascade, capfd):
    phases, stages = [], []
    cascade.run("a cat", SMALL, stages=1, on_phase=phases.append, on_stage=lambda name, video, fps: stages.append(name))
    assert capfd.readouterr() == ("", "")
    assert phases == [
        Phase("encode", "encoding the prompt (T5-XXL, stages 1-3)"),
        Phase("load", "loading show-1-base"),
        Phase("stage", "keyframes (stage 1)"),
    ]
    assert stages == ["keyframes"]


MEASURE_PIXEL_SR = """
import json, re, sys
from dataclasses import replace
from pathlib import Path
import torch
from show1_core.loading import ModelRole, load_stage_model
from show1_core.settings import PAPER_SETTINGS
from show1_core.stages import PromptEmbeds, super_resolve_pixels, upscale_bilinear
from show1_core.validation.memory import stage_memory_bytes
from show1_core.validation.models import ModelLimits

def status_bytes(key):
    return int(re.search(rf"^{key}:\\s+(\\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1)) * 1024

torch.set_num_threads(1)
model = load_stage_model(sys.argv[1], "pixel_sr")
width = model.unet.config.encoder_hid_dim
embeds = PromptEmbeds(torch.zeros(1, 77, width), torch.ones(1, 77, width))
kf = replace(PAPER_SETTINGS.keyframes, num_frames=8, width=32, height=32)
settings = replace(PAPER_SETTINGS, keyframes=kf, pixel_sr=replace(PAPER_SETTINGS.pixel_sr, steps=1))
video = torch.zeros(1, 3, 8, 32, 32)
anchor = upscale_bilinear(video[:, :, 0], 128, 128)
bound = stage_memory_bytes(settings, {ModelRole.PIXEL_SR: ModelLimits.of_model(model)}, ModelRole.PIXEL_SR, torch.float32)
Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from the current RSS
before = status_bytes("VmRSS")
super_resolve_pixels(model, video, embeds, anchor, settings.pixel_sr)
print(json.dumps({"bound": bound, "used": status_bytes("VmHWM") - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_the_memory_bound_is_below_what_a_stage_really_uses(tiny_models):
    """The refusal says 'needs at least': the bound must not exceed the peak a real run adds (8 frames at 128x128).

    Measured in a fresh process: in this one, memory freed by earlier tests stays resident and a
    run can reuse it without raising the peak."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_PIXEL_SR, str(tiny_models["show-1-sr1"])], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.splitlines()[-1])
    bound, used = measured["bound"], measured["used"]
    assert bound > 50 * 2**20, "the case is large enough for the activations to dominate"
    assert bound <= used, f"bound {bound} exceeds the {used} bytes the run added"


def test_split_guidance_counts_one_video_per_guided_call_in_the_memory_bound(tiny_models):
    """Two passes of one video hold half the activations of one batch of two, so the bound must drop."""
    limits = {ModelRole.PIXEL_SR: ModelLimits.of_folder(tiny_models["show-1-sr1"], ModelRole.PIXEL_SR)}
    batched = stage_memory_bytes(SMALL, limits, ModelRole.PIXEL_SR, torch.float32)
    split = stage_memory_bytes(SMALL, limits, ModelRole.PIXEL_SR, torch.float32, split_guidance=True)
    unguided = replace(SMALL, pixel_sr=replace(SMALL.pixel_sr, guidance=1.0))
    assert split < batched
    assert stage_memory_bytes(unguided, limits, ModelRole.PIXEL_SR, torch.float32) == split


@pytest.mark.parametrize("seed", [1.5, "7", float("nan"), True, 2**64])
def test_seeds_that_are_not_whole_numbers_are_refused_by_the_cascade_and_the_stages(cascade, tiny_models, seed):
    from show1_core.loading import load_stage_model
    from show1_core.settings import KeyframeSettings
    from show1_core.stages import generate_keyframes
    from show1_core.stages.sampling import PromptEmbeds

    seen = []
    with pytest.raises(InvalidSettingsError, match=r"seed must be a whole number from 0 to 18446744073709551615, got"):
        cascade.run("a cat", replace(SMALL, seed=seed), callback=seen.append, on_phase=seen.append)
    assert seen == []
    embeds = PromptEmbeds(torch.zeros(1, 4, 32), torch.zeros(1, 4, 32))
    with pytest.raises(InvalidSettingsError, match="seed must be a whole number"):
        generate_keyframes(load_stage_model(tiny_models["show-1-base"]), embeds, KeyframeSettings(height=16, width=16, steps=1), seed=seed)


def test_a_frame_count_given_as_a_float_is_refused_not_a_raw_type_error(cascade):
    settings = replace(SMALL, keyframes=replace(SMALL.keyframes, num_frames=2.0))
    with pytest.raises(InvalidSettingsError, match=r"keyframes.num_frames must be a whole number from 1 to 256, got 2.0"):
        cascade.run("a cat", settings, stages=1)
