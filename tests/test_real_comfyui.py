"""The pack inside a real ComfyUI server (only where ``$COMFYUI_DIR`` points at a prepared checkout).

Starts ComfyUI on 127.0.0.1 with this checkout in ``custom_nodes`` and the tiny models, then

* runs the checks of the real-ComfyUI harness (``$SHOW1_REAL_COMFY_DIR``, default
  ``../shared/real_comfy`` beside the checkout): the pack's import, ``/object_info``, every API
  workflow, Cancel, broken prompts; its ``SUMMARY`` line must report every check passed;
* fetches every node's help page from the path ComfyUI's frontend requests;
* runs the templates that load a video on an uploaded video with a sound track, and finds the
  sound track in the saved video;
* runs the keyframes template through a *Show-1 Motion LoRA* node with a LoRA file in ComfyUI's
  ``models/loras``: strength 0 saves the plain model's video, strength 1 another;
* lists the templates as the Templates browser does, fetches each one and its thumbnail, and
  finds no hint in the (debug-level) log to rename the templates folder.

This does what the harness's ``run_checks.sh`` does (link the pack, start the server, run
``check_server.py``, stop the server by its PID), with the server shared by both tests and
this checkout's ``show1_core`` first on the server's path, so another installed copy cannot
stand in for it; ``check_server.py`` runs through ``tests/real_comfy_checks.py``, which adapts
it to the pack's stage-wide progress. The server runs with ``$COMFYUI_PYTHON`` (default
``$COMFYUI_DIR/../venv/bin/python``, the harness's default), which needs ComfyUI's requirements,
the pack's, ``websocket-client`` and ``av``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
HELP_PAGES = REPO / "web" / "docs"
START_TIMEOUT_S = 240
CHECKS_TIMEOUT_S = 1500


@dataclass(frozen=True)
class Server:
    """A running ComfyUI server and what the harness needs to know about it."""

    url: str
    comfy_dir: Path
    pack_dir: Path
    python: Path
    harness: Path
    log: Path
    out: Path
    models: Path


def _prepared() -> tuple[Path, Path, Path]:
    """(ComfyUI checkout, its Python, harness folder), or a skip that says what is missing."""
    if not os.environ.get("COMFYUI_DIR"):
        pytest.skip("set COMFYUI_DIR to a prepared ComfyUI checkout to run the pack in a real ComfyUI")
    comfy_dir = Path(os.environ["COMFYUI_DIR"]).expanduser().resolve()
    if not (comfy_dir / "main.py").is_file():
        pytest.skip(f"COMFYUI_DIR={comfy_dir} holds no ComfyUI main.py")
    python = Path(os.environ.get("COMFYUI_PYTHON") or comfy_dir.parent / "venv" / "bin" / "python").expanduser()
    if not python.is_file():
        pytest.skip(f"no Python for ComfyUI at {python}: set COMFYUI_PYTHON to the python of ComfyUI's venv")
    harness = Path(os.environ.get("SHOW1_REAL_COMFY_DIR") or REPO.parent / "shared" / "real_comfy").expanduser()
    if not (harness / "check_server.py").is_file():
        pytest.skip(f"the real-ComfyUI harness is not at {harness}: set SHOW1_REAL_COMFY_DIR to its folder")
    return comfy_dir, python, harness


def _pack_link(comfy_dir: Path) -> tuple[Path, bool]:
    """The ``custom_nodes`` entry that leads to this checkout, linking ``custom_nodes/show1`` if none does."""
    custom_nodes = comfy_dir / "custom_nodes"
    for entry in sorted(custom_nodes.iterdir()):
        if entry.resolve() == REPO:
            return entry, False
    link = custom_nodes / "show1"
    if link.exists() or link.is_symlink():
        pytest.skip(f"{link} is another copy of the pack; link this checkout into {custom_nodes} under another name")
    link.symlink_to(REPO, target_is_directory=True)
    return link, True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def _wait_until_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    """As run_checks.sh: the log says the server is up and /system_stats answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ComfyUI exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        if "To see the GUI go to" in log.read_text(errors="replace") and _get(f"{url}/system_stats")[0] == 200:
            return
        time.sleep(1)
    pytest.fail(f"ComfyUI was not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    comfy_dir, python, harness = _prepared()
    from show1_core.tiny import write_tiny_models

    work = tmp_path_factory.mktemp("real-comfyui")
    write_tiny_models(work / "tiny")
    engine_path = work / "pythonpath"  # this checkout's show1_core, and nothing else of it, first on the path
    engine_path.mkdir()
    (engine_path / "show1_core").symlink_to(REPO / "show1_core", target_is_directory=True)
    pack_dir, linked_here = _pack_link(comfy_dir)
    url, log = f"http://127.0.0.1:{_free_port()}", work / "server.log"
    env = {**os.environ, "SHOW1_MODELS_DIR": str(work / "tiny")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(engine_path), os.environ.get("PYTHONPATH")]))
    command = [
        str(python),
        "main.py",
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1],
        "--disable-auto-launch",
        "--verbose",
        "DEBUG",  # ComfyUI logs its hint to rename a templates folder at debug level
        "--preview-method",
        "latent2rgb",  # the harness checks one preview per denoising step
    ]
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=comfy_dir, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, url, log)
        yield Server(url, comfy_dir, pack_dir, python, harness, log, work / "out", work / "tiny")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if linked_here:
            pack_dir.unlink()


