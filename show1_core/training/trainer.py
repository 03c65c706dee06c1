"""The motion LoRA training loop: temporal-attention adapters trained with the stage's own objective.

Only the LoRA weights on the temporal attention projections are trained; the base UNet is
frozen, runs in eval mode (as at inference) and is exactly the loaded model again when
training ends. Every ``checkpoint_every`` steps a usable LoRA file and the optimizer/random
state are written beside the output, so an interrupted run resumes where it stopped and ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from tqdm.auto import tqdm

from ..errors import InputError, NonFiniteOutputError
from ..loading.stage_model import StageModel
from ..motion_lora.adapters import active_motion_loras
from ..motion_lora.files import MotionLoraInfo, load_motion_lora, save_motion_lora
from ..motion_lora.targets import check_trainable_stage, temporal_attention_targets, unet_fingerprint
from ..validation.ranges import raise_problems, seed_problems
from ..validation.tensors import check_positive, check_spatial_size
from .batches import make_batch
from .clips import Clip
from .objective import NoiseSchedule, diffusion_loss
from .options import OPTIMIZERS
from .recompute import activation_checkpointing
from .state import load_state, save_state

ADAPTER = "show1_motion_training"


@dataclass(frozen=True)
class TrainingSettings:
    """How a motion LoRA is trained. ``frames``, ``fps``, ``height`` and ``width`` follow the stage's paper settings."""

    frames: int
    fps: float
    height: int
    width: int
    rank: int = 16
    alpha: float = 16.0
    steps: int = 500
    learning_rate: float = 1e-4
    batch_size: int = 1
    caption_dropout: float = 0.1
    """Share of samples trained on the empty prompt, so the unconditional (guidance) branch learns the motion too."""
    gradient_checkpointing: bool = True
    optimizer: str = "auto"
    """``adamw``, ``adamw8bit`` (bitsandbytes) or ``auto`` (8-bit on CUDA when bitsandbytes is installed)."""
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    max_grad_norm: float = 1.0

    def check(self) -> None:
        """Refuse values training cannot use."""
        raise_problems(seed_problems(self.seed))
        check_positive(rank=self.rank, steps=self.steps, batch_size=self.batch_size, checkpoint_every=self.checkpoint_every)
        if self.frames < 2:
            raise InputError(f"motion needs at least 2 frames per sample, got {self.frames}")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise InputError(f"caption_dropout must be in [0, 1), got {self.caption_dropout}")
        if not (self.learning_rate > 0 and self.alpha > 0 and self.fps > 0):
            raise InputError("learning_rate, alpha and fps must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")

    def identity(self) -> dict:
        """The settings a resumed run must share with the run it continues (everything but the schedule of saves and the length)."""
        return {k: v for k, v in asdict(self).items() if k not in ("steps", "checkpoint_every", "keep_checkpoints")}


@dataclass
class CaptionEmbeddings:
    """T5 embeddings ``(1, tokens, width)`` of every caption, computed once, and of the empty prompt."""

    by_caption: dict[str, torch.Tensor]
    empty: torch.Tensor

    def batch(self, captions: list[str], dropped: torch.Tensor) -> torch.Tensor:
        """One embedding per sample; dropped samples get the empty prompt."""
        return torch.cat([self.empty if drop else self.by_caption[c] for c, drop in zip(captions, dropped.tolist())])


@dataclass
class TrainingResult:
    """Where the LoRA was written, after how many steps, and the last smoothed loss."""

    path: Path
    steps: int
    loss: float
    checkpoints: list[Path] = field(default_factory=list)


def checkpoint_folder(output: Path) -> Path:
    """Where periodic checkpoints of ``output`` go: ``<output stem>.checkpoints/`` beside it."""
    return output.with_name(f"{output.stem}.checkpoints")


def _make_optimizer(params: list[torch.nn.Parameter], settings: TrainingSettings, device: torch.device) -> torch.optim.Optimizer:
    name = settings.optimizer
    if name == "auto":
        name = "adamw8bit" if device.type == "cuda" and _has_bitsandbytes() else "adamw"
    if name == "adamw8bit":
        if not _has_bitsandbytes():
            raise InputError("8-bit Adam needs bitsandbytes: pip install bitsandbytes (or choose --optimizer adamw)")
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=settings.learning_rate)
    return torch.optim.AdamW(params, lr=settings.learning_rate)


