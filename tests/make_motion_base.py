"""Fit the base keyframe model of the motion LoRA test (``tests/fixtures/motion/square-base``).

    python tests/make_motion_base.py [--steps STEPS] [--seed 0] [--out DIR] [--threads 1]

The motion LoRA test needs a keyframe model that draws something a motion can move. Random
weights draw noise, and the released model is far too large for a CPU test, so this script
stands in for the pretrained model: a keyframe UNet of the tiny-model structure (``show1
tiny-models``: the released blocks at width 32), every weight fitted with the stage's own
training objective on clips of three small grey squares, each moving left or right (equally
often, independently of the others) and brightening from frame to frame. It draws such squares,
moving whichever way the noise decides, with no preference for left or right.

Why small, dim and several: for the base model a square's direction is one bit it can only
guess, and the diffusion loss rewards a LoRA for knowing that bit only at the noise levels where
the direction cannot yet be read from the noisy clip. For one large white square those are the
levels of almost pure noise, where the noise-prediction loss hardly depends on the clean clip;
there 300 LoRA steps left the loss of left- and right-moving clips equal and the sampled
direction a coin toss. Small dim squares stay unreadable down to middle noise levels, where
the loss does depend on the direction, and three independent squares give three such bits per
clip; 300 steps then move most samples right. The brightening gives the clips an arrow of
time, as real videos have: temporal attention itself has no notion of frame order and can
only act on what the frames' features carry.

The prompt embedding it was fitted on (a fixed random stand-in for T5's) is saved beside it
with the empty prompt's (used for 10% of the samples, as caption dropout). The weights are an
exponential moving average of the fitted ones, stored in float16. Same seed and torch build,
same file.

The committed fixture: ``OMP_NUM_THREADS=1 python tests/make_motion_base.py --threads 1``
(8000 steps, seed 0): 34 minutes on one core of a shared 2-core machine, torch 2.13.0 (CPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from motion_support import BASE, FRAMES, PROMPT_FILE, as_model_input, random_clip
from safetensors.torch import save_file

from show1_core.loading.registry import KNOWN_CHECKPOINTS
from show1_core.models import Show1UNet
from show1_core.tiny import TEXT_WIDTH, tiny_unet_config
from show1_core.training.objective import NoiseSchedule, diffusion_loss

PROMPT_TOKENS = 8
BATCH = 8
LEARNING_RATE = 1e-3
EMA_DECAY = 0.999
CAPTION_DROPOUT = 0.1
STEPS = 8000


def fit(steps: int, seed: int) -> tuple[Show1UNet, torch.Tensor, torch.Tensor]:
    """The fitted UNet (moving average of its weights) and the prompt and empty-prompt embeddings it was fitted on."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    unet = Show1UNet.from_config(tiny_unet_config(KNOWN_CHECKPOINTS["show-1-base"].expected_config("unet"))).train()
    average = copy.deepcopy(unet).eval().requires_grad_(False)
    schedule = NoiseSchedule(KNOWN_CHECKPOINTS["show-1-base"].expected_config("scheduler"))
    positive, negative = torch.randn(1, PROMPT_TOKENS, TEXT_WIDTH, generator=generator), torch.zeros(1, PROMPT_TOKENS, TEXT_WIDTH)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=LEARNING_RATE)
    started, smoothed = time.time(), None
    for step in range(1, steps + 1):
        clean = as_model_input(torch.stack([random_clip(generator) for _ in range(BATCH)]))
        timesteps = torch.randint(0, schedule.num_timesteps, (BATCH,), generator=generator)
        noise = torch.randn(clean.shape, generator=generator)
        dropped = torch.rand(BATCH, generator=generator) < CAPTION_DROPOUT
        text = torch.cat([negative if drop else positive for drop in dropped.tolist()])
        noisy = schedule.add_noise(clean, noise, timesteps)
        loss = diffusion_loss(unet(noisy, timesteps, text).sample, clean, noisy, noise, timesteps, schedule).total
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(EMA_DECAY, (1 + step) / (10 + step))
            for kept, current in zip(average.parameters(), unet.parameters()):
                kept.lerp_(current, 1 - decay)
        smoothed = loss.item() if smoothed is None else 0.99 * smoothed + 0.01 * loss.item()
        if step % 500 == 0:
            print(f"step {step}/{steps}: loss {smoothed:.4f}, {time.time() - started:.0f}s", flush=True)
    return average, positive, negative


def save(folder: Path, unet: Show1UNet, positive: torch.Tensor, negative: torch.Tensor) -> None:
    """A keyframe checkpoint folder (``unet/`` in float16, ``scheduler/``) plus the prompt embeddings."""
    unet.half().save_pretrained(folder / "unet")
    scheduler = folder / "scheduler"
    scheduler.mkdir(parents=True, exist_ok=True)
    config = KNOWN_CHECKPOINTS["show-1-base"].expected_config("scheduler")
    (scheduler / "scheduler_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({"positive": positive.contiguous(), "negative": negative.contiguous()}, folder / PROMPT_FILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BASE)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    save(args.out, *fit(args.steps, args.seed))
    print(f"wrote {args.out} ({FRAMES} frames per clip, {args.steps} steps, seed {args.seed})")


if __name__ == "__main__":
    main()