def test_the_real_comfyui_harness_passes_every_check(server):
    """Checks 1-5 of the harness, every workflow shrunk (--shrink-all, as run_checks.sh --quick)."""
    command = [
        str(server.python),
        str(REPO / "tests" / "real_comfy_checks.py"),
        str(server.harness),
        "--url",
        server.url,
        "--comfy-dir",
        str(server.comfy_dir),
        "--pack-dir",
        str(server.pack_dir),
        "--log",
        str(server.log),
        "--out",
        str(server.out),
        "--shrink-all",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=CHECKS_TIMEOUT_S)
    summary = [line for line in result.stdout.splitlines() if line.startswith("SUMMARY")]
    report = f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert summary, f"the harness printed no SUMMARY line:\n{report}"
    counts = re.search(r"(\d+)/(\d+) checks pass", summary[-1])
    assert counts and counts[1] == counts[2] and int(counts[2]) > 0, f"{summary[-1]}\n{report}"
    assert result.returncode == 0, report


def _custom_node_name(python_module: str) -> str:
    """The frontend's ``extractCustomNodeName``: ``custom_nodes.<folder>[@version]`` -> ``<folder>``."""
    parts = python_module.split(".")
    assert len(parts) >= 2 and parts[0] == "custom_nodes", python_module
    return parts[1].split("@")[0]


def test_every_help_page_is_served_where_the_frontend_asks(server):
    status, body = _get(f"{server.url}/object_info")
    assert status == 200
    info = json.loads(body)
    ours = {node_id: node for node_id, node in info.items() if node.get("python_module") == f"custom_nodes.{server.pack_dir.name}"}
    assert set(ours) == {page.stem for page in HELP_PAGES.glob("*.md")}
    for node_id, node in ours.items():
        folder = urllib.parse.quote(_custom_node_name(node["python_module"]))
        status, body = _get(f"{server.url}/extensions/{folder}/docs/{node_id}.md")
        assert status == 200, f"{node_id}: HTTP {status}"
        assert body.decode() == (HELP_PAGES / f"{node_id}.md").read_text(), node_id


