"""Rows of the PostgreSQL tables: the records as ``monitor.store.records`` writes them for both
backends, and the column types that unnest them.

A batch goes to the server as one statement: a list per column, unnested by the server
(``columns``), so a batch of any size is the same query text, prepared once per connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from monitor.incidents.correlation import Incident
from monitor.store.records import (
    members,
    members_text,
)

OUTBOX_TYPES = (
    "text[], bigint[], text[], text[], text[], float8[], text[], text[], text[], text[], "
    "text[], text[], int[], float8[], text[], float8[], text[]"
)
DECIDED_TYPES = OUTBOX_TYPES + ", int[]"  # and the shard

INCIDENT_COLUMNS = (
    "id, opened_at, resolved_at, cause, members, note, held, notified_at, last_update_at, "
    "update_seq, pending_round, resolution_told_at"
)
INCIDENT_TYPES = (
    "bigint[], float8[], float8[], text[], text[], text[], bool[], float8[], float8[], int[], "
    "text[], float8[]"
)


def columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """``rows`` as one list per column, for ``unnest(%b::type[], ...)``."""
    found: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(found, row, strict=True):
            column.append(value)
    return found


def incident_row(incident: Incident) -> tuple[Any, ...]:
    return (
        incident.id,
        incident.opened_at,
        incident.resolved_at,
        incident.cause,
        members_text(incident),
        incident.note,
        incident.held,
        incident.notified_at,
        incident.last_update_at,
        incident.update_seq,
        incident.pending_round,
        incident.resolution_told_at,
    )


def incident(row: Sequence[Any]) -> Incident:
    """An incident from a row of ``INCIDENT_COLUMNS``."""
    id_, opened, resolved, cause, members_, note, held, notified, updated, seq, round_, told = row
    return Incident(
        id=id_,
        opened_at=opened,
        members=members(members_),
        cause=cause,
        resolved_at=resolved,
        note=note,
        held=held,
        notified_at=notified,
        last_update_at=updated,
        update_seq=seq,
        pending_round=round_,
        resolution_told_at=told,
    )


def systems_text(systems: Iterable[str]) -> str:
    """What a person was told of, as ``told.systems`` keeps it: sorted, as JSON."""
    return json.dumps(sorted(systems))
