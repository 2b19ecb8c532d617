"""A server of known capacity for the capacity tests: it serves ONE request at a time and
each takes `service_s`, so it holds at most 1/service_s req/s and queues everything above.

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) on 127.0.0.1 in a thread
of the test process; every path answers 200 `ok` at the end of its turn.

The turns are kept on the wall clock, a D/1 queue: a request read at t starts at
max(t, the previous turn's end) and is answered at that start + service_s. It sleeps until
that deadline rather than for service_s, so a late wake-up of the event loop (a busy machine)
delays one reply, never the turns after it: the capacity stays 1/service_s exactly. (A lock
held for asyncio.sleep(service_s) added every wake-up's lateness to the turns: at load
average 19-21 on two cores a 16 ms server missed its objective at 58.2 req/s, under its
1/S = 62.5, and the test of the search's precision failed.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class _Turns:
    """The end of the last turn given out, on the event loop's clock (one loop: no lock)."""

    def __init__(self) -> None:
        self.free_at = 0.0

    def next_end(self, arrived: float, service_s: float) -> float:
        self.free_at = max(arrived, self.free_at) + service_s
        return self.free_at


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, turns: _Turns, service_s: float
) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            end = turns.next_end(loop.time(), service_s)  # one at a time: the rest queue
            await asyncio.sleep(max(0.0, end - loop.time()))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    except asyncio.CancelledError:
        pass  # the server is shutting down
    finally:
        writer.close()


@contextlib.contextmanager
def serial_server(service_s: float, port: int = 0) -> Iterator[str]:
    """Serve on `port` of the loopback (0: a free one); yield the base URL; stop on exit."""
    loop = asyncio.new_event_loop()
    turns = _Turns()
    started = threading.Event()
    port_box: list[int] = []

    async def main() -> asyncio.Server:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, turns, service_s),
            "127.0.0.1",
            port,
            backlog=1024,
        )
        port_box.append(server.sockets[0].getsockname()[1])
        return server

    async def shutdown(server: asyncio.Server) -> None:
        server.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(main())
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(shutdown(server))
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the serial server did not start")
    try:
        yield f"http://127.0.0.1:{port_box[0]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def main() -> None:
    """`python capacity_apps.py --port P --service-ms S`: the serial server as a process of
    its own, for a target file (the known-capacity test); it stops on SIGINT or SIGTERM."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service-ms", type=float, required=True)
    args = parser.parse_args()
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    with serial_server(args.service_ms / 1000, args.port):
        done.wait()


if __name__ == "__main__":
    main()
