"""Stage samplers on the tiny model set: batching, frame coverage, cancellation and bad inputs."""

from __future__ import annotations

import types
from dataclasses import replace

import numpy as np
import pytest
import torch

from show1_core.errors import GenerationCancelled, InputError, InvalidSettingsError, NonFiniteOutputError, WrongStageError
from show1_core.loading import load_stage_model
from show1_core.schedulers import OriginalDPMSolverMultistepScheduler
from show1_core.settings import (
    FirstFrameSettings,
    InterpolationSettings,
    KeyframeSettings,
    LatentSRSettings,
    PixelSRSettings,
)
from show1_core.stages import (
    PromptEmbeds,
    decode_latents,
    encode_video,
    generate_keyframes,
    interpolate_frames,
    prepare_input,
    refine_latents,
    super_resolve_latent,
    super_resolve_pixels,
    upscale_bilinear,
    upscale_first_frame,
    window_starts,
)
from show1_core.stages.sampling import seeded_generator

WIDTH = 32


@pytest.fixture(scope="module")
def models(tiny_models):
    return {name: load_stage_model(folder) for name, folder in tiny_models.items()}


@pytest.fixture(scope="module")
def t5():
    g = torch.Generator().manual_seed(1)
    return PromptEmbeds(torch.randn(1, 77, WIDTH, generator=g), torch.randn(1, 77, WIDTH, generator=g))


@pytest.fixture(scope="module")
def frames():
    return torch.rand(1, 3, 8, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1


def _video(num_frames: int, size: int = 16) -> torch.Tensor:
    return torch.rand(1, 3, num_frames, size, size, generator=torch.Generator().manual_seed(num_frames)) * 2 - 1


# --- stage 1 ------------------------------------------------------------------------------


def test_keyframes_shape_range_and_seed(models, t5):
    settings = KeyframeSettings(num_frames=4, height=16, width=24, steps=2)
    first = generate_keyframes(models["show-1-base"], t5, settings, seed=7)
    assert first.shape == (1, 3, 4, 16, 24)
    assert torch.equal(first, generate_keyframes(models["show-1-base"], t5, settings, seed=7))
    assert not torch.allclose(first, generate_keyframes(models["show-1-base"], t5, settings, seed=8))


def test_keyframes_batch_of_videos_repeats_the_prompt(tiny_models, t5):
    """Video 0 of a batch of two is the single video (its noise is the first half of the same draw), paired with
    the right halves of the guidance batch; video 1 has its own noise. In float64 so that only the algorithm counts."""
    model = load_stage_model(tiny_models["show-1-base"], dtype=torch.float64)
    embeds = PromptEmbeds(t5.positive.double(), t5.negative.double())
    settings = KeyframeSettings(num_frames=2, height=16, width=16, steps=2)
    single = generate_keyframes(model, embeds, settings, seed=4)
    videos = generate_keyframes(model, embeds, settings, seed=4, batch=2)
    assert videos.shape == (2, 3, 2, 16, 16)
    assert (videos[:1] - single).abs().max() < 1e-9
    assert (videos[1] - videos[0]).abs().max() > 1e-2


# --- stage 2 ------------------------------------------------------------------------------


def test_interpolation_batched_equals_one_window_at_a_time(tiny_models, t5, frames):
    """Windows are independent: one batch, chunks and single windows compute the same frames.

    Checked in float64 so that only the algorithm is compared. In float32 the runs differ by
    up to ~1e-4 on these models: a batch of one takes BLAS's matrix-vector path and larger
    batches its matrix-matrix path, and the first thresholded DPM-Solver++ step amplifies
    that rounding difference (see tests/test_parity.py).
    """
    model = load_stage_model(tiny_models["show-1-interpolation"], dtype=torch.float64)
    embeds = PromptEmbeds(t5.positive.double(), t5.negative.double())
    keyframes = frames[:, :, :4, :8, :8].double()
    runs = [
        interpolate_frames(model, keyframes, embeds, InterpolationSettings(steps=2, window_batch=batch), seed=3) for batch in (None, 2, 1)
    ]
    assert runs[0].shape == (1, 3, 13, 8, 8)
    for other in runs[1:]:
        assert (runs[0] - other).abs().max() < 1e-9


def test_interpolation_keeps_the_later_window_for_shared_frames(models, t5, frames):
    """Frame 4 is shared by windows 0 and 1; the result takes window 1's version, as the original does."""
    model = models["show-1-interpolation"]
    one_at_a_time = InterpolationSettings(steps=2, window_batch=1)
    full = interpolate_frames(model, frames, t5, one_at_a_time, seed=3)
    second_pair = interpolate_frames(model, frames[:, :, 1:3], t5, one_at_a_time, seed=3)
    first_pair = interpolate_frames(model, frames[:, :, 0:2], t5, one_at_a_time, seed=3)
    assert torch.equal(full[:, :, 0:4], first_pair[:, :, 0:4])
    assert torch.equal(full[:, :, 4:8], second_pair[:, :, 0:4])
    assert (full[:, :, 4] - first_pair[:, :, 4]).abs().max() > 1e-2  # window 0's own version was replaced


def test_interpolation_needs_two_frames(models, t5):
    with pytest.raises(InputError, match="^the video to interpolate needs at least 2 frames, got 1$"):
        interpolate_frames(models["show-1-interpolation"], _video(1), t5)


# --- stage 3 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frames_count, expected",
    [
        (29, [(0, 0), (7, 7), (14, 14), (21, 21)]),
        (21, [(0, 0), (7, 7), (13, 15)]),
        (33, [(0, 0), (7, 7), (14, 14), (21, 21), (25, 29)]),
        (8, [(0, 0)]),
        (5, [(0, 0)]),
    ],
)
def test_windows_cover_every_frame(frames_count, expected):
    assert window_starts(frames_count, 8, 7) == expected


