"""The replicas benchmark's target: ``target.py``'s answers, and when chosen paths were first
requested after a moment.

    python benchmarks/replicas_target.py --until-stdin-closes

Every GET answers ``200 ok``; ``PUT /-/fail`` with a body of paths, one per line, makes those
paths answer ``503 down`` until the next ``PUT /-/fail`` replaces the list (an empty body heals
them all), as in ``target.py``.

``PUT /-/watch`` with ``{"paths": [...], "after": UNIX_TIME}`` (JSON) starts noting, for each of
those paths, the time its first request arrived at or after ``after``; ``GET /-/firsts`` answers
``{path: time}`` for the paths seen so far. That is how ``replicas.py`` times a takeover: the
paths of a killed replica's checks, each probed again by another replica. The time is taken as
the request arrives, on this machine's clock, which the benchmark shares.

It prints ``PORT <n>`` once listening on 127.0.0.1 and serves until SIGTERM/SIGINT or, with
``--until-stdin-closes``, until its stdin ends. A process of its own, so that answering 1,000
probes a second takes none of the replicas' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time

from aiohttp import web
from target import serve

FAIL = "/-/fail"
WATCH = "/-/watch"
FIRSTS = "/-/firsts"


class Stamps:
    """The failing paths, and the first arrival after ``after`` of each watched path."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.watched: frozenset[str] = frozenset()
        self.after = math.inf
        self.firsts: dict[str, float] = {}

    async def handle(self, request: web.BaseRequest) -> web.Response:
        path = request.path
        if path in self.watched and path not in self.firsts:
            now = time.time()
            if now >= self.after:
                self.firsts[path] = now
        if path in self.failing:
            return web.Response(status=503, body=b"down", content_type="text/plain")
        if request.method == "PUT" and path == FAIL:
            self.failing = set((await request.text()).split())
            return web.Response(body=f"{len(self.failing)} failing".encode())
        if request.method == "PUT" and path == WATCH:
            asked = await request.json()
            self.firsts = {}
            self.after = float(asked["after"])
            self.watched = frozenset(str(p) for p in asked["paths"])
            return web.Response(body=f"{len(self.watched)} watched".encode())
        if path == FIRSTS:
            return web.Response(body=json.dumps(self.firsts), content_type="application/json")
        return web.Response(body=b"ok", content_type="text/plain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--until-stdin-closes", action="store_true", help="stop when stdin reaches its end"
    )
    args = parser.parse_args()
    # target.py's low-level server, with this handler.
    asyncio.run(serve("127.0.0.1", args.port, args.until_stdin_closes, Stamps().handle))


if __name__ == "__main__":
    main()
