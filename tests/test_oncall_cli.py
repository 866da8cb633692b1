"""On-call at a terminal: ``monitor incidents``, ``monitor incident ...`` against a real running
monitor over real HTTP, and ``monitor check`` against a real target.

The monitor is a real App serving its HTTP API on 127.0.0.1, on a fake clock and a real SQLite
file, mailing a real SMTP server on loopback. The command runs as on-call types it,
``main(argv)``, in a worker thread (it runs its own event loop) while the test's loop serves it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clock import FakeClock
from process import free_port
from targets import Mode, Target
from world import ALICE, DANA, MESSAGES, write_config

from monitor.app import App, Options
from monitor.cli import main
from monitor.demo.mailcatcher import MailCatcher
from monitor.model import Address, ProbeResult
from monitor.store import OutboxItem

TOKEN = "oncall-t0ken-7f3a9c"
NOTIFY_AFTER = 60.0  # world.write_config's notify_after
NOTE = "A database update went wrong; we are rolling it back."


@dataclass
class Running:
    """A started App with its HTTP API at ``url``, and what delivery settled."""

    app: App
    url: str
    clock: FakeClock
    catcher: MailCatcher
    settled: list[OutboxItem]
    _changed: asyncio.Event

    async def tick(self) -> None:
        """The notifier's tick, once the monitor's transitions are saved: it reads them from
        the store (the app's own loop saves them at the next turn of the event loop)."""
        await self.app.monitor.flush()
        await self.app.notifier.tick()

    async def fail(self, system: str, rounds: int = 3) -> None:
        """``system`` fails ``rounds`` probes, 15 s apart (3 make it DOWN)."""
        for _ in range(rounds):
            self.app.monitor.observe(
                ProbeResult(system, False, "status 503, expected 200", self.clock.now(), 0.012)
            )
            await self.tick()
            self.clock.advance(15)

    async def outage(self, system: str = "payment") -> int:
        """``system`` goes DOWN and stays down past notify_after; returns the incident id."""
        await self.fail(system)
        self.clock.advance(NOTIFY_AFTER)
        await self.tick()
        return (await self.app.store.latest_incidents(1))[0].id

    async def delivered(self, count: int) -> None:
        """Wait until delivery has settled ``count`` messages in all."""
        async with asyncio.timeout(10):
            while len(self.settled) < count:
                self._changed.clear()
                await self._changed.wait()

    async def api(self, path: str) -> Any:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return await response.json()


@asynccontextmanager
async def running(tmp_path: Path, token: str | None = TOKEN) -> AsyncIterator[Running]:
    checks = tmp_path / "checks"
    write_config(checks)
    clock = FakeClock()
    async with MailCatcher() as catcher:
        environ = {"MONITOR_SMTP_URL": catcher.url, "MONITOR_SMTP_FROM": "status@example.com"}
        if token is not None:
            environ["MONITOR_API_TOKEN"] = token
        app = App(
            Options(
                config=checks, messages=MESSAGES, db=tmp_path / "monitor.db", listen="127.0.0.1:0"
            ),
            clock=clock,
            environ=environ,
            tick_every=3600,  # the tests tick; the clock starts in 2027, so probes never run
            watch_files=False,
        )
        await app.start()
        await app.store.upsert_people([ALICE, DANA])
        assert app.runner is not None
        host, port = app.runner.addresses[0][:2]
        settled: list[OutboxItem] = []
        changed = asyncio.Event()

        def outcome(item: OutboxItem, result: str, _channel: Address | None) -> None:
            if result in ("sent", "undeliverable"):
                settled.append(item)
                changed.set()

        app.delivery.on_outcome.append(outcome)
        try:
            yield Running(app, f"http://{host}:{port}", clock, catcher, settled, changed)
        finally:
            await app.stop()


@dataclass
class Terminal:
    """Runs ``monitor ARGS`` as on-call would, with only the environment given."""

    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    async def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        with self.monkeypatch.context() as patch:
            for name in list(os.environ):
                if name.startswith("MONITOR_"):
                    patch.delenv(name)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            code = await asyncio.to_thread(main, list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Terminal:
    return Terminal(capsys, monkeypatch)


WITH_TOKEN = {"MONITOR_API_TOKEN": TOKEN}


# reading ---------------------------------------------------------------------------------------


async def test_incidents_is_a_table_of_status_start_duration_and_people_told(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor incidents` prints a header and one line per incident, newest first, with the
    counts of people told and the systems, the cause first."""
    async with running(tmp_path) as world:
        first = await world.outage("payment")
        await world.delivered(2)  # Alice and Dana are acknowledged
        world.clock.advance(300)
        second = await world.outage("login")
        await world.delivered(3)  # and Dana about login
        code, out, err = await terminal.run("incidents", "--url", world.url)
    assert code == 0, err
    assert out.splitlines() == [
        "ID  STATUS  STARTED (UTC)        DURATION   ACKNOWLEDGED  UPDATED  RESOLVED  PENDING"
        "  UNDELIVERABLE  SYSTEMS",
        f"{second}   open    2027-01-15 08:07:15  1 minute   1             0        0         0"
        "        0              login",
        f"{first}   open    2027-01-15 08:00:30  8 minutes  2             0        0         0"
        "        0              payment",
    ]


async def test_incidents_json_is_the_apis_answer_for_scripts(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor incidents -o json --status open` prints what GET /api/v1/incidents answers."""
    async with running(tmp_path) as world:
        await world.outage()
        await world.delivered(2)
        code, out, err = await terminal.run(
            "incidents", "-o", "json", "--status", "open", "--url", world.url
        )
        expected = await world.api("/api/v1/incidents?status=open&limit=50")
    assert code == 0, err
    assert json.loads(out) == expected
    assert [i["status"] for i in expected["incidents"]] == ["open"]


async def test_incidents_with_none_says_so(tmp_path: Path, terminal: Terminal) -> None:
    """With nothing resolved yet, `monitor incidents --status resolved` says so in words."""
    async with running(tmp_path) as world:
        await world.outage()
        code, out, _ = await terminal.run("incidents", "--status", "resolved", "--url", world.url)
    assert (code, out) == (0, "no resolved incidents\n")


async def test_incident_shows_systems_cause_note_hold_counts_and_timeline(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor incident ID` (short for `incident show ID`) prints the incident in full."""
    async with running(tmp_path) as world:
        number = await world.outage()
        await world.delivered(2)
        code, out, err = await terminal.run("incident", str(number), "--url", world.url)
        _, shown, _ = await terminal.run("incident", "show", str(number), "--url", world.url)
    assert code == 0, err
    assert shown == out
    lines = out.splitlines()
    assert lines[:11] == [
        f"Incident {number}: open",
        "Started:   2027-01-15 08:00:30 UTC, open for 1 minute",
        "Cause:     payment (Online payments)",
        "Systems:   payment (Online payments): down 2027-01-15 08:00:30, still down",
        "Note:      (none)",
        f"Held:      no (`monitor incident hold {number}` keeps customer messages back)",
        "Told:      from 2027-01-15 08:01:45 UTC",
        "Messages:  2 acknowledged, 0 updated, 0 resolved, 0 pending, 0 undeliverable",
        "Explained: (none)",
        "Promise:   none",
        "",
    ]
    assert lines[11] == "Timeline (UTC):"
    assert lines[12].startswith("  2027-01-15 08:00:30  ")
    assert "payment" in lines[12]


async def test_an_unknown_incident_is_the_apis_404_and_exit_1(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor incident 99` with no such incident says "no incident 99" and exits 1."""
    async with running(tmp_path) as world:
        code, out, err = await terminal.run("incident", "99", "--url", world.url)
    assert (code, out) == (1, "")
    assert err == "monitor incident: no incident 99\n"


# changing --------------------------------------------------------------------------------------


async def test_note_with_send_saves_the_note_and_everyone_told_gets_it(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor incident note ID TEXT --send` sets the public note and says everyone told gets
    it; the next tick decides an update for each person told, and it arrives with the note."""
    async with running(tmp_path) as world:
        number = await world.outage()
        await world.delivered(2)
        code, out, err = await terminal.run(
            "incident", "note", str(number), NOTE, "--send", "--url", world.url, env=WITH_TOKEN
        )
        assert code == 0, err
        assert out == (
            f"Incident {number}: note saved; the status page shows it. "
            "Everyone told about the incident gets it as an update.\n"
        )
        incident = await world.api(f"/api/v1/incidents/{number}")
        assert incident["note"] == NOTE
        await world.tick()
        await world.delivered(4)
        updates = [i for i in world.settled if i.kind == "update"]
        assert sorted(i.person_id for i in updates) == ["alice", "dana"]
        assert all(NOTE in (i.text or "") for i in updates)


async def test_note_without_send_only_saves_it(tmp_path: Path, terminal: Terminal) -> None:
    """Without --send the note is saved and shown, and nobody is sent an update."""
    async with running(tmp_path) as world:
        number = await world.outage()
        await world.delivered(2)
        code, out, err = await terminal.run(
            "incident", "note", str(number), NOTE, "--url", world.url, env=WITH_TOKEN
        )
        await world.tick()
        counts = await world.app.store.outbox_counts(number)
        _, shown, _ = await terminal.run("incident", str(number), "--url", world.url)
    assert code == 0, err
    assert out == f"Incident {number}: note saved; the status page shows it.\n"
    assert "update" not in counts
    assert f"Note:      {NOTE}" in shown.splitlines()


async def test_hold_keeps_customers_untold_until_release(
    tmp_path: Path, terminal: Terminal
) -> None:
    """An incident held before notify_after tells nobody when it passes; released, everyone
    affected is acknowledged at the next tick."""
    async with running(tmp_path) as world:
        await world.fail("payment")
        number = (await world.app.store.latest_incidents(1))[0].id
        code, out, err = await terminal.run(
            "incident", "hold", str(number), "--url", world.url, env=WITH_TOKEN
        )
        assert code == 0, err
        assert out == (
            f"Incident {number}: customer messages held; "
            f"`monitor incident release {number}` lets them go.\n"
        )
        world.clock.advance(NOTIFY_AFTER)
        await world.tick()
        assert await world.app.store.outbox_counts(number) == {}
        _, table, _ = await terminal.run("incidents", "--url", world.url)
        assert table.splitlines()[1].split()[1:3] == ["open,", "held"]

        code, out, err = await terminal.run(
            "incident", "release", str(number), "--url", world.url, env=WITH_TOKEN
        )
        assert code == 0, err
        assert out == (
            f"Incident {number}: customer messages released; what is owed goes out now.\n"
        )
        await world.tick()
        await world.delivered(2)
    assert sorted(i.person_id for i in world.settled) == ["alice", "dana"]
    assert {i.kind for i in world.settled} == {"acknowledge"}


async def test_json_output_of_a_change_is_the_incident_as_it_now_is(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor incident hold ID -o json` prints the API's incident, held."""
    async with running(tmp_path) as world:
        number = await world.outage()
        code, out, err = await terminal.run(
            "incident", "hold", str(number), "-o", "json", "--url", world.url, env=WITH_TOKEN
        )
    assert code == 0, err
    incident = json.loads(out)
    assert (incident["id"], incident["held"]) == (number, True)
    assert incident["timeline"][-1]["kind"] == "held"


# refusals and errors ---------------------------------------------------------------------------


async def test_a_wrong_token_is_refused_without_being_shown(
    tmp_path: Path, terminal: Terminal
) -> None:
    """With a token the monitor does not know, hold exits 1, says the token is not the one the
    monitor runs with, never prints it, and changes nothing."""
    wrong = "not-the-token-4242"
    async with running(tmp_path) as world:
        number = await world.outage()
        code, out, err = await terminal.run(
            "incident", "hold", str(number), "--url", world.url, env={"MONITOR_API_TOKEN": wrong}
        )
        incident = await world.api(f"/api/v1/incidents/{number}")
    assert (code, out) == (1, "")
    assert err == (
        f"monitor incident: the monitor at {world.url} did not accept the token in "
        "MONITOR_API_TOKEN: it is not the one `monitor run` was started with\n"
    )
    assert wrong not in err
    assert TOKEN not in err
    assert incident["held"] is False


async def test_a_missing_token_is_named(tmp_path: Path, terminal: Terminal) -> None:
    """Without MONITOR_API_TOKEN, note exits 1 and says the variable is not set."""
    async with running(tmp_path) as world:
        number = await world.outage()
        code, _, err = await terminal.run("incident", "note", str(number), NOTE, "--url", world.url)
    assert code == 1
    assert err.startswith(
        f"monitor incident: MONITOR_API_TOKEN is not set: the monitor at {world.url} needs its "
        "API token for this"
    )


async def test_a_monitor_without_a_token_says_it_takes_no_changes(
    tmp_path: Path, terminal: Terminal
) -> None:
    """A monitor started without MONITOR_API_TOKEN refuses release (403): the command says the
    token is not set where `monitor run` runs, and exits 1."""
    async with running(tmp_path, token=None) as world:
        number = await world.outage()
        code, _, err = await terminal.run(
            "incident", "release", str(number), "--url", world.url, env=WITH_TOKEN
        )
    assert code == 1
    assert "MONITOR_API_TOKEN is not set where `monitor run` runs" in err
    assert TOKEN not in err


async def test_an_unreachable_monitor_exits_2_asking_whether_it_runs(terminal: Terminal) -> None:
    """Nothing listening at --url: exit 2, the URL (without its password) and the question
    whether `monitor run` is running."""
    port = free_port()
    code, out, err = await terminal.run(
        "incidents", "--url", f"http://oncall:s3cret@127.0.0.1:{port}"
    )
    assert (code, out) == (2, "")
    assert err == (
        f"monitor incidents: cannot reach the monitor at http://127.0.0.1:{port} (connection "
        "refused): is `monitor run` running there? Point --url or MONITOR_URL at it.\n"
    )


async def test_the_url_defaults_to_the_port_monitor_run_listens_on(
    tmp_path: Path, terminal: Terminal
) -> None:
    """With no --url, MONITOR_LISTEN=0.0.0.0:PORT (as for `monitor run`) is reached at
    http://127.0.0.1:PORT; MONITOR_URL, when set, wins."""
    async with running(tmp_path) as world:
        await world.outage()
        port = world.url.rsplit(":", 1)[1]
        code, out, err = await terminal.run("incidents", env={"MONITOR_LISTEN": f"0.0.0.0:{port}"})
        assert code == 0, err
        assert out.startswith("ID  STATUS")
        code, _, err = await terminal.run(
            "incidents",
            env={
                "MONITOR_LISTEN": f"0.0.0.0:{port}",
                "MONITOR_URL": f"http://127.0.0.1:{free_port()}",
            },
        )
    assert code == 2
    assert "cannot reach the monitor" in err


async def test_a_url_that_is_not_http_is_a_usage_error(terminal: Terminal) -> None:
    """--url ftp://... exits 2 naming the option, without the password in it."""
    code, _, err = await terminal.run("incidents", "--url", "ftp://oncall:s3cret@example.com")
    assert code == 2
    assert err == (
        "--url: ftp://example.com is not an http:// or https:// URL such as http://127.0.0.1:9108\n"
    )


async def test_something_else_at_the_url_is_not_taken_for_the_monitor(
    tmp_path: Path, terminal: Terminal
) -> None:
    """A web server that is not the monitor (here a shop's /healthz app) makes the command say
    the URL does not answer as the monitor's API, and exit 2."""
    async with Target() as target:
        code, _, err = await terminal.run("incident", "3", "--url", target.url)
    assert code == 2
    assert f"{target.url} answered 404, but not as the monitor's API does" in err


@pytest.mark.parametrize("bad", ["0", "-3", "abc", "1" * 40])
async def test_an_incident_id_that_is_not_a_positive_number_is_a_usage_error(
    terminal: Terminal, bad: str
) -> None:
    """`monitor incident hold BAD` exits 2 before asking anyone, saying what an id is."""
    with pytest.raises(SystemExit) as exited:
        await terminal.run("incident", "hold", "--", bad)
    assert exited.value.code == 2
    assert f"{bad!r} is not an incident id" in terminal.capsys.readouterr().err


# monitor check ---------------------------------------------------------------------------------


def shop_check(directory: Path, url: str) -> Path:
    directory.mkdir()
    (directory / "shop.yaml").write_text(
        f"name: shop\ntitle: The shop\ntimeout: 2s\nprobe: {{http: {{url: {url!r}}}}}\n"
    )
    return directory


async def test_check_runs_the_probe_once_and_exits_0_when_it_passes(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor check shop` probes the real target once and prints the pass, its time and the
    reason the monitor would log."""
    async with Target() as target:
        checks = shop_check(tmp_path / "checks", target.url_for("/healthz"))
        code, out, err = await terminal.run("check", "shop", "--config", str(checks))
        requests = list(target.requests)
    assert code == 0, err
    assert out.startswith("shop passed in ")
    assert ": status 200 in " in out
    assert requests == ["GET /healthz"]


async def test_check_exits_1_and_says_why_when_the_probe_fails(
    tmp_path: Path, terminal: Terminal
) -> None:
    """A target answering 500 makes `monitor check shop` print the failure reason, exit 1."""
    async with Target() as target:
        await target.set_mode(Mode.ERROR)
        checks = shop_check(tmp_path / "checks", target.url_for("/healthz"))
        code, out, err = await terminal.run("check", "shop", "--config", str(checks))
    assert code == 1, err
    assert out.startswith("shop failed after ")
    assert out.rstrip().endswith(": status 500, expected 200")


async def test_check_of_an_unknown_system_suggests_the_close_name(terminal: Terminal) -> None:
    """`monitor check paymnet` on the shipped checks says "did you mean 'payment'?", exit 2."""
    code, out, err = await terminal.run(
        "check", "paymnet", "--config", str(MESSAGES.parent / "checks")
    )
    assert (code, out) == (2, "")
    assert err == "no system is named 'paymnet' (did you mean 'payment'?)\n"
