"""Step caching on the tiny models (float64): exact when it skips nothing, fewer UNet forwards when it skips,
its state never shared between guidance halves, windows or runs, and it never makes compiled blocks recompile.

``off`` runs the loop exactly as before (the float64 parity tests of tests/test_parity.py run through it).
The bounds on a real setting's difference are twice the difference measured when they were written.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.hooks.pyramid_attention_broadcast import PyramidAttentionBroadcastState
from lora_support import write_lora
from torch._dynamo.utils import counters

from show1_core.embeds import PromptEmbeds
from show1_core.errors import GenerationCancelled, InputError
from show1_core.loading import ModelRole
from show1_core.motion_lora import load_motion_lora, motion_loras
from show1_core.parity import ParityCase
from show1_core.settings import (
    CacheSettings,
    FirstFrameSettings,
    InterpolationSettings,
    KeyframeSettings,
    LatentSRSettings,
    SpeedSettings,
    StageCaches,
)
from show1_core.stages import generate_keyframes, interpolate_frames, refine_latents, upscale_first_frame
from show1_core.stages.sampling import seeded_generator

SAME = 1e-13
STEPS = 3
SKIP_NOTHING = {
    "step": CacheSettings("step", threshold=0.0, start=0),
    "pab": CacheSettings("pab", interval=1, start=0),
    "taylorseer": CacheSettings("taylorseer", interval=1, start=1),
}
SKIPPING = {
    "step": CacheSettings("step", threshold=0.3),
    "pab": CacheSettings("pab", interval=3),
    "taylorseer": CacheSettings("taylorseer", interval=3),
}
KEYFRAMES_BOUND = {"step": 0.21, "pab": 0.18, "taylorseer": 0.19}
"""Max-abs distance to the uncached keyframes (values in [-1, 1]) of each ``SKIPPING`` setting over 10 steps,
measured 0.104, 0.088 and 0.094."""

pytestmark = pytest.mark.usefixtures("one_thread")


def _case(compact_case, cache: CacheSettings = CacheSettings(), **speed) -> ParityCase:
    return ParityCase(*compact_case, torch.float64, SpeedSettings(cache=StageCaches.every(cache), **speed))


def _keyframes(case: ParityCase, steps: int = STEPS, callback=None) -> torch.Tensor:
    settings = KeyframeSettings(num_frames=4, height=8, width=16, steps=steps, guidance=9.0)
    return generate_keyframes(case.model(ModelRole.KEYFRAMES), case.t5(), settings, seed=1, callback=callback)


def _first_frame(case: ParityCase) -> torch.Tensor:
    low = torch.rand(1, 3, 8, 16, generator=seeded_generator(2), dtype=torch.float64) * 2 - 1
    settings = FirstFrameSettings(steps=STEPS, guidance=4.0, noise_level=150)
    return upscale_first_frame(case.model(ModelRole.FIRST_FRAME), low, case.t5(), 32, 64, settings, seed=1)


def _latent_refine(case: ParityCase) -> torch.Tensor:
    """Stage 4 over two overlapping frame windows: its scheduler, its UNet kind, and more than one UNet call per step."""
    latents = torch.randn(1, 4, 6, 4, 8, generator=seeded_generator(3), dtype=torch.float64)
    clip = PromptEmbeds(case.tensor("clip_pos"), case.tensor("clip_neg"))
    settings = LatentSRSettings(width=64, height=32, steps=STEPS, strength=1.0, guidance=15.0, frame_window=4, frame_overlap=2)
    return refine_latents(case.model(ModelRole.LATENT_SR), latents, clip, settings, seeded_generator(1))


RUNS = {"keyframes": _keyframes, "first_frame": _first_frame, "latent_sr": _latent_refine}


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _attention_computations(unet: torch.nn.Module) -> list[int]:
    """How many times attention layers really compute: their query projection runs only then, whatever a cache hook does."""
    calls = [0]
    for module in unet.modules():
        if hasattr(module, "to_q"):
            module.to_q.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


SKIP_NOTHING_RUNS = [("keyframes", False), ("first_frame", False), ("latent_sr", False), ("latent_sr", True)]
"""Each kind of UNet, and split guidance where one step makes four UNet calls (two halves x two stage-4 frame windows)."""


@pytest.fixture(scope="module")
def uncached(compact_case) -> dict[tuple[str, bool], torch.Tensor]:
    """The results without a cache, batched and with split guidance."""
    cases = {split: _case(compact_case, split_guidance=split) for split in (False, True)}
    return {(name, split): RUNS[name](cases[split]) for name, split in SKIP_NOTHING_RUNS}


@pytest.mark.parametrize("method", SKIP_NOTHING)
def test_settings_that_skip_nothing_are_identical_to_off_in_float64(method, compact_case, uncached):
    cases = {split: _case(compact_case, SKIP_NOTHING[method], split_guidance=split) for split in (False, True)}
    errors = {(name, split): (RUNS[name](cases[split]) - uncached[name, split]).abs().max().item() for name, split in SKIP_NOTHING_RUNS}
    assert max(errors.values()) < SAME, errors


@pytest.mark.parametrize("method", SKIPPING)
def test_a_real_setting_skips_unet_work_within_a_bounded_difference_and_still_reports_every_step(method, compact_case):
    off, cached = _case(compact_case), _case(compact_case, SKIPPING[method])
    work = {}
    for case in (off, cached):
        unet = case.model(ModelRole.KEYFRAMES).unet
        forwards, attention, events = _count_calls(unet), _attention_computations(unet), []
        result = _keyframes(case, steps=10, callback=lambda event: events.append(event.step))
        work[case] = (forwards[0], attention[0], result)
        assert events == list(range(11))
    (forwards_off, attention_off, plain), (forwards, attention, result) = work[off], work[cached]
    assert forwards_off == 10
    if method == "step":
        assert forwards < forwards_off and attention < attention_off
    else:  # every attention layer computes at steps 0, 1, 3, 6 and 9 only
        assert forwards == forwards_off and attention == attention_off // 2
    assert 0 < (result - plain).abs().max().item() < KEYFRAMES_BOUND[method]


@pytest.mark.parametrize("method", SKIPPING)
def test_each_guidance_half_keeps_its_own_cache(method, compact_case):
    """With split guidance the halves run as two UNet calls; had they shared a cache, one half would reuse the other's work
    and the result would move by about the size of the guidance (0.1 here), not by rounding."""
    batched = _keyframes(_case(compact_case, SKIPPING[method]), steps=10)
    split = _keyframes(_case(compact_case, SKIPPING[method], split_guidance=True), steps=10)
    assert (split - batched).abs().max().item() < 1e-12


@pytest.mark.parametrize("method", SKIPPING)
def test_each_window_and_each_run_starts_with_an_empty_cache(method, compact_case):
    """Interpolation windows run one loop each (``window_batch=1``): every window must come out as it does alone,
    and a second run as the first."""
    case = _case(compact_case, SKIPPING[method])
    frames = torch.rand(1, 3, 3, 8, 16, generator=seeded_generator(4), dtype=torch.float64) * 2 - 1
    settings = InterpolationSettings(frames_between=1, steps=6, guidance=4.0, window_batch=1)
    model = case.model(ModelRole.INTERPOLATION)
    together = interpolate_frames(model, frames, case.t5(), settings, seed=1)
    alone = [interpolate_frames(model, frames[:, :, i : i + 2], case.t5(), settings, seed=1) for i in range(2)]
    assert torch.equal(together[:, :, :2], alone[0][:, :, :2]) and torch.equal(together[:, :, 2:], alone[1])
    assert torch.equal(interpolate_frames(model, frames, case.t5(), settings, seed=1), together)


@pytest.mark.parametrize("method", SKIPPING)
def test_a_cancelled_run_leaves_nothing_behind(method, compact_case):
    case = _case(compact_case, SKIPPING[method])
    with pytest.raises(GenerationCancelled):
        _keyframes(case, steps=6, callback=lambda event: event.step < 4)
    assert not _attention_outputs_kept(case.model(ModelRole.KEYFRAMES).unet)
    assert torch.equal(_keyframes(case, steps=6), _keyframes(_case(compact_case, SKIPPING[method]), steps=6))


def _attention_outputs_kept(unet: torch.nn.Module) -> list[torch.Tensor]:
    """What PAB's hooks hold (TaylorSeer's are checked by the run after the cancel: a kept state would change it)."""
    hooks = []
    for module in unet.modules():
        registry = getattr(module, "_diffusers_hook", None)
        hooks += list(registry.hooks.values()) if registry is not None else []
    return [
        hook.state.cache
        for hook in hooks
        if isinstance(getattr(hook, "state", None), PyramidAttentionBroadcastState) and hook.state.cache is not None
    ]


@pytest.mark.parametrize("method", ["pab", "taylorseer"])
def test_attention_caches_never_recompile_compiled_blocks(method, compact_case):
    """The hooks keep a step counter in Python; compiled code specialised on it would recompile at every step."""
    case = ParityCase(
        *compact_case, torch.float32, SpeedSettings(compile=True, compile_backend="eager", cache=StageCaches.every(SKIPPING[method]))
    )
    graphs = []
    _keyframes(case, steps=5, callback=lambda event: event.step and graphs.append(counters["stats"]["unique_graphs"]))
    assert graphs[0] > 0 and len(set(graphs)) == 1, f"compiled graphs after each step: {graphs}"


def test_the_attention_caches_run_the_same_with_streamed_blocks_and_skip_with_fp8_weights(compact_case):
    """Streaming keeps the float64 result (docs/PERFORMANCE.md), so it must keep each hooked cache's result too; fp8 weights
    change the numbers, so there the cache only has to run and reuse work. (``step`` works outside the UNet.)"""
    computed = {}
    hooked = {method: SKIPPING[method] for method in ("pab", "taylorseer")}
    for method, cache in {"off": CacheSettings(), **hooked}.items():
        if method != "off":
            streamed = _keyframes(_case(compact_case, cache, stream_blocks=True), steps=6)
            assert torch.equal(streamed, _keyframes(_case(compact_case, cache), steps=6)), method
        case = ParityCase(*compact_case, torch.float32, SpeedSettings(fp8_weights=True, cache=StageCaches.every(cache)))
        attention = _attention_computations(case.model(ModelRole.KEYFRAMES).unet)
        assert torch.isfinite(_keyframes(case, steps=6)).all(), method
        computed[method] = attention[0]
    assert all(computed[method] < computed["off"] for method in hooked), computed


@pytest.mark.parametrize("method", ["pab", "taylorseer"])
def test_a_motion_lora_adapts_the_layers_an_attention_cache_hooks(method, compact_case, tmp_path):
    """The adapters go inside the hooked attention layers: with a cache that skips nothing the LoRA's result is unchanged."""
    plain, cached = _case(compact_case), _case(compact_case, SKIP_NOTHING[method])
    lora = load_motion_lora(write_lora(tmp_path / "pan.safetensors", plain.model(ModelRole.KEYFRAMES)))
    results = []
    for case in (plain, cached):
        with motion_loras(case.model(ModelRole.KEYFRAMES), [lora]):
            results.append(_keyframes(case))
    assert (results[1] - results[0]).abs().max().item() < SAME
    assert (results[0] - _keyframes(plain)).abs().max().item() > 1e-3  # the LoRA was applied


