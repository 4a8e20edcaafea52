"""Every benchmark runs in its smoke size and ends with one JSON line.

Figures are not asserted here (the machines are noisy); the benchmarks
themselves compare against a ceiling measured in the same run.  Files whose
name starts with ``_`` are the benchmarks' shared modules, not benchmarks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("[!_]*.py")))
def test_benchmark_smoke(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(figures, dict)
    assert figures["smoke"] is True
