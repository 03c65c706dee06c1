"""The diffusers internals :class:`OriginalDPMSolverMultistepScheduler` overrides and reads are still as it expects.

The subclass reproduces diffusers 0.19.3's arithmetic by replacing methods that ``step`` calls
and reading the scheduler's timestep tables. pyproject.toml caps diffusers at the tested minor
version; when the cap is raised, this test names what a new diffusers changed before any
parity number quietly moves.
"""

from __future__ import annotations

import inspect

import pytest
from diffusers import DPMSolverMultistepScheduler

from show1_core.schedulers import OriginalDPMSolverMultistepScheduler

OVERRIDDEN = {
    "step": ["self", "model_output", "timestep", "sample"],
    "convert_model_output": ["self", "model_output", "args", "sample", "kwargs"],
    "dpm_solver_first_order_update": ["self", "model_output", "args", "sample", "noise", "kwargs"],
    "multistep_dpm_solver_second_order_update": ["self", "model_output_list", "args", "sample", "noise", "kwargs"],
    "add_noise": ["self", "original_samples", "noise", "timesteps"],
}
"""Methods the subclass replaces, and the leading parameters of diffusers' versions it relies on."""
CALLS_IN_STEP = (
    "self.convert_model_output(model_output, sample=sample)",
    "self.dpm_solver_first_order_update(model_output, sample=sample, noise=noise)",
    "self.multistep_dpm_solver_second_order_update(self.model_outputs, sample=sample, noise=noise)",
)
"""How diffusers' ``step`` calls the replaced methods (the subclass takes ``sample`` by keyword)."""
CONFIG_READ = (
    "algorithm_type",
    "solver_type",
    "final_sigmas_type",
    "use_karras_sigmas",
    "use_lu_lambdas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "use_flow_sigmas",
    "prediction_type",
    "variance_type",
    "thresholding",
)
TABLES = ("alpha_t", "sigma_t", "lambda_t", "alphas_cumprod")
"""Per-timestep tables the subclass indexes by timestep, one entry per training timestep."""


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_every_overridden_method_keeps_the_signature_the_subclass_expects(name):
    found = list(inspect.signature(getattr(DPMSolverMultistepScheduler, name)).parameters)
    expected = OVERRIDDEN[name]
    assert found[: len(expected)] == expected, (
        f"diffusers changed DPMSolverMultistepScheduler.{name}: parameters {found}, expected to start with {expected}; "
        "check show1_core/schedulers.py against the new version before raising the diffusers cap in pyproject.toml"
    )


def test_step_calls_the_replaced_methods_as_the_subclass_expects():
    source = inspect.getsource(DPMSolverMultistepScheduler.step)
    missing = [call for call in CALLS_IN_STEP if call not in source]
    assert not missing, (
        f"diffusers' DPMSolverMultistepScheduler.step no longer makes the calls {missing}; "
        "show1_core/schedulers.py overrides them and must be checked against the new version"
    )


def test_the_config_and_tables_the_subclass_reads_are_there():
    scheduler = OriginalDPMSolverMultistepScheduler(algorithm_type="dpmsolver++", final_sigmas_type="sigma_min")
    scheduler.set_timesteps(10)
    assert not [key for key in CONFIG_READ if key not in scheduler.config], "diffusers renamed a scheduler config key"
    for table in TABLES:
        assert getattr(scheduler, table).shape == (1000,), f"diffusers changed the scheduler table {table}"
    assert hasattr(scheduler, "step_index") and callable(scheduler._threshold_sample)
    assert scheduler.uses_original_arithmetic