def test_each_stage_model_takes_its_own_cache(compact_case):
    caches = StageCaches(pixel_sr=SKIPPING["pab"])
    case = ParityCase(*compact_case, torch.float64, SpeedSettings(cache=caches))
    assert caches.of("pixel_sr") == SKIPPING["pab"] and caches.of("latent_sr") == CacheSettings()
    hooked = {
        role: any(hasattr(m, "_diffusers_hook") for m in case.model(role).unet.modules())
        for role in (ModelRole.KEYFRAMES, ModelRole.PIXEL_SR)
    }
    assert hooked == {ModelRole.KEYFRAMES: False, ModelRole.PIXEL_SR: True}


def test_a_plan_counts_every_step_in_full(compact_case):
    """Which steps a cache skips is known only while a run computes: planned models carry no cache (``show1 plan --cache``)."""
    from show1_core.plan.meta_models import meta_stage_model_of_folder

    speed = SpeedSettings(split_guidance=True, cache=StageCaches.every(SKIPPING["pab"]))
    model = meta_stage_model_of_folder(compact_case[1] / "show-1-base-tiny", ModelRole.KEYFRAMES, torch.float32, speed)
    assert model.speed == SpeedSettings(split_guidance=True)


def test_taylorseer_is_refused_with_the_upgrade_command_where_diffusers_lacks_it(monkeypatch):
    import show1_core.validation.cache as cache_checks

    monkeypatch.setattr(cache_checks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"taylorseer needs diffusers 0.36 or newer: pip install -U 'diffusers>=0.36,<0.43'"):
        CacheSettings("taylorseer")
    assert CacheSettings("pab").method == "pab"  # the other methods need nothing more


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"method": "teacache"}, "cache method 'teacache' is unknown; choose one of off, step, pab, taylorseer"),
        ({"method": "step", "threshold": 1.5}, "cache threshold must be a number from 0 to 1"),
        ({"method": "pab", "interval": 0}, "cache interval must be a whole number from 1 to 1000"),
        ({"method": "pab", "threshold": 0.2}, "cache threshold is not a parameter of the pab method; it takes interval, start, end"),
        ({"method": "step", "start": 5, "end": 5}, "cache end must be after cache start"),
        ({"method": "taylorseer", "start": 0}, "cache start must be at least 1 for taylorseer"),
    ],
)
def test_bad_cache_settings_are_refused_in_one_line(settings, words):
    with pytest.raises(InputError, match=words) as refused:
        CacheSettings(**settings)
    assert "\n" not in str(refused.value)
