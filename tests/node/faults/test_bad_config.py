"""Common configuration mistakes: one clear message naming the setting, no traceback, exit 2.

Each case runs the real ``openseats`` CLI as a process against a copy of
one initialised node whose ``openseats.toml`` (or environment) carries one
typical mistake, the way an admin would make it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.node.cli_inprocess import run
from tests.node.conftest import free_port
from tests.node.test_cli import OPENSEATS


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("vorlage") / "node"
    run("init", "--data", str(data), "--node-id", "fehler.cli.test", "--url", "http://127.0.0.1:1")
    return data


@dataclass
class Case:
    toml: str = ""  # appended to openseats.toml after dropping listen_port
    env: dict[str, str] = field(default_factory=dict)
    expect: tuple[str, ...] = ()


def _config_with(data: Path, extra: str) -> None:
    config = data / "openseats.toml"
    kept = [line for line in config.read_text().splitlines() if "listen_port" not in line]
    config.write_text("\n".join([*kept, extra]) + "\n")


def openseats(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OPENSEATS, *args],
        capture_output=True,
        text=True,
        timeout=30,  # a case that wrongly starts the server fails here
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_clear(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "Fehler / error: " in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


CASES = {
    "unknown setting": Case("listen_prot = 8700", expect=("'listen_prot'", "'listen_port'?")),
    "port not a number": Case('listen_port = "abc"', expect=("'listen_port'", "keine ganze Zahl")),
    "port out of range": Case("listen_port = 70000", expect=("'listen_port'", "zu groß", "65535")),
    "validity out of range": Case(
        "descriptor_validity_days = 30", expect=("'descriptor_validity_days'", "zu groß")
    ),
    "env port": Case(
        env={"OPENSEATS_LISTEN_PORT": "acht"}, expect=("'listen_port'", "OPENSEATS_LISTEN_PORT")
    ),
    "env bool": Case(
        env={"OPENSEATS_PUBLIC_CATALOGUE": "vielleicht"},
        expect=("'public_catalogue'", "true/false"),
    ),
    "env list": Case(
        env={"OPENSEATS_WIDGET_FRAME_ANCESTORS": "https://intranet.example.org"},
        expect=("'widget_frame_ancestors'", "OPENSEATS_WIDGET_FRAME_ANCESTORS", "JSON"),
    ),
    "database_url unparseable": Case(
        'database_url = "Datenbank auf dem Server"', expect=("'database_url'", "keine Datenbank")
    ),
    "database_url bad port": Case(
        'database_url = "postgresql://db.example.org:fünf/openseats"',
        expect=("'database_url'", "nicht lesbar"),
    ),
    "database_url unknown scheme": Case(
        'database_url = "mysql://db.example.org/openseats"', expect=("'database_url'", "'mysql'")
    ),
    "toml syntax": Case('catalogue_page = public\ndisplay_name = "X"', expect=("TOML", "line")),
}


@pytest.mark.parametrize(
    ("name", "command"),
    [(name, ["serve"]) for name in CASES]
    + [("port not a number", ["token", "list"]), ("env list", ["backup", "-o", "x.tgz"])],
)
def test_common_config_mistakes(
    initialised: Path, tmp_path: Path, name: str, command: list[str]
) -> None:
    case = CASES[name]
    data = tmp_path / "node"
    shutil.copytree(initialised, data)
    _config_with(data, case.toml)
    result = openseats(*command, "--data", str(data), env=case.env)
    assert_clear(result, *case.expect)
    if case.toml:
        assert str(data / "openseats.toml") in result.stderr


def test_missing_config_names_the_path(tmp_path: Path) -> None:
    result = openseats("serve", "--data", str(tmp_path / "nirgends"))
    assert_clear(result, str(tmp_path / "nirgends" / "openseats.toml"), "openseats init")


def test_unreachable_postgresql_names_database_url_and_address(
    initialised: Path, tmp_path: Path
) -> None:
    data = tmp_path / "node"
    shutil.copytree(initialised, data)
    port = free_port()  # nothing listens there
    _config_with(data, f'database_url = "postgresql://fehler:geheim@127.0.0.1:{port}/openseats"')
    result = openseats("serve", "--data", str(data))
    assert_clear(result, "database_url", f"127.0.0.1:{port}", "nicht erreichbar")
    assert "geheim" not in result.stderr


def test_listen_port_in_use(initialised: Path, tmp_path: Path) -> None:
    data = tmp_path / "node"
    shutil.copytree(initialised, data)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _config_with(data, f"listen_port = {port}")
        result = openseats("serve", "--data", str(data))
    assert_clear(result, "listen_port", str(port), "belegt", "in use")


@pytest.fixture
def unwritable(initialised: Path, tmp_path: Path) -> Iterator[Path]:
    """A data dir nobody may write to: mode 0555, and for root also immutable (chattr +i)."""
    data = tmp_path / "node"
    shutil.copytree(initialised, data)
    (data / "openseats.lock").unlink(missing_ok=True)
    data.chmod(0o555)
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(data)], check=False).returncode:
            pytest.skip("root ignores file modes and chattr +i is not available here")
        yield data
        subprocess.run([chattr, "-i", str(data)], check=True)
    else:
        yield data
    data.chmod(0o755)


def test_data_dir_not_writable(unwritable: Path) -> None:
    result = openseats("serve", "--data", str(unwritable))
    assert_clear(result, "data dir not writable", str(unwritable))
    fresh = unwritable / "neu"
    result = openseats(
        "init", "--data", str(fresh), "--node-id", "neu.cli.test", "--url", "http://127.0.0.1:1"
    )
    assert_clear(result, "data dir not writable", str(fresh))


def test_init_with_a_bad_node_id_names_it(tmp_path: Path) -> None:
    result = openseats(
        "init", "--data", str(tmp_path / "n"), "--node-id", "Kein Name!", "--url", "http://x:1"
    )
    assert_clear(result, "'node_id'")
    assert not (tmp_path / "n").exists()
