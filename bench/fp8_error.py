"""How far fp8 weight storage moves the results, on the compact parity case's tiny models.

    python bench/fp8_error.py

Runs each piece of tests/fixtures/parity/compact in float32 with and without ``fp8_weights``
(the stages' own code, through :func:`show1_core.parity.run_parity`), and the tiny T5 encoder on
one prompt, and prints per piece the relative RMS difference ``|fp8 - plain| / |plain|`` and the
largest absolute difference, as JSON. tests/test_speed.py holds fp8 to bounds just above these.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from show1_core.parity import run_parity
from show1_core.settings import SpeedSettings
from show1_core.text import EncoderKind, TextEncoder, TextEncoderSpec
from show1_core.tiny import write_tiny_models

COMPACT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "parity" / "compact"
PIECES = ["fwd_base_out", "fwd_interp_out", "fwd_sr1_out", "keyframes", "sr1_first_frame", "sr2_latents", "sr2"]


def difference(ours: torch.Tensor, plain: torch.Tensor) -> dict[str, float]:
    """Relative RMS and largest absolute difference of ``ours`` from ``plain``."""
    delta = ours.double() - plain.double()
    return {"relative_rms": (delta.norm() / plain.double().norm()).item(), "max_abs": delta.abs().max().item()}


def main() -> int:
    """Print the differences as JSON."""
    case, models = COMPACT / "case_compact", COMPACT / "models"
    plain = run_parity(case, models, only=PIECES)
    fp8 = run_parity(case, models, only=PIECES, speed=SpeedSettings(fp8_weights=True))
    report = {name: difference(fp8[name], plain[name]) for name in PIECES}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tiny_models(Path(tmp))["show-1-base"]
        texts = [TextEncoder(TextEncoderSpec(folder, EncoderKind.T5, fp8_weights=f)).encode("a panda", "").positive for f in (False, True)]
    report["t5_embedding"] = difference(texts[1], texts[0])
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
