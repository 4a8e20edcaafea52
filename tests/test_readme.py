"""The README's test command is exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_command(readme: str) -> str:
    match = re.search(r"```sh\n(.+?)\n```", readme, re.S)
    assert match, "README has no sh code block"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    command = _first_command((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "pytest" in command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
