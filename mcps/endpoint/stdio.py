"""stdin and stdout as non-blocking pipes on the event loop, for mcp_proxy.

The SDK's `stdio_server()` reads and writes through anyio's file wrappers, which hand
every line read and every write and flush to a worker thread: several thread hops per
call, which showed as a fifth of the proxy's time. Given our own streams it does the
same JSON-RPC framing and parsing over them. Like the SDK, while serving fd 0 reads
the null device and fd 1 goes to stderr, so stray prints and child processes cannot
corrupt the wire; both are restored on exit.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.stdio import stdio_server

MAX_LINE = 64 * 1024 * 1024  # one JSON-RPC message per line; results can be large


class _Lines:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self.reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Writer:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def write(self, text: str) -> None:
        self.writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self.writer.drain()


@asynccontextmanager
async def loop_stdio_server() -> AsyncIterator[tuple[Any, Any]]:
    """`(read, write)` streams for `Server.run`, like the SDK's `stdio_server()`."""
    loop = asyncio.get_running_loop()
    wire_in, wire_out = os.dup(0), os.dup(1)
    try:
        reader = asyncio.StreamReader(limit=MAX_LINE, loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(wire_in, "rb", buffering=0)
        )
        write_transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop), os.fdopen(wire_out, "wb", buffering=0)
        )
    except (ValueError, OSError):  # not pipes (a file, a terminal): the SDK's threads then
        os.close(wire_in)
        os.close(wire_out)
        async with stdio_server() as streams:
            yield streams
        return
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        async with stdio_server(_Lines(reader), _Writer(writer)) as streams:  # type: ignore[arg-type]
            yield streams
    finally:
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
        read_transport.close()
        write_transport.close()
