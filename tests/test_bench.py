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


def test_the_motion_lora_estimate_covers_every_temporal_attention_projection_of_the_released_model(capsys):
    spec = importlib.util.spec_from_file_location("motion_lora_estimate", BENCH.parent / "motion_lora_estimate.py")
    estimate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(estimate)
    assert estimate.main(["--rank", "16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sample"] == "1 x 8 frames x 64x40"
    assert report["adapted_layers"] == 22 * 8  # 22 temporal transformers, q/k/v/out of two attentions each
    assert 1500 < report["base_parameters_M"] < 2000 and 0 < report["adapter_parameters_M"] < 0.01 * report["base_parameters_M"]
    assert report["largest_block_outputs_bf16_GB"] < report["layer_outputs_bf16_GB"] and report["forward_TFLOP"] > 1
