"""deploy/ checked without a container engine: compose, image, systemd, nginx, examples.

Docker cannot run here, so each file is checked by the tool that reads it
where that tool exists (``docker compose config``, ``systemd-analyze``,
``nginx -t``), and otherwise by what can be checked offline: the compose
file against a JSON Schema of the Compose keys it uses, the Dockerfile's
sources against the build context and ``.dockerignore``, the entry point
script by running it.  Beside that, checks of our own keep the files
consistent with each other and with :class:`node.settings.Settings`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from node.settings import Settings
from tests.deploy import proxy
from tests.node.conftest import free_port

ROOT = proxy.ROOT
DEPLOY = proxy.DEPLOY
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI") == "true"
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


# --- compose --------------------------------------------------------------------------


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return probe.returncode == 0


def _schema_errors(document: Any) -> list[str]:
    schema = json.loads((HERE / "compose-subset.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_is_valid() -> None:
    if _docker_compose_available():
        result = subprocess.run(
            ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "POSTGRES_PASSWORD": "only-for-the-config-check"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
    # Without the plugin this is the check; with it, it still catches keys we do not expect.
    assert _schema_errors(compose()) == []


def test_the_schema_check_rejects_mistakes() -> None:
    document = compose()
    document["services"]["lex-1"]["healtcheck"] = document["services"]["lex-1"]["healthcheck"]
    document["services"]["lex-2"]["depends_on"]["lex-1"]["condition"] = "service_ready"
    document["services"]["kiwi"]["ports"] = ["eighty:8700"]
    errors = _schema_errors(document)
    assert any("healtcheck" in error for error in errors)
    assert any(error.startswith("services/lex-2/depends_on/lex-1/condition") for error in errors)
    assert any(error.startswith("services/kiwi/ports/0") for error in errors)


def test_every_service_but_the_proxy_is_health_checked_and_waited_for() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "lex-1", "lex-2", "kiwi", "nginx"}
    for name, service in services.items():
        if name != "nginx":
            assert service["healthcheck"]["test"], name
        for needed, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, (name, needed)
            assert "healthcheck" in services[needed], needed
    # The second replica starts only when the first one has created the node.
    assert "lex-1" in services["lex-2"]["depends_on"]
    assert set(services["nginx"]["depends_on"]) == {"lex-1", "lex-2"}
    # Ready means /readyz (database, migrations, keys), not only a live process.
    for name in ("lex-1", "lex-2", "kiwi"):
        assert any("/readyz" in part for part in services[name]["healthcheck"]["test"])


def test_both_replicas_share_database_keys_and_identity() -> None:
    services = compose()["services"]
    one, two = env(services["lex-1"]), env(services["lex-2"])
    assert one == two
    assert one["OPENSEATS_DATABASE_URL"].endswith("@postgres:5432/openseats_lex")
    assert services["lex-1"]["volumes"] == services["lex-2"]["volumes"] == ["lex-data:/data"]
    kiwi = env(services["kiwi"])
    assert kiwi["OPENSEATS_DATABASE_URL"].endswith("/openseats_kiwi")
    assert kiwi["OPENSEATS_NODE_ID"] != one["OPENSEATS_NODE_ID"]
    assert services["kiwi"]["volumes"][0] == "kiwi-data:/data"
    # The nginx upstream is exactly the two replicas, on the port the image listens on.
    nginx = env(services["nginx"])
    assert {nginx["OPENSEATS_REPLICA_1"], nginx["OPENSEATS_REPLICA_2"]} == {
        "lex-1:8700",
        "lex-2:8700",
    }
    assert nginx["OPENSEATS_BASE_URL"] == one["OPENSEATS_BASE_URL"]


def test_the_nodes_trust_exactly_the_proxy_address() -> None:
    document = compose()
    proxy_address = document["services"]["nginx"]["networks"]["backend"]["ipv4_address"]
    subnet = document["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    settings_fields = set(Settings.model_fields)
    for name in ("lex-1", "lex-2"):
        assert env(document["services"][name])["OPENSEATS_TRUSTED_PROXIES"] == proxy_address
    assert proxy_address.rsplit(".", 1)[0] == subnet.rsplit(".", 1)[0]
    for name in ("lex-1", "lex-2", "kiwi"):
        for key in env(document["services"][name]):
            if key.startswith("OPENSEATS_"):
                assert key.removeprefix("OPENSEATS_").lower() in settings_fields, key


def test_no_secrets_are_written_into_the_compose_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for service in compose()["services"].values():
        for key, value in env(service).items():
            if re.search("PASSWORD|TOKEN|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", value), key
            if "://" in value and "@" in value:  # credentials in a URL: interpolated only
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                assert ":${POSTGRES_PASSWORD:?" in userinfo, key
    # The password has no default: compose refuses to start without it.
    uses = re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", text)
    assert uses
    assert all(use.startswith(":?") for use in uses)


def test_every_compose_variable_is_in_the_env_example_and_every_file_exists() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    used = set(INTERPOLATION.findall(text))
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    listed = {line.split("=", 1)[0] for line in example.splitlines() if re.match(r"^[A-Z]", line)}
    assert used == listed
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M)  # no example secret
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and source != "./tls":  # tls/: the operator's certificate
                assert (DEPLOY / source).exists(), source
    build = compose()["services"]["lex-1"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_the_proxy_gets_a_value_for_every_placeholder_of_the_site_template() -> None:
    template = proxy.SITE_TEMPLATE.read_text(encoding="utf-8")
    nginx = compose()["services"]["nginx"]
    assert proxy.placeholders(template) == {
        key for key in env(nginx) if key.startswith("OPENSEATS_")
    }
    mounts = dict(volume.split(":")[:2] for volume in nginx["volumes"])
    assert mounts["./nginx/openseats.conf.template"].startswith("/etc/nginx/templates/")


# --- the image --------------------------------------------------------------------------


def _dockerfile_lines() -> list[str]:
    joined = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def _ignored(path: str) -> bool:
    """Docker's rule: the last matching .dockerignore line wins; ``!`` re-includes."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if pattern.startswith("**/"):  # at any depth
            matched = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            matched = any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes)
        if matched:
            ignored = not negate
    return ignored


