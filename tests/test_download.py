"""Downloads against a local fake Hub: every file is checked against the Hub's checksums and the
result remembered; damaged, cut and corrupted downloads are caught."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import serving

from show1_core.errors import CorruptCheckpointError, OfflineError
from show1_core.loading import ModelRole, load_stage_model
from show1_core.loading.hub import resolve_checkpoint
from show1_core.loading.verify import MARKER

SR1 = "showlab/show-1-sr1"
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The tiny model set as the Hub would serve it (safetensors weights)."""
    from show1_core.tiny import write_tiny_models

    root = tmp_path_factory.mktemp("released")
    write_tiny_models(root, fmt="safetensors")
    return root


@pytest.fixture
def hub(released, monkeypatch):
    """A running fake Hub that huggingface_hub in this process talks to."""
    repos = {"showlab/show-1-sr1": released / "show-1-sr1", "showlab/show-1-base": released / "show-1-base"}
    with serving(repos, monkeypatch) as server:
        yield server


def _damage_tail(path: Path) -> None:
    """Overwrite the last quarter of a file with other bytes, keeping its size and its header."""
    data = bytearray(path.read_bytes())
    tail = len(data) * 3 // 4
    data[tail:] = bytes((b + 1) % 256 for b in data[tail:])
    path.write_bytes(bytes(data))


def _show1(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment.pop("HF_HUB_OFFLINE", None)
    return subprocess.run(
        [sys.executable, "-m", "show1_core", *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=300
    )


def test_a_download_is_verified_and_recorded(hub, tmp_path):
    folder = resolve_checkpoint(SR1, tmp_path)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["repo_id"] == SR1 and marker["revision"] == hub.commits[SR1]
    assert marker["files"][WEIGHTS]["sha256"] == hub.record(SR1, WEIGHTS)["sha256"]
    assert marker["files"]["unet/config.json"]["git_sha1"] == hub.record(SR1, "unet/config.json")["blob_id"]
    assert load_stage_model(folder).stage == ModelRole.PIXEL_SR


def test_a_checkpoint_damaged_after_its_download_is_refused(hub, tmp_path):
    folder = resolve_checkpoint(SR1, tmp_path / "models")
    _damage_tail(folder / WEIGHTS)
    with pytest.raises(CorruptCheckpointError, match=rf"{WEIGHTS}.*no longer match.*show1 download {SR1} --models-dir .* --verify"):
        resolve_checkpoint(SR1, tmp_path / "models")
    with pytest.raises(CorruptCheckpointError, match=WEIGHTS):
        resolve_checkpoint(folder, tmp_path / "elsewhere")  # the folder's own path is checked too


def test_a_file_rewritten_with_the_same_content_is_accepted(hub, tmp_path):
    folder = resolve_checkpoint(SR1, tmp_path)
    weights = folder / WEIGHTS
    weights.write_bytes(weights.read_bytes())  # new modification time, same bytes
    assert resolve_checkpoint(SR1, tmp_path) == folder


def test_a_download_cut_by_the_network_resumes(hub, tmp_path):
    hub.cut[SR1, WEIGHTS] = 1
    folder = resolve_checkpoint(SR1, tmp_path)
    ranges = [r for repo, name, r in hub.gets if name == WEIGHTS]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-", "the second request resumes"
    assert (folder / WEIGHTS).read_bytes() == hub.files[SR1][WEIGHTS]


def test_a_download_that_keeps_being_cut_is_refused_clearly_and_keeps_no_partial_file(hub, tmp_path):
    hub.cut[SR1, WEIGHTS] = 100
    with pytest.raises(OfflineError, match="Run the same command again to resume"):
        resolve_checkpoint(SR1, tmp_path)
    assert not (tmp_path / "show-1-sr1" / WEIGHTS).exists()


def test_corrupted_bytes_from_the_hub_are_refused_and_deleted(hub, tmp_path):
    hub.corrupt.add((SR1, WEIGHTS))
    with pytest.raises(CorruptCheckpointError, match=rf"{WEIGHTS} of {SR1} did not match the Hub's checksums"):
        resolve_checkpoint(SR1, tmp_path)
    assert not (tmp_path / "show-1-sr1" / WEIGHTS).exists()


def test_a_damaged_file_already_in_the_folder_is_fetched_again(hub, tmp_path):
    """A stale or half-copied file that huggingface_hub's own metadata would accept."""
    folder = resolve_checkpoint(SR1, tmp_path)
    (folder / MARKER).unlink()
    _damage_tail(folder / WEIGHTS)
    (folder / "image_noising_scheduler" / "scheduler_config.json").unlink()  # incomplete, so it is downloaded again
    resolve_checkpoint(SR1, tmp_path)
    assert (folder / WEIGHTS).read_bytes() == hub.files[SR1][WEIGHTS]


def test_the_download_command_that_errors_name_works_as_written(hub, tmp_path):
    """`generate` names a `show1 download` command; run exactly that, then generate finds the models."""
    models = tmp_path / "my models"
    done = _show1("generate", "a cat", "--models-dir", str(models), "--offline", "--stages", "1", cwd=tmp_path)
    assert done.returncode == 2
    command = re.search(r"`(show1 download [^`]*)`", done.stderr).group(1)
    assert shlex.split(command) == ["show1", "download", "showlab/show-1-base", "--models-dir", str(models)]
    done = _show1(*shlex.split(command)[1:], env={"HF_ENDPOINT": hub.url}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert resolve_checkpoint("show-1-base", models, with_text_encoder=True, allow_download=False) == models / "show-1-base"


def test_download_verify_rehashes_and_repairs_a_folder(hub, tmp_path):
    models = tmp_path / "models"
    resolve_checkpoint(SR1, models)
    weights = models / "show-1-sr1" / WEIGHTS
    stat = weights.stat()
    _damage_tail(weights)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time: only a full re-hash sees it
    offline = _show1("download", SR1, "--models-dir", str(models), "--verify", "--offline", env={"HF_ENDPOINT": hub.url})
    assert offline.returncode == 2 and WEIGHTS in offline.stderr and "without --offline" in offline.stderr
    done = _show1("download", SR1, "--models-dir", str(models), "--verify", env={"HF_ENDPOINT": hub.url})
    assert done.returncode == 0, done.stderr
    assert f"re-downloaded 1 damaged file(s): {WEIGHTS}" in done.stdout
    assert weights.read_bytes() == hub.files[SR1][WEIGHTS]


def test_download_refuses_unknown_names(tmp_path, capsys):
    from show1_core.cli import main

    assert main(["download", "showlab/show-2", "--models-dir", str(tmp_path)]) == 2
    assert "unknown checkpoint(s) showlab/show-2; choose from showlab/show-1-base" in capsys.readouterr().err


def test_offline_verify_of_a_folder_never_downloaded_never_touches_the_network(tiny_models, tmp_path, monkeypatch, capsys):
    import shutil

    from show1_core.cli import main
    from show1_core.loading import hub as hub_module

    def network(*args, **kwargs):
        raise AssertionError("--offline contacted the Hub")

    monkeypatch.setattr(hub_module, "hub_record", network)
    monkeypatch.setattr(hub_module, "download", network)
    models = tmp_path / "models"
    shutil.copytree(tiny_models["show-1-base"], models / "show-1-base")
    assert main(["download", "show-1-base", "--models-dir", str(models), "--offline", "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {models / 'show-1-base'} holds no record of a verified download")
    assert "without --offline" in err and "interrupted" not in err and err.count("\n") == 1
