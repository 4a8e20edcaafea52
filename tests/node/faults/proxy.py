"""A TCP forwarder between the node and PostgreSQL that a test can cut.

The machine's PostgreSQL serves other tests at the same time, so it is
never stopped; instead the node reaches it through this proxy.  ``cut()``
aborts every open connection and makes new ones fail at once (as when the
server or the network goes away); ``restore()`` forwards again.
``cut_after(b"INSERT INTO sessions", before=b"COMMIT")`` aborts the first
connection that sent the one and is about to send the other, instead of
forwarding it: the server sees the connection die inside the transaction,
after its writes and before its commit, exactly as in a crash.
"""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.down = False
        self._marker: bytes | None = None
        self._before = b""
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut(self) -> None:
        self.down = True
        for writer in list(self._writers):
            writer.transport.abort()

    def restore(self) -> None:
        self.down = False

    def cut_after(self, marker: bytes | None, *, before: bytes = b"COMMIT") -> None:
        """Arm (or with ``None`` disarm) the cut of one connection mid-transaction."""
        self._marker, self._before = marker, before

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pair = (writer, up_writer)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, pair, watch=True)),
            asyncio.create_task(self._pipe(up_reader, writer, pair, watch=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        *,
        watch: bool,
    ) -> None:
        armed = False
        try:
            while chunk := await reader.read(65536):
                if watch and self._marker is not None:
                    if armed and self._before in chunk:
                        self.cuts += 1
                        self._marker = None  # once
                        break
                    armed = armed or self._marker in chunk
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in pair:
                end.transport.abort()
                self._writers.discard(end)
            with contextlib.suppress(Exception):
                await writer.wait_closed()
