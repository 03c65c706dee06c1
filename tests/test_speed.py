"""Speed options on the tiny models: what each one guarantees.

Options that must not change results (attention through diffusers' dispatcher with PyTorch's
kernel, compilation, block streaming, split guidance) are held to the float64 oracle of
tests/test_parity.py (1e-10, the original's float64 run, computed under the same pinned kernel
recipe: tests/pinned_kernels.py) and to today's float32 outputs (1e-5).
The float32 comparison uses the pieces whose stages do not amplify rounding: stages 1-2 multiply
a float32 rounding difference ~300x (docs/STAGES.md), so there a different batch size alone
(split guidance) moves keyframes by ~1e-4; float64 shows that nothing else changes. fp8 weights
change the numbers by the rounding of the weights: held to the bounds docs/PERFORMANCE.md gives.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
from diffusers.models.attention_processor import Attention
from lora_support import write_lora
from safetensors.torch import load_file
from speed_support import compiled_keyframes

import show1_core.speed.attention as attention_module
from show1_core.cascade import CascadeCheckpoints, Show1Cascade
from show1_core.errors import InputError
from show1_core.loading import ModelRole, load_stage_model
from show1_core.models.attention import TEMPORAL_ATTENTION_BATCH, BatchChunkedProcessor
from show1_core.motion_lora import check_fits, load_motion_lora
from show1_core.parity import ParityCase, run_parity
from show1_core.settings import PAPER_SETTINGS, KeyframeSettings, SpeedSettings
from show1_core.speed import FP8, apply_speed, repeated_blocks
from show1_core.speed.attention import DispatchAddedKVProcessor, DispatchAttnProcessor
from show1_core.stages import generate_keyframes
from show1_core.text import EncoderKind, TextEncoder, TextEncoderSpec

EXACT = 1e-10
SAME_AS_TODAY = 1e-5
SAME_RESULTS = {
    "attention": {"attention": "native"},
    "stream_blocks": {"stream_blocks": True},
    "split_guidance": {"split_guidance": True},
}
"""Compilation keeps the numbers too; it has its own test (it is the slow one to set up)."""
PIECES64 = ["keyframes", "fwd_sr1_out", "sr1_first_frame", "sr2_latents"]
"""Every kind of UNet (IF video, IF-II-L image, ModelScope latent), the VAE, and the guided loop of three stages."""
PIECES32 = ["fwd_sr1_out", "sr1_first_frame", "sr2_latents"]
FP8_BOUNDS = {"fwd_base_out": 0.30, "fwd_sr1_out": 0.42, "sr1_first_frame": 0.04, "sr2_latents": 0.012}
"""Relative RMS difference from today's float32 output, measured 0.257, 0.351, 0.033 and 0.0096 (docs/PERFORMANCE.md)."""
T5_FP8_BOUND = 0.07
"""Relative RMS difference of the tiny T5's embeddings with fp8 weights, measured 0.055."""

pytestmark = pytest.mark.usefixtures("one_thread")


def _max_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert ours.shape == reference.shape
    return (ours.double() - reference.double()).abs().max().item()


def _relative_rms(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference.double()).norm() / reference.double().norm()).item()


@pytest.fixture(scope="module")
def today32(compact_case) -> dict[str, torch.Tensor]:
    """Today's float32 outputs (no speed option)."""
    return run_parity(*compact_case, only=sorted(set(PIECES32) | set(FP8_BOUNDS)))


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(name, marks=pytest.mark.pinned_float64(f"speed_{name}", case="compact", only=PIECES64, speed=options))
        for name, options in SAME_RESULTS.items()
    ],
)
def test_the_option_keeps_the_float64_result_exact(option, pinned_float64, compact64_case):
    expected = load_file(str(compact64_case[0] / "tensors.safetensors"))
    errors = {name: _max_error(pinned_float64[name], expected[name]) for name in PIECES64}
    assert max(errors.values()) < EXACT, errors


@pytest.mark.parametrize("option", SAME_RESULTS)
def test_the_option_keeps_todays_float32_result(option, compact_case, today32):
    results = run_parity(*compact_case, only=PIECES32, speed=SpeedSettings(**SAME_RESULTS[option]))
    errors = {name: _max_error(results[name], today32[name]) for name in PIECES32}
    assert max(errors.values()) < SAME_AS_TODAY, errors


