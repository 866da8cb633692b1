"""Which database ``--db`` / ``MONITOR_DB`` names, checked before anything opens it: a SQLite
file path, or a PostgreSQL URL (``postgresql://`` or ``postgres://``, read by libpq itself, so
it means what it means to ``psql``).

A value the monitor cannot use is refused with the forms it can use, never guessed at: a
``postgresql://`` URL once became a folder named ``postgresql:`` with a SQLite file in it. A
URL's password is a secret: no reason given here quotes it, and a location shows itself
(``str``, ``where``) without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SQLITE_FORM = "a SQLite file path, like monitor.db or /var/lib/monitor/monitor.db"
POSTGRES_FORM = "a PostgreSQL URL, like postgresql://monitor@db:5432/monitor"
SUPPORTED = f"{SQLITE_FORM}, or {POSTGRES_FORM}"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_QUOTED = re.compile(r'"[^"]*"')  # what libpq quotes of a URL it cannot read: maybe the password


@dataclass(frozen=True)
class SQLiteLocation:
    """A SQLite file: made when missing, in a folder that must exist."""

    path: Path
    backend = "sqlite"

    @property
    def where(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class PostgresLocation:
    """A PostgreSQL database, by the URL libpq reads (``url``, which may hold the password:
    give it only to the driver); ``where`` and ``str`` show it without the password."""

    url: str = field(repr=False)
    host: str
    port: str
    dbname: str
    user: str = ""
    backend = "postgresql"

    @property
    def where(self) -> str:
        """``host:port/dbname``, as ``monitor db status`` and every message name it."""
        return f"{self.host}:{self.port}/{self.dbname}"

    def __str__(self) -> str:
        """The URL as logs may show it: ``postgresql://monitor@db:5432/monitor``."""
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{self.where}"


DatabaseLocation = SQLiteLocation | PostgresLocation


def database_location(value: str) -> DatabaseLocation:
    """The database ``value`` names, or ValueError saying why the monitor cannot use it (never
    quoting a URL, whose user:password part is a secret)."""
    url = _URL.match(value)
    if url is None:
        return SQLiteLocation(sqlite_file(value))
    if url.group(1).lower() not in POSTGRES_SCHEMES:
        raise ValueError(f"{url.group(1)}:// URLs are not supported: give {SUPPORTED}")
    return postgres_location(value)


def postgres_location(url: str) -> PostgresLocation:
    """The PostgreSQL database ``url`` names, read as libpq reads it; ValueError when libpq
    cannot read it, with libpq's reason less whatever it quoted of the URL."""
    # Here, not at the top: a monitor on SQLite never loads the driver (~95 ms, ~10 MB).
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        reason = _QUOTED.sub("(...)", str(exc).strip().splitlines()[0] if str(exc) else "")
        password = _password_in(url)
        if password:
            reason = reason.replace(password, "***")
        raise ValueError(
            f"the PostgreSQL URL cannot be read ({reason}): give {POSTGRES_FORM}, with any "
            "special character of the user or password percent-encoded"
        ) from None
    ports = str(params.get("port") or "5432")
    if not all(port.isdigit() for port in ports.split(",")):
        raise ValueError(f"the PostgreSQL URL's port is not a number: give {POSTGRES_FORM}")
    user = str(params.get("user") or "")
    return PostgresLocation(
        url=url,
        host=str(params.get("host") or params.get("hostaddr") or "localhost"),
        port=ports,
        dbname=str(params.get("dbname") or user or "postgres"),
        user=user,
    )


def sqlite_file(value: str) -> Path:
    """The SQLite file ``value`` names, or ValueError saying why the monitor cannot use it."""
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"{value} is a folder: give the file in it, like {path / 'monitor.db'}")
    if not path.parent.is_dir():
        raise ValueError(
            f"the folder {path.parent} does not exist: create it, or give {SQLITE_FORM}"
        )
    return path


def _password_in(url: str) -> str:
    """The ``user:password@`` part's password, as a URL that libpq refused may carry it."""
    found = re.match(r"^[^:/]+://([^/?#]*)@", url)  # up to the last "@" before the path
    return found.group(1).partition(":")[2] if found else ""
