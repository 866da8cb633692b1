"""What the SQLite backend's parts share: a statement whose rows (``RETURNING``'s, or a read's)
are read inside its own transaction, a locked or unreachable file raising ``StoreUnavailable``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from monitor.store.types import StoreUnavailable


class SQLiteRows:
    """A part of the SQLite store, on its file ``db``."""

    db: sqlite_utils.Database

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            with self.db.atomic():  # RETURNING's rows are read before the commit
                return self.db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
