"""uvicorn's own HTTP protocol, driven in memory: the request path `harness probe` measures,
without a socket or a port.

`harness probe` serves the app with uvicorn (httptools and uvloop when installed) and the probe
middleware counts what happens inside the app call, uvicorn's share included: reading the
request body (``receive``), building and writing the response head and body (``send``), the
keep-alive timer armed when the response completes (about 2.5 KB per request here). A client
that calls the ASGI app directly counts none of it, and its peaks came out 2-3 KB lower (15% of
a small request). So the in-process client hands uvicorn's protocol object the request bytes
(``data_received``) and a transport that copies what it writes out of the traced heap, where
a socket would have sent it; h11 (a uvicorn dependency) encodes the request and parses the
response, outside the measured span.

The lifespan runs through uvicorn's own ``LifespanOn`` (``lifespan="auto"``, as harness.serve
sets it) and its state reaches every request, as in a served app.
"""

from __future__ import annotations

import asyncio
import mmap
import time
from email.utils import formatdate
from typing import Any

import h11
import httpx
from uvicorn import Config
from uvicorn.lifespan.on import LifespanOn
from uvicorn.server import ServerState

SERVER_ADDRESS = ("127.0.0.1", 8000)
CLIENT_ADDRESS = ("127.0.0.1", 50000)
SINK_BYTES = 1 << 20  # the transport's first memory map; doubled when a response needs more


class WireError(RuntimeError):
    """The app's response could not be read (or the app did not start)."""


class MemoryTransport(asyncio.Transport):
    """What uvicorn writes is copied out of Python's heap at once, as a socket would send it.

    The sink is an anonymous memory map, which tracemalloc does not trace: the written bytes
    objects are released when uvicorn drops them, as on a server, and holding a streamed body
    until the response ends adds nothing to the request's figures (kept as bytes objects, a
    streamed chat answer's 12 KB of chunks showed in its peak).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._closing = False
        self.protocol: asyncio.BaseProtocol | None = None
        self._sink = mmap.mmap(-1, SINK_BYTES)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        if self._sink.tell() + size > len(self._sink):
            self._grow(self._sink.tell() + size)
        self._sink.write(data)

    def _grow(self, needed: int) -> None:
        capacity = len(self._sink)
        while capacity < needed:
            capacity *= 2
        bigger = mmap.mmap(-1, capacity)
        used = self._sink.tell()
        with memoryview(self._sink) as old:
            bigger.write(old[:used])
        self._sink.close()
        self._sink = bigger

    def take(self) -> bytes:
        """Everything written since the last take (outside any measurement)."""
        used = self._sink.tell()
        self._sink.seek(0)
        return self._sink.read(used)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            if self.protocol is not None:
                self._loop.call_soon(self.protocol.connection_lost, None)

    def release(self) -> None:
        self._sink.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": SERVER_ADDRESS, "peername": CLIENT_ADDRESS}.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0


class Wire:
    """One app behind uvicorn's HTTP protocol, on the event loop it is created on."""

    def __init__(self, app: Any) -> None:
        self.config = Config(
            app=app,
            interface="asgi3",
            lifespan="auto",
            log_config=None,
            access_log=False,
        )
        self.config.load()
        self.state = ServerState()
        self.state.default_headers = [
            (b"date", formatdate(time.time(), usegmt=True).encode()),
            *self.config.encoded_headers,
        ]
        self.lifespan = LifespanOn(self.config)
        self._transport: MemoryTransport | None = None
        self._protocol: asyncio.Protocol | None = None

    async def start(self) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise WireError("the app's lifespan startup failed (see the log above)")

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            await asyncio.sleep(0)
            self._transport.release()
        await self.lifespan.shutdown()

    def _connection(self) -> tuple[MemoryTransport, asyncio.Protocol]:
        if self._transport is None or self._transport.is_closing() or self._protocol is None:
            if self._transport is not None:
                self._transport.release()
            loop = asyncio.get_running_loop()
            transport = MemoryTransport(loop)
            protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config, server_state=self.state, app_state=self.lifespan.state
            )
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            self._transport, self._protocol = transport, protocol
        return self._transport, self._protocol

    async def exchange(self, request: bytes) -> bytes:
        """Hand uvicorn one request's bytes; what it wrote once the request's task is done."""
        transport, protocol = self._connection()
        transport.take()
        protocol.data_received(request)
        while self.state.tasks:
            await asyncio.gather(*list(self.state.tasks), return_exceptions=True)
        return transport.take()


def encode_request(request: httpx.Request, body: bytes) -> tuple[h11.Connection, bytes]:
    """The request as bytes on the wire (h11), and the client connection that reads the answer."""
    connection = h11.Connection(h11.CLIENT)
    target = request.url.raw_path
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"transfer-encoding"]
    if body and not any(k.lower() == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(body)).encode()))
    data = connection.send(h11.Request(method=request.method, target=target, headers=headers))
    if body:
        data += connection.send(h11.Data(data=body))
    data += connection.send(h11.EndOfMessage())
    return connection, data


def decode_response(
    connection: h11.Connection, written: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of the response in what uvicorn wrote."""
    connection.receive_data(written)
    status, headers, body = 0, [], bytearray()
    while True:
        event = connection.next_event()
        if isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, headers, bytes(body)
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            raise WireError(f"incomplete response ({len(body)} body bytes, status {status})")