def test_the_templates_browser_lists_every_template_with_its_thumbnail(server):
    templates = REPO / "example_workflows"
    status, body = _get(f"{server.url}/workflow_templates")
    assert status == 200
    assert sorted(json.loads(body)[server.pack_dir.name]) == sorted(p.stem for p in templates.glob("*.json"))
    for workflow in templates.glob("*.json"):
        for path in (workflow, workflow.with_suffix(".jpg")):
            status, body = _get(f"{server.url}/api/workflow_templates/{urllib.parse.quote(server.pack_dir.name)}/{path.name}")
            assert status == 200 and body == path.read_bytes(), f"{path.name}: HTTP {status}"
    assert "consider renaming it to 'example_workflows'" not in server.log.read_text(errors="replace")


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _run_prompt(server: Server, prompt: dict, timeout_s: float = 900) -> dict:
    """Queue ``prompt`` and wait for its history entry (its outputs and status)."""
    prompt_id = _post(f"{server.url}/prompt", {"prompt": prompt})["prompt_id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = _get(f"{server.url}/history/{prompt_id}")
        entry = json.loads(body).get(prompt_id) if status == 200 else None
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(2)
    pytest.fail(f"prompt {prompt_id} did not finish in {timeout_s} s")


def _streams(ffmpeg: str, path: Path) -> str:
    """ffmpeg's description of a file's streams."""
    return subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


@pytest.mark.parametrize("template", ["show1_upscale_any_video", "show1_mixed_stage4_on_other_frames"])
def test_the_audio_of_an_uploaded_video_reaches_the_saved_video(server, template):
    import imageio_ffmpeg
    from workflow_shrink import shrink

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    upload = server.comfy_dir / "input" / "show1_audio_check.mp4"
    subprocess.run(
        [ffmpeg, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=80x48:rate=12", "-f", "lavfi", "-i",
         "sine=frequency=440:sample_rate=44100", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(upload)],
        check=True,
    )  # fmt: skip
    assert "Audio:" in _streams(ffmpeg, upload)
    prompt = shrink(json.loads((REPO / "example_workflows" / "api" / f"{template}.json").read_text()))
    for node in prompt.values():
        if node["class_type"] == "LoadVideo":
            node["inputs"]["file"] = upload.name
        if node["class_type"] == "SaveVideo":
            node["inputs"]["filename_prefix"] = f"show1_audio_check/{template}"
    entry = _run_prompt(server, prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (saved,) = [item for output in entry["outputs"].values() for item in output.get("images", [])]
    video = server.comfy_dir / "output" / saved["subfolder"] / saved["filename"]
    assert "Audio:" in _streams(ffmpeg, video), f"{video} has no sound track"


def _saved_frames(server: Server, entry: dict) -> bytes:
    """The decoded frames of the video a prompt saved (the file also holds the prompt, which differs)."""
    import imageio_ffmpeg

    (saved,) = [item for output in entry["outputs"].values() for item in output.get("images", [])]
    reader = imageio_ffmpeg.read_frames(str(server.comfy_dir / "output" / saved["subfolder"] / saved["filename"]))
    next(reader)  # the metadata
    return b"".join(reader)


def test_a_motion_lora_from_comfyuis_lora_folder_runs_in_the_keyframes_template(server):
    from lora_support import write_lora
    from workflow_shrink import shrink

    from show1_core.loading import ModelRole, load_stage_model

    folder = server.comfy_dir / "models" / "loras" / "show1_real_check"
    write_lora(folder / "pan.safetensors", load_stage_model(server.models / "show-1-base", ModelRole.KEYFRAMES), seed=1)
    try:
        status, body = _get(f"{server.url}/object_info/Show1KeyframeMotionLoRA")
        assert status == 200
        choices = json.loads(body)["Show1KeyframeMotionLoRA"]["input"]["required"]["lora_name"][0]
        assert "show1_real_check/pan.safetensors" in choices
        plain = shrink(json.loads((REPO / "example_workflows" / "api" / "show1_keyframes_preview.json").read_text()))
        loader = next(node_id for node_id, node in plain.items() if node["class_type"] == "Show1KeyframeModelLoader")
        keyframes = next(node for node in plain.values() if node["class_type"] == "Show1Keyframes")
        keyframes["inputs"]["steps"] = 2
        videos = {}
        for strength in (None, 0.0, 1.0):
            prompt = json.loads(json.dumps(plain))
            if strength is not None:
                prompt["lora"] = {
                    "class_type": "Show1KeyframeMotionLoRA",
                    "inputs": {"model": [loader, 0], "lora_name": "show1_real_check/pan.safetensors", "strength": strength},
                }
                next(n for n in prompt.values() if n["class_type"] == "Show1Keyframes")["inputs"]["model"] = ["lora", 0]
            next(n for n in prompt.values() if n["class_type"] == "SaveVideo")["inputs"]["filename_prefix"] = f"show1_lora_check/{strength}"
            entry = _run_prompt(server, prompt)
            assert entry["status"]["status_str"] == "success", entry["status"]
            videos[strength] = _saved_frames(server, entry)
        assert videos[0.0] == videos[None], "strength 0 must give the plain model's video"
        assert videos[1.0] != videos[None], "the LoRA changed nothing"
    finally:
        for file in folder.glob("*"):
            file.unlink()
        folder.rmdir()
