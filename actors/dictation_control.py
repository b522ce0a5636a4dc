"""The control socket: ``earwig ctl start|stop|toggle|cancel|status`` drives a running
``earwig dictate`` without any hotkey (Wayland, window-manager key bindings, scripts).

Why a Unix socket in ``$XDG_RUNTIME_DIR``: it is private to the user by the XDG spec, it is
never reachable from the network, and the kernel tells the server who connected
(SO_PEERCRED), so a connection from another user is refused even if the folder's mode was
loosened. The socket itself is made 0600.

On the wire: one DictationCommand from the client, one DictationState back, each as a
4-byte big-endian length and the message's msgpack.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from earwig import paths
from earwig.errors import EarwigError
from earwig.messages import DictationAction, DictationCommand, DictationState, decode, encode

#: How long ``earwig ctl stop`` waits for the text to be delivered.
STOP_WAIT_S = 120.0
_LENGTH = struct.Struct(">I")


def socket_path() -> Path:
    return paths.runtime_dir() / "dictation.sock"


def ensure_free(path: Path) -> None:
    """Fail if a daemon answers on ``path``; remove a socket a dead daemon left."""
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody listens: left by a daemon that was killed
        return
    raise EarwigError(f"another earwig dictate is already running (its socket: {path})",
                      "use that one (`earwig ctl status`), or stop it before starting another")


async def serve(path: Path, answer: Callable[[DictationAction], Awaitable[DictationState]]) -> asyncio.AbstractServer:
    """Listen on ``path`` (0600), answering each command of this user with ``answer``."""
    ensure_free(path)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = writer.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i"))
            _, uid, _ = struct.unpack("3i", peer)
            if uid != os.getuid():
                reply = DictationState(state="failed", detail=f"refused: uid {uid} is not this daemon's user")
            else:
                command = decode(await _read(reader))
                reply = (await answer(command.action) if isinstance(command, DictationCommand)
                         else DictationState(state="failed", detail="not a dictation command"))
            data = encode(reply)
            writer.write(_LENGTH.pack(len(data)) + data)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away, or sent something that is not a message
        finally:
            writer.close()

    old_mask = os.umask(0o177)  # the socket is created 0600, never briefly wider
    try:
        server = await asyncio.start_unix_server(handle, path=str(path))
    finally:
        os.umask(old_mask)
    return server


def request(action: DictationAction, path: Path | None = None) -> DictationState:
    """Send one command to the running daemon and wait for its answer."""
    path = path or socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(STOP_WAIT_S + 10)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise EarwigError(f"no earwig dictate is running (nothing answers on {path})",
                              "start it with `earwig dictate`") from None
        data = encode(DictationCommand(action=action))
        client.sendall(_LENGTH.pack(len(data)) + data)
        header = _receive_exactly(client, _LENGTH.size)
        reply = decode(_receive_exactly(client, _LENGTH.unpack(header)[0]))
    if not isinstance(reply, DictationState):
        raise EarwigError("the dictation daemon answered something unexpected", "restart `earwig dictate`")
    return reply


async def _read(reader: asyncio.StreamReader) -> bytes:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return await reader.readexactly(length)


def _receive_exactly(client: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = client.recv(count - len(data))
        if not chunk:
            raise EarwigError("the dictation daemon closed the connection", "see `earwig dictate`'s output")
        data += chunk
    return data
