"""Shared test fixtures: parity data locations and a tiny model set written once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
COMPACT = FIXTURES / "parity" / "compact"


def shared_parity_dir() -> Path | None:
    """``$SHOW1_PARITY_DIR`` or ``../shared/parity`` beside the checkout, if it holds case_a."""
    candidates = [os.environ.get("SHOW1_PARITY_DIR"), REPO.parent / "shared" / "parity"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "case_a" / "case.json").is_file():
            return Path(candidate)
    return None


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
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny random model set in the released layout (pickled .bin, as released)."""
    from show1_core.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_root(tiny_models) -> Path:
    """Folder holding every tiny checkpoint folder."""
    return next(iter(tiny_models.values())).parent
