"""A motion LoRA really teaches the keyframe model a motion, and touches nothing but temporal attention.

On the CPU, with a small keyframe model standing in for the pretrained one
(``tests/fixtures/motion/square-base``, made by ``tests/make_motion_base.py``: it draws a white
square moving in a direction its noise decides, with no preference for left or right):

1. Clips of the square moving left to right are written as GIF files with captions, and a
   LoRA is trained on them with the code ``show1 train-motion`` runs (:func:`load_clips`,
   :func:`train_motion_lora` and its objective); only the temporal-attention adapters learn.
2. The same seeds are sampled with and without the LoRA. Measured by the least-squares slope of
   the square's horizontal centroid over the frames, the adapted model moves it right, clearly
   more than the base model does, for most of the seeds.
3. Every base weight is bit-identical after training, and again after the LoRA is taken off.
"""

from __future__ import annotations

from pathlib import Path

import torch

from motion_support import BASE, FRAMES, HEIGHT, SIDE, SPEED, WIDTH, as_model_input, centroid_slopes, load_prompt, square_video
from show1_core.loading import Stage, load_stage_model
from show1_core.motion_lora import load_motion_lora, motion_loras, temporal_attention_targets
from show1_core.settings import KeyframeSettings
from show1_core.stages import PromptEmbeds, generate_keyframes
from show1_core.training.clips import load_clips
from show1_core.training.trainer import CaptionEmbeddings, TrainingSettings, train_motion_lora
from show1_core.video_io import write_video

CAPTION = "a white square"
CLIPS = 8
SEEDS = 16
"""Videos sampled per model: one batch, the same initial noise for both."""
SAMPLING = KeyframeSettings(num_frames=FRAMES, height=HEIGHT, width=WIDTH, steps=20, guidance=1.0, fps=2.0)
TRAINING = TrainingSettings(
    frames=FRAMES, fps=2.0, height=HEIGHT, width=WIDTH, rank=8, alpha=8.0, steps=300, learning_rate=5e-3, batch_size=4,
    gradient_checkpointing=False, checkpoint_every=300,
)


def write_clips(folder: Path) -> Path:
    """``CLIPS`` GIFs of the square moving right at :data:`SPEED` from random places, each with its caption."""
    folder.mkdir()
    generator = torch.Generator().manual_seed(1)
    room = WIDTH - SIDE - SPEED * (FRAMES - 1)
    for index in range(CLIPS):
        x0, y0 = float(torch.rand((), generator=generator)) * room, float(torch.rand((), generator=generator)) * (HEIGHT - SIDE)
        write_video(as_model_input(square_video(x0, y0, SPEED).unsqueeze(0)), folder / f"right_{index}.gif", fps=2.0)
        (folder / f"right_{index}.txt").write_text(CAPTION)
    return folder


def test_a_motion_lora_moves_the_square_right_and_changes_only_temporal_attention(tmp_path):
    model = load_stage_model(BASE, Stage.KEYFRAMES)
    positive, negative = load_prompt()
    before = {name: tensor.clone() for name, tensor in model.unet.state_dict().items()}

    clips = load_clips(write_clips(tmp_path / "clips"), None, HEIGHT, WIDTH)
    embeddings = CaptionEmbeddings({CAPTION: positive}, empty=negative)
    result = train_motion_lora(model, clips, embeddings, TRAINING, tmp_path / "right.safetensors", "square-base", progress=False)
    unchanged = lambda: model.unet.state_dict().keys() == before.keys() and all(  # noqa: E731
        torch.equal(before[name], tensor) for name, tensor in model.unet.state_dict().items()
    )
    assert unchanged(), "training changed a base weight"
    lora = load_motion_lora(result.path)
    assert set(lora.info.target_modules) == set(temporal_attention_targets(model.unet))
    assert {name.rsplit(".lora_", 1)[0] for name in lora.weights} == set(lora.info.target_modules)

    embeds = PromptEmbeds(positive, negative)
    plain = generate_keyframes(model, embeds, SAMPLING, seed=0, batch=SEEDS)
    with motion_loras(model, [lora]):
        adapted = generate_keyframes(model, embeds, SAMPLING, seed=0, batch=SEEDS)
    assert unchanged(), "removing the LoRA did not restore the base weights"

    base_slope, lora_slope = centroid_slopes(plain), centroid_slopes(adapted)
    print(f"\ncentroid slope, px/frame: base {base_slope.mean():+.2f} {base_slope.tolist()}")
    print(f"                          LoRA {lora_slope.mean():+.2f} {lora_slope.tolist()}")
    assert abs(base_slope.mean()) < 0.25 * SPEED, "the base model already prefers a direction"
    assert lora_slope.mean() > 0.5 * SPEED
    assert lora_slope.mean() > base_slope.mean() + 0.4 * SPEED
    assert (lora_slope > base_slope).float().mean() >= 0.75
