"""Many videos on Ray: ``show1 batch`` and its Python API (docs/BATCH.md).

:func:`run_batch` reads a prompt file (:mod:`.prompts`), names and seeds every video (:mod:`.items`),
checks everything before any work, skips what the output folder's manifest (:mod:`.manifest`) says
is finished, and runs the rest on a Ray cluster (:mod:`.pipeline`), whole cascades per worker or one
pool of workers per stage (:mod:`.workers`). Ray is optional: ``pip install "show1[ray]"``.
"""

from __future__ import annotations

from .items import BatchItem, derive_seed
from .manifest import ManifestRow
from .options import MODES, POOLS, BatchOptions, Spread
from .prompts import PromptEntry, read_prompts
from .run import BatchResult, prepare_batch, run_batch

__all__ = [
    "MODES",
    "POOLS",
    "BatchItem",
    "BatchOptions",
    "BatchResult",
    "ManifestRow",
    "PromptEntry",
    "Spread",
    "derive_seed",
    "prepare_batch",
    "read_prompts",
    "run_batch",
]