def test_dockerfile_copies_only_what_the_context_sends() -> None:
    lines = _dockerfile_lines()
    copies = [line.split()[1:] for line in lines if line.startswith("COPY ")]
    assert copies
    for words in copies:
        if any(word.startswith("--from=") for word in words):
            continue
        sources = [word for word in words if not word.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not _ignored(source.rstrip("/")), f"{source} is in .dockerignore"
    # Private keys and data dirs never reach the build context.
    assert _ignored("openseats-data/keys/node.key")
    assert _ignored("node/web/__pycache__/app.cpython-311.pyc")
    assert _ignored("node/web/__pycache__")
    assert _ignored("tests/node/conftest.py")
    assert not _ignored("node/db/migrations/versions/0005_admin_ui.py")


def test_dockerfile_runtime_stage() -> None:
    lines = _dockerfile_lines()
    stages = [index for index, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(stages) == 2, "multi-stage: build, then runtime"
    runtime = lines[stages[-1] :]
    assert runtime[0] == "FROM python:3.11-slim"
    directives = {line.split()[0]: line for line in runtime}
    assert directives["USER"] == "USER openseats:openseats"
    assert directives["VOLUME"] == 'VOLUME ["/data"]'
    assert directives["EXPOSE"] == "EXPOSE 8700"
    assert "/healthz" in directives["HEALTHCHECK"]
    assert directives["CMD"] == 'CMD ["openseats", "serve"]'
    assert directives["ENTRYPOINT"] == 'ENTRYPOINT ["docker-entrypoint.sh"]'
    environment = directives["ENV"]
    for expected in ("OPENSEATS_DATA=/data", "OPENSEATS_LISTEN_HOST=0.0.0.0"):
        assert expected in environment
    # The runtime stage installs wheels only, never the source tree.
    assert not any(line.startswith("COPY protocol") or "COPY node" in line for line in runtime)


def test_the_wheel_the_image_installs_carries_the_package_data(tmp_path: Path) -> None:
    # Exactly what the Dockerfile's build stage copies, and nothing else.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("protocol", "node"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("openseats-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(p.name for p in (ROOT / "node/db/migrations/versions").glob("0*.py"))
    for migration in migrations:
        assert f"node/db/migrations/versions/{migration}" in names
    for needed in (
        "node/db/migrations/env.py",
        "node/db/migrations/script.py.mako",
        "protocol/SPEC.md",
    ):
        assert needed in names
    for folder, pattern in (("node/ui/templates", "*.html"), ("node/ui/locales", "*.json")):
        for path in (ROOT / folder).rglob(pattern):
            assert str(path.relative_to(ROOT)) in names


def _entrypoint(data: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(data.parent),
        "OPENSEATS_DATA": str(data),
        **extra,
    }
    return subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )


def test_the_entrypoint_creates_the_node_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _entrypoint(
        data,
        "openseats",
        "fingerprint",
        OPENSEATS_NODE_ID="lex.deploy.test",
        OPENSEATS_BASE_URL="https://lex.deploy.test",
        OPENSEATS_DISPLAY_NAME="LEX",
    )
    assert first.returncode == 0, first.stderr
    assert "angelegt in / created in" in first.stdout
    fingerprint = first.stdout.strip().splitlines()[-1]
    config = tomllib.loads((data / "openseats.toml").read_text(encoding="utf-8"))
    assert config["node_id"] == "lex.deploy.test"
    assert config["listen_port"] == 8700

    again = _entrypoint(data, "openseats", "fingerprint")  # a second replica, a restart
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == fingerprint


def test_the_entrypoint_names_what_is_missing(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path / "data", "openseats", "serve")
    assert result.returncode != 0
    assert "OPENSEATS_NODE_ID" in result.stderr
    assert not (tmp_path / "data" / "openseats.toml").exists()


# --- systemd --------------------------------------------------------------------------

UNITS = ("openseats.service", "openseats@.service")


def _render_unit(name: str, directory: Path) -> Path:
    text = (DEPLOY / "systemd" / name).read_text(encoding="utf-8")
    assert "/opt/openseats/venv/bin/openseats" in text
    unit = directory / name
    unit.write_text(
        text.replace("/opt/openseats/venv/bin/openseats", str(VENV_BIN / "openseats")),
        encoding="utf-8",
    )
    return unit


@pytest.fixture
def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian: package systemd)")
    return found


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_verify(name: str, tmp_path: Path, systemd_analyze: str) -> None:
    _render_unit(name, tmp_path)
    instance = name.replace("@.", "@8701.")
    result = subprocess.run(
        [systemd_analyze, "verify", instance],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_are_hardened(name: str, tmp_path: Path, systemd_analyze: str) -> None:
    unit = _render_unit(name, tmp_path)
    text = unit.read_text(encoding="utf-8")
    for setting in (
        "User=openseats",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/var/lib/openseats",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "EnvironmentFile=/etc/openseats/openseats.env",
    ):
        assert setting in text, setting
    # systemd's own score: 0 (locked down) .. 10 (exposed); fail above 2.5.
    result = subprocess.run(
        [systemd_analyze, "security", "--offline=yes", "--threshold=25", name.replace("@.", "@1.")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_the_env_example_sets_only_real_settings() -> None:
    fields = set(Settings.model_fields)
    names = re.findall(
        r"^#?\s*OPENSEATS_([A-Z0-9_]+)=",
        (DEPLOY / "systemd" / "openseats.env.example").read_text(encoding="utf-8"),
        re.M,
    )
    assert "DATABASE_URL" in names
    for name in names:
        assert name.lower() in fields, name


def test_the_toml_example_documents_every_setting_and_loads(tmp_path: Path) -> None:
    text = (DEPLOY / "openseats.toml.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+) = ", text, re.M))
    assert documented == set(Settings.model_fields) - {"data_dir"}
    # With every commented example value switched on, it is a valid config.
    enabled = re.sub(r"^# ([a-z_]+ = )", r"\1", text, flags=re.M)
    values = tomllib.loads(enabled)
    Settings(data_dir=tmp_path, **values)


# --- nginx ----------------------------------------------------------------------------


@pytest.fixture
def nginx() -> str:
    if proxy.NGINX is None:
        if IN_CI:
            pytest.fail("nginx is missing; .ci/run installs it from apt")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return proxy.NGINX


def test_nginx_accepts_the_rendered_site(tmp_path: Path, nginx: str) -> None:
    values = proxy.site_values(
        prefix=tmp_path, http=free_port(), https=free_port(), replicas=(free_port(), free_port())
    )
    config = proxy.write_config(tmp_path, values)
    result = proxy.check(tmp_path, config)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr
    assert "[emerg]" not in result.stderr
    site = (tmp_path / "openseats.conf").read_text(encoding="utf-8")
    directives = [line for line in site.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if "${" in line]
    assert "client_max_body_size 1m;" in site
    assert Settings.model_fields["max_body_bytes"].default == 1024 * 1024


def test_nginx_refuses_a_broken_site(tmp_path: Path, nginx: str) -> None:
    values = proxy.site_values(
        prefix=tmp_path, http=free_port(), https=free_port(), replicas=(free_port(), free_port())
    )
    values["OPENSEATS_TLS_CERT"] = str(tmp_path / "missing.crt")
    result = proxy.check(tmp_path, proxy.write_config(tmp_path, values))
    assert result.returncode != 0
    assert "missing.crt" in result.stderr
