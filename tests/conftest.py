"""Which event loops async tests run on: asyncio's own, and uvloop for tests marked
``every_loop`` (``monitor run`` uses uvloop where it is installed); and PostgreSQL for the tests
that ask for it: one throwaway cluster for the whole run (``pg_cluster``), a fresh database for
each test (``pg_database``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest
import uvloop
from postgres import Cluster, Database, PostgresUnavailable, start_cluster

from monitor.store import SQLiteStore, Store

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "every_loop: run on asyncio's event loop and on uvloop's (as `monitor run`)"
    )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    if item.get_closest_marker("every_loop") is None:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of its own for the run, stopped and removed after it. Where none
    can be started the tests that need it skip, saying why; in CI (``CI`` set) they fail."""
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        reason = f"PostgreSQL cannot be started: {exc}"
    else:
        yield cluster
        cluster.destroy()
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[Database]:
    """A new empty database owned by the ``monitor`` role (URL with its password at ``.url``),
    dropped after the test; the cluster is started first if a test left it stopped."""
    if not pg_cluster.running:
        pg_cluster.start()
    database = Database(pg_cluster, pg_cluster.create_database())
    yield database
    if not pg_cluster.running:
        pg_cluster.start()
    pg_cluster.drop_database(database.name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store on a new database of each backend (PostgreSQL skips where it cannot run, and
    fails in CI), closed after the test."""
    opened: Store
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "monitor.db")
    else:
        from monitor.store.postgres import open_postgres

        database = request.getfixturevalue("pg_database")
        assert isinstance(database, Database)
        opened = await open_postgres(database.url)
    try:
        yield opened
    finally:
        await opened.close()