def test_stride_must_leave_an_overlap():
    with pytest.raises(InputError, match="smaller than the window"):
        window_starts(29, 8, 8)


def _sr(models, video, t5, steps=1):
    low = video[:, :, 0]
    first = upscale_bilinear(low, low.shape[-2] * 4, low.shape[-1] * 4)
    return super_resolve_pixels(models["show-1-sr1"], video, t5, first, PixelSRSettings(steps=steps), seed=5)


@pytest.mark.parametrize("frames_count, defined", [(21, 15), (33, 29)])
def test_pixel_sr_covers_all_frames_and_matches_the_original_where_it_is_defined(models, t5, frames_count, defined):
    """The original leaves frames after its last full window black; here they are upscaled too,
    and the frames the original does produce are unchanged."""
    video = _video(frames_count)
    out = _sr(models, video, t5)
    assert out.shape == (1, 3, frames_count, 64, 64)
    assert all(out[:, :, i].abs().max() > 0 for i in range(frames_count))
    original_windows_only = _sr(models, video[:, :, :defined], t5)
    assert torch.equal(out[:, :, :defined], original_windows_only)


def test_pixel_sr_first_frame_must_match_the_video(models, t5):
    video = _video(8)
    with pytest.raises(InputError, match="upscaled first frame"):
        super_resolve_pixels(models["show-1-sr1"], video, t5, torch.zeros(1, 3, 32, 32))


