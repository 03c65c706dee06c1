"""What the Comfy Registry and comfy-cli read: pyproject metadata, licence, icon, .comfyignore, publish workflow.

Field names and formats are those comfy-cli's ``comfy node validate`` / ``comfy node pack`` parse
(``comfy_cli/registry/config_parser.py``) and the registry specification documents.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT, COMFY = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
MINIMUM_COMFYUI = "0.3.31"
"""First ComfyUI release with the core Load Video, Get Video Components, Create Video and Save Video nodes."""
COMFY_CLI_VERSION = re.compile(r"^(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?(\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?)?$")
"""The pattern comfy-cli checks ``requires-comfyui`` against (it drops the field silently otherwise)."""
PACK_SIZE_LIMIT = 2_000_000
"""Bytes of files the registry zip may hold before compression (the parity fixtures alone are 12 MB)."""


def test_tool_comfy_has_every_registry_field():
    assert COMFY["PublisherId"] and COMFY["DisplayName"]
    assert COMFY["requires-comfyui"] == f">={MINIMUM_COMFYUI}"
    assert COMFY_CLI_VERSION.match(COMFY["requires-comfyui"])
    assert COMFY["Icon"].startswith("https://")
    locations = [model["location"] for model in COMFY["Models"]]
    assert locations and all(location.startswith("/models/show1/") for location in locations)


def test_project_urls_and_classifiers_are_what_the_registry_shows():
    repository = PROJECT["urls"]["Repository"]
    assert repository.startswith("https://github.com/")
    for key in ("Documentation", "Issues"):
        assert PROJECT["urls"][key].startswith(repository), key
    classifiers = PROJECT["classifiers"]
    assert "Operating System :: OS Independent" in classifiers
    assert "Environment :: GPU :: NVIDIA CUDA" in classifiers  # one of comfy-cli's accepted accelerators


def test_the_icon_is_a_small_image_in_this_repository():
    """The registry takes an Icon URL; it points at a file of this repository on its main branch."""
    repository = PROJECT["urls"]["Repository"].removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{repository}/main/"
    assert COMFY["Icon"].startswith(prefix)
    icon = REPO / COMFY["Icon"].removeprefix(prefix)
    assert icon.suffix in (".svg", ".png") and icon.is_file()
    svg = ElementTree.parse(icon).getroot()
    assert int(svg.get("width")) <= 800 and int(svg.get("height")) <= 400, "the registry's largest icon is 800x400"


def test_the_licence_file_is_the_licence_the_metadata_names():
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    head = " ".join((REPO / "LICENSE").read_text().split()[:4])
    assert head == "Apache License Version 2.0,"


def test_the_readme_states_the_minimum_comfyui_and_the_weights_licences():
    readme = (REPO / "README.md").read_text()
    assert f"ComfyUI {MINIMUM_COMFYUI}" in readme
    assert "CC BY-NC 4.0" in readme and "DeepFloyd IF License Agreement" in readme


def _ignored_prefixes() -> list[str]:
    patterns = [line.strip() for line in (REPO / ".comfyignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert all(p.endswith("/") and "*" not in p for p in patterns), "keep .comfyignore to folder patterns"
    return patterns


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: comfy node pack zips the files git tracks")
    return listed.splitlines()


def test_comfyignore_leaves_tests_fixtures_bench_and_docs_images_out_of_the_pack():
    ignored = _ignored_prefixes()
    assert {"tests/", "bench/", "docs/images/", "workflow_source/"} <= set(ignored)
    packed = [f for f in _tracked_files() if not f.startswith(tuple(ignored))]
    assert not [f for f in packed if "fixtures" in f or f.endswith((".png", ".svg", ".gif")) or f.startswith("workflow_source/")]
    for needed in ("__init__.py", "nodes/__init__.py", "show1_core/__init__.py", "pyproject.toml", "requirements.txt", "LICENSE"):
        assert needed in packed, needed
    templates = [f for f in packed if f.startswith("example_workflows/")]
    assert {f.rsplit(".", 1)[-1] for f in templates} == {"json", "jpg"}, "the templates, their API copies and thumbnails"
    size = sum((REPO / f).stat().st_size for f in packed if (REPO / f).is_file())
    assert size < PACK_SIZE_LIMIT, f"the pack would hold {size} bytes"


def test_the_publish_workflow_runs_the_registry_action_on_version_bumps():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "publish.yml").read_text())
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert trigger["push"]["branches"] == ["main"] and trigger["push"]["paths"] == ["pyproject.toml"]
    steps = workflow["jobs"]["publish"]["steps"]
    publish = next(step for step in steps if step.get("uses", "").startswith("Comfy-Org/publish-node-action@"))
    assert publish["with"]["personal_access_token"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
    assert "steps.version.outputs.bumped == 'true'" in publish["if"]
    version_step = next(step for step in steps if step.get("id") == "version")
    assert '["project"]["version"]' in version_step["run"]
