"""The DPM-Solver++ scheduler reproduces diffusers 0.19.3's arithmetic where no parity fixture reaches.

Stages 1-3 are pinned by the float64 parity fixtures (tests/test_parity.py). Stage 4's released
scheduler (show-1-sr2) is DPM-Solver++ too, but the fixtures run stage 4 with DDIM; its re-noising
must be 0.19.3's, which was DDPM's formula, unchanged in current diffusers' ``DDPMScheduler``.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

from show1_core.loading import KNOWN_CHECKPOINTS
from show1_core.schedulers import OriginalDPMSolverMultistepScheduler

SR2_CONFIG = KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("scheduler")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_stage4_renoising_is_the_ddpm_formula_in_the_samples_precision(dtype):
    ours = OriginalDPMSolverMultistepScheduler.from_config(SR2_CONFIG, final_sigmas_type="sigma_min")
    ours.set_timesteps(50)
    ours.set_begin_index(10)
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(3, 4, 5, 6, generator=generator).to(dtype)
    noise = torch.randn(3, 4, 5, 6, generator=generator).to(dtype)
    timestep = ours.timesteps[10:11]
    expected = DDPMScheduler.from_config(SR2_CONFIG).add_noise(clean, noise, timestep)
    assert torch.equal(ours.add_noise(clean, noise, timestep), expected)
    current = DPMSolverMultistepScheduler.from_config(SR2_CONFIG, final_sigmas_type="sigma_min")
    current.set_timesteps(50)
    current.set_begin_index(10)
    if dtype == torch.float64:  # the difference this class removes
        assert not torch.equal(current.add_noise(clean, noise, timestep), expected)


def test_other_solver_configurations_run_as_current_diffusers_does():
    ours = OriginalDPMSolverMultistepScheduler.from_config(SR2_CONFIG, algorithm_type="sde-dpmsolver++")
    assert not ours.uses_original_arithmetic
    current = DPMSolverMultistepScheduler.from_config(SR2_CONFIG, algorithm_type="sde-dpmsolver++")
    for scheduler in (ours, current):
        scheduler.set_timesteps(4)
    sample = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    for t in ours.timesteps:
        output = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(int(t)))
        a = ours.step(output, t, sample, generator=torch.Generator().manual_seed(2)).prev_sample
        b = current.step(output, t, sample, generator=torch.Generator().manual_seed(2)).prev_sample
        assert torch.equal(a, b)
        sample = a