def _has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


class _Run:
    """One training run's mutable parts: adapter parameters, optimizer, scaler, generator and step."""

    def __init__(self, model: StageModel, settings: TrainingSettings, base_name: str):
        unet = model.unet
        self.model, self.unet, self.settings = model, unet, settings
        self.device, self.dtype = unet.device, unet.dtype
        self.info_base = (base_name, unet_fingerprint(unet))
        self.targets = temporal_attention_targets(unet)
        with torch.random.fork_rng(devices=[]):  # the adapters' initial weights follow the seed, not the global RNG
            torch.manual_seed(settings.seed)
            unet.add_adapter(
                LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=self.targets, init_lora_weights=True),
                adapter_name=ADAPTER,
            )
        self.params = [p for n, p in unet.named_parameters() if "lora_" in n]
        for p in self.params:  # adapters train in float32 whatever the base precision
            p.data = p.data.float()
            p.requires_grad_(True)
        self.optimizer = _make_optimizer(self.params, settings, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.generator = torch.Generator("cpu").manual_seed(settings.seed)
        self.step = 0
        self.loss = float("nan")

    def weights(self) -> dict[str, torch.Tensor]:
        """The adapter weights in the file layout (peft names without the adapter name)."""
        return {k: v.detach().float() for k, v in get_peft_model_state_dict(self.unet, adapter_name=ADAPTER).items()}

    def info(self, prompts: list[str]) -> MotionLoraInfo:
        """Metadata of the adapter as trained so far."""
        s = self.settings
        return MotionLoraInfo(
            stage=self.model.stage,
            base_checkpoint=self.info_base[0],
            base_fingerprint=self.info_base[1],
            rank=s.rank,
            alpha=s.alpha,
            target_modules=tuple(self.targets),
            steps=self.step,
            prompts=tuple(prompts),
            frames=s.frames,
            height=s.height,
            width=s.width,
        )

    def state(self, identity: dict) -> dict:
        """Everything besides the adapter weights that resuming needs."""
        return {
            "identity": json.dumps(identity, sort_keys=True),
            "step": self.step,
            "loss": self.loss,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
        }

    def restore(self, lora_path: Path, state: dict, identity: dict) -> None:
        """Continue from a checkpoint written with the same settings."""
        saved = json.loads(state["identity"])
        if saved != identity:
            changed = sorted(k for k in identity.keys() | saved.keys() if saved.get(k) != identity.get(k))
            raise InputError(
                f"the checkpoint {lora_path} was made with other training settings or data ({', '.join(changed)}); "
                f"use the same settings to resume, or delete {lora_path.parent} to start over"
            )
        lora = load_motion_lora(lora_path)
        with torch.no_grad():
            result = set_peft_model_state_dict(self.unet, lora.weights, adapter_name=ADAPTER)
        if result.unexpected_keys:
            raise InputError(f"the checkpoint {lora_path} does not fit this model ({result.unexpected_keys[0]})")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.step, self.loss = int(state["step"]), float(state["loss"])


def _latest_checkpoint(folder: Path) -> tuple[Path, Path] | None:
    states = sorted(folder.glob("step-*.state.safetensors")) if folder.is_dir() else []
    for state in reversed(states):
        lora = state.with_name(state.name.replace(".state.safetensors", ".safetensors"))
        if lora.is_file():
            return lora, state
    return None


def _prune(folder: Path, keep: int) -> None:
    loras = sorted(p for p in folder.glob("step-*.safetensors") if not p.name.endswith(".state.safetensors"))
    for old in loras[: max(0, len(loras) - keep)]:
        old.unlink(missing_ok=True)
        old.with_name(old.name.replace(".safetensors", ".state.safetensors")).unlink(missing_ok=True)


def train_motion_lora(
    model: StageModel,
    clips: list[Clip],
    embeddings: CaptionEmbeddings,
    settings: TrainingSettings,
    output: Path | str,
    base_name: str,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Train a motion LoRA for ``model`` (keyframes or interpolation) on ``clips`` and write it to ``output``.

    Args:
        model: the stage model, on the device and in the precision to train in (fp16/bf16 base
            weights train with autocast; the adapters are always float32).
        clips: decoded clips at ``settings.height x settings.width``.
        embeddings: T5 embeddings of every caption and of the empty prompt.
        base_name: name of the base checkpoint, recorded in the file.
        resume: continue from the newest checkpoint in ``<output stem>.checkpoints/``.
        progress: show a progress bar with the loss.
    """
    check_trainable_stage(model.stage)
    settings.check()
    check_spatial_size(model.unet, settings.height, settings.width, model.stage)
    if not clips:
        raise InputError("no training clips were given")
    if active_motion_loras(model):
        raise InputError("the model already carries LoRA adapters; train on the plain model")
    output = Path(output)
    folder = checkpoint_folder(output)
    prompts = sorted({clip.caption for clip in clips})
    identity = {
        **settings.identity(),
        "stage": model.stage.value,
        "base": unet_fingerprint(model.unet),
        "clips": [[clip.path.name, clip.caption] for clip in clips],
    }
    schedule = NoiseSchedule(dict(model.scheduler.config))
    unet = model.unet
    was_training = unet.training
    unet.eval()
    try:
        run = _Run(model, settings, base_name)
        if resume and (found := _latest_checkpoint(folder)) is not None:
            run.restore(found[0], load_state(found[1]), identity)
        saved = _train(run, clips, embeddings, schedule, folder, prompts, identity, progress)
        path = save_motion_lora(output, run.weights(), run.info(prompts))
        return TrainingResult(path=path, steps=run.step, loss=run.loss, checkpoints=saved)
    finally:
        unet.unload_lora()
        unet.train(was_training)


def _train(
    run: _Run,
    clips: list[Clip],
    embeddings: CaptionEmbeddings,
    schedule: NoiseSchedule,
    folder: Path,
    prompts: list[str],
    identity: dict,
    progress: bool,
) -> list[Path]:
    s, unet, device = run.settings, run.unet, run.device
    autocast = run.dtype in (torch.float16, torch.bfloat16)
    saved: list[Path] = []
    bar = tqdm(total=s.steps, initial=run.step, desc=f"motion LoRA, {run.model.stage.title}", unit="step", disable=not progress)
    try:
        with activation_checkpointing(unet, s.gradient_checkpointing):
            while run.step < s.steps:
                batch = make_batch(run.model.stage, clips, s.batch_size, s.frames, s.fps, run.generator)
                timesteps = torch.randint(0, schedule.num_timesteps, (s.batch_size,), generator=run.generator)
                noise = torch.randn(batch.clean.shape, generator=run.generator)
                dropped = torch.rand(s.batch_size, generator=run.generator) < s.caption_dropout
                text = embeddings.batch(batch.captions, dropped).to(device, run.dtype)
                noisy = schedule.add_noise(batch.clean, noise, timesteps)
                model_input = noisy if batch.condition is None else torch.cat([noisy, batch.condition], dim=1)
                with torch.autocast(device.type, dtype=run.dtype, enabled=autocast):
                    prediction = unet(model_input.to(device, run.dtype), timesteps.to(device), text).sample
                terms = diffusion_loss(
                    prediction, batch.clean.to(device), noisy.to(device), noise.to(device), timesteps.to(device), schedule
                )
                if not torch.isfinite(terms.total):
                    raise NonFiniteOutputError(
                        f"the training loss became {terms.total.item()} at step {run.step + 1}; lower the learning rate "
                        "or train in bf16/fp32"
                    )
                run.scaler.scale(terms.total).backward()
                run.scaler.unscale_(run.optimizer)
                torch.nn.utils.clip_grad_norm_(run.params, s.max_grad_norm)
                run.scaler.step(run.optimizer)
                run.scaler.update()
                run.optimizer.zero_grad(set_to_none=True)
                run.step += 1
                value = terms.total.item()
                run.loss = value if math.isnan(run.loss) else 0.98 * run.loss + 0.02 * value
                bar.update(1)
                bar.set_postfix(loss=f"{run.loss:.4f}")
                if run.step % s.checkpoint_every == 0 and run.step < s.steps:
                    saved.append(_checkpoint(run, folder, prompts, identity))
    finally:
        bar.close()
    return saved


def _checkpoint(run: _Run, folder: Path, prompts: list[str], identity: dict) -> Path:
    name = f"step-{run.step:06d}"
    lora = save_motion_lora(folder / f"{name}.safetensors", run.weights(), run.info(prompts))
    save_state(folder / f"{name}.state.safetensors", run.state(identity))
    _prune(folder, run.settings.keep_checkpoints)
    return lora
