"""Node settings: ``<data>/openseats.toml``, overridden by ``OPENSEATS_*`` variables.

The data dir is chosen by ``--data DIR``, else ``OPENSEATS_DATA``, else
``./openseats-data``; ``--config PATH`` points at another TOML file.  Only
non-secret settings live in the file; the private keys live beside it in
``keys/`` (mode 0600) and never in the database.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import tomli_w
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as EnvParseError

from node import config_errors
from node.db.urls import check_database_url
from protocol.models.common import NodeId, Url

CONFIG_NAME = "openseats.toml"
DEFAULT_DATA = Path("openseats-data")
# A CSP source for frame-ancestors: scheme, host (optionally *.), port; nothing else.
CataloguePage = Literal["public", "token", "login"]
_FRAME_ORIGIN = re.compile(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?")


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENSEATS_", extra="forbid")
    _toml_path: ClassVar[Path | None] = None

    node_id: NodeId
    base_url: Url
    display_name: str = Field(min_length=1, max_length=120)
    data_dir: Path
    database_url: str = ""
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Most database connections this process opens (PostgreSQL). All replicas "
        "together must stay below the server's max_connections.",
    )
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8700, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    lease_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Several replicas: how long a replica's claim on a scheduled job or on a "
        "peer's outbox lasts without renewal; another replica takes over after it.",
    )
    feed_page_size: int = Field(default=500, ge=1, le=1000)
    log_format: Literal["json", "console"] = Field(
        default="json",
        description="Log lines as JSON objects (for log shippers) or readable console lines.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_token: str = Field(
        default="",
        description="Bearer token for /metrics on the main port (at least 16 characters; "
        "best set as OPENSEATS_METRICS_TOKEN). Empty: /metrics answers 404 there.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve /metrics without a token on listen_host:metrics_port; "
        "this port must never be reachable from outside.",
    )
    public_catalogue: bool = False
    poll_interval_seconds: int = Field(default=300, ge=5)
    descriptor_validity_days: int = Field(default=7, ge=1, le=7)
    old_key_grace_days: int = Field(default=30, ge=1)
    catalogue_retention_days: int = Field(default=7, ge=0)
    registration_cutoff_minutes: int = Field(
        default=0,
        ge=0,
        le=60 * 24 * 30,
        description="Partners can no longer register this many minutes before the start.",
    )
    hold_minutes: int = Field(default=5, ge=1, le=60)
    max_seats_per_request: int = Field(default=2, ge=1, le=10)
    attendee_retention_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Attendee data of reservations is deleted this many days after the session.",
    )
    registration_url: str = Field(
        default="",
        description="Where employees register for a catalogue entry; {id} is replaced. "
        "Default: this node's session page.",
    )
    catalogue_page: CataloguePage | None = Field(
        default=None,
        description="Who may see the catalogue pages (/, /sessions/..., /widget): "
        "'public' (anyone), 'token' (a portal or calendar token in ?token=, then kept in a "
        "cookie, or a logged-in admin), 'login' (a logged-in admin only). "
        "Default: 'public' if public_catalogue is true, else 'login'.",
    )
    widget_frame_ancestors: list[str] = Field(
        default_factory=list,
        description="Origins that may embed the catalogue widget (/widget) in a frame, "
        "e.g. https://intranet.example.org or https://*.example.org.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses or networks like 10.0.0.0/24) whose "
        "X-Forwarded-For header names the client, e.g. for the login limit per address; "
        "in the environment comma-separated. Default: none, the TCP peer is the client.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("mindestens 16 Zeichen oder leer / at least 16 characters, or empty")
        return value

    @field_validator("metrics_port")
    @classmethod
    def _own_port(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value == info.data.get("listen_port"):
            raise ValueError("nicht der listen_port / must differ from listen_port")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("widget_frame_ancestors")
    @classmethod
    def _origins_only(cls, values: list[str]) -> list[str]:
        cleaned = [value.rstrip("/") for value in values]
        for value in cleaned:
            if not _FRAME_ORIGIN.fullmatch(value):
                raise ValueError(
                    f"{value!r}: nur Origins wie https://intranet.example.org / "
                    "origins only, like https://intranet.example.org"
                )
        return cleaned

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        """A TOML list as it is; from the environment ``a,b`` or a JSON list."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_only(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            try:
                cleaned.append(str(ipaddress.ip_network(value.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{value!r}: keine IP-Adresse und kein Netz wie 10.0.0.0/24 / "
                    "not an IP address or a network like 10.0.0.0/24"
                ) from None
        return cleaned

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'openseats.db'}"

    @property
    def registration_template(self) -> str:
        return self.registration_url or f"{self.base_url}/sessions/{{id}}"

    @property
    def catalogue_access(self) -> CataloguePage:
        """``catalogue_page``, or its default from ``public_catalogue``."""
        if self.catalogue_page is not None:
            return self.catalogue_page
        return "public" if self.public_catalogue else "login"

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(value) for value in self.trusted_proxies)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_path))
        return tuple(sources)


def resolve_data_dir(data: str | Path | None) -> Path:
    if data:
        return Path(data)
    if env := os.environ.get("OPENSEATS_DATA"):
        return Path(env)
    return DEFAULT_DATA


def load_settings(data: str | Path | None = None, config: str | Path | None = None) -> Settings:
    """Load settings, or raise :class:`SettingsError` with a clear message."""
    data_dir = resolve_data_dir(data)
    path = Path(config) if config else data_dir / CONFIG_NAME
    if not path.exists():
        raise SettingsError(
            f"Keine Konfiguration unter {path} – zuerst 'openseats init' ausführen / "
            f"no configuration at {path}; run 'openseats init' first"
        )
    try:
        Settings._toml_path = path
        return Settings(data_dir=data_dir)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc, source=str(path))) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(config_errors.describe_toml_error(path, exc)) from None
    except EnvParseError as exc:
        raise SettingsError(config_errors.describe_env_parse_error(exc)) from None
    except OSError as exc:
        raise SettingsError(
            f"{path}: Konfiguration nicht lesbar / cannot read the configuration: "
            f"{exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    finally:
        Settings._toml_path = None


def describe_validation_error(exc: ValidationError, *, source: str) -> str:
    return config_errors.describe_validation_error(
        exc, source=source, settings=Settings.model_fields
    )


def write_config(path: Path, values: dict[str, Any]) -> None:
    path.write_text(tomli_w.dumps(values), encoding="utf-8")
