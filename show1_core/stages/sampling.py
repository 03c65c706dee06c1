"""The one classifier-free-guidance denoising loop all stages share, and its inputs."""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Callable

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

from ..embeds import PromptEmbeds
from ..errors import InputError, NonFiniteOutputError
from ..settings import CacheSettings
from ..speed.loop_cache import denoise_cache
from ..validation.tensors import all_finite

if TYPE_CHECKING:
    from ..loading.stage_model import StageModel

from .progress import StageSteps, StepCallback, StepEvent, report

LEARNED_VARIANCE = ("learned", "learned_range")
Scope = Callable[[str], AbstractContextManager[None]]
"""The block one UNet call runs in, by name (its guidance half and frame window): a step cache's per-call state."""


def _unscoped(name: str) -> AbstractContextManager[None]:
    return nullcontext()


def text_width_of(unet: nn.Module) -> int:
    """Width of the text embeddings a UNet takes (T5 width for IF-style UNets, CLIP width for stage 4)."""
    config = unet.config
    return config.encoder_hid_dim if config.encoder_hid_dim is not None else config.cross_attention_dim


def embeddings_for(unet: nn.Module, embeds: PromptEmbeds, stage: str, batch: int) -> PromptEmbeds:
    """Embeddings checked against the UNet, on its device and precision, one per video of the batch.

    Refuses embeddings from the wrong text encoder or for another batch size.
    """
    expected = text_width_of(unet)
    if embeds.width != expected:
        encoder = "T5-XXL (stages 1-3)" if unet.config.encoder_hid_dim is not None else "CLIP (stage 4)"
        raise InputError(
            f"the {stage} model takes {encoder} text embeddings of width {expected}, but got width {embeds.width}; "
            "encode the prompt with that stage's text encoder"
        )
    for which, tensor in (("prompt", embeds.positive), ("negative prompt", embeds.negative)):
        if not all_finite(tensor):
            raise InputError(
                f"the {which} embeddings given to the {stage} contain NaN or infinite values; encode the prompt again "
                "(in bf16 or fp32 if the text encoder ran in fp16)"
            )
    if embeds.positive.shape[0] not in (1, batch):
        raise InputError(f"{embeds.positive.shape[0]} prompts given for a batch of {batch} videos")
    return embeds.to(unet.device, unet.dtype).repeat(batch // embeds.positive.shape[0])


def seeded_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator, as the original's ``torch.manual_seed(seed)``, without touching global RNG.

    ``seed`` is a whole number from 0 to 2**64 - 1, as :func:`~show1_core.validation.ranges.seed_problems` checks.
    """
    return torch.Generator("cpu").manual_seed(int(seed))


def scheduler_for(model: "StageModel", steps: int, device: torch.device) -> SchedulerMixin:
    """A fresh copy of the model's scheduler set to ``steps`` steps, its timesteps on ``device``.

    On the ``meta`` device (a memory plan: shapes only) the timesteps stay on the CPU, where the
    scheduler can still find a timestep's index; the samples it steps may be on any device.
    """
    scheduler = model.fresh_scheduler()
    scheduler.set_timesteps(steps, device=torch.device("cpu") if device.type == "meta" else device)
    return scheduler


def noise_like(shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Gaussian noise drawn on the CPU generator and moved, so every device gets the same numbers."""
    return randn_tensor(shape, generator=generator, device=device, dtype=dtype)


def frames_to_batch(video: torch.Tensor) -> torch.Tensor:
    """``(B, C, F, H, W)`` -> ``(B*F, C, H, W)``, frame-major within each video."""
    b, c, f, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def batch_to_frames(images: torch.Tensor, batch: int) -> torch.Tensor:
    """Inverse of :func:`frames_to_batch`."""
    bf, c, h, w = images.shape
    return images.reshape(batch, bf // batch, c, h, w).permute(0, 2, 1, 3, 4)


def _predict(unet: nn.Module, model_input: torch.Tensor, t: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    extra = {"class_labels": labels} if labels is not None else {}
    if model_input.ndim == 5 and len(unet.config.down_block_types) and unet.config.down_block_types[0].endswith("2D"):
        batch, frames = model_input.shape[0], model_input.shape[2]
        if labels is not None:
            extra["class_labels"] = labels.repeat_interleave(frames)
        out = unet(frames_to_batch(model_input), t, encoder_hidden_states=text.repeat_interleave(frames, 0), **extra).sample
        return batch_to_frames(out, batch)
    return unet(model_input, t, encoder_hidden_states=text, **extra).sample


def frame_windows(frames: int, window: int, overlap: int) -> list[int]:
    """Starts of windows of ``window`` frames overlapping by ``overlap`` that cover ``frames`` (the last aligned to the end)."""
    if frames <= window:
        return [0]
    starts = list(range(0, frames - window + 1, window - overlap))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return starts


def predict_in_windows(
    unet: nn.Module,
    model_input: torch.Tensor,
    t: torch.Tensor,
    text: torch.Tensor,
    labels: torch.Tensor | None,
    window: int,
    overlap: int,
    scope: Scope = _unscoped,
    part: str = "batch",
) -> torch.Tensor:
    """The UNet's prediction for a video computed over windows of at most ``window`` frames.

    Overlapping predictions are averaged with pyramid weights (a window's middle frames count
    most), so window seams blend. ``window`` 0 or at least the frame count is one whole call.
    Each call runs in ``scope`` named after ``part`` and its first frame.
    """
    frames = model_input.shape[2]
    if not window or frames <= window:
        with scope(f"{part}/0"):
            return _predict(unet, model_input, t, text, labels)
    ramp = torch.arange(1, window + 1, dtype=model_input.dtype, device=model_input.device)
    weights = torch.minimum(ramp, ramp.flip(0)).view(1, 1, window, 1, 1)
    total, coverage = None, torch.zeros(frames, dtype=model_input.dtype, device=model_input.device)
    for start in frame_windows(frames, window, overlap):
        with scope(f"{part}/{start}"):
            prediction = _predict(unet, model_input[:, :, start : start + window], t, text, labels) * weights
        if total is None:
            total = prediction.new_zeros(prediction.shape[:2] + (frames,) + prediction.shape[3:])
        total[:, :, start : start + window] += prediction
        coverage[start : start + window] += weights.flatten()
    return total / coverage.view(1, 1, frames, 1, 1)


def predict_guided(
    unet: nn.Module,
    model_input: torch.Tensor,
    t: torch.Tensor,
    text: torch.Tensor,
    labels: torch.Tensor | None,
    window: int,
    overlap: int,
    split: bool,
    scope: Scope = _unscoped,
) -> torch.Tensor:
    """The UNet's prediction for a ``[negative, positive]`` batch: one call, or (``split``) one call per half.

    Splitting halves the activations held at once; each video is computed on its own either way,
    so the prediction is the same. Each half runs in its own ``scope`` (a step cache keeps its state apart).
    """
    if not split:
        return predict_in_windows(unet, model_input, t, text, labels, window, overlap, scope)
    label_halves = (None, None) if labels is None else labels.chunk(2)
    halves = zip(("negative", "positive"), model_input.chunk(2), text.chunk(2), label_halves)
    return torch.cat([predict_in_windows(unet, x, t, txt, lab, window, overlap, scope, half) for half, x, txt, lab in halves])


def _step_kwargs(scheduler: SchedulerMixin, generator: torch.Generator | None, eta: float) -> dict:
    accepted = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = eta
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs


def guide(prediction: torch.Tensor, channels: int, scale: float, guided: bool, keep_variance: bool) -> torch.Tensor:
    """Combine the unconditional and conditional halves; keep learned variance if the scheduler uses it."""
    if guided:
        uncond, cond = prediction.chunk(2)
        eps_uncond, eps_cond, variance = uncond[:, :channels], cond[:, :channels], cond[:, channels:]
        prediction = torch.cat([eps_uncond + scale * (eps_cond - eps_uncond), variance], dim=1)
    return prediction if keep_variance else prediction[:, :channels]


def count_steps(model, steps: int) -> int:
    """How many denoising steps a stage model's scheduler runs for ``steps`` (its timesteps are unique)."""
    scheduler = model.fresh_scheduler()
    scheduler.set_timesteps(steps)
    return len(scheduler.timesteps)


def _denoised_estimate(scheduler: SchedulerMixin, output) -> torch.Tensor | None:
    """The scheduler's estimate of the clean sample after a step: DDPM/DDIM return it; DPM-Solver++ steps on it."""
    estimate = getattr(output, "pred_original_sample", None)
    if estimate is None and str(scheduler.config.get("algorithm_type", "")).endswith("++"):
        estimate = scheduler.model_outputs[-1]
    return estimate


@torch.no_grad()
def guided_denoise(
    unet: nn.Module,
    scheduler: SchedulerMixin,
    sample: torch.Tensor,
    timesteps: torch.Tensor,
    embeds: PromptEmbeds,
    guidance: float,
    *,
    progress: StageSteps,
    condition: torch.Tensor | None = None,
    class_labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    callback: StepCallback | None = None,
    frame_window: int = 0,
    frame_overlap: int = 0,
    split_guidance: bool = False,
    cache: CacheSettings = CacheSettings(),
) -> torch.Tensor:
    """Denoise ``sample`` ``(B, C, F, H, W)`` over ``timesteps`` with classifier-free guidance.

    ``condition`` (same batch, frames and size) is concatenated to the sample's channels
    before every UNet call; ``class_labels`` is the noise level of a super-resolution
    condition. Guidance applies when ``guidance > 1`` (the original's rule), with the
    batch ordered ``[negative, positive]``. The scheduler steps every frame as an image,
    so per-image operations such as thresholding see single frames, as in the original.
    Steps are reported as ``progress`` places them in their stage. With ``frame_window``, the
    UNet sees at most that many frames at a time (:func:`predict_in_windows`). With
    ``split_guidance`` the two halves of the guided batch run one after the other (:func:`predict_guided`).
    ``cache`` may reuse UNet work between steps (:func:`~show1_core.speed.loop_cache.denoise_cache`): its state
    belongs to this loop alone and is dropped when it ends; a step that reuses work still steps the scheduler
    and reports its progress.
    """
    guided = guidance > 1.0
    text = torch.cat([embeds.negative, embeds.positive]) if guided else embeds.positive
    labels = None if class_labels is None else (torch.cat([class_labels] * 2) if guided else class_labels)
    keep_variance = scheduler.config.get("variance_type") in LEARNED_VARIANCE
    step_kwargs = _step_kwargs(scheduler, generator, eta)
    batch, channels = sample.shape[:2]
    if progress.before == 0:
        report(callback, StepEvent(progress.stage, 0, progress.total, sample))
    split = guided and split_guidance
    with denoise_cache(unet, cache) as step_cache:
        for i, t in enumerate(timesteps):
            model_input = sample if condition is None else torch.cat([sample, condition], dim=1)
            model_input = torch.cat([model_input] * 2) if guided else model_input
            model_input = scheduler.scale_model_input(model_input, t)
            raw = step_cache.predict(
                i,
                model_input,
                lambda: predict_guided(unet, model_input, t, text, labels, frame_window, frame_overlap, split, step_cache.scope),
            )
            prediction = guide(raw, channels, guidance, guided, keep_variance)
            output = scheduler.step(frames_to_batch(prediction), t, frames_to_batch(sample), **step_kwargs)
            sample = batch_to_frames(output.prev_sample, batch)
            denoised = _denoised_estimate(scheduler, output)
            denoised = None if denoised is None else batch_to_frames(denoised, batch)
            report(callback, StepEvent(progress.stage, progress.before + i + 1, progress.total, sample, denoised))
    if not all_finite(sample):
        advice = (
            "this usually means fp16 overflow: run this stage in bf16 or fp32"
            if sample.dtype == torch.float16
            else "its inputs or settings (guidance, embeddings) drive the model out of range"
        )
        raise NonFiniteOutputError(f"the {progress.stage} stage produced NaN or infinite values; {advice}.")
    return sample