def _unet_inputs(monkeypatch, unet) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Record (sample, class_labels) of every UNet call."""
    calls, forward = [], unet.forward

    def recording(sample, timestep, encoder_hidden_states, class_labels=None, **kwargs):
        calls.append((sample.clone(), None if class_labels is None else class_labels.clone()))
        return forward(sample, timestep, encoder_hidden_states, class_labels=class_labels, **kwargs)

    monkeypatch.setattr(unet, "forward", recording)
    return calls


def test_pixel_sr_windows_carry_the_previous_windows_frame_and_noise_the_condition_at_the_level_asked(models, t5, monkeypatch):
    """From the documented procedure: window 0's condition starts with the upscaled first frame and window 1's with
    window 0's output for the shared frame; the other condition frames are the bilinear upscale noised to the
    requested level with the window generator's second draw; the UNet is told that level."""
    model, steps, level = models["show-1-sr1"], 2, 100
    video = _video(15, size=8)
    first = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    settings = PixelSRSettings(steps=steps, noise_level=level)
    window_zero = super_resolve_pixels(model, video[:, :, :8], t5, first, settings, seed=5)
    calls = _unet_inputs(monkeypatch, model.unet)
    super_resolve_pixels(model, video, t5, first, settings, seed=5)
    window_inputs = [calls[0][0], calls[steps][0]]  # the first UNet call of each window
    assert all(torch.equal(labels, torch.full((2,), level)) for _, labels in calls)
    for condition in (window_inputs[0][:, 3:], window_inputs[1][:, 3:]):
        assert torch.equal(condition[0], condition[1])  # the same condition for both guidance halves
    assert torch.equal(window_inputs[0][0, 3:, 0], first[0])
    assert torch.equal(window_inputs[1][0, 3:, 0], window_zero[0, :, 7])
    generator = torch.Generator().manual_seed(5)
    torch.randn(1, 3, 8, 32, 32, generator=generator)  # the sample's noise comes first
    noise = torch.randn(1, 3, 8, 32, 32, generator=generator)
    upscaled = torch.nn.functional.interpolate(video[0, :, :8].transpose(0, 1), (32, 32), mode="bilinear", align_corners=True)
    alpha_bar = model.noising_scheduler.alphas_cumprod[level]
    expected = alpha_bar**0.5 * upscaled.transpose(0, 1) + (1 - alpha_bar) ** 0.5 * noise[0]
    assert (window_inputs[0][0, 3:, 1:] - expected[:, 1:]).abs().max() < 1e-6


def test_dynamic_thresholding_uses_each_frames_own_quantile(models, t5, monkeypatch):
    """One DPM-Solver++ step computed by hand (float64 samples): each frame's clean estimate is clipped and divided by its own
    0.95-quantile of |x0| (between 1 and 1.5), here 1.14 for a quiet frame and 1.5 for a loud one."""
    from show1_core.stages.progress import StageSteps
    from show1_core.stages.sampling import guided_denoise

    model = load_stage_model(models["show-1-base"].source, dtype=torch.float64)
    scheduler = model.fresh_scheduler()
    scheduler.set_timesteps(1)
    t = int(scheduler.timesteps[0])
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 3, 2, 16, 16, generator=generator, dtype=torch.float64)
    clean = torch.rand(1, 3, 2, 16, 16, generator=generator, dtype=torch.float64) * 2 - 1
    clean[:, :, 0] *= 1.2
    clean[:, :, 1] *= 4.0
    alpha, sigma = scheduler.alpha_t[t].double(), scheduler.sigma_t[t].double()
    eps = (sample - alpha * clean) / sigma
    output = torch.cat([eps, torch.zeros_like(eps)], dim=1)
    monkeypatch.setattr(model.unet, "forward", lambda *a, **k: types.SimpleNamespace(sample=output))
    stepped = guided_denoise(
        model.unet, scheduler, sample, scheduler.timesteps, t5.to("cpu", torch.float64), 1.0, progress=StageSteps("keyframes", 0, 1)
    )
    expected = torch.empty_like(sample)
    thresholds = []
    for frame in range(2):
        x0 = clean[0, :, frame]
        s = float(torch.quantile(x0.abs().flatten(), 0.95).clamp(1, 1.5))
        thresholds.append(s)
        x0 = x0.clamp(-s, s) / s
        # the coefficients are float32 scalars from the scheduler's tables, as in the original (timestep 0 ends the run)
        h = scheduler.lambda_t[0] - scheduler.lambda_t[t]
        decay = scheduler.alpha_t[0] * (torch.exp(-h) - 1.0)
        expected[0, :, frame] = (scheduler.sigma_t[0] / scheduler.sigma_t[t]) * sample[0, :, frame] - decay * x0
    assert 1.05 < thresholds[0] < 1.3 and thresholds[1] == 1.5
    assert (stepped - expected).abs().max() < 1e-10


