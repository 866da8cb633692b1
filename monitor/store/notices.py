"""The rows of maintenance notices, the same for every backend: the columns read, and a row of
them as a ``NoticeRecord``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from monitor.store.types import NoticeRecord

NOTICE_COLUMNS = "id, ref, systems, starts_at, ends_at, announced_at, over_at, cancelled_at"


def notice_record(row: Sequence[Any]) -> NoticeRecord:
    """A row of ``NOTICE_COLUMNS`` as the record."""
    id_, ref, systems, starts_at, ends_at, announced_at, over_at, cancelled_at = row
    return NoticeRecord(
        int(id_),
        str(ref),
        tuple(json.loads(systems)),
        starts_at,
        ends_at,
        announced_at,
        over_at,
        cancelled_at,
    )
