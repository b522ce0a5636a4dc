"""A message pipe between the supervisor and one actor, read from asyncio without a thread.

Why multiprocessing pipes: the supervisor creates one per actor at spawn, so each actor
talks only to its supervisor, and the actor sees EOF the moment the supervisor dies.
Messages are msgpack-encoded by earwig.messages (one Decoder over the whole union).
"""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection

from earwig.messages import AnyMessage, Message, decode, encode


class Channel:
    """One end of a duplex message pipe, read from asyncio without a thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._inbox: asyncio.Queue[AnyMessage | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), self._drain)
        self._loop = loop

    def _drain(self) -> None:
        try:
            while self._conn.poll():
                self._inbox.put_nowait(decode(self._conn.recv_bytes()))
        except (EOFError, OSError):
            self._loop.remove_reader(self._conn.fileno())
            self._inbox.put_nowait(None)

    def send(self, message: Message) -> None:
        self._conn.send_bytes(encode(message))

    async def receive(self) -> AnyMessage | None:
        """The next message, or None once the other end has closed."""
        return await self._inbox.get()

    def close(self) -> None:
        if not self._conn.closed:
            self._loop.remove_reader(self._conn.fileno())
            self._conn.close()
