"""A motion LoRA really teaches the keyframe model a motion, and touches nothing but temporal attention.

The experiment, on a small keyframe model on the CPU:

1. A stand-in for the pretrained appearance model: a Show-1 keyframe UNet fitted (all weights)
   on *static* clips of a bright square at random places. Its videos show a square that stays put.
2. A motion LoRA trained with :func:`train_motion_lora` on clips of the same square moving left
   to right: only the temporal-attention adapters learn.
3. The same seed sampled with and without the LoRA: the square's horizontal centroid must
   travel right with the LoRA, clearly more than without it, and every base weight must be
   bit-identical to before training.

STATUS: opt-in (``SHOW1_MOTION_EXPERIMENT=1``) because it does not pass yet. With 100-400 fitting
steps the small base model does not yet draw clean squares (its samples are mostly grey), and the
LoRA's centroid slope stayed within noise of the base's (about -0.05 vs 0.00 px/frame, against
1.25 px/frame in the clips). The sizes below keep a run under a minute on 2 idle cores.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from show1_core.loading import Stage, load_stage_model
from show1_core.loading.registry import KNOWN_CHECKPOINTS
from show1_core.models import Show1UNet
from show1_core.motion_lora import load_motion_lora, motion_loras, temporal_attention_targets
from show1_core.settings import KeyframeSettings
from show1_core.stages import PromptEmbeds, generate_keyframes
from show1_core.training.clips import Clip
from show1_core.training.objective import NoiseSchedule, diffusion_loss
from show1_core.training.trainer import CaptionEmbeddings, TrainingSettings, train_motion_lora

HEIGHT, WIDTH, FRAMES, SIDE = 8, 16, 8, int(os.environ.get("MT_SIDE", 4))
SPEED = 1.25
"""Pixels per frame the square moves in the training clips (8.75 px over 8 frames)."""
TEXT_TOKENS, TEXT_WIDTH = 8, 32
BASE_STEPS = int(os.environ.get("MT_BASE_STEPS", 100))
LORA_STEPS = int(os.environ.get("MT_LORA_STEPS", 100))
SAMPLES = 8


def small_keyframe_model(folder: Path) -> Path:
    """A keyframe checkpoint folder with one IF-style video block (temporal convs and attention), random weights."""
    config = KNOWN_CHECKPOINTS["show-1-base"].expected_config("unet")
    config.update(
        block_out_channels=[32], down_block_types=["SimpleCrossAttnDownBlock3D"], up_block_types=["SimpleCrossAttnUpBlock3D"],
        layers_per_block=1, attention_head_dim=8, cross_attention_dim=32, encoder_hid_dim=TEXT_WIDTH,
        addition_embed_type_num_heads=4, norm_num_groups=8,
    )
    unet = Show1UNet.from_config(config)
    unet.save_pretrained(folder / "unet")
    scheduler = folder / "scheduler"
    scheduler.mkdir()
    (scheduler / "scheduler_config.json").write_text(json.dumps(KNOWN_CHECKPOINTS["show-1-base"].expected_config("scheduler")))
    return folder


def square_video(x0: float, speed: float, y: int) -> torch.Tensor:
    """``(F, 3, H, W)`` uint8: a white square on black, left edge at ``x0 + speed * frame``."""
    video = torch.zeros(FRAMES, 3, HEIGHT, WIDTH, dtype=torch.uint8)
    for frame in range(FRAMES):
        x = int(round(x0 + speed * frame))
        video[frame, :, y : y + SIDE, x : x + SIDE] = 255
    return video


def static_batch(size: int, generator: torch.Generator) -> torch.Tensor:
    videos = []
    for _ in range(size):
        x = int(torch.randint(0, WIDTH - SIDE + 1, (), generator=generator))
        y = int(torch.randint(0, HEIGHT - SIDE + 1, (), generator=generator))
        videos.append(square_video(x, 0.0, y))
    return torch.stack(videos).permute(0, 2, 1, 3, 4).float() / 127.5 - 1.0


def fit_appearance(model, text: torch.Tensor, steps: int, generator: torch.Generator) -> None:
    """Full fine-tune on static squares: the stand-in for a pretrained appearance model."""
    unet = model.unet.eval().requires_grad_(True)
    schedule = NoiseSchedule(dict(model.scheduler.config))
    optimizer = torch.optim.AdamW(unet.parameters(), lr=float(os.environ.get("MT_FIT_LR", 2e-3)))
    for _ in range(steps):
        clean = static_batch(4, generator)
        timesteps = torch.randint(0, schedule.num_timesteps, (4,), generator=generator)
        noise = torch.randn(clean.shape, generator=generator)
        noisy = schedule.add_noise(clean, noise, timesteps)
        loss = diffusion_loss(unet(noisy, timesteps, text.expand(4, -1, -1)).sample, clean, noisy, noise, timesteps, schedule).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    unet.requires_grad_(False)


def centroid_slopes(videos: torch.Tensor) -> torch.Tensor:
    """Per video, the least-squares slope (pixels per frame) of the bright content's horizontal centroid."""
    weight = ((videos.float().mean(1) + 1) / 2).clamp(0, 1) ** 2  # (B, F, H, W), background ~0
    columns = torch.arange(WIDTH, dtype=torch.float32)
    centroid = (weight.sum(2) * columns).sum(-1) / weight.sum((2, 3)).clamp(min=1e-6)  # (B, F)
    frames = torch.arange(FRAMES, dtype=torch.float32) - (FRAMES - 1) / 2
    return (centroid * frames).sum(-1) / (frames**2).sum()


