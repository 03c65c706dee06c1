"""Float64 exactness under pinned CPU kernels: jobs run once per test session in a child process.

The original Show-1 code's float64 results depend on the CPU kernels that ran it: AVX2 or
AVX-512 vector code, MKL's automatic or reproducible path and the thread count move its
chaotic stages by up to 1e-4 (docs/STAGES.md, "What exact means"). The pinned fixtures
(``parity64/pinned``) were made under one recipe of environment variables, and a faithful
implementation matches them to ~1e-13 only when it runs under the same recipe. The variables
act only if they are set before torch initialises, so every float64 comparison with those
fixtures is computed here, in one child process started with the recipe, while the test
session itself keeps whatever kernels the machine and the user chose.

A test asks for a job by name with ``@pytest.mark.pinned_float64("job")`` and the
``pinned_float64`` fixture (tests/conftest.py): once collection is done the child starts in
the background with every job the selected tests need, those tests are moved to the end of the
run (so the rest of the suite overlaps the child's work), and the fixture waits for the job and
returns its tensors. The comparisons stay in the tests. Where the recipe cannot apply
(no AVX2: an ARM machine, an old x86 CPU) the child says so and those tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
WORKER = HERE / "pinned_worker.py"
RECIPE = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
"""The recipe of ``parity64/pinned/README.md``: AVX2 kernels, MKL's reproducible path, one thread."""
PINNED_CAPABILITY = "AVX2"
"""What ``torch.backends.cpu.get_cpu_capability()`` reports when the recipe took."""
SKIPPED = "skipped.json"
"""Written by the worker instead of results when the recipe cannot apply on this machine."""
WAIT_SECONDS = 1800


def recipe_environment() -> dict[str, str]:
    """This process's environment with the recipe set, and the tests folder importable."""
    environment = dict(os.environ)
    environment.update(RECIPE)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), environment.get("PYTHONPATH")]))
    return environment


@dataclass
class PinnedRun:
    """The child process that computes the float64 jobs under the recipe, and where it writes them."""

    out: Path
    jobs: dict[str, dict[str, Any]]
    users: dict[str, set[str]] = field(default_factory=dict)
    """The test files that use each job: a run started for one file computes only that file's jobs."""
    process: subprocess.Popen | None = None
    log: Path = field(init=False)
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log = self.out / "worker.log"

    def start(self, for_file: str | None = None) -> None:
        """Start the worker in the background (once), for every job or only those ``for_file`` uses."""
        if self.process is not None:
            return
        if for_file is not None:
            self.jobs = {job: spec for job, spec in self.jobs.items() if for_file in self.users.get(job, {for_file})}
        if not self.jobs:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "jobs.json").write_text(json.dumps(self.jobs, indent=1))
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), str(self.out / "jobs.json"), str(self.out)],
                env=recipe_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        """End the worker if it is still running (a session cut short)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def results(self, job: str, for_file: str | None = None) -> dict[str, Any]:
        """The job's tensors (and its ``meta`` dict), waiting for the worker (started here, for ``for_file``'s jobs, if it
        was not yet); raises ``Skipped`` where the recipe cannot apply."""
        if job in self.loaded:
            return self.loaded[job]
        if job not in self.jobs:
            raise KeyError(f"pinned job {job!r} was not requested: mark the test with @pytest.mark.pinned_float64({job!r})")
        self.start(for_file)
        assert self.process is not None
        done = self.out / f"{job}.json"  # written after the job's tensors
        deadline = time.monotonic() + WAIT_SECONDS
        while not done.is_file() and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if (self.out / SKIPPED).is_file():
            raise RecipeUnavailable(json.loads((self.out / SKIPPED).read_text())["reason"])
        if not done.is_file():
            raise RuntimeError(f"the pinned-kernel worker failed (exit {self.process.poll()}):\n{self.log.read_text()[-4000:]}")
        tensors: dict[str, Any] = load_file(str(self.out / f"{job}.safetensors"))
        tensors["meta"] = json.loads((self.out / f"{job}.json").read_text())
        self.loaded[job] = tensors
        return tensors


class RecipeUnavailable(Exception):
    """The pinned kernel recipe does not take on this machine."""
