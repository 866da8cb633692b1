"""The HTTP API of a real running App, over real HTTP, on a fake clock and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clock import FakeClock
from fake_twilio import WebhookReceiver
from running import Replica, start_replica
from world import MESSAGES, write_config

from monitor.app import App, Options
from monitor.demo.mailcatcher import MailCatcher
from monitor.model import Address, ProbeResult
from monitor.store import OutboxItem
from monitor.web.api import ROUTES

TOKEN = "t0ken-for-tests"
FAILURE = "status 503, expected 200: body said 'db-password-expired'"
NOTIFY_AFTER = 60.0

WRITE_ROUTES = [
    (r.method, r.path.replace("{id}", "1")) for r in ROUTES if r.write
]  # every route that needs the token


@dataclass
class Running(Replica):
    """A started App and an HTTP client on its web application, with its clock and checks."""

    clock: FakeClock
    checks: Path
    outcomes: list[tuple[OutboxItem, str]] = field(default_factory=list)
    _delivered: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(
        self, path: str, body: object = None, *, token: str | None = TOKEN
    ) -> aiohttp.ClientResponse:
        return await self.call("POST", path, body, token=token)

    def result(self, system: str, ok: bool) -> None:
        reason = "status 200 in 12ms" if ok else FAILURE
        self.app.monitor.observe(ProbeResult(system, ok, reason, self.clock.now(), 0.012))

    async def tick(self) -> None:
        """The notifier's tick, once the monitor's transitions are saved: it reads them from
        the store (the app's own loop saves them at the next turn of the event loop)."""
        await self.app.monitor.flush()
        await self.app.notifier.tick()

    async def results(self, system: str, ok: bool, rounds: int, every: float = 15.0) -> None:
        for _ in range(rounds):
            self.result(system, ok)
            await self.tick()
            self.clock.advance(every)

    async def outage(self, system: str = "payment") -> int:
        """``system`` goes DOWN and stays down past notify_after; returns the incident id."""
        await self.results(system, False, 3)
        self.clock.advance(NOTIFY_AFTER)
        await self.tick()
        return (await self.app.store.latest_incidents(1))[0].id

    async def delivered(self, count: int) -> None:
        """Wait until delivery has settled ``count`` messages (sent or undeliverable)."""
        async with asyncio.timeout(10):
            while sum(o in ("sent", "undeliverable") for _, o in self.outcomes) < count:
                self._delivered.clear()
                await self._delivered.wait()

    def _outcome(self, item: OutboxItem, outcome: str, _channel: Address | None) -> None:
        self.outcomes.append((item, outcome))
        self._delivered.set()


@asynccontextmanager
async def running(
    tmp_path: Path, environ: Mapping[str, str] | None = None, **config: Any
) -> AsyncIterator[Running]:
    checks = tmp_path / "checks"
    write_config(checks, **config)
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        # The clock starts in 2027, so the real scheduler's first probe is years away: state
        # moves only by the results the tests feed in. The App's own loops run as they would
        # in production: it ticks each second and reloads edited files.
        started = await start_replica(
            stack,
            checks,
            tmp_path / "monitor.db",
            clock,
            {"MONITOR_API_TOKEN": TOKEN} if environ is None else environ,
            tick_every=1.0,
            watch_files=True,
        )
        world = Running(started.app, started.client, clock, checks)
        world.app.delivery.on_outcome.append(world._outcome)
        yield world


# the real server -------------------------------------------------------------------------------


async def test_the_app_serves_health_and_the_api_on_its_listen_address(tmp_path: Path) -> None:
    """With serve_http, App.start listens on --listen and answers /healthz and /api/v1/systems."""
    checks = tmp_path / "checks"
    write_config(checks)
    app = App(
        Options(config=checks, messages=MESSAGES, db=tmp_path / "m.db", listen="127.0.0.1:0"),
        clock=FakeClock(),
        environ={},
    )
    await app.start()
    try:
        assert app.runner is not None
        host, port = app.runner.addresses[0][:2]
        async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
            async with session.get("/healthz") as response:
                assert response.status == 200
            async with session.get("/readyz") as response:
                assert response.status == 200, await response.text()
            async with session.get("/api/v1/systems") as response:
                names = [s["name"] for s in (await response.json())["systems"]]
        assert names == ["crm", "login", "payment"]
    finally:
        await app.stop()


# reads -----------------------------------------------------------------------------------------


async def test_systems_show_state_since_last_reason_interval_and_uptime(tmp_path: Path) -> None:
    """A system UP for an hour, then DOWN for 20 minutes, is DOWN since its third failure,
    with the failure's reason, and its uptime is the share of that time it was UP."""
    async with running(tmp_path) as w:
        await w.results("payment", True, 2)  # UP at the second pass
        up_at = w.clock.now() - 15
        w.clock.advance(3600 - 30)
        await w.results("payment", False, 3)  # DOWN at the third failure
        down_at = w.clock.now() - 15
        w.clock.advance(1200 - 15)
        systems = {s["name"]: s for s in (await w.get_json("/api/v1/systems"))["systems"]}
        payment = systems["payment"]
        assert payment["title"] == "Online payments"
        assert payment["state"] == "DOWN"
        assert payment["since"] == "2027-01-15T09:00:30Z"
        assert payment["last_reason"] == FAILURE
        assert payment["every"] == 15.0
        assert payment["depends_on"] == []
        up, down = down_at - up_at, w.clock.now() - down_at
        assert payment["uptime_7d"] == pytest.approx(up / (up + down))
        assert systems["crm"]["state"] == "UNKNOWN"
        assert systems["crm"]["uptime_7d"] is None
        assert systems["crm"]["since"] is None


async def test_incidents_are_listed_newest_first_and_filtered_by_status(tmp_path: Path) -> None:
    """Two incidents: the list has the newer first; ?status=open and ?limit filter it."""
    async with running(tmp_path) as w:
        first = await w.outage("payment")
        await w.results("payment", True, 2)
        w.clock.advance(3600)
        second = await w.outage("crm")
        listed = (await w.get_json("/api/v1/incidents"))["incidents"]
        assert [i["id"] for i in listed] == [second, first]
        assert listed[1]["status"] == "resolved"
        assert listed[1]["resolved_at"] is not None
        assert listed[0]["cause"] == {"name": "crm", "title": "Your order history"}
        open_only = (await w.get_json("/api/v1/incidents?status=open"))["incidents"]
        assert [i["id"] for i in open_only] == [second]
        resolved = (await w.get_json("/api/v1/incidents?status=resolved"))["incidents"]
        assert [i["id"] for i in resolved] == [first]
        assert len((await w.get_json("/api/v1/incidents?limit=1"))["incidents"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=closed", "status"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("limit=" + "9" * 5000, "limit"),
    ],
)
async def test_a_bad_incident_query_is_400_naming_the_parameter(
    tmp_path: Path, query: str, field: str
) -> None:
    """An unknown status or a limit that is not 1..500 is refused, naming the parameter."""
    async with running(tmp_path) as w:
        response = await w.client.get(f"/api/v1/incidents?{query}")
        assert response.status == 400
        assert (await response.json())["field"] == field


async def test_an_unknown_incident_is_404_and_a_bad_id_is_400(tmp_path: Path) -> None:
    """GET of an incident that does not exist is 404; an id that is not a number is 400."""
    async with running(tmp_path) as w:
        assert (await w.client.get("/api/v1/incidents/42")).status == 404
        assert (await w.client.get(f"/api/v1/incidents/{2**70}")).status == 404
        assert (await w.client.get("/api/v1/incidents/" + "9" * 5000)).status == 404
        assert (await w.client.get("/api/v1/incidents/0")).status == 400
        response = await w.client.get("/api/v1/incidents/abc")
        assert response.status == 400
        assert (await response.json())["field"] == "id"


async def test_incident_detail_counts_people_told_and_undeliverable(tmp_path: Path) -> None:
    """Alice (email) is acknowledged through SMTP, Frank (a phone, and no SMS configured) is
    undeliverable: the incident detail counts one of each, with its systems and timeline."""
    async with MailCatcher() as catcher:
        environ = {"MONITOR_API_TOKEN": TOKEN, "MONITOR_SMTP_URL": catcher.url}
        async with running(tmp_path, environ) as w:
            users = [
                {
                    "id": "alice",
                    "name": "Alice",
                    "email": "alice@example.com",
                    "systems": ["payment"],
                },
                {
                    "id": "frank",
                    "name": "Frank Null",
                    "phone": "+447700900002",
                    "systems": ["payment"],
                },
            ]
            assert (await w.post("/api/v1/users", {"users": users})).status == 200
            incident = await w.outage("payment")
            await w.delivered(2)
            detail = await w.get_json(f"/api/v1/incidents/{incident}")
        assert detail["counts"] == {
            "acknowledged": 1,
            "updated": 0,
            "resolved": 0,
            "undeliverable": 1,
            "pending": 0,
        }
        assert detail["messages"] == {"acknowledge": {"sent": 1, "undeliverable": 1}}
        assert detail["status"] == "open"
        assert detail["systems"][0]["name"] == "payment"
        assert detail["systems"][0]["title"] == "Online payments"
        assert detail["systems"][0]["up_at"] is None
        assert detail["notified_at"] is not None
        assert [e["kind"] for e in detail["timeline"]][:1] == ["opened"]
        assert len(catcher.messages) == 1


# authorization ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
async def test_a_write_route_is_403_and_says_why_when_no_token_is_configured(
    tmp_path: Path, method: str, path: str
) -> None:
    """Without MONITOR_API_TOKEN, every write route is refused with 403, even with a token."""
    async with running(tmp_path, environ={}) as w:
        response = await w.client.request(
            method, path, json={}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status == 403
        assert (await response.json())["error"] == (
            "MONITOR_API_TOKEN is not set: write endpoints are disabled"
        )


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
async def test_a_write_route_is_401_without_the_right_bearer_token(
    tmp_path: Path, method: str, path: str, authorization: str | None
) -> None:
    """A missing or wrong token, or another scheme, is 401 with WWW-Authenticate: Bearer."""
    async with running(tmp_path) as w:
        headers = {"Authorization": authorization} if authorization else {}
        response = await w.client.request(method, path, json={}, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in await response.json()


async def test_reads_need_no_token(tmp_path: Path) -> None:
    """The read routes answer without any Authorization header."""
    async with running(tmp_path) as w:
        for path in ("/api/v1/systems", "/api/v1/incidents", "/api/v1/openapi.json", "/"):
            assert (await w.client.get(path)).status == 200, path


# attempts and users ----------------------------------------------------------------------------


async def test_a_reported_attempt_makes_the_user_affected_and_acknowledged(
    tmp_path: Path,
) -> None:
    """Eve, unknown before, fails to pay; payment then goes down: after notify_after the
    outbox holds her acknowledgement, mentioning what she was doing."""
    async with running(tmp_path) as w:
        body = {
            "system": "payment",
            "user": {"id": "eve", "name": "Eve Adams", "email": "eve@example.com", "phone": None},
            "action": "buy the LinkedIn course",
        }
        response = await w.post("/api/v1/attempts", body)
        assert response.status == 202
        assert await response.json() == {
            "accepted": True,
            "system": "payment",
            "open_incidents": [],
        }
        incident = await w.outage("payment")
        items = await w.app.store.outbox_items(incident)
        assert [(i.person_id, i.kind) for i in items] == [("eve", "acknowledge")]
        assert "buy the LinkedIn course" in items[0].text
        assert items[0].channels[0] == Address("email", "eve@example.com")


async def test_an_attempt_during_an_open_incident_names_it(tmp_path: Path) -> None:
    """An attempt reported while payment is down answers with the open incident's id."""
    async with running(tmp_path) as w:
        incident = await w.outage("payment")
        body = {"system": "payment", "user": {"id": "u9"}, "action": "pay"}
        response = await w.post("/api/v1/attempts", body)
        assert (await response.json())["open_incidents"] == [incident]


async def test_an_attempt_on_an_unknown_system_is_400_naming_system(tmp_path: Path) -> None:
    """A system no check file names is refused with field "system", saying which are close."""
    async with running(tmp_path) as w:
        body = {"system": "logn", "user": {"id": "u1"}, "action": "pay"}
        response = await w.post("/api/v1/attempts", body)
        assert response.status == 400
        answer = await response.json()
        assert answer["field"] == "system"
        assert answer["error"] == "system: no system is named 'logn' (did you mean 'login'?)"


GOOD_ATTEMPT: dict[str, Any] = {
    "system": "payment",
    "user": {"id": "u1", "name": "Ann", "email": "ann@example.com", "phone": "+447700900001"},
    "action": "pay",
}


def _with(path: str, value: object) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(GOOD_ATTEMPT))
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    if value is _DROP:
        del target[last]
    else:
        target[last] = value
    return body


_DROP = object()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with("user.email", "not an email"), "user.email"),
        (_with("user.email", 7), "user.email"),
        (_with("user.id", _DROP), "user.id"),
        (_with("user.id", "   "), "user.id"),
        (_with("user.emial", "a@b.c"), "user.emial"),
        (_with("user.phone", "call me"), "user.phone"),
        (_with("user.name", "Ann\r\nBcc: x@y.z"), "user.name"),
        (_with("user.id", " u1"), "user.id"),
        (_with("action", _DROP), "action"),
        (_with("system", "Payment Service"), "system"),
        (_with("user", "u1"), "user"),
        ([GOOD_ATTEMPT], None),
    ],
)
async def test_an_attempt_of_the_wrong_shape_is_400_naming_the_field(
    tmp_path: Path, body: object, field: str | None
) -> None:
    """Each bad or unknown field is refused with 400 and its dotted path, never a 500."""
    async with running(tmp_path) as w:
        response = await w.post("/api/v1/attempts", body)
        assert response.status == 400
        answer = await response.json()
        assert answer["field"] == field
        assert answer["error"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/users",
            {"users": [{"id": "a", "email": "a@x.com"}, {"id": "b", "systems": "payment"}]},
            "users.1.systems",
        ),
        (
            "/api/v1/users",
            [{"id": "a", "phone": "+15557654321"}, {"id": "b", "email": "b"}],
            "1.email",
        ),
        ("/api/v1/users", {"people": []}, "users"),
        ("/api/v1/incidents/1/note", {"text": "hi", "send": "yes"}, "send"),
        ("/api/v1/incidents/1/note", {"text": ""}, "text"),
    ],
)
async def test_users_and_notes_of_the_wrong_shape_are_400_naming_the_field(
    tmp_path: Path, path: str, body: object, field: str
) -> None:
    """Bulk users and notes name the bad field too (a bare list's paths start at its index)."""
    async with running(tmp_path) as w:
        response = await w.post(path, body)
        assert response.status == 400
        assert (await response.json())["field"] == field


