"""Structured logs: a context that follows the request, JSON or console lines.

:func:`configure_logging` installs one handler on the root logger; it is
called once at start by ``openseats serve`` (JSON by default) and
``openseats demo`` (console).  The formatters are small and our own: a JSON
line is ``timestamp``, ``level``, ``logger``, ``message``, the context
fields that are known (``node``, ``request_id``, ``route``, ``peer``), any
``extra=`` fields of the call, and ``exception`` with the traceback.

The context lives in one :class:`contextvars.ContextVar` holding a frozen
:class:`LogContext`; :func:`bind` returns a token for :func:`unbind`.
The handler's :class:`ContextFilter` copies it onto each record at emit
time, which is in the caller's context for the synchronous stream handler.

Some libraries log values they were handed.  SQLAlchemy (``echo`` or its
loggers at INFO) and aiosqlite at DEBUG print SQL *with bound parameters*,
that is attendee names, emails and token hashes, so their loggers are
capped at WARNING whatever ``log_level`` says.  APScheduler's per-tick INFO
lines are capped too: job outcomes are counted in the metrics instead.
Alembic's two lines of preamble for every migration context ("Context impl
…", "Will assume …") are dropped, since ``/readyz`` opens one on each
check; its "Running upgrade" lines stay.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["json", "console"]
CONTEXT_FIELDS = ("node", "request_id", "route", "peer")
# Loggers that would print bound SQL parameters (personal data) or per-tick noise.
CAPPED_LOGGERS = ("sqlalchemy", "aiosqlite", "apscheduler")
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    *CONTEXT_FIELDS,
}


@dataclass(frozen=True)
class LogContext:
    node: str | None = None
    request_id: str | None = None
    route: str | None = None
    peer: str | None = None


_CONTEXT: contextvars.ContextVar[LogContext] = contextvars.ContextVar(
    "openseats_log_context",
    default=LogContext(),  # noqa: B039 - frozen, never mutated
)


def current() -> LogContext:
    return _CONTEXT.get()


def bind(**fields: str | None) -> contextvars.Token[LogContext]:
    """Add fields to the context of this task (and of tasks it starts later)."""
    return _CONTEXT.set(replace(_CONTEXT.get(), **fields))


def unbind(token: contextvars.Token[LogContext]) -> None:
    _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Copies the context onto the record, unless the call passed its own value."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _CONTEXT.get()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(context, name))
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class AlembicPreamble(logging.Filter):
    """Drops Alembic's per-context preamble (logged on every readiness check)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "alembic.runtime.migration":
            return True
        return not str(record.msg).startswith(("Context impl", "Will assume"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; newlines in messages stay inside the string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for key, value in _extras(record).items():
            line.setdefault(key, _plain(value))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 INFO  aiohttp.access  GET /api/v1/catalogue 200 …  [node=… req=…]``."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        context = [
            f"{label}={value}"
            for label, value in (
                ("node", getattr(record, "node", None)),
                ("req", (getattr(record, "request_id", None) or "")[:8] or None),
                ("peer", getattr(record, "peer", None)),
            )
            if value
        ]
        text = f"{moment} {record.levelname:<7} {record.name}  {record.getMessage()}"
        if context:
            text += "  [" + " ".join(context) + "]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _OwnHandler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`configure_logging` installed, to replace it."""


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else ConsoleFormatter()


def configure_logging(
    log_format: LogFormat, level: str | int = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to *stream* (stderr) in *log_format*; return the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _OwnHandler):
            root.removeHandler(handler)
    handler = _OwnHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(AlembicPreamble())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in CAPPED_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def run_with(function: Callable[[], object], **fields: str | None) -> None:
    """Call *function* in a copy of the context with *fields* bound.

    Tasks and callbacks it schedules keep that context (a scheduler started
    this way runs every job with ``node`` set), and the caller's context
    stays as it was.
    """
    context = contextvars.copy_context()
    context.run(bind, **fields)
    context.run(function)
