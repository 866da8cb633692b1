"""A minimal SMTP sink for the fan-out benchmark: accepts every message and keeps none of it.

    python benchmarks/smtp_sink.py [--port 0] [--delay SECONDS] [--ids FILE]

``--delay`` holds each DATA reply that long (a slow mail server); ``--ids`` appends each
accepted message's Message-ID (or ``-`` when it has none) to FILE, one per line, as it is
accepted, so another process can follow who got what and check that nothing came twice.
It prints ``ready PORT`` once listening, counts what it accepted (messages and bytes) and, when
its stdin closes or it gets SIGTERM, prints ``{"messages": N, "bytes": B}`` and exits. Run it in
a process of its own so the process being measured pays only for its own CPU.
(``monitor.mailcatcher`` keeps every message in memory: right for tests, wrong for 100,000.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import stat
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]*)>", re.IGNORECASE | re.MULTILINE)


class Discard:
    """An aiosmtpd handler that says 250 to every message (after ``delay`` seconds) and forgets
    it, but for its Message-ID when ``ids`` is given."""

    def __init__(self, delay: float = 0.0, ids: Path | None = None) -> None:
        self.messages = 0
        self.bytes = 0
        self.delay = delay
        # Unbuffered: a reader following the file sees each message as soon as it is accepted.
        self.ids = ids.open("ab", buffering=0) if ids else None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        self.messages += 1
        self.bytes += len(content)
        if self.ids is not None:
            found = _MESSAGE_ID.search(content.partition(b"\r\n\r\n")[0])
            self.ids.write((found.group(1) if found else b"-") + b"\n")
        return "250 2.0.0 OK"


async def serve(port: int, delay: float = 0.0, ids: Path | None = None) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    handler = Discard(delay, ids)
    server = await loop.create_server(
        # No size limit and no line-length complaints: the sink measures the client, not policy.
        lambda: SMTP(handler, hostname="sink.invalid", data_size_limit=None, enable_SMTPUTF8=True),
        "127.0.0.1",
        port,
    )
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    waits: list[asyncio.Future[object]] = [asyncio.ensure_future(done.wait())]
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        # stdin closing (the parent went away, or said so) also ends the sink.
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        waits.append(asyncio.ensure_future(reader.read()))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    server.close()
    if handler.ids is not None:
        handler.ids.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "messages": handler.messages,
        "bytes": handler.bytes,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--ids", type=Path, help="append each Message-ID to this file")
    args = parser.parse_args()
    counts = asyncio.run(serve(args.port, args.delay, args.ids))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
