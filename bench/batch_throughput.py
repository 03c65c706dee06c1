"""Videos per minute on the tiny models: a loop of ``show1 generate`` runs (what users write today), then
``show1 batch --by video`` and ``--by stage`` over the same prompts, all measured in one invocation as a
user runs them (new processes: start-up, model loading and Ray included). Run by ``run_bench.py --mode tiny``
(``--batch-videos N``), or alone: ``python bench/batch_throughput.py 6``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SMALL = [
    "--keyframes-width", "32", "--keyframes-height", "16", "--keyframes-num-frames", "2", "--keyframes-steps", "2",
    "--interpolation-frames-between", "1", "--interpolation-steps", "1", "--first-frame-steps", "1", "--pixel-sr-steps", "1",
    "--latent-sr-width", "64", "--latent-sr-height", "32", "--latent-sr-steps", "2", "--latent-sr-strength", "0.5",
]  # fmt: skip
"""A video small enough that start-up, loading and scheduling weigh as much as the denoising (the worst case for
a batch engine); every way runs the same settings."""


def _show1(*args: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "show1_core", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"show1 {args[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def measure(videos: int) -> dict:
    """Seconds and videos/min of each way to make ``videos`` tiny videos (distinct prompts, one sample each)."""
    from show1_core.tiny import write_tiny_models

    with tempfile.TemporaryDirectory(prefix="show1-batch-bench-") as tmp:
        root = Path(tmp)
        write_tiny_models(root / "models")
        common = ["--models-dir", str(root / "models"), "--offline", "--device", "cpu", *SMALL]
        prompts = [f"video number {index}" for index in range(videos)]
        (root / "prompts.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
        loop = [_show1("generate", prompt, "-o", str(root / "loop" / f"{i}.mp4"), *common) for i, prompt in enumerate(prompts)]
        seconds = {"generate loop": sum(loop)}
        for mode in ("video", "stage"):
            seconds[f"batch --by {mode}"] = _show1("batch", str(root / "prompts.txt"), "--out", str(root / mode), "--by", mode, *common)
            made = len(list((root / mode).glob("*.mp4")))
            if made != videos:
                raise RuntimeError(f"show1 batch --by {mode} made {made} of {videos} videos")
    return {"videos": videos, "cpus": os.cpu_count(), "seconds": seconds}


def table(results: dict) -> str:
    """The Markdown table: each way's seconds, videos/min and speed against the loop."""
    loop = results["seconds"]["generate loop"]
    lines = [
        f"Batch throughput, {results['videos']} tiny videos on {results['cpus']} CPUs (new processes, as a user runs them):\n",
        "| way | seconds | videos/min | vs generate loop |",
        "|---|---|---|---|",
    ]
    for way, seconds in results["seconds"].items():
        lines.append(f"| {way} | {seconds:.1f} | {60 * results['videos'] / seconds:.2f} | {loop / seconds:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 6)))
