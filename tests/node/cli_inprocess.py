"""Running ``openseats`` commands inside the test process.

A CLI process costs about a second of imports; most commands need no
process of their own, so tests call :func:`node.cli.main` directly and
capture what it prints.  ``serve`` and anything that needs process limits
(signals, ``RLIMIT_FSIZE``) still run as real processes.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from node.cli import main
from tests.node.conftest import free_port


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str, check: bool = True) -> Ran:
    """``openseats ARGS`` in this process (fast); ``serve`` runs as a real process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    result = Ran(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"openseats {' '.join(args)} failed:\n{result.stderr}")
    return result


def init(tmp_path: Path, name: str) -> tuple[Path, int, str]:
    data, port = tmp_path / name, free_port()
    out = run(
        "init", "--data", str(data), "--node-id", f"{name}.cli.test",
        "--url", f"http://127.0.0.1:{port}",
    ).stdout  # fmt: skip
    return data, port, out.strip().splitlines()[-1].split(": ")[-1]
