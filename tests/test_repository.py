"""The repository's promises: two set-up commands, CI running the README's test command, and a tree clean under ruff."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2
    assert commands[0].endswith("show1 demo")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [_setup_commands()[1]]
    assert "torch==2.13.0" in ci_lines[0]


def test_the_tree_is_clean_under_ruff_lint_and_format():
    """The rules and line length of ``[tool.ruff]`` in pyproject.toml, checked by the test command CI runs."""
    for command in (["check", "--no-fix", "."], ["format", "--check", "."]):
        done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout[-3000:]}{done.stderr[-1000:]}"


def test_the_pack_root_imports_alone_as_pytest_imports_it_from_a_folder_named_show1_comfyui():
    """pytest imports the root ``__init__.py`` as a top-level module when the checkout's folder name is no identifier."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("__init__", REPO / "__init__.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