@pytest.mark.pinned_float64("compiled_keyframes", case="compact", kind="compiled_keyframes")
def test_compiled_blocks_keep_the_float64_result_and_compile_once_for_every_step_and_model(pinned_float64, compact64_case):
    """aot_eager stands in for inductor (which needs minutes per model on a CPU): the same regions, traced the same way."""
    exact = pinned_float64["keyframes"]
    assert _max_error(exact, load_file(str(compact64_case[0] / "tensors.safetensors"))["keyframes"]) < EXACT
    graphs, again = pinned_float64["meta"]["graphs_first_model"], pinned_float64["meta"]["graphs_second_model"]
    assert graphs[0] > 0 and len(set(graphs)) == 1, f"compiled graphs after each step: {graphs}"
    assert set(again) == {graphs[0]}, "a second model with the same blocks compiled again"


def test_compiled_blocks_keep_todays_float32_result(compact_case):
    today = run_parity(*compact_case, only=["keyframes"])["keyframes"]
    assert _max_error(compiled_keyframes(*compact_case, torch.float32, []), today) < SAME_AS_TODAY


INDUCTOR_TEST = bool(os.environ.get("SHOW1_INDUCTOR_TEST"))


@pytest.mark.skipif(not INDUCTOR_TEST, reason="opt-in: inductor needs minutes per model on a CPU")
@pytest.mark.pinned_float64("inductor", case="compact", only=["fwd_base_out"], speed={"compile": True})
def test_inductor_compiled_blocks_keep_the_forward_pass(pinned_float64, compact_case, compact64_case):
    """The GPU default backend, on the CPU (g++ builds its kernels): float64 exact, float32 within 1e-5 of today."""
    exact = pinned_float64["fwd_base_out"]
    assert _max_error(exact, load_file(str(compact64_case[0] / "tensors.safetensors"))["fwd_base_out"]) < EXACT
    speed = SpeedSettings(compile=True)
    today = run_parity(*compact_case, only=["fwd_base_out"])["fwd_base_out"]
    assert _max_error(run_parity(*compact_case, only=["fwd_base_out"], speed=speed)["fwd_base_out"], today) < SAME_AS_TODAY


def test_compilation_is_regional_one_compiled_module_per_outermost_repeated_block(compact_case):
    model = apply_speed(load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES), SpeedSettings(compile=True), "cpu")
    compiled = [m for m in model.unet.modules() if getattr(m, "_compiled_call_impl", None) is not None]
    assert compiled and compiled == repeated_blocks(model.unet)
    assert not any(inner is not outer and inner in compiled for outer in compiled for inner in outer.modules())


def test_fp8_weights_halve_the_unet_storage_and_stay_within_the_documented_bounds(compact_case, today32):
    results = run_parity(*compact_case, only=list(FP8_BOUNDS), speed=SpeedSettings(fp8_weights=True))
    differences = {name: _relative_rms(results[name], today32[name]) for name in FP8_BOUNDS}
    assert all(0 < differences[name] < bound for name, bound in FP8_BOUNDS.items()), differences
    model = load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES, dtype=torch.bfloat16)
    before = sum(p.numel() * p.element_size() for p in model.unet.parameters())
    apply_speed(model, SpeedSettings(fp8_weights=True), "cpu")
    after = sum(p.numel() * p.element_size() for p in model.unet.parameters())
    assert after < 0.52 * before
    assert model.unet.dtype == torch.bfloat16  # the stages compute, and draw their noise, in the loaded precision
    layers = [m for m in model.unet.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert layers and all(m.weight.dtype == FP8 for m in layers)


def test_fp8_t5_weights_stay_within_the_documented_bound_and_get_their_own_cache_entries(tiny_models):
    folder = tiny_models["show-1-base"]
    plain = TextEncoder(TextEncoderSpec(folder, EncoderKind.T5)).encode("a panda", "")
    spec = TextEncoderSpec(folder, EncoderKind.T5, fp8_weights=True)
    fp8 = TextEncoder(spec).encode("a panda", "")
    assert 0 < _relative_rms(fp8.positive, plain.positive) < T5_FP8_BOUND
    assert spec.key != TextEncoderSpec(folder, EncoderKind.T5).key


def test_split_guidance_never_gives_the_unet_more_than_one_video(compact_case):
    case = ParityCase(*compact_case, speed=SpeedSettings(split_guidance=True))
    model = case.model(ModelRole.KEYFRAMES)
    batches = []
    model.unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    generate_keyframes(model, case.t5(), KeyframeSettings(num_frames=2, height=8, width=16, steps=2, guidance=9.0))
    assert batches == [1, 1, 1, 1]


def test_streamed_blocks_are_left_to_their_hooks_by_the_memory_policy(compact_case):
    model = apply_speed(
        load_stage_model(compact_case[1] / "show-1-sr2-tiny", ModelRole.LATENT_SR), SpeedSettings(stream_blocks=True), "cpu"
    )
    assert model.modules() == [model.vae]
    assert any(hasattr(block, "_diffusers_hook") for block in model.unet.down_blocks)


def test_the_native_backend_dispatches_every_attention_and_keeps_the_temporal_chunking(compact_case):
    model = apply_speed(
        load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES), SpeedSettings(attention="native"), "cpu"
    )
    processors = [m.processor for m in model.unet.modules() if isinstance(m, Attention)]
    temporal = [p for p in processors if isinstance(p, BatchChunkedProcessor)]
    spatial = [p for p in processors if not isinstance(p, BatchChunkedProcessor)]
    assert temporal and all(isinstance(p.inner, DispatchAttnProcessor) and p.max_batch == TEMPORAL_ATTENTION_BATCH for p in temporal)
    assert spatial and all(isinstance(p, DispatchAddedKVProcessor) for p in spatial)


