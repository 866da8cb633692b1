"""What this replica is called (``MONITOR_REPLICA``, else the host's name) and that no other
live process goes by the same name: two processes sharing one name would both believe they
hold the same checks and the same lead."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping

from monitor.store import ReplicaRecord, Replicas

VARIABLE = "MONITOR_REPLICA"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")


class ReplicaNameError(ValueError):
    """The replica's name cannot be used; the message says why and what to do."""


def replica_name(
    environ: Mapping[str, str], hostname: Callable[[], str] = socket.gethostname
) -> str:
    """``MONITOR_REPLICA`` if set, else the host's name (a pod's name in Kubernetes)."""
    given = environ.get(VARIABLE)
    name = given if given is not None else hostname()
    if not _NAME.fullmatch(name):
        where = VARIABLE if given is not None else f"the host's name (set {VARIABLE} instead)"
        raise ReplicaNameError(
            f"{where}: {name!r} cannot name a replica: 1 to 100 letters, digits and . _ : @ -, "
            "starting with a letter or digit"
        )
    return name


async def check_name_free(
    store: Replicas,
    name: str,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    heartbeat: float,
    host: str,
    pid: int,
) -> None:
    """Raise ReplicaNameError if another live process goes by ``name``.

    A replica of that name seen within the last heartbeat and a half may be this one's
    previous life (killed, restarted at once). On this host, with a process id that is this
    process's or no process's, it is gone. Otherwise it is gone if it does not write again by
    a heartbeat and a half after its last write; an older row is a dead replica's (a live one
    writes every heartbeat).
    """
    seen = await _seen(store, name, now() - 1.5 * heartbeat)
    if seen is None or (seen.host == host and (seen.pid == pid or not _running(seen.pid))):
        return
    await sleep(seen.seen_at + 1.5 * heartbeat - now())
    again = await _seen(store, name, seen.seen_at)
    if again is not None and again.seen_at != seen.seen_at:
        raise ReplicaNameError(
            f"another monitor sharing this database calls itself {name!r} and is running "
            f"(on {again.host}): give each replica its own {VARIABLE}"
        )


async def _seen(store: Replicas, name: str, since: float) -> ReplicaRecord | None:
    """The replica ``name`` if it said it was alive at ``since`` or later."""
    for replica in await store.live_replicas(since):
        if replica.name == name:
            return replica
    return None


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
