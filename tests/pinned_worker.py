"""Compute float64 jobs for the tests in a process started under the pinned kernel recipe.

    python tests/pinned_worker.py JOBS.json OUT_DIR

Started by tests/pinned_kernels.py with the recipe in its environment. It first checks that
the recipe took (torch reports AVX2 kernels); where it did not, it writes ``skipped.json``
with the reason and computes nothing. Each job writes ``<job>.safetensors`` (its tensors)
and ``<job>.json`` (what else the test needs: the kernel set, compiled-graph counts).

Job kinds:

- ``parity``: :func:`show1_core.parity.run_parity` in float64 on ``case``/``models``, for the
  pieces in ``only`` (all by default), with ``speed`` (SpeedSettings fields) applied, and with
  current diffusers' DPM-Solver++ instead of the original's arithmetic when
  ``stock_dpm_solver`` is set.
- ``compiled_keyframes``: the case's keyframes from a compiled model, twice (two models of the
  same shapes), with the compiled-graph count after every step of each.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from pinned_kernels import PINNED_CAPABILITY, SKIPPED
from safetensors.torch import save_file


def _parity(job: dict) -> tuple[dict[str, torch.Tensor], dict]:
    from diffusers import DPMSolverMultistepScheduler

    import show1_core.loading.components as components
    from show1_core.parity import run_parity
    from show1_core.settings import SpeedSettings

    original = components.SCHEDULERS["DPMSolverMultistepScheduler"]
    if job.get("stock_dpm_solver"):
        components.SCHEDULERS["DPMSolverMultistepScheduler"] = DPMSolverMultistepScheduler
    try:
        speed = SpeedSettings(**job.get("speed", {}))
        return run_parity(Path(job["case"]), Path(job["models"]), job.get("only"), torch.float64, speed), {}
    finally:
        components.SCHEDULERS["DPMSolverMultistepScheduler"] = original  # later jobs use the original's arithmetic


def _compiled_keyframes(job: dict) -> tuple[dict[str, torch.Tensor], dict]:
    from speed_support import compiled_keyframes
    from torch._dynamo.utils import counters

    counters.clear()
    first: list[int] = []
    second: list[int] = []
    keyframes = compiled_keyframes(Path(job["case"]), Path(job["models"]), torch.float64, first)
    compiled_keyframes(Path(job["case"]), Path(job["models"]), torch.float64, second)
    return {"keyframes": keyframes}, {"graphs_first_model": first, "graphs_second_model": second}


KINDS = {"parity": _parity, "compiled_keyframes": _compiled_keyframes}


def main(jobs_file: str, out: str) -> int:
    """Run every job of ``jobs_file`` into ``out``; exit 0 also when the recipe cannot apply (``skipped.json`` says why)."""
    out_dir = Path(out)
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != PINNED_CAPABILITY or torch.get_num_threads() != 1:
        reason = f"the pinned kernel recipe did not take here: torch runs {capability} kernels on {torch.get_num_threads()} threads"
        (out_dir / SKIPPED).write_text(json.dumps({"reason": reason}))
        print(reason)
        return 0
    for name, job in json.loads(Path(jobs_file).read_text()).items():
        started = time.perf_counter()
        tensors, meta = KINDS[job["kind"]](job)
        meta.update(capability=capability, seconds=round(time.perf_counter() - started, 1))
        save_file({key: value.contiguous() for key, value in tensors.items()}, str(out_dir / f"{name}.safetensors"))
        partial = out_dir / f"{name}.json.partial"
        partial.write_text(json.dumps(meta))
        partial.replace(out_dir / f"{name}.json")  # the parent reads a job once this name exists
        print(f"{name}: {meta['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
