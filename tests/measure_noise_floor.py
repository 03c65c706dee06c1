"""Measure the float32 noise floor of every tensor of the float32 parity cases.

    python tests/measure_noise_floor.py [--case-a DIR --models-a DIR]

A float32 reference tensor carries its own rounding error: its distance from the exact
result of the same computation. The exact result is the float64 run of the same inputs with
the *same* random numbers. The float64 fixtures cannot serve here, because the original
draws its noise in the run's precision (float64 noise is a different sample), so this
script runs show1 itself in float64 (proven within 1e-10 of the original's float64 runs by
tests/test_parity.py) with every random draw made in float32 and widened. The distance of
the float32 reference from that run is the floor no float32 implementation can be expected
to beat; tests/test_parity.py bounds the float32 comparison with it. The result is written
to tests/fixtures/parity/noise_floor.json (see docs/STAGES.md, "Numerics").
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import diffusers.models.autoencoders.vae as vae_module
import diffusers.schedulers.scheduling_ddim as ddim_module
import diffusers.schedulers.scheduling_ddpm as ddpm_module
import torch
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import load_file

import show1_core.stages.sampling as sampling_module
from show1_core.parity import run_parity

HERE = Path(__file__).resolve().parent
FLOOR_FILE = HERE / "fixtures" / "parity" / "noise_floor.json"
COMPACT = HERE / "fixtures" / "parity" / "compact"
DRAWING_MODULES = (sampling_module, ddpm_module, ddim_module, vae_module)


def _draw_in_float32(shape, generator=None, device=None, dtype=None, layout=None):
    return randn_tensor(shape, generator=generator, device=device, dtype=torch.float32, layout=layout).to(dtype)


@contextmanager
def noise_drawn_in_float32() -> Iterator[None]:
    """Every random draw of the cascade made in float32 and widened to the run's precision."""
    for module in DRAWING_MODULES:
        module.randn_tensor = _draw_in_float32
    try:
        yield
    finally:
        for module in DRAWING_MODULES:
            module.randn_tensor = randn_tensor


def noise_floor(case_dir: Path, models_dir: Path) -> dict[str, float]:
    """Max-abs distance of each float32 reference tensor from the exact run of its own inputs."""
    reference = load_file(str(case_dir / "tensors.safetensors"))
    with noise_drawn_in_float32():
        exact = run_parity(case_dir, models_dir, dtype=torch.float64)
    return {
        name: float((reference[name].double() - tensor.double()).abs().max())
        for name, tensor in exact.items()
        if tensor.is_floating_point()
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every case available and write the floors."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case-a", type=Path, default=HERE.parent.parent / "shared" / "parity" / "case_a")
    parser.add_argument("--models-a", type=Path, default=HERE.parent.parent / "shared" / "parity" / "models")
    args = parser.parse_args(argv)
    floors = {"case_compact": noise_floor(COMPACT / "case_compact", COMPACT / "models")}
    if (args.case_a / "case.json").is_file():
        floors["case_a"] = noise_floor(args.case_a, args.models_a)
    FLOOR_FILE.write_text(json.dumps(floors, indent=2, sort_keys=True) + "\n")
    for case, values in floors.items():
        print(case, {name: f"{value:.2e}" for name, value in values.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
