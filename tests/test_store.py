"""What only the SQLite store does: its file in WAL mode, SQLite's own refusal of writes
reported by name, incident ids going on after those of a file written before ids were
reserved. What every backend does is in test_store_contract.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.incidents.correlation import Incident
from monitor.model import ProbeResult
from monitor.store import SQLiteStore, StoreUnavailable


async def test_store_uses_write_ahead_logging(tmp_path: Path) -> None:
    """The database file is in WAL mode, so readers never block the monitor's writes."""
    store = SQLiteStore(tmp_path / "monitor.db")
    mode = next(store.db.query("PRAGMA journal_mode"))["journal_mode"]
    await store.close()
    assert mode == "wal"


async def test_a_database_refusing_writes_is_reported_not_crashed(tmp_path: Path) -> None:
    """When SQLite refuses writes (here: query_only, as for a read-only file), the store
    raises StoreUnavailable with SQLite's reason instead of a raw sqlite3 error."""
    store = SQLiteStore(tmp_path / "monitor.db")
    store.db.execute("PRAGMA query_only=1")
    with pytest.raises(StoreUnavailable, match="readonly"):
        await store.check_writable()
    with pytest.raises(StoreUnavailable, match="readonly"):
        await store.record_results([ProbeResult("payment", True, "status 200", 1000.0, 0.01)])
    await store.close()


async def test_incident_ids_go_on_after_the_highest_incident_saved(tmp_path: Path) -> None:
    """An incident already there with a higher id than any reserved (as in a file written
    before ids were reserved) is never given again: the next id comes after it."""
    store = SQLiteStore(tmp_path / "monitor.db")
    assert await store.new_incident_id() == 1
    await store.save_incident(Incident(id=7, opened_at=100.0, members=(), cause="payment"))
    assert await store.new_incident_id() == 8
    await store.close()
