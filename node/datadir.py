"""The data dir's run lock: is a node serving from this directory?

``openseats restore`` replaces the SQLite database file.  Doing that under
a running node would leave the node writing into a file that no longer
exists (or mixing the old WAL into the new file), so restore must know.
A PID file would lie after a crash; an ``flock`` cannot: the kernel drops
it when the process dies, however it dies.

``serve`` holds a *shared* lock on ``<data>/openseats.lock`` for its whole
life (several replicas may share a data dir with PostgreSQL); restore
asks for an *exclusive* one without waiting and refuses if it cannot get
it.  The lock is only taken for SQLite nodes: on PostgreSQL the data dir
may be read-only (config and keys mounted into a container) and restore
does not apply.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "openseats.lock"


class DataDirBusy(Exception):
    """Another process holds the lock (a node serves here, or a restore runs)."""


class DataDirNotWritable(Exception):
    """The data dir cannot be created or written."""


def _open(data_dir: Path) -> int:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        return os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DataDirNotWritable(f"{data_dir}: {exc.strerror or exc}") from None


@contextmanager
def _locked(data_dir: Path, mode: int) -> Iterator[None]:
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataDirBusy(str(data_dir)) from None
            raise
        yield
    finally:
        os.close(fd)  # closing drops the lock


@contextmanager
def serving(data_dir: Path) -> Iterator[None]:
    """Held by ``serve``: shared, so replicas on one data dir do not block each other."""
    with _locked(data_dir, fcntl.LOCK_SH):
        yield


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Held by ``restore``: fails at once with :class:`DataDirBusy` if anyone serves here."""
    with _locked(data_dir, fcntl.LOCK_EX):
        yield
