"""``protocol/`` stays a pure library: no aiohttp, SQLAlchemy or node imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = ("aiohttp", "sqlalchemy", "node", "alembic", "asyncpg", "aiosqlite", "apscheduler")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_forbidden_imports_in_source() -> None:
    files = sorted(PROTOCOL.rglob("*.py"))
    assert files, "protocol package not found"
    offenders = {
        f"{path.relative_to(PROTOCOL.parent)}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert not offenders, offenders


def test_scanner_would_catch_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from aiohttp import web\nimport sqlalchemy.orm\n")
    assert {"aiohttp", "sqlalchemy.orm"} <= _imported_modules(sample)


def test_importing_protocol_loads_no_forbidden_module() -> None:
    code = (
        "import sys, protocol.models, protocol.ingest, protocol.httpsig, protocol.keyring;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}];"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
