"""TCP probes: can we open a connection? Connect, then close at once."""

from __future__ import annotations

import asyncio
import socket
from time import perf_counter

import aiohappyeyeballs

from monitor.config import TcpProbe
from monitor.probing.probes.reasons import os_error, say_elapsed

# Try the next address of a dual-stack host after this long, as browsers do (RFC 8305).
_HAPPY_EYEBALLS_DELAY = 0.25


async def probe_tcp(spec: TcpProbe) -> tuple[bool, str]:
    loop = asyncio.get_running_loop()
    started = perf_counter()
    try:
        # aiohappyeyeballs rather than create_connection's own happy_eyeballs_delay, which
        # uvloop's loop does not take.
        addresses = await loop.getaddrinfo(spec.host, spec.port, type=socket.SOCK_STREAM)
        sock = await aiohappyeyeballs.start_connection(
            addresses, happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY
        )
    except OSError as exc:
        return False, os_error(exc, spec.host)
    sock.close()
    return True, f"connected in {say_elapsed(perf_counter() - started)}"
