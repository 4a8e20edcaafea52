"""The README opens with the demo command and the test command; CI runs the latter."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(readme: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.+?)\n```", readme, re.S)]


def test_readme_opens_with_demo_then_tests() -> None:
    demo, tests = _commands((ROOT / "README.md").read_text(encoding="utf-8"))[:2]
    assert demo.endswith("openseats demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    tests = _commands((ROOT / "README.md").read_text(encoding="utf-8"))[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci_lines
