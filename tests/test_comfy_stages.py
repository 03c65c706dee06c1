"""Stage nodes on the tiny models: the same numbers as show1_core, and ComfyUI's memory, progress and OOM hooks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from comfy_support import comfy, load_pack, pack_module, tiny_models
from PIL import Image

from show1_core.errors import InputError, WrongStageError
from show1_core.settings import PAPER_SETTINGS
from show1_core.stages import (
    decode_latents,
    encode_video,
    generate_keyframes,
    interpolate_frames,
    prepare_input,
    super_resolve_latent,
    super_resolve_pixels,
    upscale_bilinear,
)
from show1_core.stages.sampling import seeded_generator

SEED = 7
STEPS = 2
KEYFRAMES = replace(PAPER_SETTINGS.keyframes, width=16, height=8, num_frames=3, steps=STEPS)


def nodes() -> dict[str, type]:
    return load_pack().NODE_CLASS_MAPPINGS


def load(node_id: str, model: str, memory: str = "balanced"):
    return nodes()[node_id]().load(model, "fp32", memory)[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def models(tiny):
    """Every model and both prompts' embeddings, loaded without ComfyUI."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOW1_MODELS_DIR", str(tiny))
        loaded = {
            "keyframes": load("Show1KeyframeModelLoader", "show-1-base"),
            "interpolation": load("Show1InterpolationModelLoader", "show-1-interpolation"),
            "pixel_sr": load("Show1PixelSRModelLoader", "show-1-sr1"),
            "first_frame": load("Show1FirstFrameModelLoader", "IF-II-L-v1.0"),
            "latent_sr": load("Show1LatentSRModelLoader", "show-1-sr2"),
            "t5": load("Show1T5Loader", "show-1-base"),
            "clip": load("Show1CLIPLoader", "show-1-sr2"),
        }
        loaded["t5_embeds"], loaded["clip_embeds"] = nodes()["Show1TextEncode"]().encode(
            "a panda", "", "low resolution, blur", False, t5=loaded["t5"], clip=loaded["clip"]
        )
    return loaded


@pytest.fixture
def fake(tmp_path, monkeypatch, tiny):
    return comfy(tmp_path, monkeypatch, tiny)


def frames(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(seed))


def run_keyframes(handle, embeds, **changes):
    settings = dict(width=16, height=8, frames=3, steps=STEPS, guidance=9.0, seed=SEED, fps=2.0) | changes
    return nodes()["Show1Keyframes"]().generate(handle, embeds, **settings)


def test_keyframes_match_show1_core_and_go_through_comfyuis_model_management(fake, tiny):
    keyframe_model = load("Show1KeyframeModelLoader", "showlab/show-1-base")
    (t5,) = nodes()["Show1T5Loader"]().load("showlab/show-1-base", "fp32", "balanced")
    t5_embeds, clip_embeds = nodes()["Show1TextEncode"]().encode("a panda", "", "", False, t5=t5)
    assert clip_embeds is None
    images, fps = run_keyframes(keyframe_model, t5_embeds)
    expected = generate_keyframes(keyframe_model.model, t5_embeds.embeds, KEYFRAMES, SEED)
    assert fps == 2.0
    assert torch.equal(images, pack_module("image_video").video_to_image(expected))

    ((patcher, force_full_load),) = [(p, full) for p, full in fake.log.loads if p.model.__class__.__name__ != "Show1T5Encoder"]
    assert force_full_load and patcher.load_device == torch.device("cpu")
    assert list(patcher.model.parts) == [keyframe_model.model.unet]
    assert type(patcher.model).__name__ == "Show1KeyframesModel"  # the name ComfyUI's log shows
    assert patcher.model.device == torch.device("cpu")  # ModelPatcher assigns it, on the container
    assert [(value, total) for value, total, _ in fake.log.progress] == [(0, STEPS), (1, STEPS), (2, STEPS)]
    assert [preview for _, _, preview in fake.log.progress] == [None] * 3  # ComfyUI's default: --preview-method none
    assert fake.log.previewed == []  # and nothing was computed for a preview


