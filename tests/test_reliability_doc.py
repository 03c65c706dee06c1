"""docs/RELIABILITY.md stays true: every row names a test that exists, and no kind of bad input is listed twice."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "RELIABILITY.md"
HEADER = ("bad input", "what the user sees", "test")
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)+)`")
TARGET_KINDS = 57
"""The least number of kinds of bad input RELIABILITY.md must cover."""


def _rows() -> list[tuple[int, list[str]]]:
    rows = []
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if tuple(cells) == HEADER or set("".join(cells)) <= {"-", ":"}:
            continue
        rows.append((number, cells))
    return rows


@cache
def _definitions(path: Path) -> set[str]:
    """``name`` and ``Class::name`` of every test function in a test file."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef))
    return names


def test_every_row_names_an_existing_test():
    problems = []
    for number, cells in _rows():
        match = NODE_ID.fullmatch(cells[-1]) if len(cells) == len(HEADER) else None
        if match is None or not all(cells):
            problems.append(f"line {number}: expected | bad input | what the user sees | `tests/FILE.py::test_name` |")
            continue
        path, name = REPO / match.group(1), match.group(2)[2:]
        if not path.is_file() or name not in _definitions(path):
            problems.append(f"line {number}: {match.group(1)}::{name} does not exist")
    assert not problems, "\n".join(problems)


def test_each_kind_of_bad_input_is_listed_once_and_the_target_is_met():
    kinds = [cells[0].lower() for _, cells in _rows()]
    assert len(kinds) == len(set(kinds)), [k for k in kinds if kinds.count(k) > 1]
    assert len(kinds) >= TARGET_KINDS
