"""The benchmark script runs (tiny CPU mode) and reports every cascade step."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run_bench.py"


def test_tiny_benchmark_reports_every_step(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    assert bench.main(["--mode", "tiny"]) == 0
    report = json.loads(next(tmp_path.glob("tiny-*.json")).read_text())
    steps = [row["step"] for row in report["policies"]["balanced"]]
    assert steps == ["text_t5", "keyframes", "interpolated", "pixel_sr", "text_clip", "latent_sr"]
    assert all(row["seconds"] > 0 for row in report["policies"]["balanced"])
    assert report["interpolation_batching"]["speedup"] > 0