def test_previews_go_through_comfyuis_previewer_and_show_the_clean_estimate(fake, models, monkeypatch):
    """With --preview-method on, each step's preview is ComfyUI's previewer of frame 0 of x0 (not of the noisy sample)."""
    fake.args.preview_method = fake.modules["comfy.cli_args"].LatentPreviewMethod.Latent2RGB
    fake.args.preview_size = 256
    events = []
    stage_nodes = pack_module("stage_nodes")
    real_callback = stage_nodes.progress_callback

    def recording_callback(stage):
        report = real_callback(stage)
        return lambda event: (events.append(event), report(event))[1]

    monkeypatch.setattr(stage_nodes, "progress_callback", recording_callback)
    run_keyframes(models["keyframes"], models["t5_embeds"])
    kind, preview, max_size = fake.log.progress[-1][2]
    assert kind == "JPEG" and isinstance(preview, Image.Image) and preview.size == (16, 8) and max_size == 256
    assert len(fake.log.previewed) == STEPS and fake.log.progress[0][2] is None
    for shown, event in zip(fake.log.previewed, events[1:]):
        assert torch.equal(shown, event.denoised[:1, :, 0]) and not torch.equal(shown, event.sample[:1, :, 0])


def test_stage_4_previews_use_comfyuis_sd_latent_format(fake, models):
    fake.args.preview_method = fake.modules["comfy.cli_args"].LatentPreviewMethod.Auto
    stage3 = torch.rand(1, 3, 2, 16, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1
    arguments = dict(width=64, height=32, steps=STEPS, strength=0.8, guidance=15.0, seed=SEED, fps=8.0)
    nodes()["Show1LatentSR"]().upscale(
        models["latent_sr"], models["clip_embeds"], pack_module("image_video").video_to_image(stage3), **arguments
    )
    assert [tuple(x0.shape) for x0 in fake.log.previewed] == [(1, 4, 4, 8)] * len(fake.log.previewed) != []
    assert fake.log.progress[-1][2][1].size == (8, 4)  # latent-sized, as ComfyUI's Latent2RGB previews are


def test_speed_settings_keep_the_keyframes_and_leave_streamed_blocks_out_of_comfyuis_model(fake, models):
    (speed,) = nodes()["Show1SpeedSettings"]().settings("native", "off", False, True, False)
    (handle,) = nodes()["Show1KeyframeModelLoader"]().load("show-1-base", "fp32", "balanced", speed=speed)
    images, _ = run_keyframes(handle, models["t5_embeds"])
    expected, _ = run_keyframes(models["keyframes"], models["t5_embeds"])
    assert torch.equal(images, expected)
    patcher = handle.placement.patcher
    assert list(patcher.model.parts) == [] and any(p.device.type == "cpu" for p in handle.model.unet.parameters())


def test_a_step_cache_skips_unet_forwards_and_still_moves_the_progress_bar_at_every_step(fake, models):
    (speed,) = nodes()["Show1StepCache"]().settings("step", 1.0, 2, 2, 0)
    (handle,) = nodes()["Show1KeyframeModelLoader"]().load("show-1-base", "fp32", "balanced", speed=speed)
    forwards = []
    handle.model.unet.register_forward_pre_hook(lambda *_: forwards.append(1))
    run_keyframes(handle, models["t5_embeds"], steps=6)
    assert 2 <= len(forwards) < 6
    assert [(value, total) for value, total, _ in fake.log.progress] == [(step, 6) for step in range(7)]


def test_results_are_returned_on_comfyuis_intermediate_device(fake, models):
    fake.mm.intermediate_device = lambda: torch.device("meta")
    images, _ = run_keyframes(models["keyframes"], models["t5_embeds"])
    assert images.device.type == "meta"


def test_the_low_vram_policy_unloads_its_own_model_only(fake, models):
    other = load("Show1InterpolationModelLoader", "show-1-interpolation")
    fake.mm.load_models_gpu([other.placement.patcher])  # another model ComfyUI holds
    handle = load("Show1KeyframeModelLoader", "show-1-base", memory="low-vram")
    run_keyframes(handle, models["t5_embeds"])
    assert fake.log.unload_all == 0 and fake.loaded == [other.placement.patcher]


@pytest.mark.parametrize("policy, after", [("low-vram", "cpu"), ("balanced", "meta"), ("all-resident", "meta")])
def test_comfyuis_placement_moves_the_stage_and_keeps_it_as_the_policy_says(fake, policy, after):
    """Seen through the parameters' device, with meta standing in for ComfyUI's torch device."""
    from devices import ACCELERATOR, RoundTrip, where

    from show1_core import MemoryPolicy, ModelRole, StageModel

    fake.mm.get_torch_device = lambda: ACCELERATOR
    model = StageModel(ModelRole.KEYFRAMES, RoundTrip(), scheduler=None)
    stage = pack_module("placement").placed_stage(model, MemoryPolicy(policy))
    assert where(model.unet) == "cpu"
    with stage.placement.holding():
        assert where(model.unet) == "meta"
    assert where(model.unet) == after


def test_nodes_run_without_comfyui(models, monkeypatch):
    images, _ = run_keyframes(models["keyframes"], models["t5_embeds"])
    assert images.shape == (3, 8, 16, 3) and images.dtype == torch.float32 and images.device.type == "cpu"
    assert models["keyframes"].model.unet.device.type == "cpu"


def test_interpolation_matches_show1_core_and_retries_smaller_batches_after_oom(models, monkeypatch):
    handle, embeds = models["interpolation"], models["t5_embeds"]
    keyframes = frames(3, 8, 16)
    arguments = dict(frames_between=1, steps=STEPS, guidance=4.0, seed=SEED, fps=2.0, window_batch=0)
    images, fps = nodes()["Show1Interpolation"]().interpolate(handle, embeds, keyframes, **arguments)
    convert = pack_module("image_video")
    settings = replace(PAPER_SETTINGS.interpolation, frames_between=1, steps=STEPS)
    expected = interpolate_frames(handle.model, convert.image_to_video(keyframes, "x"), embeds.embeds, settings, SEED)
    assert torch.equal(images, convert.video_to_image(expected)) and images.shape[0] == 5 and fps == 4.0

    unet, calls = handle.model.unet, []
    forward = unet.forward

    def forward_that_fits_one_window(sample, *args, **kwargs):
        calls.append(sample.shape[0])
        if sample.shape[0] > 2:  # one window with guidance is a batch of 2
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(sample, *args, **kwargs)

    one_window = interpolate_frames(
        handle.model, convert.image_to_video(keyframes, "x"), embeds.embeds, replace(settings, window_batch=1), SEED
    )
    monkeypatch.setattr(unet, "forward", forward_that_fits_one_window)
    retried, _ = nodes()["Show1Interpolation"]().interpolate(handle, embeds, keyframes, **arguments)
    assert calls[0] == 4 and max(calls[1:]) == 2
    assert torch.equal(retried, convert.video_to_image(one_window))


def test_pixel_sr_matches_show1_core_with_a_bilinear_or_if_ii_l_first_frame(fake, models):
    handle, embeds = models["pixel_sr"], models["t5_embeds"]
    low = frames(5, 8, 16)
    arguments = dict(steps=STEPS, guidance=7.0, noise_level=250, seed=SEED, fps=8.0)
    images, fps = nodes()["Show1PixelSR"]().upscale(handle, embeds, low, **arguments)
    video = pack_module("image_video").image_to_video(low, "x")
    first = upscale_bilinear(video[:, :, 0], 32, 64)
    expected = super_resolve_pixels(handle.model, video, embeds.embeds, first, replace(PAPER_SETTINGS.pixel_sr, steps=STEPS), SEED)
    assert torch.equal(images, pack_module("image_video").video_to_image(expected)) and fps == 8.0
    assert [(value, total) for value, total, _ in fake.log.progress] == [(0, STEPS), (1, STEPS), (2, STEPS)]

    fake.log.progress.clear()
    anchored, _ = nodes()["Show1PixelSR"]().upscale(
        handle, embeds, low, **arguments, first_frame_model=models["first_frame"], first_frame_steps=STEPS
    )
    assert anchored.shape == (5, 32, 64, 3) and not torch.equal(anchored, images)
    # one bar for the node: the IF-II-L first frame's steps, then the window's, rising once to the total
    assert [(value, total) for value, total, _ in fake.log.progress] == [(step, 2 * STEPS) for step in range(2 * STEPS + 1)]


def test_latent_sr_reproduces_the_cascades_stage_4_exactly(models):
    handle, embeds = models["latent_sr"], models["clip_embeds"]
    stage3 = torch.rand(1, 3, 4, 16, 24, generator=torch.Generator().manual_seed(1)) * 2.2 - 1.1
    convert = pack_module("image_video")
    arguments = dict(width=64, height=32, steps=STEPS, strength=0.8, guidance=15.0, seed=SEED, fps=8.0)
    images, fps = nodes()["Show1LatentSR"]().upscale(handle, embeds, convert.video_to_image(stage3), **arguments)
    settings = replace(PAPER_SETTINGS.latent_sr, width=64, height=32, steps=STEPS)
    _, stage4_input = prepare_input(stage3, 64, 32)
    expected = super_resolve_latent(handle.model, stage4_input, embeds.embeds, settings, SEED)
    assert torch.equal(images, convert.video_to_image(expected, clamp=True)) and images.shape == (4, 32, 64, 3)
    assert convert.video_to_image(stage3).max() > 1  # stage-3 values pass in unclamped, as the original's


def test_the_latent_nodes_encode_refine_and_decode_video_latents(models, monkeypatch):
    handle, embeds = models["latent_sr"], models["clip_embeds"]
    source = frames(5, 20, 36)
    (latent,) = nodes()["Show1VAEEncode"]().encode(handle, source, 64, 32, SEED)
    _, video = prepare_input(pack_module("image_video").image_to_video(source, "x"), 64, 32)
    assert torch.equal(latent["samples"], encode_video(handle.model.vae, video, seeded_generator(SEED), 8))
    assert latent["samples"].shape == (1, 4, 5, 4, 8)
    (refined,) = nodes()["Show1LatentRefine"]().refine(handle, embeds, latent | {"batch_index": [0]}, STEPS, 0.8, 15.0, SEED)
    assert refined["samples"].shape == latent["samples"].shape and refined["batch_index"] == [0]
    (decoded,) = nodes()["Show1VAEDecode"]().decode(handle, refined)
    assert decoded.shape == (5, 32, 64, 3)

    decode, chunks = handle.model.vae.decode, []

    def decode_one_frame_at_a_time(latents, *args, **kwargs):
        chunks.append(latents.shape[0])
        if latents.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return decode(latents, *args, **kwargs)

    one_frame = decode_latents(handle.model.vae, refined["samples"], 1)
    monkeypatch.setattr(handle.model.vae, "decode", decode_one_frame_at_a_time)
    (retried,) = nodes()["Show1VAEDecode"]().decode(handle, refined)
    assert chunks == [5, 4, 2, 1, 1, 1, 1, 1] and torch.equal(retried, pack_module("image_video").video_to_image(one_frame, clamp=True))


def test_text_encoders_are_comfyui_managed_models_kept_between_prompts(fake, tiny):
    """T5 loads once for two prompts, as a ModelPatcher on ComfyUI's text-encoder device."""
    (t5,) = nodes()["Show1T5Loader"]().load("showlab/show-1-base", "fp32", "balanced")
    encode = nodes()["Show1TextEncode"]().encode
    first, _ = encode("a red car", "", "", False, t5=t5)
    second, _ = encode("a blue boat", "", "", False, t5=t5)
    again, _ = encode("a red car", "", "", False, t5=t5)
    assert t5.encoder.loads == 1  # one load from disk for two prompts
    patchers = [patcher for patcher, _ in fake.log.loads]
    assert len(patchers) == 2 and patchers[0] is patchers[1]  # one load_models_gpu per encode; the cached prompt needs none
    assert type(patchers[0].model).__name__ == "Show1T5Encoder" and patchers[0].load_device == fake.mm.text_encoder_device()
    assert fake.log.unload_all == 0 and fake.log.freed == []  # ComfyUI decides what to offload, through load_models_gpu
    assert torch.equal(first.embeds.positive, again.embeds.positive)
    assert not torch.equal(first.embeds.positive, second.embeds.positive)


def test_text_encoders_take_comfyuis_text_encoder_dtype_when_auto(fake, tiny):
    (clip,) = nodes()["Show1CLIPLoader"]().load("showlab/show-1-sr2", "auto", "balanced")
    _, embeds = nodes()["Show1TextEncode"]().encode("a red car", "", "low resolution, blur", False, clip=clip)
    assert clip.encoder.spec.dtype == torch.float16 and embeds.embeds.positive.dtype == torch.float16
    fake.mm.text_encoder_dtype = lambda device=None: torch.float8_e4m3fn  # --fp8_e4m3fn-text-enc
    (clip,) = nodes()["Show1CLIPLoader"]().load("showlab/show-1-sr2", "auto", "balanced")
    assert clip.encoder.spec.dtype == torch.float16  # fp8 storage computes in fp16


def test_stage_nodes_refuse_the_wrong_model_or_embeddings(models):
    with pytest.raises(WrongStageError, match="keyframes .* needs showlab/show-1-base"):
        run_keyframes(models["interpolation"], models["t5_embeds"])
    with pytest.raises(InputError, match="needs a SHOW1_KEYFRAME_MODEL"):
        run_keyframes("model", models["t5_embeds"])
    with pytest.raises(InputError, match="needs T5 \\(stages 1-3\\) embeddings, got CLIP"):
        run_keyframes(models["keyframes"], models["clip_embeds"])
    with pytest.raises(InputError, match="needs CLIP \\(stage 4\\) embeddings, got T5"):
        nodes()["Show1LatentRefine"]().refine(
            models["latent_sr"], models["t5_embeds"], {"samples": torch.zeros(1, 4, 2, 4, 8)}, 2, 0.8, 15.0, 0
        )
    with pytest.raises(InputError, match="carries no embeddings: connect the T5"):
        run_keyframes(models["keyframes"], None)
    encode = nodes()["Show1TextEncode"]().encode
    with pytest.raises(InputError, match="needs a text encoder"):
        encode("a panda", "", "", False)
    with pytest.raises(InputError, match="needs the T5 \\(stages 1-3\\) text encoder, got CLIP"):
        encode("a panda", "", "", False, t5=models["clip"])


def test_stage_nodes_explain_frames_they_cannot_use(models):
    with pytest.raises(InputError, match="needs at least 2 frames"):
        nodes()["Show1Interpolation"]().interpolate(
            models["interpolation"], models["t5_embeds"], frames(1, 8, 16), 3, STEPS, 4.0, 0, 2.0, 0
        )
    with pytest.raises(InputError, match="multiples of 8; got 30x8. The nearest valid size is 32x8"):
        run_keyframes(models["keyframes"], models["t5_embeds"], width=30)
    with pytest.raises(InputError, match="multiples of 16"):
        nodes()["Show1PixelSR"]().upscale(models["pixel_sr"], models["t5_embeds"], frames(2, 6, 10), STEPS, 7.0, 250, 0, 8.0)
    with pytest.raises(InputError, match="4 channels \\(RGBA\\)"):
        nodes()["Show1LatentSR"]().upscale(
            models["latent_sr"], models["clip_embeds"], torch.rand(2, 8, 8, 4), 64, 32, STEPS, 0.8, 15.0, 0, 8.0
        )


@pytest.mark.parametrize("inference_mode", [True, False], ids=["inference-mode", "grad-mode"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_hand_off_between_show1_nodes_is_exact(dtype, inference_mode):
    """Every value survives, the ones near zero that (x + 1) / 2 would round away included.

    ComfyUI runs nodes under ``torch.inference_mode``, whose tensors have no version counter.
    """
    image_video = pack_module("image_video")
    with torch.inference_mode(inference_mode):
        video = (torch.rand(1, 3, 4, 8, 16, generator=torch.Generator().manual_seed(0)) * 3 - 1.5).to(dtype)
        video[0, 0, 0, 0, :4] = torch.tensor([2**-20, -(2**-14), 3e-5, 0.0]).to(dtype)
        images = image_video.video_to_image(video)
        assert images.max() > 1  # nothing was clamped
        assert image_video.carried_video(images) is video
        assert torch.equal(image_video.image_to_video(images, "images", dtype), video)


@pytest.mark.parametrize("inference_mode", [True, False], ids=["inference-mode", "grad-mode"])
def test_an_image_edited_between_show1_nodes_is_converted_not_taken_stale(inference_mode):
    image_video = pack_module("image_video")
    with torch.inference_mode(inference_mode):
        video = torch.rand(1, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
        images = image_video.video_to_image(video)
        images.mul_(0.5)  # another node changed the frames in place
        assert image_video.carried_video(images) is None
        assert torch.equal(image_video.image_to_video(images, "images"), images.permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1)
        fresh = images.clone()  # a new tensor (any other node's output) carries nothing
        assert image_video.carried_video(fresh) is None


def test_node_chain_reproduces_the_cascade(tiny, monkeypatch):
    """Keyframes -> Interpolation -> Pixel SR -> Expert Latent SR as nodes computes exactly what `show1 generate` does."""
    from show1_core.cascade import CascadeCheckpoints, Show1Cascade
    from show1_core.settings import CascadeSettings, InterpolationSettings, LatentSRSettings, PixelSRSettings

    monkeypatch.setenv("SHOW1_MODELS_DIR", str(tiny))
    graph = nodes()

    def load_fp32(node_id, name):
        return graph[node_id]().load(name, "fp32", "balanced")[0]

    t5_embeds, clip_embeds = graph["Show1TextEncode"]().encode(
        "a panda",
        "",
        "low resolution, blur",
        False,
        t5=load_fp32("Show1T5Loader", "show-1-base"),
        clip=load_fp32("Show1CLIPLoader", "show-1-sr2"),
    )
    keyframes, fps = run_keyframes(load_fp32("Show1KeyframeModelLoader", "show-1-base"), t5_embeds)
    interpolated, fps = graph["Show1Interpolation"]().interpolate(
        load_fp32("Show1InterpolationModelLoader", "show-1-interpolation"), t5_embeds, keyframes, 3, STEPS, 4.0, SEED, fps, 0
    )
    upscaled, fps = graph["Show1PixelSR"]().upscale(
        load_fp32("Show1PixelSRModelLoader", "show-1-sr1"), t5_embeds, interpolated, STEPS, 7.0, 250, SEED, fps
    )
    final, fps = graph["Show1LatentSR"]().upscale(
        load_fp32("Show1LatentSRModelLoader", "show-1-sr2"), clip_embeds, upscaled, 64, 32, STEPS, 0.5, 15.0, SEED, fps
    )

    settings = CascadeSettings(
        keyframes=KEYFRAMES,
        interpolation=InterpolationSettings(steps=STEPS),
        pixel_sr=PixelSRSettings(steps=STEPS),
        latent_sr=LatentSRSettings(width=64, height=32, steps=STEPS, strength=0.5),
        seed=SEED,
    )
    checkpoints = CascadeCheckpoints.resolve(tiny, allow_download=False, use_first_frame_model=False)
    expected = Show1Cascade(checkpoints, device="cpu", dtype=torch.float32).run("a panda", settings)

    to_image = pack_module("image_video").video_to_image
    assert torch.equal(keyframes, to_image(expected.keyframes))
    assert torch.equal(interpolated, to_image(expected.interpolated))
    assert torch.equal(upscaled, to_image(expected.pixel_sr))
    assert torch.equal(final, to_image(expected.latent_sr, clamp=True))
    assert fps == expected.fps["latent_sr"]


def test_latents_are_raw_so_the_vae_alone_decodes_them(models):
    """ComfyUI's convention: LATENT samples are in the VAE's own scale (no scaling_factor), checked without ComfyUI."""
    stage = models["latent_sr"]
    (latent,) = nodes()["Show1VAEEncode"]().encode(stage, frames(3, 32, 64), 64, 32, SEED)
    (decoded,) = nodes()["Show1VAEDecode"]().decode(stage, latent)
    with torch.no_grad():
        direct = stage.model.vae.decode(latent["samples"][0].movedim(1, 0)).sample
    assert ((direct.movedim(1, -1) + 1) / 2).clamp(0, 1).sub(decoded).abs().max() < 1e-5


def test_core_vae_nodes_decode_and_encode_show1_video_latents(fake, models):
    """Show-1 VAE Encode -> core VAE Decode gives Show-1 VAE Decode's frames; core VAE Encode gives a Show-1 video latent.

    Core ComfyUI builds only the SD VAE layout (the released show-1-sr2 VAE's), so the tiny stage
    model gets a randomly initialised VAE of that layout here.
    """
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    sd_vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
    ).eval()
    stage = replace(models["latent_sr"], model=replace(models["latent_sr"].model, vae=sd_vae))
    vae = pack_module("core_vae").core_vae(stage.model)
    source = frames(3, 32, 64)
    (latent,) = nodes()["Show1VAEEncode"]().encode(stage, source, 64, 32, SEED)
    (show1_frames,) = nodes()["Show1VAEDecode"]().decode(stage, latent)
    core_frames = vae.decode(latent["samples"])
    assert core_frames.shape == (1, 3, 32, 64, 3)  # core VAE Decode joins the 5-D result into [3, 32, 64, 3]
    assert (core_frames.reshape(-1, 32, 64, 3) - show1_frames).abs().max() < 1e-5
    encoded = vae.encode(source)
    assert encoded.shape == latent["samples"].shape == (1, 4, 3, 4, 8)
    (refined,) = nodes()["Show1LatentRefine"]().refine(stage, models["clip_embeds"], {"samples": encoded}, STEPS, 0.8, 15.0, SEED)
    assert refined["samples"].shape == encoded.shape


def test_a_vae_core_comfyui_cannot_build_comes_out_as_an_explanation(fake):
    """The tiny VAE is not the SD layout; the loader still loads, and using its core VAE says why and what to use."""
    stage, vae = nodes()["Show1LatentSRModelLoader"]().load("show-1-sr2", "fp32", "balanced")
    assert stage.model.vae is not None
    with pytest.raises(RuntimeError, match="not the Stable Diffusion VAE layout.*block_out_channels.*Show-1 VAE Decode"):
        vae.decode(torch.zeros(1, 4, 2, 4, 4))


def test_the_t5_loader_takes_a_single_file_from_comfyuis_text_encoders_folder(fake, tiny):
    """Flux/SD3 users' t5xxl file: listed, loaded (tokenizer and config from show-1-base), names kept inside the folder."""
    from safetensors.torch import save_file

    from show1_core.loading import load_text_encoder

    weights = load_text_encoder(tiny / "show-1-base" / "text_encoder").state_dict()
    folder = fake.root / "models" / "text_encoders"
    folder.mkdir(parents=True)
    save_file({k: v.half() for k, v in weights.items() if k != "encoder.embed_tokens.weight"}, str(folder / "t5xxl_fp16.safetensors"))
    save_file({"text_model.encoder.layers.0.mlp.fc1.weight": torch.zeros(2, 2)}, str(folder / "clip_l.safetensors"))
    loader = nodes()["Show1T5Loader"]
    choices = loader.INPUT_TYPES()["required"]["model"][0]
    assert "t5xxl_fp16.safetensors" in choices and "clip_l.safetensors" not in choices
    assert loader.VALIDATE_INPUTS("t5xxl_fp16.safetensors") is True
    assert "absolute paths and '..' are not allowed" in loader.VALIDATE_INPUTS("../t5xxl_fp16.safetensors")
    assert "no text encoder file" in loader.VALIDATE_INPUTS("t5xxl_fp8_e4m3fn.safetensors")
    (from_file,) = loader().load("t5xxl_fp16.safetensors", "fp32", "balanced")
    (from_folder,) = loader().load("showlab/show-1-base", "fp32", "balanced")
    encode = nodes()["Show1TextEncode"]().encode
    file_embeds = encode("a red car", "", "", False, t5=from_file)[0].embeds.positive
    folder_embeds = encode("a red car", "", "", False, t5=from_folder)[0].embeds.positive
    assert 0 < (file_embeds - folder_embeds).abs().max() < 2e-3 * folder_embeds.abs().max()
    with pytest.raises(WrongStageError, match="^models/text_encoders/clip_l.safetensors is a CLIP text encoder"):
        encode("a red car", "", "", False, t5=loader().load("clip_l.safetensors", "fp32", "balanced")[0])


def test_upscale_video_takes_and_returns_a_core_video_keeping_frame_rate_and_audio(models):
    """Show-1 Upscale Video = scale to the stage-3 size, Pixel SR, Latent SR; VIDEO shaped as core's VideoFromComponents."""
    from fractions import Fraction

    video_node = pack_module("video_node")
    audio = {"waveform": torch.zeros(1, 2, 100), "sample_rate": 44100}
    source = frames(3, 30, 50)
    video = video_node.ComponentsVideo(video_node.VideoComponents(source, Fraction(24000, 1001), audio))
    arguments = dict(
        stage3_width=16, stage3_height=8, width=64, height=32, pixel_sr_steps=STEPS, latent_sr_steps=STEPS, strength=0.8, seed=SEED
    )
    (result,) = nodes()["Show1UpscaleVideo"]().upscale(
        video, models["pixel_sr"], models["t5_embeds"], models["latent_sr"], models["clip_embeds"], **arguments
    )
    parts = result.get_components()
    assert parts.frame_rate == Fraction(24000, 1001) and parts.audio is audio and result.get_dimensions() == (64, 32)
    small = video_node.scale_frames(source, 16, 8)
    assert small.shape == (3, 8, 16, 3)
    pixel, _ = nodes()["Show1PixelSR"]().upscale(models["pixel_sr"], models["t5_embeds"], small, STEPS, 7.0, 250, SEED, 1.0)
    final, _ = nodes()["Show1LatentSR"]().upscale(models["latent_sr"], models["clip_embeds"], pixel, 64, 32, STEPS, 0.8, 15.0, SEED, 1.0)
    assert torch.equal(parts.images, final)
    with pytest.raises(InputError, match="video needs a VIDEO"):
        nodes()["Show1UpscaleVideo"]().upscale(
            source, models["pixel_sr"], models["t5_embeds"], models["latent_sr"], models["clip_embeds"], **arguments
        )


def test_scaling_frames_crops_the_centre_to_the_target_aspect():
    video_node = pack_module("video_node")
    wide = torch.zeros(1, 10, 40, 3)
    wide[:, :, 10:30] = 1.0  # a bright centre as wide as the crop
    scaled = video_node.scale_frames(wide, 8, 4)
    assert scaled.shape == (1, 4, 8, 3) and torch.equal(scaled, torch.ones_like(scaled))


def test_inside_comfyui_frames_are_scaled_by_core_common_upscale_as_without_it(fake):
    video_node = pack_module("video_node")
    source = frames(3, 30, 50)
    inside = video_node.scale_frames(source, 16, 8)
    assert fake.modules["comfy.utils"].upscale_calls == [((3, 3, 30, 50), 16, 8, "area", "center")]
    outside = video_node._centre_crop_upscale(source.movedim(-1, 1), 16, 8, "area", "center").movedim(1, -1)
    assert inside.shape == (3, 8, 16, 3) and torch.equal(inside, outside)


def test_on_an_accelerator_each_stage_asks_comfyui_to_free_the_memory_its_run_is_planned_to_need(fake, tiny):
    """ComfyUI's load_models_gpu gets memory_required: the stage's activations planned on meta, which the same run on
    real tensors holds too, up to what only a CPU run counts or skips: the device copy of the prompt embeddings (a CPU
    run does not need it) and the scheduler's tables, which stay on the host (a few thousand numbers)."""
    from show1_core.host import PlacedModel, planned_activation_bytes
    from show1_core.host import run_keyframes as run_stage
    from show1_core.plan.live_bytes import LiveBytes
    from show1_core.plan.planner import PlanPlacement
    from show1_core.plan.stage_plan import two_steps

    keyframe_model = load("Show1KeyframeModelLoader", "showlab/show-1-base")
    (t5,) = nodes()["Show1T5Loader"]().load("showlab/show-1-base", "fp32", "balanced")
    t5_embeds, _ = nodes()["Show1TextEncode"]().encode("a panda", "", "", False, t5=t5)
    settings = replace(KEYFRAMES, num_frames=3, width=16, height=8, steps=STEPS)
    keyframe_model.placement.device = torch.device("cuda")  # what ComfyUI reports on a GPU machine
    run_keyframes(keyframe_model, t5_embeds)
    requested = fake.log.memory_required[-1]

    def run(placed, planned):
        return run_stage(placed, t5_embeds.embeds, planned, SEED)

    assert requested == planned_activation_bytes([keyframe_model], lambda placed: run(placed, two_steps(settings)))[0] > 0
    tracker = LiveBytes()
    unet = keyframe_model.model.unet
    with tracker:
        for weight in (*unet.parameters(), *unet.buffers()):
            tracker.track(weight)
        weights = tracker.current["cpu"]
        run(PlacedModel(keyframe_model.model, PlanPlacement(tracker, "stage", torch.device("cpu"))), two_steps(settings))
    measured = tracker.section_peak["stage"]["cpu"] - weights
    embeds = t5_embeds.embeds
    scheduler_tables = 64 * 1024
    assert abs(requested - measured) <= embeds.positive.nbytes + embeds.negative.nbytes + scheduler_tables


def test_with_an_if_ii_l_first_frame_both_models_ask_for_their_own_planned_memory(fake, models):
    """Stage 3 loads two models; each load asks ComfyUI for the memory its own part of the run is planned to need."""
    from show1_core.host import planned_activation_bytes, run_pixel_sr, two_steps

    sr, first = load("Show1PixelSRModelLoader", "show-1-sr1"), load("Show1FirstFrameModelLoader", "IF-II-L-v1.0")
    sr.placement.device = first.placement.device = torch.device("cuda")  # what ComfyUI reports on a GPU machine
    low, embeds = frames(5, 8, 16), models["t5_embeds"]
    nodes()["Show1PixelSR"]().upscale(
        sr, embeds, low, steps=STEPS, guidance=7.0, noise_level=250, seed=SEED, fps=8.0, first_frame_model=first, first_frame_steps=STEPS
    )
    requested_first, requested_sr = fake.log.memory_required[-2:]  # IF-II-L runs first, then the windows
    video = pack_module("image_video").image_to_video(low, "x")
    settings = two_steps(replace(PAPER_SETTINGS.pixel_sr, steps=STEPS))
    first_settings = two_steps(replace(PAPER_SETTINGS.first_frame, steps=STEPS))
    planned = planned_activation_bytes(
        [sr, first], lambda placed, anchor: run_pixel_sr(placed, video, embeds.embeds, settings, SEED, None, anchor, first_settings)
    )
    assert [requested_sr, requested_first] == planned and requested_sr > 0 and requested_first > 0
