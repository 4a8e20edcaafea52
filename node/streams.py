"""Reading a whole HTTP body, but never more than a limit.

``StreamReader.read(n)`` returns what has arrived so far, up to *n* bytes,
not the whole body: a large body read that way is silently cut.  Every body
the node reads (requests it serves, responses it fetches) goes through
:func:`read_limited` instead.
"""

from __future__ import annotations

import aiohttp

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


async def read_limited(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it exceeds *limit*."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