@pytest.mark.skipif(not os.environ.get("SHOW1_MOTION_EXPERIMENT"), reason="opt-in experiment, see the module docstring")
def test_a_motion_lora_moves_the_square_and_changes_only_temporal_attention(tmp_path):
    started = time.time()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = load_stage_model(small_keyframe_model(tmp_path / "square-base"), Stage.KEYFRAMES)
    text = torch.randn(1, TEXT_TOKENS, TEXT_WIDTH, generator=generator)
    fit_appearance(model, text, BASE_STEPS, generator)
    print(f"fitted in {time.time() - started:.1f}s", flush=True)
    before = {name: tensor.clone() for name, tensor in model.unet.state_dict().items()}
    fitted = time.time()

    caption = "a square moving right"
    clips = [
        Clip(path=Path(f"moving_{i}.mp4"), caption=caption, frames=square_video(x0, SPEED, y), fps=2.0)
        for i, (x0, y) in enumerate([(0, 0), (1, 2), (2, 4), (0.5, 3), (1.5, 1), (2.5, 2)])
    ]
    settings = TrainingSettings(
        frames=FRAMES, fps=2.0, height=HEIGHT, width=WIDTH, rank=8, alpha=8.0, steps=LORA_STEPS, learning_rate=3e-3,
        batch_size=4, caption_dropout=0.0, checkpoint_every=LORA_STEPS, gradient_checkpointing=False,
    )
    embeddings = CaptionEmbeddings({caption: text}, empty=torch.zeros_like(text))
    result = train_motion_lora(model, clips, embeddings, settings, tmp_path / "move_right.safetensors", "square-base", progress=False)
    trained = time.time()

    after = model.unet.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(before[name], after[name]) for name in before), "a base weight changed"
    lora = load_motion_lora(result.path)
    assert set(lora.info.target_modules) == set(temporal_attention_targets(model.unet))
    assert all(".temp_attentions." in name for name in lora.info.target_modules)

    sampling = KeyframeSettings(num_frames=FRAMES, height=HEIGHT, width=WIDTH, steps=12, guidance=1.0)
    embeds = PromptEmbeds(text, torch.zeros_like(text))
    plain = generate_keyframes(model, embeds, sampling, seed=5, batch=SAMPLES)
    with motion_loras(model, [lora]):
        moved = generate_keyframes(model, embeds, sampling, seed=5, batch=SAMPLES)
    base_slope, lora_slope = centroid_slopes(plain), centroid_slopes(moved)
    print(
        f"\ncentroid slope px/frame: base {base_slope.mean():.3f} {base_slope.tolist()}\n"
        f"                         lora {lora_slope.mean():.3f} {lora_slope.tolist()}\n"
        f"time: fit {fitted - started:.1f}s, lora {trained - fitted:.1f}s, sample {time.time() - trained:.1f}s"
    )
    assert lora_slope.mean() > 0.4 * SPEED
    assert lora_slope.mean() > base_slope.mean() + 0.3 * SPEED
