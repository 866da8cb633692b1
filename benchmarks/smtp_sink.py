"""A minimal SMTP sink for the fan-out benchmark: accepts every message and keeps none of it.

    python benchmarks/smtp_sink.py [--port 0]

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
import resource
import signal
import stat
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session


class Discard:
    """An aiosmtpd handler that says 250 to every message and forgets it."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        self.bytes += len(envelope.original_content or b"")
        return "250 2.0.0 OK"


async def serve(port: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    handler = Discard()
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
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "messages": handler.messages,
        "bytes": handler.bytes,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    counts = asyncio.run(serve(args.port))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
