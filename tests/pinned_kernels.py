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
returns its tensors. On pytest-xdist's workers, which each run only some files, a child starts
when a file's first pinned test asks, for that file's jobs. The comparisons stay in the tests. Where the recipe cannot apply
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
    """The child processes that compute the float64 jobs under the recipe, and the folders they write them to."""

    out: Path
    jobs: dict[str, dict[str, Any]]
    users: dict[str, set[str]] = field(default_factory=dict)
    """The test files that use each job: a child started for one file computes only that file's jobs."""
    children: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)
    """Each child and its folder."""
    child_of: dict[str, int] = field(default_factory=dict)
    """The child computing each started job."""
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self, for_file: str | None = None) -> None:
        """Start a child in the background for the jobs no child computes yet: all of them, or those ``for_file`` uses."""
        wanted = {
            job: spec
            for job, spec in self.jobs.items()
            if job not in self.child_of and (for_file is None or for_file in self.users.get(job, {for_file}))
        }
        if not wanted:
            return
        folder = self.out / f"child-{len(self.children)}"
        folder.mkdir(parents=True)
        (folder / "jobs.json").write_text(json.dumps(wanted, indent=1))
        with (folder / "worker.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, str(WORKER), str(folder / "jobs.json"), str(folder)],
                env=recipe_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.children.append((process, folder))
        self.child_of.update(dict.fromkeys(wanted, len(self.children) - 1))

    def stop(self) -> None:
        """End the children still running (a session cut short)."""
        for process, _ in self.children:
            if process.poll() is None:
                process.kill()
                process.wait()

    def results(self, job: str, for_file: str | None = None) -> dict[str, Any]:
        """The job's tensors (and its ``meta`` dict), waiting for its child (started here, for ``for_file``'s jobs, if
        none computes it yet); raises ``Skipped`` where the recipe cannot apply."""
        if job in self.loaded:
            return self.loaded[job]
        if job not in self.jobs:
            raise KeyError(f"pinned job {job!r} was not requested: mark the test with @pytest.mark.pinned_float64({job!r})")
        if job not in self.child_of:
            self.start(for_file)
        process, folder = self.children[self.child_of[job]]
        done = folder / f"{job}.json"  # written after the job's tensors
        deadline = time.monotonic() + WAIT_SECONDS
        while not done.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if (folder / SKIPPED).is_file():
            raise RecipeUnavailable(json.loads((folder / SKIPPED).read_text())["reason"])
        if not done.is_file():
            log = (folder / "worker.log").read_text()[-4000:]
            raise RuntimeError(f"the pinned-kernel worker failed (exit {process.poll()}):\n{log}")
        tensors: dict[str, Any] = load_file(str(folder / f"{job}.safetensors"))
        tensors["meta"] = json.loads(done.read_text())
        self.loaded[job] = tensors
        return tensors


class RecipeUnavailable(Exception):
    """The pinned kernel recipe does not take on this machine."""
