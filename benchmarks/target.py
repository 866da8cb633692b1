"""The benchmark's target: an aiohttp server on 127.0.0.1 answering every GET with ``200 ok``.

``PUT /-/fail`` with a body of paths, one per line (``/bench-00001``), makes those paths answer
``503 down`` from then on, until the next ``PUT /-/fail`` replaces the list (an empty body
heals them all): how the soak benchmark scripts its outages.

It runs in its own process (``python benchmarks/target.py``), so it uses the machine's other core
and never takes CPU from the process being measured. It prints ``PORT <n>`` once listening and
serves until sent SIGTERM/SIGINT (or, with ``--until-stdin-closes``, until stdin ends).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

CONTROL = "/-/fail"
_failing: set[str] = set()


async def _ok(request: web.BaseRequest) -> web.Response:
    if request.path in _failing:
        return web.Response(status=503, body=b"down", content_type="text/plain")
    if request.path == CONTROL and request.method == "PUT":
        paths = (await request.text()).split()
        _failing.clear()
        _failing.update(paths)
        return web.Response(body=f"{len(_failing)} failing".encode(), content_type="text/plain")
    return web.Response(body=b"ok", content_type="text/plain")


async def serve(
    host: str,
    port: int,
    watch_stdin: bool,
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] = _ok,
) -> None:
    # The low-level server skips routing and middlewares: the target should cost as little
    # per request as aiohttp allows, so that the client side is what gets measured.
    server = web.Server(handler, access_log=None)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, host, port, backlog=4096)
    bound = listener.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if watch_stdin:
        # A daemon thread, since epoll cannot watch every kind of stdin.
        def wait_for_eof() -> None:
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
    await stop.wait()
    listener.close()
    await server.shutdown(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--until-stdin-closes", action="store_true", help="stop when stdin reaches its end"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.until_stdin_closes))


if __name__ == "__main__":
    main()
