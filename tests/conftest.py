"""Shared test fixtures: parity data locations, a tiny model set written once per session, and the
float64 jobs that run under pinned CPU kernels (tests/pinned_kernels.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from pinned_kernels import PinnedRun, RecipeUnavailable

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
COMPACT = FIXTURES / "parity" / "compact"
PINNED_RUN = pytest.StashKey[PinnedRun]()


def _shared_dir(variable: str, name: str) -> Path | None:
    """``$variable`` or ``../shared/<name>`` beside the checkout, if it holds case_a."""
    for candidate in (os.environ.get(variable), REPO.parent / "shared" / name):
        if candidate and (Path(candidate) / "case_a" / "case.json").is_file():
            return Path(candidate)
    return None


def shared_parity_dir() -> Path | None:
    """``$SHOW1_PARITY_DIR`` or ``../shared/parity`` (float32 case_a and its models), if present."""
    return _shared_dir("SHOW1_PARITY_DIR", "parity")


def shared_parity64_dir() -> Path | None:
    """``$SHOW1_PARITY64_DIR`` or ``../shared/parity64/pinned`` (float64 case_a made under the pinned recipe), if present."""
    return _shared_dir("SHOW1_PARITY64_DIR", "parity64/pinned")


def pinned_case(name: str) -> tuple[Path, Path] | None:
    """(case folder, models folder) of a float64 case the pinned jobs can name, or None where its data is absent."""
    root = shared_parity64_dir()
    if name == "compact":
        return (root / "compact" / "case_compact", COMPACT / "models") if root else None
    models = shared_parity_dir()
    return (root / "case_a", models / "models") if name == "case_a" and root and models else None


def _xdist_worker() -> bool:
    """Whether this session is one of pytest-xdist's workers, which runs only part of the collected tests."""
    return "PYTEST_XDIST_WORKER" in os.environ


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_worker():  # a worker per core: one thread each (and in the processes it starts), or OpenMP threads stall
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)
    config.addinivalue_line(
        "markers",
        "pinned_float64(job, case, kind='parity', **options): the test compares the float64 job `job`, "
        "computed under the pinned kernel recipe in a child process (tests/pinned_kernels.py)",
    )


SLOWEST_FILES = (
    "tests/test_motion_training.py",
    "tests/test_batch_ray.py",
    "tests/test_parity.py",
    "tests/test_comfy_workflows.py",
    "tests/test_bench.py",
    "tests/test_training.py",
    "tests/test_plan.py",
)
"""Test files of a minute or more on the CI machine: on two xdist workers they start first, so that neither worker is
left alone with one of them at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that compare pinned-kernel jobs last, so the rest of the suite overlaps the pinned worker."""
    items.sort(key=lambda item: item.get_closest_marker("pinned_float64") is not None)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's ``--dist loadfile``, handing out :data:`SLOWEST_FILES` first (it starts with the files of most tests)."""
    from xdist.scheduler import LoadFileScheduling

    class SlowestFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node) -> None:
            for name in reversed(SLOWEST_FILES):
                if name in self.workqueue:
                    self.workqueue.move_to_end(name, last=False)
            super()._assign_work_unit(node)

    return SlowestFilesFirst(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the pinned-kernel worker in the background with every job the selected tests need. An xdist worker
    runs only some test files, unknown here: it starts the pinned worker when its first pinned test asks, for the
    jobs of that test's file (tests of one file run on one worker: ``--dist loadfile``)."""
    jobs: dict[str, dict] = {}
    users: dict[str, set[str]] = {}
    for item in session.items:
        marker = item.get_closest_marker("pinned_float64")
        if marker is None or any(skip.args and skip.args[0] is True for skip in item.iter_markers("skipif")):
            continue
        spec = {"kind": "parity", **marker.kwargs}
        case = pinned_case(spec.pop("case"))
        if case is None:
            continue
        spec.update(case=str(case[0]), models=str(case[1]))
        if jobs.setdefault(marker.args[0], spec) != spec:
            raise pytest.UsageError(f"pinned job {marker.args[0]!r} is declared twice with different options")
        users.setdefault(marker.args[0], set()).add(str(item.path))
    run = PinnedRun(Path(tempfile.mkdtemp(prefix="show1-pinned-")), jobs, users)
    session.config.stash[PINNED_RUN] = run
    if not session.config.option.collectonly and not _xdist_worker():
        run.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(PINNED_RUN, None)
    if run is not None:
        run.stop()
        shutil.rmtree(run.out, ignore_errors=True)


@pytest.fixture(scope="module")
def one_thread():
    """PyTorch on one thread for a module: the tiny models gain nothing from threads, and threads that wait on each
    other stall on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pinned_float64(request: pytest.FixtureRequest) -> dict:
    """The tensors (and ``meta``) of the test's ``pinned_float64`` job; skips where the recipe or the case's data is absent."""
    marker = request.node.get_closest_marker("pinned_float64")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses pinned_float64 without the pinned_float64 marker")
    if pinned_case(marker.kwargs["case"]) is None:
        pytest.skip(
            f"float64 {marker.kwargs['case']} not found: set SHOW1_PARITY64_DIR to the shared parity64/pinned folder and "
            "SHOW1_PARITY_DIR to the shared parity folder (its models/)"
        )
    try:
        return request.config.stash[PINNED_RUN].results(marker.args[0], str(request.node.path))
    except RecipeUnavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="session")
def compact_case() -> tuple[Path, Path]:
    """(case folder, models folder) of the compact parity set shipped in the tests."""
    return COMPACT / "case_compact", COMPACT / "models"


@pytest.fixture(scope="session")
def case_a() -> tuple[Path, Path]:
    """(case folder, models folder) of the larger case_a set, skipped when absent."""
    root = shared_parity_dir()
    if root is None:
        pytest.skip("case_a parity data not found: set SHOW1_PARITY_DIR to the shared parity folder (with case_a/ and models/)")
    return root / "case_a", root / "models"


@pytest.fixture(scope="session")
def compact64_case() -> tuple[Path, Path]:
    """(case folder, models folder) of the pinned float64 compact case in ``../shared/parity64/pinned``, skipped when absent."""
    case = pinned_case("compact")
    if case is None:
        pytest.skip("float64 compact case not found: set SHOW1_PARITY64_DIR to the shared parity64/pinned folder")
    return case


@pytest.fixture(scope="session")
def case_a64() -> tuple[Path, Path]:
    """(case folder, models folder) of the float64 case_a, skipped when it or its models are absent."""
    root, models = shared_parity64_dir(), shared_parity_dir()
    if root is None or models is None:
        pytest.skip(
            "float64 case_a not found: set SHOW1_PARITY64_DIR to the shared parity64/pinned folder and SHOW1_PARITY_DIR to "
            "the shared parity folder (its models/)"
        )
    return root / "case_a", models / "models"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny random model set in the released layout (pickled .bin, as released)."""
    from show1_core.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_root(tiny_models) -> Path:
    """Folder holding every tiny checkpoint folder."""
    return next(iter(tiny_models.values())).parent
