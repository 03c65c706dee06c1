"""Shared test fixtures: parity data locations and a tiny model set written once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
COMPACT = FIXTURES / "parity" / "compact"
COMPACT64 = FIXTURES / "parity64" / "case_compact"


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
    """``$SHOW1_PARITY64_DIR`` or ``../shared/parity64`` (float64 case_a), if present."""
    return _shared_dir("SHOW1_PARITY64_DIR", "parity64")


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
    """(case folder, models folder) of the compact float64 set shipped in the tests (same models)."""
    return COMPACT64, COMPACT / "models"


@pytest.fixture(scope="session")
def case_a64() -> tuple[Path, Path]:
    """(case folder, models folder) of the float64 case_a, skipped when it or its models are absent."""
    root, models = shared_parity64_dir(), shared_parity_dir()
    if root is None or models is None:
        pytest.skip(
            "float64 case_a not found: set SHOW1_PARITY64_DIR to the shared parity64 folder and SHOW1_PARITY_DIR to "
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