@pytest.mark.parametrize(
    "backend, command", [("flash", "pip install flash-attn"), ("sage", "pip install sageattention"), ("xformers", "pip install xformers")]
)
def test_an_attention_backend_that_is_not_installed_is_refused_with_the_command_that_installs_it(
    backend, command, monkeypatch, compact_case
):
    monkeypatch.setattr(attention_module.importlib.util, "find_spec", lambda name: None)
    model = load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES)
    with pytest.raises(InputError, match=command):
        apply_speed(model, SpeedSettings(attention=backend), "cpu")


def test_an_installed_gpu_attention_backend_is_refused_on_the_cpu(monkeypatch):
    monkeypatch.setattr(attention_module.importlib.util, "find_spec", lambda name: object())
    with pytest.raises(InputError, match="CUDA GPUs only"):
        attention_module.check_attention_backend("flash", torch.device("cpu"))


def test_speed_settings_refuse_unknown_names_and_a_second_application(compact_case):
    with pytest.raises(InputError, match="attention backend 'flashy'"):
        SpeedSettings(attention="flashy")
    with pytest.raises(InputError, match="compile backend"):
        SpeedSettings(compile=True, compile_backend="tensorrt")
    model = apply_speed(
        load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES), SpeedSettings(split_guidance=True), "cpu"
    )
    with pytest.raises(InputError, match="already applied"):
        apply_speed(model, SpeedSettings(attention="native"), "cpu")


@pytest.mark.parametrize("speed", [SpeedSettings(fp8_weights=True), SpeedSettings(stream_blocks=True)], ids=["fp8", "stream"])
def test_motion_loras_are_refused_on_models_whose_weights_are_not_as_loaded(speed, compact_case, tmp_path):
    plain = load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES)
    lora = load_motion_lora(write_lora(tmp_path / "pan.safetensors", plain))
    model = apply_speed(load_stage_model(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES), speed, "cpu")
    with pytest.raises(InputError, match="load it without that option"):
        check_fits(model, lora)


def test_the_cascade_runs_every_model_it_loads_and_the_t5_encoder_with_its_speed_settings(tiny_root):
    checkpoints = CascadeCheckpoints.resolve(tiny_root, stages=1, allow_download=False)
    speed = SpeedSettings(fp8_weights=True, split_guidance=True)
    cascade = Show1Cascade(checkpoints, "cpu", speed=speed)
    settings = replace(PAPER_SETTINGS, keyframes=KeyframeSettings(num_frames=2, height=8, width=16, steps=1))
    result = cascade.run("a panda", settings, stages=1)
    assert result.keyframes.shape == (1, 3, 2, 8, 16) and cascade.model(ModelRole.KEYFRAMES).speed == speed
    plain = TextEncoder(TextEncoderSpec(checkpoints.t5, EncoderKind.T5)).encode("a panda", "")
    fp8 = cascade.encode(EncoderKind.T5, "a panda", "")
    assert 0 < _relative_rms(fp8.positive, plain.positive) < T5_FP8_BOUND
