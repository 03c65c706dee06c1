"""``show1 batch`` on a real local Ray cluster (2 CPUs; two GPUs stood in by the custom resource ``show1_gpu``,
so the placement logic runs as on GPUs): both modes make the videos ``show1 generate`` makes for the same seeds,
and a batch whose worker is killed and whose driver is stopped resumes to the full, correct set, redoing nothing
it had finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import psutil
import pytest
import torch
from bench_scripts import bench_script

from show1_core.batch import BatchOptions, Spread, run_batch
from show1_core.batch.manifest import DONE, Manifest
from show1_core.cli import _settings_from, build_parser, main
from show1_core.model_setup import ModelSetup

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parent.parent
TINY = bench_script("batch_throughput").SMALL
"""The smallest cascade the batch benchmark times (bench/batch_throughput.py), as ``show1`` flags."""
TINY_SETTINGS = _settings_from(build_parser().parse_args(["batch", "prompts.txt", "--out", "videos", *TINY]))
FAKE_GPU = "show1_gpu"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for the module: 2 CPUs and 2 stand-in GPUs; yields its address for other drivers."""
    ray.init(num_cpus=2, resources={FAKE_GPU: 2}, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("a cat\na dog on a skateboard\n", encoding="utf-8")
    return path


def _frames(path: Path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader])


def _batch_cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "show1_core", "batch", *args]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(folder: Path) -> list[str]:
    return [row.item for row in Manifest(folder).rows() if row.status == DONE]


def _wait_for(condition, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _cascade_workers() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "CascadeWorker" in " ".join(p.info["cmdline"] or [])]


NAMES = sorted(f"{prompt}-{sample}" for prompt in ("a cat", "a dog on a skateboard") for sample in range(4))


@pytest.fixture(scope="module")
def by_video(cluster, prompts, tiny_root, tmp_path_factory):
    """``show1 batch --by video`` from the command line, joining the module's cluster: a worker is killed once the
    first video is in, the driver stopped with Ctrl-C once three are, and the same command run again."""
    out = tmp_path_factory.mktemp("by-video") / "videos"
    flags = ["--models-dir", str(tiny_root), "--offline", "--device", "cpu", "--samples", "4", *TINY]
    command = [str(prompts), "--out", str(out), "--ray-address", cluster, "--worker-resource", FAKE_GPU, *flags]
    driver = _batch_cli(*command, cwd=out.parent)
    _wait_for(lambda: len(_done(out)) >= 1 or driver.poll() is not None)
    workers = _cascade_workers()
    assert workers, "no cascade worker found"
    workers[0].send_signal(signal.SIGKILL)  # a worker dies mid-batch: Ray restarts it and runs its video again
    _wait_for(lambda: len(_done(out)) >= 3 or driver.poll() is not None)
    driver.send_signal(signal.SIGINT)  # Ctrl-C
    _, stopped = driver.communicate(timeout=120)
    finished = _done(out)
    kept = {name: (out / f"{name}.mp4").stat().st_mtime_ns for name in finished}
    again = _batch_cli(*command, cwd=out.parent)
    _, resumed = again.communicate(timeout=300)
    return {"out": out, "stopped": (driver.returncode, stopped, finished, kept), "resumed": (again.returncode, resumed)}


def test_a_killed_worker_and_a_stopped_driver_lose_nothing_finished_and_the_batch_resumes(by_video):
    out = by_video["out"]
    code, stderr, finished, kept = by_video["stopped"]
    assert code == 130 and "run the same command to make the rest" in stderr, stderr
    assert 3 <= len(finished) < len(NAMES), "the batch must be stopped part-way for this test to mean anything"
    code, stderr = by_video["resumed"]
    assert code == 0, stderr
    assert f"{len(NAMES)} videos: {len(finished)} done before, {len(NAMES) - len(finished)} to make" in stderr
    assert "workers: cascade 2 (show1_gpu 1 each)" in stderr
    assert sorted(_done(out)) == NAMES  # each video made once: nothing finished was made again
    assert {name: (out / f"{name}.mp4").stat().st_mtime_ns for name in finished} == kept
    rows = Manifest(out).latest()
    assert all(set(rows[name].stage_seconds) == {"text", "keyframes", "interpolation", "pixel_sr", "latent_sr"} for name in NAMES)


def test_by_video_makes_what_show1_generate_makes_for_each_seed(by_video, tiny_root, tmp_path):
    out, rows = by_video["out"], Manifest(by_video["out"]).latest()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker with one CPU runs
    try:
        for name in ("a cat-1", "a dog on a skateboard-2"):
            row = rows[name]
            video = tmp_path / f"{name}.mp4"
            argv = ["generate", row.prompt, "-o", str(video), "--seed", str(row.seed), "--models-dir", str(tiny_root), "--offline"]
            assert main([*argv, "--device", "cpu", *TINY]) == 0
            assert np.array_equal(_frames(video), _frames(out / f"{name}.mp4")), name
    finally:
        torch.set_num_threads(threads)


def test_by_stage_makes_the_same_videos_through_a_pipeline_of_stage_pools(cluster, by_video, prompts, tiny_root, tmp_path):
    setup = ModelSetup(models_dir=str(tiny_root), offline=True, device="cpu")
    options = BatchOptions(TINY_SETTINGS, 2, setup, Spread(by="stage", worker_resource=FAKE_GPU))
    result = run_batch(prompts, tmp_path, options, stream=None)  # the Python API, on the caller's Ray session
    assert (result.done, result.failed, result.missing) == (4, 0, 0)
    assert result.workers == {"text": 1, "keyframes": 1, "interpolation": 1, "pixel_sr": 1, "latent_sr": 1}
    assert [row.item for row in result.rows] == [f"{p}-{s}" for p in ("a cat", "a dog on a skateboard") for s in range(2)]
    assert "pixel_sr" in result.summary() and "up to" in result.summary()
    for row in result.rows:
        assert np.array_equal(_frames(tmp_path / row.file), _frames(by_video["out"] / row.file)), row.item
