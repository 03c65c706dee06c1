"""The benchmark scripts run: tiny CPU mode, the released mode's dry run, and the motion-LoRA estimate."""

from __future__ import annotations

import json

import torch
from bench_scripts import bench_script

from show1_core.memory import MemoryPolicy
from show1_core.settings import StageCaches

STEPS = ["text_t5", "keyframes", "interpolated", "pixel_sr", "text_clip", "latent_sr"]


def _bench():
    return bench_script("run_bench")


def _report(bench, tmp_path, monkeypatch, argv: list[str]) -> dict:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    threads = torch.get_num_threads()
    assert bench.main(argv) == 0
    assert torch.get_num_threads() == threads  # the CPU run's single thread is not left behind
    (path,) = tmp_path.glob("*.json")
    assert path.with_suffix(".md").is_file()
    return json.loads(path.read_text())


def test_tiny_mode_compares_configurations_with_the_original_strategy_step_by_step(tmp_path, monkeypatch, capsys):
    bench = _bench()
    argv = ["--mode", "tiny", "--configs", "split-guidance,cache-pab-3", "--cache-steps", "3", "--batch-videos", "0"]
    report = _report(bench, tmp_path, monkeypatch, argv)
    assert list(report["configs"]) == ["original", "split-guidance"]
    for config in report["configs"].values():
        (rows,) = config["runs"]
        assert [row["step"] for row in rows] == STEPS
        assert all(row["seconds"] > 0 and row["peak_gib"] is None and row["host_peak_gib"] is not None for row in rows)
    assert report["configs"]["split-guidance"]["speed"]["split_guidance"]
    printed = capsys.readouterr().out
    assert "| original | 1 |" in printed and "1.00x" in printed and "speed-up vs original" in printed
    assert set(report["planned_tflop"]) == set(STEPS) and all(tflop > 0 for tflop in report["planned_tflop"].values())
    assert "Achieved TFLOP/s per step (first video: planned FLOPs / seconds)" in printed
    _check_the_cache_comparison(report["caches"], printed)


def _check_the_cache_comparison(caches: dict, printed: str) -> None:
    """cache-pab-3 against cache-off, measured in the same run: attention computed at steps 0 and 1, reused at step 2 (of 3)."""
    assert list(caches) == ["cache-off", "cache-pab-3"]
    off, pab = caches["cache-off"]["work"], caches["cache-pab-3"]["work"]
    assert list(off) == ["keyframes", "interpolation", "first_frame", "pixel_sr", "latent_sr"]
    for role in off:
        assert pab[role]["forwards"] == off[role]["forwards"] > 0
        assert pab[role]["attention"] == off[role]["attention"] * 2 // 3
    distance = caches["cache-pab-3"]["distance"]
    assert distance["max_abs"] > 0 and 0 < distance["psnr_db"] < float("inf")
    assert "| cache-off | " in printed and "speed-up vs cache-off" in printed and "video max abs vs cache-off" in printed


def test_the_released_mode_runs_on_the_cpu_as_a_dry_run(tmp_path, monkeypatch):
    bench = _bench()
    report = _report(bench, tmp_path, monkeypatch, ["--mode", "released", "--dry-run", "--configs", "fp8"])
    assert report["mode"] == "released (dry run)" and report["settings"] == "reduced"
    assert list(report["configs"]) == ["original", "fp8"]
    assert [row["step"] for row in report["configs"]["fp8"]["runs"][0]] == STEPS
    unets = [row for row in report["weights"] if not row["model"].startswith("text_")]
    assert len(unets) == 5 and all(row["fp8_gib"] < 0.51 * row["gib"] for row in unets)


def test_every_option_is_benchmarked_and_the_original_strategy_runs_as_the_original():
    bench = _bench()
    configs = {c.name: c for c in bench.configs(torch.device("cpu"))}
    original = configs["original"]
    assert list(configs)[0] == "original" and original.one_window_at_a_time
    assert original.policy_settings == bench.ORIGINAL_STRATEGY
    assert not original.policy_settings.stream_text_encoder and original.policy_settings.vae_frames_per_batch == 1
    assert original.policy_settings.release_after_stage and not original.policy_settings.vae_tiling
    speeds = [c.speed for c in configs.values()]
    assert {MemoryPolicy(p) for p in MemoryPolicy} <= {c.policy for c in configs.values()}
    assert any(s.compile and s.compile_backend == "eager" for s in speeds) and any(s.fp8_weights for s in speeds)
    assert any(s.stream_blocks for s in speeds) and any(s.split_guidance for s in speeds)
    assert any(s.attention == "native" for s in speeds)
    caches = {c.name: c.speed.cache for c in bench.cache_configs()}
    assert list(caches)[0] == bench.CACHE_BASELINE and caches[bench.CACHE_BASELINE] == StageCaches()
    assert {cache.keyframes.method for cache in caches.values()} == {"off", "step", "pab", "taylorseer"}


def test_the_fp8_error_script_measures_every_piece_and_the_t5_encoder(capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models; threads waiting on each other stall on a busy machine
    try:
        assert bench_script("fp8_error").main() == 0
    finally:
        torch.set_num_threads(threads)
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {
        "fwd_base_out",
        "fwd_interp_out",
        "fwd_sr1_out",
        "keyframes",
        "sr1_first_frame",
        "sr2_latents",
        "sr2",
        "t5_embedding",
    }
    assert all(0 < value["relative_rms"] < 0.5 and value["max_abs"] > 0 for value in report.values())


def test_the_motion_lora_estimate_covers_every_temporal_attention_projection_of_the_released_model(capsys):
    estimate = bench_script("motion_lora_estimate")
    assert estimate.main(["--rank", "16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sample"] == "1 x 8 frames x 64x40"
    assert report["adapted_layers"] == 22 * 8  # 22 temporal transformers, q/k/v/out of two attentions each
    assert 1500 < report["base_parameters_M"] < 2000 and 0 < report["adapter_parameters_M"] < 0.01 * report["base_parameters_M"]
    assert report["largest_block_outputs_bf16_GB"] < report["layer_outputs_bf16_GB"] and report["forward_TFLOP"] > 1
