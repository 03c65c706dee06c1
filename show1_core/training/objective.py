"""The training objective of Show-1's pixel stages: the diffusion loss their UNets were trained with.

The keyframe and interpolation UNets are DeepFloyd-IF-style: they predict the noise (3
channels) and a learned-range variance (3 more channels). Their objective is the hybrid loss of
improved DDPM (Nichol & Dhariwal 2021): ``L_simple + lambda * L_vlb`` with ``lambda = 1e-3``.

* ``L_simple``: mean squared error between the predicted and the true noise.
* ``L_vlb``: the variational bound term of the sampled timestep, in bits per dimension,
  computed with the predicted *mean* detached, so it trains only the variance channels. For
  ``t > 0`` it is ``KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))``; for ``t = 0`` it is the
  negative log-likelihood of ``x_0`` under a Gaussian discretised to 256 levels. Since ``L_vlb``
  sums ``T`` such terms and one is sampled, ``lambda * L_vlb`` is ``lambda * T`` times the term.

The learned-range variance interpolates in log space between the DDPM posterior variance
(``v = -1``) and ``beta_t`` (``v = +1``). Noise is added with a ``DDPMScheduler`` built from the
stage's own scheduler config, so the training noise levels are those the sampler assumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler

from ..errors import InputError

VLB_LAMBDA = 1e-3
"""Weight of the variational bound in the hybrid loss (improved DDPM's value)."""
_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class LossTerms:
    """The loss of one batch: ``total`` is what is minimised."""

    total: torch.Tensor
    mse: torch.Tensor
    vlb: torch.Tensor | None


class NoiseSchedule:
    """The forward process of a stage (its scheduler's betas) and the quantities the loss needs."""

    def __init__(self, scheduler_config: dict):
        """Build from a stage scheduler's config; the loss supports epsilon prediction only."""
        prediction = scheduler_config.get("prediction_type", "epsilon")
        if prediction != "epsilon":
            raise InputError(f"motion LoRA training supports epsilon-prediction stages; this one predicts {prediction!r}")
        self.noising = DDPMScheduler.from_config(scheduler_config)
        betas = self.noising.betas.double()
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        posterior_variance = betas * (1.0 - previous) / (1.0 - alphas_cumprod)
        self.num_timesteps = len(betas)
        self.betas = betas
        self.alphas_cumprod = alphas_cumprod
        self.posterior_log_variance = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
        self.posterior_x0_coef = betas * previous.sqrt() / (1.0 - alphas_cumprod)
        self.posterior_xt_coef = (1.0 - previous) * (1.0 - betas).sqrt() / (1.0 - alphas_cumprod)

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``x_t`` for each video of the batch at its own timestep (the scheduler's training noise)."""
        return self.noising.add_noise(clean, noise, timesteps)

    def _at(self, values: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Per-sample schedule values broadcast over ``like``'s non-batch dimensions, in float32."""
        picked = values.to(timesteps.device)[timesteps].float()
        return picked.reshape(-1, *([1] * (like.ndim - 1)))

    def variational_bound(
        self, clean: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor, eps: torch.Tensor, variance: torch.Tensor
    ) -> torch.Tensor:
        """Per-video VLB term in bits per dimension; ``eps`` should be detached by the caller."""
        alpha_bar = self._at(self.alphas_cumprod, timesteps, clean)
        predicted_clean = (noisy - (1.0 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
        x0_coef = self._at(self.posterior_x0_coef, timesteps, clean)
        xt_coef = self._at(self.posterior_xt_coef, timesteps, clean)
        true_mean = x0_coef * clean + xt_coef * noisy
        model_mean = x0_coef * predicted_clean + xt_coef * noisy
        min_log = self._at(self.posterior_log_variance, timesteps, clean)
        max_log = self._at(self.betas.log(), timesteps, clean)
        fraction = (variance + 1.0) / 2.0
        model_log_variance = fraction * max_log + (1.0 - fraction) * min_log

        kl = 0.5 * (
            -1.0
            + model_log_variance
            - min_log
            + torch.exp(min_log - model_log_variance)
            + (true_mean - model_mean) ** 2 * torch.exp(-model_log_variance)
        )
        nll = -_discretised_gaussian_log_likelihood(clean, model_mean, 0.5 * model_log_variance)
        per_video = lambda values: values.flatten(1).mean(dim=1) / _LOG2  # noqa: E731
        return torch.where(timesteps == 0, per_video(nll), per_video(kl))


def _discretised_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Log-probability of ``x`` in [-1, 1] (256 levels) under a Gaussian, bins at the ends open."""
    bin_half = 1.0 / 255.0
    inv_std = torch.exp(-log_scale)
    upper = torch.special.ndtr(inv_std * (x - mean + bin_half))
    lower = torch.special.ndtr(inv_std * (x - mean - bin_half))
    tiny = 1e-12
    return torch.where(
        x < -0.999,
        torch.log(upper.clamp(min=tiny)),
        torch.where(x > 0.999, torch.log((1.0 - lower).clamp(min=tiny)), torch.log((upper - lower).clamp(min=tiny))),
    )


def diffusion_loss(
    prediction: torch.Tensor,
    clean: torch.Tensor,
    noisy: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    schedule: NoiseSchedule,
) -> LossTerms:
    """The stage's training loss for a batch of ``(B, C, F, H, W)`` videos.

    ``prediction`` is the UNet output: the noise, followed by the learned-range variance
    when the UNet has twice as many output channels as the video. Computed in float32.
    """
    prediction, clean, noisy, noise = (x.float() for x in (prediction, clean, noisy, noise))
    channels = clean.shape[1]
    eps = prediction[:, :channels]
    mse = torch.mean((eps - noise) ** 2)
    if prediction.shape[1] == channels:
        return LossTerms(total=mse, mse=mse, vlb=None)
    vlb = schedule.variational_bound(clean, noisy, timesteps, eps.detach(), prediction[:, channels:]).mean()
    return LossTerms(total=mse + VLB_LAMBDA * schedule.num_timesteps * vlb, mse=mse, vlb=vlb)