# --- stage 4 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(4)
    return PromptEmbeds(torch.randn(1, 77, WIDTH, generator=g), torch.randn(1, 77, WIDTH, generator=g))


def _resample_rows(image: np.ndarray, size: int, cubic: bool) -> np.ndarray:
    """PIL's convolution resampling along axis 0 (upscaling): keys-cubic (a = -0.5, support 2) or triangle
    (support 1) weights around each output centre, renormalised over the pixels inside the image, rounded to 8 bits."""

    def weight(x: float) -> float:
        x = abs(x)
        if not cubic:
            return max(0.0, 1 - x)
        a = -0.5
        if x < 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a if x < 2 else 0.0

    support, scale = (2.0 if cubic else 1.0), image.shape[0] / size
    out = np.empty((size,) + image.shape[1:])
    for row in range(size):
        centre = (row + 0.5) * scale
        first, last = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), image.shape[0])
        weights = np.array([weight(j - centre + 0.5) for j in range(first, last)])
        out[row] = np.tensordot(weights / weights.sum(), image[first:last].astype(np.float64), axes=1)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def test_stage4_input_is_resized_with_pils_default_bicubic_filter():
    """8x16 frames to 20x12 (both sides change): quantised by truncation, then bicubic rows of each
    column, then columns, as PIL does. A bilinear resize would differ by far more than PIL's rounding."""
    video = torch.rand(1, 3, 2, 8, 16, generator=torch.Generator().manual_seed(6)) * 2 - 1
    frames, as_video = prepare_input(video, 20, 12)
    quantised = ((video * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()[0]

    def reference(cubic: bool) -> np.ndarray:
        wide = np.stack([_resample_rows(f.transpose(1, 0, 2), 20, cubic).transpose(1, 0, 2) for f in quantised])
        return np.stack([_resample_rows(f, 12, cubic) for f in wide])

    assert frames.shape == (1, 2, 12, 20, 3)
    assert np.abs(frames[0].astype(int) - reference(cubic=True)).max() <= 1
    assert np.abs(frames[0].astype(int) - reference(cubic=False)).max() > 8
    assert torch.equal(as_video, torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 255 * 2 - 1)


def test_latent_sr_pieces_compose_to_the_one_shot_stage(models, clip):
    model = models["show-1-sr2"]
    video = _video(3, size=32)
    settings = LatentSRSettings(width=32, height=32, steps=4, strength=0.5)
    whole = super_resolve_latent(model, video, clip, settings, seed=9)
    generator = seeded_generator(9)
    latents = encode_video(model.vae, video, generator)
    assert latents.shape == (1, 4, 3, 4, 4)
    pieces = decode_latents(model.vae, refine_latents(model, latents, clip, settings, generator))
    assert torch.equal(whole, pieces)


def test_windowed_stage4_sees_at_most_the_window_and_is_unchanged_when_it_covers_the_video(models, clip, monkeypatch):
    model = models["show-1-sr2"]
    latents = torch.randn(1, 4, 7, 4, 4, generator=torch.Generator().manual_seed(2))
    settings = LatentSRSettings(steps=4, strength=0.5)
    whole = refine_latents(model, latents, clip, settings, seeded_generator(1))
    covering = refine_latents(model, latents, clip, replace(settings, frame_window=7), seeded_generator(1))
    assert torch.equal(covering, whole)
    calls = _unet_inputs(monkeypatch, model.unet)
    windowed = refine_latents(model, latents, clip, replace(settings, frame_window=3, frame_overlap=1), seeded_generator(1))
    assert {sample.shape[2] for sample, _ in calls} == {3} and windowed.shape == whole.shape
    assert not torch.equal(windowed, whole)  # frames see only their windows' frames
    with pytest.raises(InputError, match="frame_overlap"):
        refine_latents(model, latents, clip, replace(settings, frame_window=3, frame_overlap=3))


def test_window_predictions_are_blended_with_pyramid_weights():
    """10 frames, windows of 4 overlapping by 2 (starts 0, 2, 4, 6), weights 1 2 2 1; a stand-in UNet answers each
    window with its start + 1, so frame 3 is (1 * 1 + 2 * 3) / 3 (window 0's last frame, window 2's second)."""
    from show1_core.stages.sampling import frame_windows, predict_in_windows

    class WindowNumber(torch.nn.Module):
        config = types.SimpleNamespace(down_block_types=["CrossAttnDownBlock3D"])

        def forward(self, sample, t, encoder_hidden_states):
            return types.SimpleNamespace(sample=torch.full_like(sample, float(self.start + 1)))

    unet = WindowNumber()
    video = torch.zeros(1, 4, 10, 2, 2)
    starts = iter(frame_windows(10, 4, 2))
    original_call = unet.forward

    def numbered(sample, t, encoder_hidden_states):
        unet.start = next(starts)
        return original_call(sample, t, encoder_hidden_states)

    unet.forward = numbered
    assert frame_windows(10, 4, 2) == [0, 2, 4, 6] and frame_windows(9, 4, 2) == [0, 2, 4, 5]
    blended = predict_in_windows(unet, video, torch.tensor(1), torch.zeros(1, 77, 8), None, 4, 2)[0, 0, :, 0, 0]
    expected = [
        1,
        1,
        (1 * 2 + 3 * 1) / 3,
        (1 * 1 + 3 * 2) / 3,
        (3 * 2 + 5 * 1) / 3,
        (3 * 1 + 5 * 2) / 3,
        (5 * 2 + 7 * 1) / 3,
        (5 * 1 + 7 * 2) / 3,
        7,
        7,
    ]
    assert torch.allclose(blended, torch.tensor(expected))


def test_vae_chunking_does_not_change_results(models):
    """Chunk sizes change only float32 rounding (batched convolutions), never the random draws."""
    vae = models["show-1-sr2"].vae
    video = _video(5, size=32)
    one = encode_video(vae, video, seeded_generator(1), frames_per_batch=1)
    assert (one - encode_video(vae, video, seeded_generator(1), frames_per_batch=5)).abs().max() < 1e-5
    assert (decode_latents(vae, one, 1) - decode_latents(vae, one, 5)).abs().max() < 1e-5


def test_vae_out_of_memory_is_retried_with_fewer_frames(models, clip, monkeypatch):
    model = models["show-1-sr2"]
    video = _video(4, size=32)
    settings = LatentSRSettings(width=32, height=32, steps=2, strength=0.5, vae_batch=4)
    expected = super_resolve_latent(model, video, clip, settings, seed=2)
    real_decode = model.vae.decode
    sizes = []

    def decode_needing_small_batches(latents):
        sizes.append(latents.shape[0])
        if latents.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return real_decode(latents)

    monkeypatch.setattr(model.vae, "decode", decode_needing_small_batches)
    retried = super_resolve_latent(model, video, clip, settings, seed=2)
    assert sizes[:3] == [4, 2, 1]
    assert (retried - expected).abs().max() < 1e-5


def test_released_sr2_scheduler_runs_the_last_40_of_50_steps(models, clip):
    """The released show-1-sr2 uses DPM-Solver++ (the fixtures use DDIM): strength 0.8 of 50 steps re-noises to
    the 11th timestep and runs the remaining 40, as diffusers' video-to-video pipeline does."""
    from dataclasses import replace

    from show1_core.loading import KNOWN_CHECKPOINTS
    from show1_core.loading.components import load_scheduler

    released = KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("scheduler")
    folder = models["show-1-sr2"].source / "released-scheduler"
    folder.mkdir(exist_ok=True)
    (folder / "scheduler_config.json").write_text(__import__("json").dumps(released))
    model = replace(models["show-1-sr2"], scheduler=load_scheduler(folder))
    assert isinstance(model.scheduler, OriginalDPMSolverMultistepScheduler)
    events = []
    latents = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    out = refine_latents(model, latents, clip, LatentSRSettings(steps=50, strength=0.8), seeded_generator(0), events.append)
    assert [e.step for e in events] == list(range(41)) and {e.total for e in events} == {40}
    assert torch.isfinite(out).all()


def test_decoded_nan_is_reported(models, monkeypatch):
    vae = models["show-1-sr2"].vae
    real = vae.decode

    def overflowing(latents):
        out = real(latents)
        out.sample = out.sample * float("nan")
        return out

    monkeypatch.setattr(vae, "decode", overflowing)
    with pytest.raises(NonFiniteOutputError, match="VAE") as caught:
        decode_latents(vae, torch.zeros(1, 4, 1, 4, 4))
    assert "fp16" not in str(caught.value), "an fp32 VAE is not told about fp16 overflow"


def test_strength_bounds(models, clip):
    latents = torch.zeros(1, 4, 2, 4, 4)
    with pytest.raises(InputError, match="strength"):
        refine_latents(models["show-1-sr2"], latents, clip, LatentSRSettings(strength=0))
    with pytest.raises(InputError, match="no step"):
        refine_latents(models["show-1-sr2"], latents, clip, LatentSRSettings(steps=2, strength=0.4))


def test_latent_sr_settings_of_another_size_than_the_video_are_refused_not_ignored(models, clip):
    video = torch.zeros(1, 3, 2, 8, 16)
    with pytest.raises(InputError, match=r"the video is 16x8, but the settings ask for 64x40; super_resolve_latent takes"):
        super_resolve_latent(models["show-1-sr2"], video, clip, LatentSRSettings(width=64, height=40, steps=2))


def test_vae_needs_multiples_of_eight(models):
    with pytest.raises(InputError, match="multiples of 8"):
        encode_video(models["show-1-sr2"].vae, _video(2, size=20), seeded_generator(0))


# --- cancellation -------------------------------------------------------------------------


def test_cancel_mid_stage_leaves_the_model_intact(models, t5):
    model = models["show-1-base"]
    settings = KeyframeSettings(num_frames=2, height=16, width=16, steps=4)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    seen = []

    def stop_after_two(event):
        seen.append(event.step)
        return event.step < 2

    with pytest.raises(GenerationCancelled, match="after step 2 of 4"):
        generate_keyframes(model, t5, settings, seed=1, callback=stop_after_two)
    assert seen == [0, 1, 2]
    assert all(torch.equal(before[k], v) for k, v in model.unet.state_dict().items())
    assert not model.unet.training
    clean = generate_keyframes(model, t5, settings, seed=1)
    fresh = generate_keyframes(load_stage_model(model.source), t5, settings, seed=1)
    assert torch.equal(clean, fresh)


def test_an_exception_raised_by_the_callback_propagates(models, t5, frames):
    class Interrupted(Exception):
        pass

    def interrupt(event):
        raise Interrupted

    with pytest.raises(Interrupted):
        interpolate_frames(models["show-1-interpolation"], frames[:, :, :2], t5, InterpolationSettings(steps=2), callback=interrupt)


def test_progress_counts_every_window_as_one_stage(models, t5):
    events = []
    low = _video(15)
    first = upscale_bilinear(low[:, :, 0], 64, 64)
    super_resolve_pixels(models["show-1-sr1"], low, t5, first, PixelSRSettings(steps=2), callback=events.append)
    assert [(e.stage, e.step, e.total) for e in events] == [("pixel_sr", step, 4) for step in range(5)]
    assert events[0].denoised is None and all(e.denoised.shape == e.sample.shape for e in events[1:])


# --- bad inputs ---------------------------------------------------------------------------


def test_odd_sizes_are_refused_with_a_suggestion(models, t5):
    with pytest.raises(InputError, match=r"multiples of 8; got 64x41.*64x40"):
        generate_keyframes(models["show-1-base"], t5, KeyframeSettings(height=41, steps=1))


@pytest.mark.parametrize("width, height, nearest", [(20, 12, "24x16"), (19, 13, "16x16"), (28, 4, "32x8"), (3, 3, "8x8")])
def test_the_nearest_valid_size_rounds_a_tie_up_on_both_sides(models, t5, width, height, nearest):
    """20x12 is 2.5 x 1.5 multiples of 8: both round up (not 16x16, as rounding half to even gave)."""
    with pytest.raises(InputError, match=rf"got {width}x{height}\. The nearest valid size is {nearest}\.$"):
        generate_keyframes(models["show-1-base"], t5, KeyframeSettings(width=width, height=height, steps=1))


def test_embeddings_of_the_wrong_encoder_are_refused(models):
    wide = PromptEmbeds(torch.zeros(1, 77, 48), torch.zeros(1, 77, 48))
    with pytest.raises(InputError, match="T5-XXL.*width 32, but got width 48"):
        generate_keyframes(models["show-1-base"], wide, KeyframeSettings(height=16, width=16, steps=1))


def test_mismatched_prompt_and_negative_shapes():
    with pytest.raises(InputError, match="one shape"):
        PromptEmbeds(torch.zeros(1, 77, 32), torch.zeros(1, 77, 16))


def test_wrong_stage_model_is_refused(models, t5):
    with pytest.raises(WrongStageError, match="keyframes.*showlab/show-1-base"):
        generate_keyframes(models["show-1-sr1"], t5, KeyframeSettings(steps=1))


@pytest.mark.parametrize(
    "video, message",
    [
        (torch.zeros(1, 4, 8, 16, 16), "3 channels"),
        (torch.zeros(3, 8, 16, 16), "tensor"),
        (torch.full((1, 3, 8, 16, 16), float("nan")), "NaN"),
    ],
)
def test_bad_videos_are_refused(models, t5, video, message):
    with pytest.raises(InputError, match=message):
        interpolate_frames(models["show-1-interpolation"], video, t5)


def test_bad_seed_and_steps(models, t5):
    with pytest.raises(InputError, match="seed"):
        generate_keyframes(models["show-1-base"], t5, KeyframeSettings(height=16, width=16, steps=1), seed=-1)
    with pytest.raises(InputError, match="steps"):
        generate_keyframes(models["show-1-base"], t5, KeyframeSettings(height=16, width=16, steps=0))


@pytest.mark.parametrize(
    "dtype, advice", [(torch.float32, "inputs or settings"), (torch.float16, "fp16 overflow: run this stage in bf16 or fp32")]
)
def test_non_finite_output_is_reported_with_advice_for_the_precision(models, t5, monkeypatch, dtype, advice):
    model = models["show-1-base"] if dtype == torch.float32 else load_stage_model(models["show-1-base"].source, dtype=dtype)
    original = model.unet.forward

    def broken(*args, **kwargs):
        out = original(*args, **kwargs)
        out.sample = out.sample * float("inf")
        return out

    monkeypatch.setattr(model.unet, "forward", broken)
    with pytest.raises(NonFiniteOutputError, match=advice):
        generate_keyframes(model, t5, KeyframeSettings(num_frames=2, height=16, width=16, steps=1))


# --- values a stage must refuse ------------------------------------------------------------


def _keyframes(models, t5, **changes):
    settings = replace(KeyframeSettings(num_frames=2, height=16, width=16, steps=1), **changes)
    return generate_keyframes(models["show-1-base"], t5, settings)


def _first_frame(models, t5, **changes):
    return upscale_first_frame(models["IF-II-L-v1.0"], _video(1)[:, :, 0], t5, 64, 64, FirstFrameSettings(steps=1, **changes))


def _pixel_sr(models, t5, **changes):
    video = _video(2)
    anchor = upscale_bilinear(video[:, :, 0], 64, 64)
    return super_resolve_pixels(models["show-1-sr1"], video, t5, anchor, PixelSRSettings(steps=1, **changes))


@pytest.mark.parametrize(
    "run, message",
    [
        (
            lambda m, t5: _keyframes(m, t5, guidance=-1.0),
            r"keyframes.guidance must be a number from 0 to 100 \(1 or less: no guidance\), got -1.0",
        ),
        (lambda m, t5: _keyframes(m, t5, guidance=float("nan")), "keyframes.guidance must be .* got nan"),
        (lambda m, t5: _keyframes(m, t5, width=100000), "keyframes.width must be a whole number from 1 to 4096, got 100000"),
        (
            lambda m, t5: interpolate_frames(m["show-1-interpolation"], _video(2), t5, InterpolationSettings(guidance=float("inf"))),
            "guidance .* got inf",
        ),
        (lambda m, t5: _first_frame(m, t5, noise_level=-1), "first_frame.noise_level must be a whole number from 0 to 999"),
        (lambda m, t5: _pixel_sr(m, t5, noise_level=5000), "pixel_sr.noise_level must be a whole number from 0 to 999 .* got 5000"),
        (lambda m, t5: prepare_input(_video(2), 0, 32), "latent_sr.width must be a whole number from 1 to 4096, got 0"),
    ],
    ids=["negative-guidance", "nan-guidance", "huge-width", "inf-guidance", "negative-noise", "noise-5000", "width-0"],
)
def test_settings_out_of_range_are_refused_with_the_range(models, t5, run, message):
    with pytest.raises(InvalidSettingsError, match=message):
        run(models, t5)


def test_a_noise_level_the_models_noising_scheduler_lacks_is_refused(tiny_models, t5):
    model = load_stage_model(tiny_models["show-1-sr1"])
    config = dict(model.noising_scheduler.config, num_train_timesteps=200)
    model.noising_scheduler = type(model.noising_scheduler).from_config(config)
    with pytest.raises(InputError, match=r"noise_level must be from 0 to 199 \(the levels of the pixel super-resolution"):
        _pixel_sr({"show-1-sr1": model}, t5, noise_level=250)


@pytest.mark.parametrize(
    "frames, message",
    [
        (((_video(2) + 1) * 127.5).to(torch.uint8), "torch.uint8 tensor; stages take floating-point videos in \\[-1, 1\\]"),
        ((_video(2) + 1) * 127.5, "holds values from .* to 25\\d.*; stages take videos in \\[-1, 1\\] \\(0..255 frames: divide by 127.5"),
    ],
    ids=["uint8", "float-0-255"],
)
def test_eight_bit_frames_are_refused_by_every_pixel_stage(models, t5, frames, message):
    anchor = upscale_bilinear(frames[:, :, 0].float(), 64, 64)
    with pytest.raises(InputError, match=message):
        interpolate_frames(models["show-1-interpolation"], frames, t5, InterpolationSettings(steps=1))
    with pytest.raises(InputError, match=message):
        super_resolve_pixels(models["show-1-sr1"], frames, t5, anchor.clamp(-1, 1), PixelSRSettings(steps=1))
    with pytest.raises(InputError, match=message):
        upscale_first_frame(models["IF-II-L-v1.0"], frames[:, :, 0], t5, 64, 64, FirstFrameSettings(steps=1))
    with pytest.raises(InputError, match=message):
        prepare_input(frames, 32, 32)


@pytest.mark.parametrize("which", ["prompt", "negative prompt"])
def test_non_finite_embeddings_are_named_before_the_first_step(models, t5, which):
    """In fp32: the error names the input, not fp16 overflow, and comes before any step runs."""
    nan = torch.full_like(t5.positive, float("nan"))
    embeds = PromptEmbeds(nan, t5.negative) if which == "prompt" else PromptEmbeds(t5.positive, nan)
    steps = []
    with pytest.raises(InputError, match=f"^the {which} embeddings given to the keyframes .* contain NaN or infinite values"):
        generate_keyframes(
            models["show-1-base"], embeds, KeyframeSettings(num_frames=2, height=16, width=16, steps=1), callback=steps.append
        )
    assert steps == []


def test_a_non_finite_first_frame_is_named(models, t5):
    video = _video(2)
    anchor = upscale_bilinear(video[:, :, 0], 64, 64)
    anchor[0, 0, 0, 0] = float("inf")
    with pytest.raises(InputError, match="the upscaled first frame contains NaN or infinite values"):
        super_resolve_pixels(models["show-1-sr1"], video, t5, anchor, PixelSRSettings(steps=1))
