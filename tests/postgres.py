"""A throwaway PostgreSQL cluster: ``initdb`` into a temporary directory, a free port on
127.0.0.1, a role that logs in with a password (scram-sha-256) and a database it owns; removed
after. Used by the tests' ``pg_cluster`` fixture and by ``benchmarks/pg_driver.py``.

PostgreSQL refuses to run as root, so as root every server program runs as the unprivileged
``postgres`` user (``runuser -u postgres -- ...``) in a directory that user owns; as anyone else
it runs as that user. The superuser is reached only over a Unix socket inside that directory
(``trust``), so nothing else on the machine can use it; TCP wants the role's password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"  # the account the server runs as when we are root
SUPERUSER = "postgres"
ROLE = "monitor"
DATABASE = "monitor"
PORT_TRIES = 5  # a free port can be taken by another process before the server binds it
TIMEOUT_S = 60

# Without fsync a test cluster still loses nothing when the server dies (``stop("immediate")``:
# the OS keeps what it was handed), only when the machine does; that makes CREATE DATABASE and
# commits cheap. synchronous_commit stays on: off, a crash would lose the last commits.
FAST_SETTINGS: Mapping[str, str] = {"fsync": "off", "full_page_writes": "off"}
# PostgreSQL's defaults: what a server holding a monitor's outbox would run with.
DURABLE_SETTINGS: Mapping[str, str] = {}


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started (or driven) here; the message says why, never a password."""


def find_bindir() -> Path:
    """The folder holding the server programs: the one of ``pg_ctl`` on PATH, else the newest
    ``/usr/lib/postgresql/VERSION/bin`` (Debian keeps them off PATH)."""
    candidates: list[Path] = []
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(DEBIAN_BINDIRS.glob("*/bin"), key=_major_version, reverse=True)
    for folder in candidates:
        if all(os.access(folder / program, os.X_OK) for program in PROGRAMS):
            return folder
    looked = f" (looked in {', '.join(str(c) for c in candidates)})" if candidates else ""
    raise PostgresUnavailable(
        f"PostgreSQL's server programs ({', '.join(PROGRAMS)}) are neither on PATH nor under "
        f"{DEBIAN_BINDIRS}/*/bin{looked}: install Debian's `postgresql` package"
    )


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What the server stores for a scram-sha-256 password (RFC 5803), made here so that the
    password itself never reaches the server, its log or a psql command."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


class Cluster:
    """One running cluster in its own temporary directory; ``start_cluster()`` makes one."""

    def __init__(self, bindir: Path, root: Path, password: str, run_as: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.password = password
        self.run_as = run_as
        self.port = 0
        self.running = False
        self._names = itertools.count(1)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = DATABASE) -> str:
        """``postgresql://monitor:PASSWORD@127.0.0.1:PORT/DATABASE``, the password quoted."""
        return (
            f"postgresql://{ROLE}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"
        )

    def start(self, *, new_port: bool = False) -> None:
        """Start the server (on the port it had, unless ``new_port``) and wait until it
        accepts connections."""
        tries = PORT_TRIES if new_port else 1
        for attempt in range(1, tries + 1):
            if new_port:
                self.port = _free_port()
            mark = self.log.stat().st_size if self.log.exists() else 0
            done = self._pg_ctl("start", "-l", str(self.log), "-o", f"-p {self.port}", check=False)
            if done.returncode == 0:
                self.running = True
                return
            log = self._log_since(mark)
            if attempt < tries and "could not bind" in log:
                continue
            raise PostgresUnavailable(
                self._redact(
                    f"pg_ctl start failed (port {self.port}, exit {done.returncode}): "
                    f"{_tail(done.stdout + done.stderr)}\nserver log:\n{_tail(log)}"
                )
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients and shut down cleanly; ``immediate``:
        as if it crashed); its data stays, for ``start()``."""
        self._pg_ctl("stop", "-m", mode)
        self.running = False

    def destroy(self) -> None:
        """Stop the server at once and remove its directory."""
        try:
            # Whatever ``running`` says (a stop() that failed half-way): a pid file means a server.
            if self.running or (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate", check=False)
                self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, statements: str, database: str = "postgres") -> str:
        """Run ``statements`` as the superuser (over the socket); rows come back one a line,
        columns separated by ``|``."""
        done = self._run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ],
            stdin=statements,
        )
        return done.stdout

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database owned by the monitor's role; returns its name."""
        name = f"{prefix}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending whatever sessions are still on it."""
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(TIMEOUT_S)]
        return self._run([*command, *args], check=check)

    def _run(
        self, command: Sequence[str], *, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        program = Path(command[0]).name
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        try:
            done = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                cwd=self.root,
                env=_clean_env(),
                timeout=TIMEOUT_S + 30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(self._redact(f"{program} could not run: {exc}")) from None
        if check and done.returncode != 0:
            raise PostgresUnavailable(
                self._redact(
                    f"{program} failed (exit {done.returncode}): {_tail(done.stdout + done.stderr)}"
                )
            )
        return done

    def _log_since(self, offset: int) -> str:
        try:
            with self.log.open(errors="replace") as log:
                log.seek(offset)
                return log.read()
        except OSError:
            return ""

    def _redact(self, text: str) -> str:
        for secret in {self.password, quote(self.password, safe="")}:
            text = text.replace(secret, "***")
        return text

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.destroy()


@dataclass(frozen=True)
class Database:
    """One database of a cluster, owned by the monitor's role."""

    cluster: Cluster
    name: str

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)


def start_cluster(settings: Mapping[str, str] = FAST_SETTINGS) -> Cluster:
    """A new cluster, running, with the ``monitor`` role (a random password) and a ``monitor``
    database it owns; raises PostgresUnavailable saying why it cannot be had."""
    bindir = find_bindir()
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    cluster = Cluster(bindir, root, secrets.token_urlsafe(18), run_as)
    try:
        if run_as is not None:
            account = pwd.getpwnam(run_as)
            os.chown(root, account.pw_uid, account.pw_gid)
            if cluster._run(["test", "-w", str(root)], check=False).returncode != 0:
                raise PostgresUnavailable(
                    f"the `{run_as}` user cannot reach {root}: every folder above it must let "
                    f"it in (set TMPDIR to one that does, such as /tmp)"
                )
        cluster._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                # C collation: text keys compare byte by byte, as SQLite's do, on any machine.
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        lines = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{root}'",
            "password_encryption": "'scram-sha-256'",
            **settings,
        }
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in lines.items())
        cluster.start(new_port=True)
        cluster.sql(
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{scram_verifier(cluster.password)}';\n"
            f"CREATE DATABASE {DATABASE} OWNER {ROLE} TEMPLATE template0;\n"
        )
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"we run as root, which PostgreSQL refuses, and there is no `{SERVER_USER}` user "
            "to run it as (Debian's `postgresql` package makes one)"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable(
            f"we run as root, which PostgreSQL refuses, and `runuser` (util-linux) is missing "
            f"to run it as `{SERVER_USER}`"
        )
    return SERVER_USER


def _major_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else -1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    # PG* variables (PGPASSWORD, PGHOST, PGOPTIONS...) would change what the programs do;
    # LC_ALL=C keeps their messages in English for the errors we pass on.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"
