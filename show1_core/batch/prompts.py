"""Reading a batch's prompt file: plain text, JSON Lines or VBench's prompt JSON.

* ``.txt`` (or any other suffix): one prompt a line; blank lines are skipped.
* ``.jsonl``: one object a line: ``prompt`` (required), ``seed``, ``name`` and ``settings``
  (dotted stage settings such as ``{"keyframes.steps": 50, "negative_prompt": "blur"}``).
* ``.json``: VBench's prompt list: objects with ``prompt_en`` (as in ``VBench_full_info.json``) or
  ``prompt``, or plain strings.

Every problem is an :class:`~show1_core.errors.InputError` naming the file and line (the list
position for JSON), raised before any work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..text import check_prompt
from ..validation.ranges import seed_problems

JSONL_FIELDS = ("prompt", "seed", "name", "settings")


@dataclass(frozen=True)
class PromptEntry:
    """One prompt of the file, with where it was and what it asks for beyond the batch's settings."""

    line: int
    """Line of the file (1-based); for a JSON list, the position in the list (1-based)."""
    prompt: str
    seed: int | None = None
    """Seed of the entry's first sample (the next samples take the following seeds); ``None``: derived."""
    name: str | None = None
    """File name stem to use instead of the prompt."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Dotted settings replacing the batch's for this entry (``keyframes.steps``, ``negative_prompt``)."""


def _prompt(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: the prompt must be non-empty text, got {value!r}")
    return check_prompt(value, f"prompt at {where}")


def _jsonl_entry(text: str, where: str, line: int) -> PromptEntry:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f'{where}: expected a JSON object with a "prompt", got {type(record).__name__}')
    unknown = sorted(set(record) - set(JSONL_FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; a line may hold {', '.join(JSONL_FIELDS)}")
    if "prompt" not in record:
        raise InputError(f'{where}: no "prompt" field')
    seed = record.get("seed")
    if seed is not None and seed_problems(seed):
        raise InputError(f"{where}: seed {seed_problems(seed)[0].message}")
    name = record.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InputError(f"{where}: the name must be non-empty text, got {name!r}")
    settings = record.get("settings", {})
    if not isinstance(settings, dict):
        raise InputError(f'{where}: "settings" must be an object of dotted settings, e.g. {{"keyframes.steps": 50}}')
    return PromptEntry(line, _prompt(record["prompt"], where), seed, name, settings)


def _json_entries(text: str, path: Path) -> list[PromptEntry]:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of prompts (VBench's prompt JSON), got {type(records).__name__}")
    entries = []
    for position, record in enumerate(records, start=1):
        where = f"{path} entry {position}"
        if isinstance(record, dict):
            key = "prompt_en" if "prompt_en" in record else "prompt"
            if key not in record:
                raise InputError(f'{where}: no "prompt_en" (or "prompt") field')
            record = record[key]
        entries.append(PromptEntry(position, _prompt(record, where)))
    return entries


def read_prompts(path: Path | str) -> list[PromptEntry]:
    """Every prompt of ``path`` in file order; :class:`InputError` for a missing, unreadable or empty file, or a bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"prompt file {path} does not exist") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text; save the prompt file as UTF-8") from None
    except OSError as err:
        raise InputError(f"cannot read prompt file {path}: {err.strerror or err}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        entries = _json_entries(text, path)
    else:
        lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if suffix == ".jsonl":
            entries = [_jsonl_entry(line, f"{path}:{number}", number) for number, line in lines]
        else:
            entries = [PromptEntry(number, _prompt(line.strip(), f"{path}:{number}")) for number, line in lines]
    if not entries:
        raise InputError(f"prompt file {path} holds no prompts")
    return entries
