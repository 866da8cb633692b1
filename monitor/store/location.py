"""Which database ``--db`` / ``MONITOR_DB`` names, checked before anything opens it.

A value the monitor cannot use is refused with the forms it can use, never guessed at: a
``postgresql://`` URL once became a folder named ``postgresql:`` with a SQLite file in it.
Another kind of database is added here, as one more form.
"""

from __future__ import annotations

import re
from pathlib import Path

SUPPORTED = "a SQLite file path, like monitor.db or /var/lib/monitor/monitor.db"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def sqlite_file(value: str) -> Path:
    """The SQLite file ``value`` names, or ValueError saying why the monitor cannot use it.

    The reason never quotes a URL: its user:password part is a secret.
    """
    url = _URL.match(value)
    if url is not None:
        raise ValueError(f"{url.group(1)}:// URLs are not supported: give {SUPPORTED}")
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"{value} is a folder: give the file in it, like {path / 'monitor.db'}")
    if not path.parent.is_dir():
        raise ValueError(f"the folder {path.parent} does not exist: create it, or give {SUPPORTED}")
    return path