@pytest.mark.parametrize("raw", [b"{", b"", b"\xff\xfe", b"[" * 100_000])
async def test_a_body_that_is_not_json_is_400(tmp_path: Path, raw: bytes) -> None:
    """Truncated, empty, non-UTF-8 or absurdly nested bodies are 400, not 500."""
    async with running(tmp_path) as w:
        response = await w.client.post(
            "/api/v1/attempts",
            data=raw,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert response.status == 400
        assert "JSON" in (await response.json())["error"]


async def test_a_huge_body_is_413(tmp_path: Path) -> None:
    """A 2 MiB attempt and an 11 MiB users list are refused with 413."""
    async with running(tmp_path) as w:
        big = _with("action", "x" * (2 * 1024 * 1024))
        response = await w.post("/api/v1/attempts", big)
        assert response.status == 413
        users = [{"id": f"u{n}", "name": "y" * 1000} for n in range(11 * 1024)]
        response = await w.post("/api/v1/users", users)
        assert response.status == 413
        assert await w.app.store.person("u1") is None


async def test_a_huge_chunked_body_without_a_length_is_413(tmp_path: Path) -> None:
    """A body streamed in chunks with no Content-Length is cut off at the cap with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"system": "payment", "user": {"id": "u1"}, "action": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    async with running(tmp_path) as w:
        response = await w.client.post(
            "/api/v1/attempts",
            data=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert response.status == 413
        assert "larger than" in (await response.json())["error"]


async def test_a_bulk_users_body_above_the_general_cap_is_accepted(tmp_path: Path) -> None:
    """POST /api/v1/users takes a 2 MiB list (its cap is 10 MiB) and reports the count."""
    async with running(tmp_path) as w:
        users = [
            {"id": f"u{n}", "name": f"Person {n}", "systems": ["payment"], "phone": None}
            | {"email": f"u{n}@example.com"}
            for n in range(30_000)
        ]
        assert len(json.dumps(users)) > 2 * 1024 * 1024
        response = await w.post("/api/v1/users", users)
        assert response.status == 200, await response.text()
        assert (await response.json())["upserted"] == 30_000


async def test_users_upsert_by_id(tmp_path: Path) -> None:
    """Posting a user again replaces them: name, contacts and systems."""
    async with running(tmp_path) as w:
        first = {"users": [{"id": "a", "name": "Ann", "email": "a@x.com", "systems": ["payment"]}]}
        assert (await w.post("/api/v1/users", first)).status == 200
        again = [{"id": "a", "name": "Ann B", "phone": "+447700900001", "systems": ["login"]}]
        response = await w.post("/api/v1/users", again)
        assert await response.json() == {"upserted": 1}
        person = await w.app.store.person("a")
        assert person is not None
        assert (person.name, person.email, person.phone, person.systems) == (
            "Ann B",
            None,
            "+447700900001",
            ("login",),
        )


async def test_users_and_attempts_carry_a_timezone_and_language_and_refuse_unknown_ones(
    tmp_path: Path,
) -> None:
    """A user's (or an attempt's person's) timezone and language are kept, the tag in its usual
    form; an unknown zone or tag is 400 naming the field, and nobody is saved."""
    async with running(tmp_path) as w:
        users = [{"id": "h", "email": "h@x.com", "systems": ["payment"]}]
        users[0].update({"timezone": "America/New_York", "language": "de-de"})
        assert (await w.post("/api/v1/users", users)).status == 200
        person = await w.app.store.person("h")
        assert person is not None
        assert (person.timezone, person.language) == ("America/New_York", "de-DE")
        user = {"id": "k", "email": "k@x.com", "timezone": "Europe/Paris", "language": "fr"}
        attempt = {"system": "payment", "user": user, "action": "pay"}
        assert (await w.post("/api/v1/attempts", attempt)).status == 202
        person = await w.app.store.person("k")
        assert person is not None
        assert (person.timezone, person.language) == ("Europe/Paris", "fr")
        bad = [{"id": "x", "email": "x@x.com", "timezone": "Europe/Berln"}]
        response = await w.post("/api/v1/users", {"users": bad})
        assert response.status == 400
        answer = await response.json()
        assert answer["field"] == "users.0.timezone"
        assert (
            "no time zone is named 'Europe/Berln' (did you mean 'Europe/Berlin'?)"
            in (answer["error"])
        )
        user = {"id": "y", "email": "y@x.com", "language": "xx_YY"}
        response = await w.post("/api/v1/attempts", {**attempt, "user": user})
        assert response.status == 400
        assert (await response.json())["field"] == "user.language"
        assert await w.app.store.person("x") is None
        assert await w.app.store.person("y") is None


async def test_a_user_naming_an_unknown_system_is_400_and_nobody_is_saved(
    tmp_path: Path,
) -> None:
    """A subscriber to a system no check file declares is refused, naming the field and the
    system it probably meant; the others in the same body are not saved either."""
    async with running(tmp_path) as w:
        users = [
            {"id": "a", "email": "a@x.com", "systems": ["payment"]},
            {"id": "b", "email": "b@x.com", "systems": ["login", "paymnet"]},
        ]
        response = await w.post("/api/v1/users", {"users": users})
        assert response.status == 400
        answer = await response.json()
        assert answer["field"] == "users.1.systems.1"
        assert answer["error"] == (
            "users.1.systems.1: no system is named 'paymnet' (did you mean 'payment'?)"
        )
        assert await w.app.store.person("a") is None


async def test_a_user_with_no_way_to_reach_them_is_400_naming_them(tmp_path: Path) -> None:
    """A subscriber with no email, phone or webhook could never be told: refused, naming them."""
    async with running(tmp_path) as w:
        users = [{"id": "a", "email": "a@x.com"}, {"id": "b", "name": "Bo", "email": None}]
        response = await w.post("/api/v1/users", users)
        assert response.status == 400
        answer = await response.json()
        assert answer["field"] == "1"
        assert (
            answer["error"] == "1: no email, phone or webhook: there would be no way to tell them"
        )


@pytest.mark.parametrize(
    ("phone", "error"),
    [
        (
            "+44 7700 900001",
            "'+44 7700 900001' is not a phone number in E.164 form (did you mean '+447700900001'?)",
        ),
        (
            "07700 900001",
            "'07700 900001' is not a phone number in E.164 form: '+', the country code and the "
            "number, like +447700900123",
        ),
    ],
)
async def test_a_phone_not_in_e164_form_is_400_saying_the_form(
    tmp_path: Path, phone: str, error: str
) -> None:
    """A phone the SMS API would not take is refused with the form it needs."""
    async with running(tmp_path) as w:
        response = await w.post("/api/v1/users", [{"id": "a", "phone": phone}])
        assert response.status == 400
        assert await response.json() == {
            "error": f"0.phone: {error}",
            "field": "0.phone",
            "errors": [{"field": "0.phone", "error": error}],
        }


async def test_unicode_names_round_trip(tmp_path: Path) -> None:
    """Names in any script are stored exactly as sent, through users and attempts."""
    names = {"u1": "Zoë Łukasiewicz", "u2": "山田 太郎", "u3": "Ægir Þórsson 🚀"}
    async with running(tmp_path) as w:
        users = [
            {"id": i, "name": n, "email": f"{i}@example.com", "systems": ["payment"]}
            for i, n in names.items()
        ]
        assert (await w.post("/api/v1/users", users)).status == 200
        body = {"system": "login", "user": {"id": "ü4", "name": "Jürgen Groß"}, "action": "log in"}
        assert (await w.post("/api/v1/attempts", body)).status == 202
        for person_id, name in [*names.items(), ("ü4", "Jürgen Groß")]:
            person = await w.app.store.person(person_id)
            assert person is not None
            assert person.name == name


# on-call's writes ------------------------------------------------------------------------------


async def test_a_note_with_send_queues_an_update_for_everyone_acknowledged(
    tmp_path: Path,
) -> None:
    """After acknowledgements, a note with send=true becomes an update to each person told,
    carrying the note; the incident shows the note."""
    async with running(tmp_path) as w:
        users = [{"id": "a", "email": "a@example.com", "systems": ["payment"]}]
        await w.post("/api/v1/users", users)
        incident = await w.outage("payment")
        note = "We found the fault in our card processor and are restarting it."
        response = await w.post(f"/api/v1/incidents/{incident}/note", {"text": note, "send": True})
        assert response.status == 200
        assert (await response.json())["note"] == note
        await w.tick()
        kinds = [(i.kind, i.reason) for i in await w.app.store.outbox_items(incident)]
        assert kinds == [("acknowledge", "first"), ("update", "note")]
        assert note in (await w.app.store.outbox_items(incident))[1].text


async def test_a_note_without_send_only_sets_the_note(tmp_path: Path) -> None:
    """A note with send=false (the default) changes the note and sends nothing."""
    async with running(tmp_path) as w:
        await w.post("/api/v1/users", [{"id": "a", "email": "a@x.com", "systems": ["payment"]}])
        incident = await w.outage("payment")
        response = await w.post(f"/api/v1/incidents/{incident}/note", {"text": "Looking."})
        assert (await response.json())["note"] == "Looking."
        await w.tick()
        assert [i.kind for i in await w.app.store.outbox_items(incident)] == ["acknowledge"]


async def test_hold_keeps_messages_back_and_release_lets_them_go(tmp_path: Path) -> None:
    """A held incident sends nothing past notify_after; released, its acknowledgements go."""
    async with running(tmp_path) as w:
        await w.post("/api/v1/users", [{"id": "a", "email": "a@x.com", "systems": ["payment"]}])
        await w.results("payment", False, 3)
        incident = (await w.app.store.latest_incidents(1))[0].id
        response = await w.post(f"/api/v1/incidents/{incident}/hold")
        assert response.status == 200
        assert (await response.json())["held"] is True
        w.clock.advance(NOTIFY_AFTER * 2)
        await w.tick()
        assert await w.app.store.outbox_items(incident) == []
        response = await w.post(f"/api/v1/incidents/{incident}/release")
        assert (await response.json())["held"] is False
        await w.tick()
        assert [i.kind for i in await w.app.store.outbox_items(incident)] == ["acknowledge"]
        kinds = [e["kind"] for e in (await w.get_json(f"/api/v1/incidents/{incident}"))["timeline"]]
        assert "held" in kinds
        assert "released" in kinds


@pytest.mark.parametrize("action", ["note", "hold", "release"])
async def test_writing_to_an_unknown_incident_is_404(tmp_path: Path, action: str) -> None:
    """Note, hold and release of an incident that does not exist answer 404."""
    async with running(tmp_path) as w:
        response = await w.post(f"/api/v1/incidents/99/{action}", {"text": "x"})
        assert response.status == 404
        assert (await response.json())["field"] == "id"


# reload ----------------------------------------------------------------------------------------


async def test_a_good_reload_applies_the_edited_check_files(tmp_path: Path) -> None:
    """Editing a title on disk and POSTing /-/reload shows the new title in the API."""
    async with running(tmp_path) as w:
        path = w.checks / "crm.yaml"
        path.write_text(path.read_text().replace("Your order history", "Your past orders"))
        response = await w.post("/-/reload")
        assert response.status == 200
        assert await response.json() == {"reloaded": True}
        systems = {s["name"]: s["title"] for s in (await w.get_json("/api/v1/systems"))["systems"]}
        assert systems["crm"] == "Your past orders"


async def test_a_refused_reload_is_422_with_where_and_the_monitor_stays_ready(
    tmp_path: Path,
) -> None:
    """A bad check file: 422 naming file, line and field; /readyz stays 200 (the last good
    configuration runs) with a warning naming the file; /api/v1/status and /metrics say the
    reload was refused; fixing the file and reloading clears all of it."""
    async with running(tmp_path) as w:
        path = w.checks / "payment.yaml"
        good = path.read_text()
        bad = good.replace("Online payments", "New payments").replace("every: 15s", "every: 5x")
        path.write_text(bad)
        line = bad.splitlines().index("every: 5x") + 1
        response = await w.post("/-/reload")
        assert response.status == 422
        answer = await response.json()
        assert answer["reloaded"] is False
        problem = answer["problems"][0]
        assert problem["file"].endswith("payment.yaml")
        assert problem["line"] == line
        assert problem["field"] == "every"
        ready = await w.client.get("/readyz")
        assert ready.status == 200
        text = await ready.text()
        assert text.startswith("ready\n")
        assert (
            f"warning: the last reload was refused (the previous configuration is running): "
            f"{path}:{line}: every:" in text
        )
        status = await w.get_json("/api/v1/status")
        assert status["ready"] is True
        assert status["config"]["last_reload_successful"] is False
        assert status["config"]["refused_at"] is not None
        assert status["config"]["problems"] == answer["problems"]
        metrics = await (await w.client.get("/metrics")).text()
        assert "monitor_config_last_reload_successful 0.0" in metrics
        assert 'monitor_config_reloads_total{result="failure"} 1.0' in metrics
        systems = {s["name"]: s["title"] for s in (await w.get_json("/api/v1/systems"))["systems"]}
        assert systems["payment"] == "Online payments"
        path.write_text(good)
        assert (await w.post("/-/reload")).status == 200
        assert "warning: the last reload" not in await (await w.client.get("/readyz")).text()
        status = await w.get_json("/api/v1/status")
        assert status["config"]["last_reload_successful"] is True
        assert status["config"]["problems"] == []
        metrics = await (await w.client.get("/metrics")).text()
        assert "monitor_config_last_reload_successful 1.0" in metrics


async def test_on_call_hears_once_of_a_refused_reload_and_once_that_it_is_fixed(
    tmp_path: Path,
) -> None:
    """A refused reload is one on-call notice naming file and line (the same refusal again,
    as the file watcher retries, is not another); the fixing reload is one more notice."""
    async with WebhookReceiver() as receiver:
        checks = tmp_path / "checks"
        write_config(checks)
        team = receiver.url("/team").replace("http://", "json://")
        settings = checks / "monitor.yaml"
        settings.write_text(settings.read_text() + f'oncall: ["{team}"]\n')
        app = App(
            Options(config=checks, messages=MESSAGES, db=tmp_path / "m.db", listen="-"),
            clock=FakeClock(),
            environ={},
            serve_http=False,
            watch_files=False,
        )
        await app.start()
        try:
            path = checks / "payment.yaml"
            good = path.read_text()
            path.write_text(good.replace("every: 15s", "every: 5x"))
            assert app.reload()
            assert app.reload()
            path.write_text(good)
            assert app.reload() == []
            async with asyncio.timeout(30):
                await app.oncall.queue.join()
        finally:
            await app.stop()
        titles = [json.loads(r.body)["title"] for r in receiver.received]
        assert titles == [
            "Configuration refused: 1 problem",
            "Configuration reloaded: the earlier problems are fixed",
        ]
        body = json.loads(receiver.received[0].body)["message"]
        assert f"{path}:" in body
        assert "every" in body
        assert "The previous configuration keeps running" in body


async def test_an_incident_lists_who_could_not_be_told_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone reachable only by SMS, with no SMS configured, is listed on the incident as
    undeliverable with the reason, and logged once; the person told by email is not."""
    async with MailCatcher() as catcher:
        environ = {"MONITOR_API_TOKEN": TOKEN, "MONITOR_SMTP_URL": catcher.url}
        async with running(tmp_path, environ) as w:
            users = [
                {"id": "alice", "email": "alice@example.com", "systems": ["payment"]},
                {"id": "sam", "name": "Sam", "phone": "+447700900123", "systems": ["payment"]},
            ]
            assert (await w.post("/api/v1/users", {"users": users})).status == 200
            incident = await w.outage("payment")
            await w.delivered(2)
            detail = await w.get_json(f"/api/v1/incidents/{incident}")
        assert detail["undeliverable"] == [
            {"person": "sam", "kind": "acknowledge", "error": "no configured channel (had: sms)"}
        ]
        assert detail["counts"]["undeliverable"] == 1
        logged = [
            r.fields  # type: ignore[attr-defined]
            for r in caplog.records
            if r.getMessage() == "undeliverable"
        ]
        assert logged == [
            {
                "item": f"incident-{incident}.acknowledge.sam",
                "person": "sam",
                "error": "no configured channel (had: sms)",
            }
        ]


# the OpenAPI document --------------------------------------------------------------------------


async def test_openapi_document_lists_every_route_the_server_has(tmp_path: Path) -> None:
    """/api/v1/openapi.json is OpenAPI 3.1 JSON with one operation per served route."""
    async with running(tmp_path) as w:
        response = await w.client.get("/api/v1/openapi.json")
        assert response.content_type == "application/json"
        document = await response.json()
        served = {
            (route.method, route.resource.canonical)
            for route in w.client.app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert documented == served
    assert ("POST", "/api/v1/attempts") in documented


async def test_openapi_marks_exactly_the_write_routes_with_bearer_auth(tmp_path: Path) -> None:
    """Write operations carry bearerAuth security and 401/403 answers; reads carry none;
    every schema reference resolves inside the document."""
    async with running(tmp_path) as w:
        document = await w.get_json("/api/v1/openapi.json")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    secured = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == [{"bearerAuth": []}]
    }
    assert secured == {(m, p) for m, p in ((r.method, r.path) for r in ROUTES if r.write)}
    for method, path in secured:
        assert {"401", "403"} <= set(document["paths"][path][method.lower()]["responses"])
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    for name in {ref.split("/")[-1] for ref in _refs(document)}:
        assert name in schemas, name
    assert "additionalProperties" in json.dumps(schemas["AttemptIn"])
    operations = [op for item in document["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), path
            assert operation["responses"], path
    assert "#/$defs" not in text


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


# uptime over the time watched (issue 13) -------------------------------------------------------


async def test_systems_say_since_when_their_uptime_counts(tmp_path: Path) -> None:
    """uptime_since is when a system was first decided while it has been watched under 7
    days, then 7 days ago; it is null, like uptime_7d, for a system never decided."""
    async with running(tmp_path) as w:
        await w.results("payment", True, 2)  # UP at the second pass, 08:00:15
        w.clock.advance(15)
        recent = {s["name"]: s for s in (await w.get_json("/api/v1/systems"))["systems"]}
        w.clock.advance(8 * 86400)
        week = {s["name"]: s for s in (await w.get_json("/api/v1/systems"))["systems"]}
    assert recent["payment"]["uptime_since"] == "2027-01-15T08:00:15Z"
    assert recent["payment"]["uptime_7d"] == 1.0
    assert week["payment"]["uptime_since"] == "2027-01-16T08:00:45Z"  # now, less 7 days
    assert recent["crm"]["uptime_since"] is None
    assert recent["crm"]["uptime_7d"] is None


async def test_the_openapi_document_describes_uptime_since(tmp_path: Path) -> None:
    """The published schema of a system lists uptime_since as a date-time or null."""
    async with running(tmp_path) as w:
        document = await w.get_json("/api/v1/openapi.json")
    field = document["components"]["schemas"]["SystemOut"]["properties"]["uptime_since"]
    assert {"type": "string", "format": "date-time"} in field["anyOf"]
    assert "7 days" in field["description"]


async def test_status_names_the_channels_and_warns_when_there_is_none(tmp_path: Path) -> None:
    """With no channel configured, /api/v1/status lists none and warns that customers cannot
    be told (as /readyz does, still 200); with SMTP configured it lists email and no warning."""
    async with running(tmp_path / "bare") as w:
        status = await w.get_json("/api/v1/status")
        readyz = await w.client.get("/readyz")
        assert readyz.status == 200
        assert "warning: no channel is configured" in await readyz.text()
    assert status["channels"] == []
    assert status["ready"] is True
    assert status["store"] == {"writable": True, "error": None}
    assert [w for w in status["warnings"] if "no channel is configured" in w]
    environ = {"MONITOR_API_TOKEN": TOKEN, "MONITOR_SMTP_URL": "smtp://127.0.0.1:1"}
    async with running(tmp_path / "mail", environ) as w:
        status = await w.get_json("/api/v1/status")
    assert status["channels"] == ["email"]
    # Only that subscriptions are off: no public_url, no MONITOR_LINK_SECRET.
    assert [w.split(":")[0] for w in status["warnings"]] == [
        "customer messages carry no manage or unsubscribe link, and the status page offers no "
        "subscriptions"
    ]
    assert status["config"]["systems"] == 3
