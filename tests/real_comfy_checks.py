"""Run the real-ComfyUI harness's ``check_server.py``, adapted to the pack as it is now.

    python tests/real_comfy_checks.py HARNESS_DIR [check_server.py arguments ...]

Run it with ComfyUI's Python (the harness needs ``websocket-client`` and ``av``); it prints the
harness's report and ``SUMMARY`` line and exits with its status. ``tests/test_real_comfyui.py``
runs it.

One adaptation, because the harness (read-only, shared) was written before the pack's
stage-wide progress: every Show-1 stage now reports progress ``0 of N`` when it starts, before
any step has a preview to show, and the harness wants as many previews as progress messages.
Its per-node summary is given the websocket messages without those ``value == 0`` progress
messages, so it checks one preview per denoising step, which is what it means to check.

A second, because the harness's copy of the tests' shrink predates Show-1 Upscale Video (it
would run that node at the paper's size and steps, hours on a CPU): the harness shrinks with
``tests/workflow_shrink.py``, the rule the pack's tests use.

A third, because the harness's expected sizes predate Show-1 Upscale Video: the harness's
``expected_videos`` is given each Upscale Video node as the core nodes it is documented to equal
in shape (Get Video Components -> a resize to its width x height -> Create Video at the source's
frame rate), so it checks that node's saved video like the others.

A fourth, because the harness reads the workflows from ``<pack>/workflows/`` while the pack ships
them where ComfyUI's Templates browser looks, ``example_workflows/``: the harness is given a view
of the pack (a folder of the same name whose ``workflows`` and ``nodes`` lead to the pack's
``example_workflows`` and ``nodes``) as its ``--pack-dir``.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Callable

from workflow_shrink import shrink


def load_harness(folder: Path) -> ModuleType:
    """The harness's ``check_server.py`` as a module (it runs nothing on import)."""
    spec = importlib.util.spec_from_file_location("check_server", folder / "check_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_stage_start(item: tuple) -> bool:
    """A websocket JSON message reporting progress 0: a stage began, no step is done yet."""
    _, kind, payload = item
    return kind == "json" and payload.get("type") == "progress" and payload.get("data", {}).get("value") == 0


def steps_only(summarize: Callable[[list, str], dict]) -> Callable[[list, str], dict]:
    """``summarize_ws`` over the messages without the stage-start progress messages."""

    def summarize_steps(items: list, prompt_id: str) -> dict:
        return summarize([item for item in items if not _is_stage_start(item)], prompt_id)

    return summarize_steps


def upscale_as_core_nodes(prompt: dict) -> dict:
    """``prompt`` with every Show-1 Upscale Video node replaced by core nodes that make a video of the same shape."""
    proxy = dict(prompt)
    for node_id, node in prompt.items():
        if node["class_type"] != "Show1UpscaleVideo":
            continue
        inputs = node["inputs"]
        parts, scaled = f"{node_id}-components", f"{node_id}-scaled"
        proxy[parts] = {"class_type": "GetVideoComponents", "inputs": {"video": inputs["video"]}}
        proxy[scaled] = {"class_type": "ImageScale", "inputs": {"image": [parts, 0], "width": inputs["width"], "height": inputs["height"]}}
        proxy[node_id] = {"class_type": "CreateVideo", "inputs": {"images": [scaled, 0], "fps": [parts, 2]}}
    return proxy


def knowing_upscale_video(expected_videos: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """The harness's ``expected_videos``, also for prompts with Show-1 Upscale Video nodes."""

    def expected(prompt: dict) -> dict:
        return expected_videos(upscale_as_core_nodes(prompt))

    return expected


def harness_view(pack_dir: Path, parent: Path) -> Path:
    """A folder named like ``pack_dir`` whose ``nodes`` and ``workflows`` are the pack's ``nodes`` and ``example_workflows``."""
    view = parent / pack_dir.name
    view.mkdir()
    (view / "nodes").symlink_to(pack_dir.resolve() / "nodes", target_is_directory=True)
    (view / "workflows").symlink_to(pack_dir.resolve() / "example_workflows", target_is_directory=True)
    return view


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    harness_dir = Path(sys.argv[1])
    harness = load_harness(harness_dir)
    harness.summarize_ws = steps_only(harness.summarize_ws)
    harness.shrink = shrink
    harness.expected_videos = knowing_upscale_video(harness.expected_videos)
    arguments = sys.argv[2:]
    with tempfile.TemporaryDirectory() as scratch:
        if "--pack-dir" in arguments:
            where = arguments.index("--pack-dir") + 1
            arguments[where] = str(harness_view(Path(arguments[where]), Path(scratch)))
        sys.argv = [str(harness_dir / "check_server.py"), *arguments]
        return harness.main()


if __name__ == "__main__":
    sys.exit(main())
