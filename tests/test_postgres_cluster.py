"""The throwaway PostgreSQL cluster the PostgreSQL tests stand on (``tests/postgres.py``): a
database reached by the URL a user would write, that survives a restart of the server."""

from __future__ import annotations

import socket
from urllib.parse import quote

import psycopg
import pytest
from postgres import Cluster, Database, PostgresUnavailable


async def test_the_database_accepts_the_role_with_the_password_from_its_url(
    pg_database: Database,
) -> None:
    """The per-test database takes a connection over TCP as the ``monitor`` role, with the
    password its URL carries, and belongs to that role."""
    async with await psycopg.AsyncConnection.connect(pg_database.url) as conn:
        cursor = await conn.execute(
            "SELECT current_user, current_database(), pg_get_userbyid(datdba), "
            "inet_server_addr()::text FROM pg_database WHERE datname = current_database()"
        )
        row = await cursor.fetchone()
    assert row == ("monitor", pg_database.name, "monitor", "127.0.0.1/32")


async def test_a_wrong_password_is_refused(pg_database: Database) -> None:
    """The role's password is checked (scram-sha-256), so a URL with another one is refused."""
    cluster = pg_database.cluster
    wrong = pg_database.url.replace(quote(cluster.password, safe=""), "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await psycopg.AsyncConnection.connect(wrong)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_stop_and_start_of_the_server_keeps_what_was_committed(
    pg_database: Database, mode: str
) -> None:
    """Rows committed before the server stops (cleanly, or at once as in a crash) are there
    when it is started again on the same URL."""
    async with await psycopg.AsyncConnection.connect(pg_database.url) as conn:
        await conn.execute("CREATE TABLE kept (id integer PRIMARY KEY, note text NOT NULL)")
        await conn.execute("INSERT INTO kept VALUES (1, 'decided'), (2, 'sent')")
        await conn.commit()
    pg_database.cluster.stop(mode)
    with pytest.raises(psycopg.OperationalError):
        await psycopg.AsyncConnection.connect(pg_database.url, connect_timeout=5)
    pg_database.cluster.start()
    async with await psycopg.AsyncConnection.connect(pg_database.url) as conn:
        cursor = await conn.execute("SELECT id, note FROM kept ORDER BY id")
        assert await cursor.fetchall() == [(1, "decided"), (2, "sent")]


def test_a_failed_statement_is_reported_without_the_password(pg_cluster: Cluster) -> None:
    """psql's error about a statement that quotes the password (psql shows the line) is passed
    on with the password starred out."""
    with pytest.raises(PostgresUnavailable) as raised:
        pg_cluster.sql(f"ALTER ROLE monitor PASSWORD '{pg_cluster.password}' VALID")
    message = str(raised.value)
    assert "syntax error" in message
    assert "PASSWORD '***' VALID" in message
    assert pg_cluster.password not in message


def test_a_server_that_cannot_start_says_why_without_the_password(pg_database: Database) -> None:
    """When its port has been taken while it was stopped, starting the server fails naming the
    port and the server's own reason, and never the password."""
    cluster = pg_database.cluster
    cluster.stop()
    with socket.socket() as squatter:
        # The port may still have connections in TIME_WAIT from earlier tests.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", cluster.port))
        squatter.listen()
        with pytest.raises(PostgresUnavailable) as raised:
            cluster.start()
    cluster.start()
    message = str(raised.value)
    assert f"port {cluster.port}" in message
    assert "could not bind" in message
    assert cluster.password not in message
