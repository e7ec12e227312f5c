"""A WebSocket client on a bare TCP stream, for tests that send what no library sends:
fragments left unfinished, floods of pings, frames that never end, sockets that never read.

Usage::

    ws = await RawSocket.open(base, "/parties/main/r1")
    await ws.send_frame(TEXT, b"hello", fin=False)
    opcode, payload = await ws.read_frame()
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

__all__ = ["BINARY", "CLOSE", "CONTINUATION", "PING", "PONG", "TEXT", "RawSocket", "frame"]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked client frame."""
    head = bytearray([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    size = len(payload)
    if size < 126:
        head.append(0x80 | size)
    elif size < 65536:
        head += struct.pack("!BH", 0x80 | 126, size)
    else:
        head += struct.pack("!BQ", 0x80 | 127, size)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) if size < 4096 else _mask(
        payload, mask
    )
    return bytes(head) + mask + masked


def _mask(payload: bytes, mask: bytes) -> bytes:
    whole = mask * (len(payload) // 4 + 1)
    return (int.from_bytes(payload, "big") ^ int.from_bytes(whole[: len(payload)], "big")).to_bytes(
        len(payload), "big"
    )


class RawSocket:
    """One client WebSocket on a raw TCP stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls,
        base: str,
        path: str,
        *,
        extensions: str | None = None,
        receive_buffer: int | None = None,
    ) -> RawSocket:
        """Connect and complete the handshake (fails on anything but 101).

        *receive_buffer* shrinks the socket's kernel receive buffer, for clients that
        never read.
        """
        host, port = base.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {base}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = head.split(b" ", 2)[1]
        if status != b"101":
            writer.close()
            raise AssertionError(f"handshake refused: {head[:200]!r}")
        raw = cls(reader, writer)
        raw.response_head = head.decode("latin-1")
        return raw

    response_head = ""

    async def send_frame(
        self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False
    ) -> None:
        self.writer.write(frame(opcode, payload, fin=fin, rsv1=rsv1))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self) -> tuple[int, bytes]:
        """The next server frame (opcode, payload); raises ``IncompleteReadError`` at EOF."""
        b0, b1 = await self.reader.readexactly(2)
        size = b1 & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(size)

    async def close_code(self, timeout: float = 10) -> int | None:
        """Read until the server's close frame and return its code; ``None`` if the
        connection ended without one, or none came within *timeout* seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    opcode, payload = await self.read_frame()
                    if opcode == CLOSE:
                        return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return None

    def close(self) -> None:
        self.writer.close()
