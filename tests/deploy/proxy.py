"""nginx for the deploy tests: the shipped site template, rendered for loopback.

``deploy/nginx/openseats.conf.template`` is the one source of truth: the
tests fill in its ``${OPENSEATS_...}`` placeholders exactly as envsubst
does (in the nginx image, or by hand on a plain host), with loopback
ports and a certificate made here, and wrap it in a minimal main config
whose paths all lie in a temporary prefix.  ``master_process off`` keeps
nginx one process running as the test's own user, so it needs no root,
no ``user`` directive and no writable system paths.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import ssl
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SITE_TEMPLATE = DEPLOY / "nginx" / "openseats.conf.template"
PLACEHOLDER = re.compile(r"\$\{(OPENSEATS_[A-Z0-9_]+)\}")
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: dict[str, str]) -> str:
    """envsubst with a list of names: every ``${NAME}`` must have a value."""
    missing = placeholders(text) - values.keys()
    assert not missing, f"no value for {sorted(missing)}"
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for *host* (and localhost) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "openseats.crt"
    key_path = directory / "openseats.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def trusting(cert: Path) -> ssl.SSLContext:
    """A client TLS context that trusts exactly *cert*."""
    return ssl.create_default_context(cafile=str(cert))


def site_values(
    *, prefix: Path, http: int, https: int, replicas: tuple[int, int]
) -> dict[str, str]:
    """Placeholder values for a node behind nginx on loopback."""
    cert, key = self_signed(prefix)
    return {
        "OPENSEATS_SERVER_NAME": "127.0.0.1",
        "OPENSEATS_BASE_URL": f"https://127.0.0.1:{https}",
        "OPENSEATS_HTTP_LISTEN": f"127.0.0.1:{http}",
        "OPENSEATS_HTTPS_LISTEN": f"127.0.0.1:{https}",
        "OPENSEATS_TLS_CERT": str(cert),
        "OPENSEATS_TLS_KEY": str(key),
        "OPENSEATS_REPLICA_1": f"127.0.0.1:{replicas[0]}",
        "OPENSEATS_REPLICA_2": f"127.0.0.1:{replicas[1]}",
    }


def write_config(prefix: Path, values: dict[str, str]) -> Path:
    """The rendered site inside a main config with every path under *prefix*."""
    site = prefix / "openseats.conf"
    site.write_text(render(SITE_TEMPLATE.read_text(encoding="utf-8"), values), encoding="utf-8")
    temp = prefix / "temp"
    temp.mkdir(exist_ok=True)
    main = prefix / "nginx.conf"
    main.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {site};
}}
""",
        encoding="utf-8",
    )
    return main


def command(prefix: Path, config: Path, *extra: str) -> list[str]:
    assert NGINX is not None
    return [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config), *extra]


def check(prefix: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(prefix, config, "-t"), capture_output=True, text=True, timeout=30, check=False
    )
