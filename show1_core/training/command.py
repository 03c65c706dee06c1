"""``show1 train-motion``: from a folder of clips to a motion LoRA file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings import TRAINABLE_STAGE_NAMES
from .options import OPTIMIZERS


def _settings(args: argparse.Namespace, defaults: dict):
    from .trainer import TrainingSettings

    chosen = {k: getattr(args, k) for k in defaults if getattr(args, k) is not None}
    return TrainingSettings(
        **{**defaults, **chosen},
        rank=args.rank,
        alpha=args.alpha if args.alpha is not None else float(args.rank),
        steps=args.steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        caption_dropout=args.caption_dropout,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        optimizer=args.optimizer,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )


def cmd_train_motion(args: argparse.Namespace) -> int:
    """Train a motion LoRA on a folder of clips for the keyframe (or interpolation) model."""
    from ..errors import InputError
    from ..loading.hub import resolve_checkpoint
    from ..loading.registry import CHECKPOINT_FOR_STAGE, T5_CHECKPOINT, ModelRole, known_checkpoint
    from ..loading.stage_model import load_stage_model
    from ..memory import resolve_device
    from .clips import caption_for, find_clips, load_clips, short_clips
    from .preparation import encode_captions, stage_defaults, training_dtype
    from .trainer import train_motion_lora

    stage = ModelRole(args.stage)
    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise InputError(f"the output must be a .safetensors file, got {output}")
    settings = _settings(args, stage_defaults(stage))
    settings.check()
    for clip in find_clips(args.clips):  # every clip needs a caption: say so before loading anything
        caption_for(clip, args.prompt)
    device = resolve_device(args.device)
    allow_download = not args.offline
    model_folder = resolve_checkpoint(args.model or CHECKPOINT_FOR_STAGE[stage].name, args.models_dir, allow_download=allow_download)
    t5_folder = resolve_checkpoint(args.t5 or T5_CHECKPOINT.name, args.models_dir, with_text_encoder=True, allow_download=allow_download)

    clips = load_clips(args.clips, args.prompt, settings.height, settings.width)
    print(f"{len(clips)} clips, {settings.frames} frames at {settings.width}x{settings.height} ({settings.fps:g} fps)")
    notice = short_clips(clips, settings.frames)
    if notice:
        print(notice, file=sys.stderr)
    embeddings = encode_captions(t5_folder, sorted({c.caption for c in clips}), device, t5_folder.parent / ".embeddings")
    model = load_stage_model(model_folder, stage, dtype=training_dtype(device, args.precision))
    model.unet.to(device)
    known = known_checkpoint(model_folder.name)
    result = train_motion_lora(
        model,
        clips,
        embeddings,
        settings,
        output,
        known.repo_id if known else model_folder.name,
        resume=args.resume,
        progress=not args.quiet,
    )
    print(f"wrote {result.path} ({result.steps} steps, loss {result.loss:.4f})")
    return 0


def add_train_motion_parser(sub: argparse._SubParsersAction) -> None:
    """The ``train-motion`` subcommand."""
    p = sub.add_parser(
        "train-motion",
        help="train a motion LoRA (temporal attention only) on a folder of clips",
        description="Train low-rank adapters on the temporal attention of the keyframe (or interpolation) model so it "
        "produces the motion the clips share. Each clip's caption is a .txt beside it, or --prompt for all.",
    )
    p.add_argument("clips", help="folder of video clips (mp4, webm, mov, mkv, avi, gif, webp), each with an optional .txt caption")
    p.add_argument("-o", "--output", required=True, help="the LoRA file to write (.safetensors)")
    p.add_argument("--prompt", default=None, help="caption for clips without a .txt")
    p.add_argument("--stage", default=TRAINABLE_STAGE_NAMES[0], choices=TRAINABLE_STAGE_NAMES)
    p.add_argument("--model", default=None, help="checkpoint folder to adapt (default: the released model of the stage)")
    p.add_argument("--t5", default=None, help="folder with the T5 text_encoder/ and tokenizer/ (default: show-1-base)")
    p.add_argument("--models-dir", default=None, help="where checkpoints live or are downloaded ($SHOW1_MODELS_DIR)")
    p.add_argument("--offline", action="store_true", help="never download; fail if a checkpoint is missing")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank, i.e. scale 1)")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--caption-dropout", type=float, default=0.1, help="share of steps on the empty prompt (default 0.1)")
    p.add_argument("--frames", type=int, default=None, help="frames per sample (default: 8 for keyframes, 5 for interpolation)")
    p.add_argument("--fps", type=float, default=None, help="frame rate to sample clips at (default: 2 for keyframes, 8 for interpolation)")
    p.add_argument("--width", type=int, default=None, help="default 64")
    p.add_argument("--height", type=int, default=None, help="default 40")
    p.add_argument("--precision", default=None, choices=["fp16", "bf16", "fp32"], help="base weights (default bf16 on GPU, fp32 on CPU)")
    p.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available)")
    p.add_argument("--optimizer", default="auto", choices=OPTIMIZERS, help="auto: 8-bit AdamW on CUDA when bitsandbytes is installed")
    p.add_argument("--no-gradient-checkpointing", action="store_true", help="faster, needs more memory")
    p.add_argument("--checkpoint-every", type=int, default=100, help="write a resumable checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint beside the output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_motion)
