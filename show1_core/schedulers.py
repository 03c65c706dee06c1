"""DPM-Solver++ with the arithmetic of diffusers 0.19.3, the version the original Show-1 ran.

Current diffusers computes the same solver with different floating-point arithmetic:

* it derives every step's ``alpha_t``, ``sigma_t`` and ``lambda_t`` from a float32 array of
  ``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` values interpolated at the timesteps
  (``alpha = 1 / sqrt(sigma**2 + 1)``, ``sigma_t = sigma * alpha``, lambda from those), where
  0.19.3 read them from the float32 tables ``alpha_t = sqrt(alpha_bar)``,
  ``sigma_t = sqrt(1 - alpha_bar)`` and ``lambda_t = log(alpha_t) - log(sigma_t)`` by timestep
  (timestep 0 after the last step, which is what ``final_sigmas_type="sigma_min"`` means);
* its ``step`` casts the sample to float32 before the update, where 0.19.3 updated in the
  sample's own precision (so a float64 run was rounded to float32 every step, and an fp16 run
  computed in float32);
* its ``add_noise`` (stage 4's re-noising with the released show-1-sr2 scheduler) goes through
  those sigmas too, where 0.19.3 used ``sqrt(alpha_bar)`` and ``sqrt(1 - alpha_bar)`` in the
  sample's precision, as ``DDPMScheduler.add_noise`` still does.

The mathematics is the same; the numbers differ by float32 rounding (1e-6 on the stages-1-2
parity case in float64). :class:`OriginalDPMSolverMultistepScheduler` keeps everything of the
current scheduler (timesteps, step bookkeeping, thresholding) and replaces only those
things, for the deterministic ``dpmsolver++`` solver that every Show-1 checkpoint uses.
"""

from __future__ import annotations

import torch
from diffusers import DPMSolverMultistepScheduler

ORIGINAL_ARITHMETIC = {"algorithm_type": ("dpmsolver++",), "solver_type": ("midpoint", "heun")}
"""Configurations whose 0.19.3 arithmetic this class reproduces; others run as current diffusers does."""


class OriginalDPMSolverMultistepScheduler(DPMSolverMultistepScheduler):
    """``DPMSolverMultistepScheduler`` computing what diffusers 0.19.3 computed (see the module docstring)."""

    _step_sample: torch.Tensor | None = None

    @property
    def uses_original_arithmetic(self) -> bool:
        """Whether this configuration runs with 0.19.3's arithmetic (the released Show-1 configs all do)."""
        return (
            self.config.algorithm_type in ORIGINAL_ARITHMETIC["algorithm_type"]
            and self.config.solver_type in ORIGINAL_ARITHMETIC["solver_type"]
            and self.config.final_sigmas_type == "sigma_min"
            and not (self.config.use_karras_sigmas or self.config.use_lu_lambdas or self.config.use_exponential_sigmas)
            and not (self.config.use_beta_sigmas or self.config.use_flow_sigmas)
        )

    def _table_entry(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(alpha_t, sigma_t, lambda_t)`` of the ``index``-th timestep (timestep 0 one past the end)."""
        timestep = int(self.timesteps[index]) if index < len(self.timesteps) else 0
        return self.alpha_t[timestep], self.sigma_t[timestep], self.lambda_t[timestep]

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *args, **kwargs):
        """The current ``step``, with the update computed on ``sample`` as given (not upcast to float32)."""
        self._step_sample = sample
        try:
            return super().step(model_output, timestep, sample, *args, **kwargs)
        finally:
            self._step_sample = None

    def convert_model_output(self, model_output: torch.Tensor, *args, sample: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """The data prediction ``x0`` (thresholded if configured), from the timestep tables."""
        if sample is None:
            sample = args[1] if len(args) > 1 else None
        if not self.uses_original_arithmetic or self.config.prediction_type not in ("epsilon", "v_prediction", "sample"):
            return super().convert_model_output(model_output, sample=sample)
        alpha, sigma, _ = self._table_entry(self.step_index)
        if self.config.prediction_type == "epsilon":
            if self.config.variance_type in ("learned", "learned_range"):
                model_output = model_output[:, :3]
            x0 = (sample - sigma * model_output) / alpha
        elif self.config.prediction_type == "v_prediction":
            x0 = alpha * sample - sigma * model_output
        else:
            x0 = model_output
        return self._threshold_sample(x0) if self.config.thresholding else x0

    def dpm_solver_first_order_update(
        self, model_output: torch.Tensor, *args, sample: torch.Tensor | None = None, noise=None, **kwargs
    ) -> torch.Tensor:
        """First-order step (DDIM) from the current timestep to the next."""
        if not self.uses_original_arithmetic:
            return super().dpm_solver_first_order_update(model_output, sample=sample, noise=noise)
        sample = self._step_sample if self._step_sample is not None else sample
        alpha_next, sigma_next, lambda_next = self._table_entry(self.step_index + 1)
        _, sigma_now, lambda_now = self._table_entry(self.step_index)
        h = lambda_next - lambda_now
        return (sigma_next / sigma_now) * sample - (alpha_next * (torch.exp(-h) - 1.0)) * model_output

    def multistep_dpm_solver_second_order_update(
        self, model_output_list: list[torch.Tensor], *args, sample: torch.Tensor | None = None, noise=None, **kwargs
    ) -> torch.Tensor:
        """Second-order multistep step from the last two data predictions."""
        if not self.uses_original_arithmetic:
            return super().multistep_dpm_solver_second_order_update(model_output_list, sample=sample, noise=noise)
        sample = self._step_sample if self._step_sample is not None else sample
        alpha_next, sigma_next, lambda_next = self._table_entry(self.step_index + 1)
        _, sigma_now, lambda_now = self._table_entry(self.step_index)
        _, _, lambda_before = self._table_entry(self.step_index - 1)
        latest, previous = model_output_list[-1], model_output_list[-2]
        h, h_before = lambda_next - lambda_now, lambda_now - lambda_before
        ratio = h_before / h
        d0, d1 = latest, (1.0 / ratio) * (latest - previous)
        decay = alpha_next * (torch.exp(-h) - 1.0)
        if self.config.solver_type == "midpoint":
            return (sigma_next / sigma_now) * sample - decay * d0 - 0.5 * decay * d1
        return (sigma_next / sigma_now) * sample - decay * d0 + (alpha_next * ((torch.exp(-h) - 1.0) / h + 1.0)) * d1

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Noise clean samples to ``timesteps``: ``sqrt(alpha_bar) * x + sqrt(1 - alpha_bar) * noise``."""
        if not self.uses_original_arithmetic:
            return super().add_noise(original_samples, noise, timesteps)
        alpha_bar = self.alphas_cumprod.to(original_samples.device, original_samples.dtype)[timesteps.to(original_samples.device)]
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        return (alpha_bar**0.5).reshape(shape) * original_samples + ((1 - alpha_bar) ** 0.5).reshape(shape) * noise
