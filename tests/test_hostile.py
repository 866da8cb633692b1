"""Hostile input: a fuzzed HTTP API, broken and enormous check files, customer data that looks
like code or headers, and templates that reach for Python internals.

Everything runs against the real thing: an App serving HTTP on loopback, `monitor validate` as a
subprocess, a real SMTP server and a loopback Twilio. Fuzzing is derandomized, so every run
sends the same requests.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from clock import FakeClock
from fake_twilio import FakeTwilio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from process import REPO, run_cli
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction
from test_api import TOKEN, running
from world import MESSAGES, World, world, write_config

from monitor.app import App, Options
from monitor.config import MAX_FILE_BYTES, Config, ConfigError, load_config
from monitor.delivery.channels import SmsChannel
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.model import Person, ProbeResult
from monitor.notify.composer import MAX_SMS
from monitor.web.api import ROUTES
from monitor.web.openapi import OPENAPI_PATH, openapi_document

# The HTTP API, fuzzed from its OpenAPI document ---------------------------------------------

EXAMPLES = 25  # per operation and generation mode: enough to reach every field, and quick
AUTH_EXAMPLES = 12  # the token is checked before anything else is read
REQUEST_TIMEOUT = 5.0  # a request that takes longer is a hang, and fails the test
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

DOCUMENT = openapi_document(ROUTES)
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]
ALL = [pytest.param(m, p, id=f"{m} {p}") for m, p, _ in OPERATIONS]
WRITES = [pytest.param(m, p, id=f"{m} {p}") for m, p, op in OPERATIONS if "security" in op]
# Negative data needs something to negate: a parameter or a body.
TAKES_INPUT = {(m, p) for m, p, op in OPERATIONS if "parameters" in op or "requestBody" in op}
SYSTEMS = ("payment", "login", "crm")
INCIDENT = 1  # the served App has this incident open, so fuzzing reaches its views


class ServedApp:
    """A real App serving HTTP on 127.0.0.1 from a thread with its own event loop, so that a
    synchronous client (schemathesis sends with requests) can call it from the test."""

    def __init__(self, tmp: Path, environ: dict[str, str]) -> None:
        self.clock = FakeClock()
        checks = tmp / "checks"
        write_config(checks)
        self.app = App(
            Options(config=checks, messages=MESSAGES, db=tmp / "monitor.db", listen="127.0.0.1:0"),
            clock=self.clock,
            environ=environ,
            watch_files=False,
        )
        self._started = threading.Event()
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def __enter__(self) -> ServedApp:
        self._thread.start()
        if not self._started.wait(60):
            raise AssertionError("the App did not start within 60 s")
        if self._failed is not None:
            raise self._failed
        # What is fuzzed is what the server publishes, fetched as any client would.
        self.schema = schemathesis.openapi.from_url(self.url + OPENAPI_PATH)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    @property
    def url(self) -> str:
        assert self.app.runner is not None
        host, port = self.app.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def run(self, work: Callable[[App, FakeClock], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` on the server's loop, where the App lives, and wait for it."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(work(self.app, self.clock), self._loop).result(60)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.app.start()
        except BaseException as exc:
            self._failed = exc
            self._started.set()
            raise
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.app.stop()


async def open_an_incident(app: App, clock: FakeClock) -> None:
    """Payment fails three times in a row and stays down past notify_after: incident 1."""
    for _ in range(3):
        app.monitor.observe(ProbeResult("payment", False, "status 503", clock.now(), 0.01))
        await app.monitor.flush()  # the notifier reads transitions from the store
        await app.notifier.tick()
        clock.advance(15)
    clock.advance(60)
    await app.notifier.tick()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """An App with MONITOR_API_TOKEN set and incident 1 open."""
    with ServedApp(tmp_path_factory.mktemp("guarded"), {"MONITOR_API_TOKEN": TOKEN}) as served:
        served.run(open_an_incident)
        yield served


@pytest.fixture(scope="module")
def unguarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """An App with no MONITOR_API_TOKEN: every write route is disabled."""
    with ServedApp(tmp_path_factory.mktemp("unguarded"), {}) as served:
        yield served


def cases(
    served: ServedApp, method: str, path: str, mode: GenerationMode
) -> st.SearchStrategy[Case[Any]]:
    """Generated requests; positive ones also name a configured system or the open incident,
    so that they reach past "no such system" and "no such incident"."""
    found = served.schema[path][method]
    strategy = found.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE:
        return strategy
    if "{id}" in path:
        strategy |= found.as_strategy(generation_mode=mode, path_parameters={"id": INCIDENT})
    if path == "/api/v1/attempts":
        strategy |= st.tuples(
            found.as_strategy(generation_mode=mode), st.sampled_from(SYSTEMS)
        ).map(_with_system)
    return strategy


def _with_system(drawn: tuple[Case[Any], str]) -> Case[Any]:
    case, system = drawn
    if isinstance(case.body, dict):
        case.body["system"] = system
    return case


def modes(method: str, path: str) -> list[GenerationMode]:
    if (method, path) in TAKES_INPUT:
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def fuzz(
    served: ServedApp,
    method: str,
    path: str,
    authorization: st.SearchStrategy[str],
    expect: Callable[[int], bool] = lambda status: True,
    examples: int = EXAMPLES,
) -> None:
    """Send ``examples`` generated requests per generation mode, with an ``Authorization``
    header drawn from ``authorization`` (none when it draws ""); each answer must pass CHECKS
    and ``expect``."""
    for mode in modes(method, path):

        @settings(FUZZ, max_examples=examples)
        @given(case=cases(served, method, path, mode), authorization=authorization)
        def one(case: Case[Any], authorization: str) -> None:
            headers = {"Authorization": authorization} if authorization else {}
            if not authorization:
                case.headers.pop("Authorization", None)
            response = case.call_and_validate(
                base_url=served.url, headers=headers, checks=CHECKS, timeout=REQUEST_TIMEOUT
            )
            assert expect(response.status_code), (
                f"{case.method} {case.formatted_path} with {authorization!r} "
                f"answered {response.status_code}: {response.text[:500]}"
            )

        one()


@pytest.mark.parametrize(("method", "path"), ALL)
def test_no_operation_answers_a_server_error_or_strays_from_its_schema(
    guarded: ServedApp, method: str, path: str
) -> None:
    """Valid and invalid requests with the token never get a 5xx, always get an answer within
    five seconds, and every answer matches the published status, headers and schema."""
    fuzz(guarded, method, path, st.just(f"Bearer {TOKEN}"))


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_write_routes_are_403_for_everyone_when_no_token_is_configured(
    unguarded: ServedApp, method: str, path: str
) -> None:
    """With MONITOR_API_TOKEN unset, any request to a write route, with or without a token,
    is refused with 403."""
    tokens = st.sampled_from([f"Bearer {TOKEN}", ""])
    fuzz(unguarded, method, path, tokens, lambda s: s == 403, AUTH_EXAMPLES)


WRONG_TOKENS = ["", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer"]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_write_routes_are_401_without_the_configured_token(
    guarded: ServedApp, method: str, path: str
) -> None:
    """With a token configured, a request without it, with a longer or shorter one, with
    another scheme or none, never succeeds: it is 401, whatever its body and parameters."""
    fuzz(guarded, method, path, st.sampled_from(WRONG_TOKENS), lambda s: s == 401, AUTH_EXAMPLES)


# Check files: generated mistakes, real-world mistakes, enormous files -------------------------

SHIPPED = REPO / "checks"
SHIPPED_FILES = {path.name: path.read_text() for path in sorted(SHIPPED.glob("*.yaml"))}
KEY = re.compile(r"^[ \t]*(?:-[ \t]+)*[^\s#:'\"{}\[\],&*!|>%@`-][^:#]*?[ \t]*:(?:[ \t]|$)")
VALUES = ["three", "'15'", "15", "yes", "null", "[", "{a: 1", '"x', "-1", "1e999", "15 s", "~"]


def mutate(lines: list[str], edit: tuple[str, int, int]) -> list[str]:
    """One mistake a person makes in an editor, at line ``at``."""
    kind, at, amount = edit
    if not lines:
        return lines
    at %= len(lines)
    line = lines[at]
    indent = len(line) - len(line.lstrip(" "))
    if kind == "indent":
        lines[at] = " " * amount + line
    elif kind == "dedent":
        lines[at] = line[min(amount, indent) :]
    elif kind == "tab":
        lines[at] = "\t" + line.lstrip(" ")
    elif kind == "duplicate":
        lines.insert(at, line)
    elif kind == "delete":
        del lines[at]
    elif kind == "no-colon":
        lines[at] = line.replace(":", "", 1)
    elif kind == "value":
        key, sep, _ = line.partition(": ")
        if sep:
            lines[at] = key + sep + VALUES[amount % len(VALUES)]
    elif kind == "cut":
        lines[at] = line[: amount * 7 % (len(line) + 1)]
    return lines


EDITS = st.tuples(
    st.sampled_from(["indent", "dedent", "tab", "duplicate", "delete", "no-colon", "value", "cut"]),
    st.integers(0, 40),
    st.integers(1, 6),
)


def loaded(files: dict[str, str]) -> Config | ConfigError:
    with tempfile.TemporaryDirectory() as directory:
        for name, text in files.items():
            Path(directory, name).write_text(text, encoding="utf-8")
        try:
            return load_config(directory, environ={})
        except ConfigError as refused:
            assert_each_problem_is_located(refused, Path(directory), files)
            return refused


def assert_each_problem_is_located(
    refused: ConfigError, directory: Path, files: dict[str, str]
) -> None:
    """Each problem names a file of ``directory``, a line in it, and the field when that line
    writes a key."""
    assert refused.problems
    for problem in refused.problems:
        path = Path(problem.file)
        assert path.parent == directory, problem
        assert problem.line is not None, problem
        rows = files[path.name].splitlines()
        assert 1 <= problem.line <= max(len(rows), 1), problem
        assert problem.message, problem
        if problem.line <= len(rows) and KEY.match(rows[problem.line - 1]):
            assert problem.field, problem


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(name=st.sampled_from(sorted(SHIPPED_FILES)), edits=st.lists(EDITS, min_size=1, max_size=3))
def test_any_editing_mistake_in_a_shipped_file_is_a_config_or_located_problems(
    name: str, edits: list[tuple[str, int, int]]
) -> None:
    """Indenting, tabbing, duplicating, deleting or retyping lines of a real check file ends
    in a Config or in problems naming file, line and field: never an exception."""
    lines = SHIPPED_FILES[name].splitlines()
    for edit in edits:
        lines = mutate(lines, edit)
    loaded({**SHIPPED_FILES, name: "\n".join(lines) + "\n"})


PAYMENT = SHIPPED_FILES["payment.yaml"]
# A real mistake: (file text, the file:line: field: that must be reported).
MISTAKES: dict[str, tuple[str, str]] = {
    "tab": (PAYMENT.replace("  http:", "\thttp:"), "payment.yaml:10: probe.http:"),
    "wrong-indentation": (
        PAYMENT.replace("    method: GET", "      method: GET"),
        "payment.yaml:12: probe.http.method:",
    ),
    "string-for-number": (
        PAYMENT.replace("fail_after: 3", "fail_after: three"),
        "payment.yaml:5: fail_after:",
    ),
    "duplicate-key": (
        PAYMENT.replace("every: 15s\n", "every: 15s\nevery: 30s\n"),
        "payment.yaml:4: every:",
    ),
    "five-megabytes": (
        PAYMENT + "workaround: " + "Call us. " * 600_000 + "\n",
        "payment.yaml:18: workaround:",
    ),
    "a-hundred-thousand-keys": (
        PAYMENT + "".join(f"k{i}: 1\n" for i in range(100_000)),
        "payment.yaml:9998: k9980:",
    ),
    "deep-nesting": (
        PAYMENT.replace("json: {status: up}", "json: " + "[" * 5000 + "]" * 5000),
        "payment.yaml:16: probe.http.expect.json:",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_real_world_mistake_is_refused_with_file_line_and_field(
    tmp_path: Path, mistake: str
) -> None:
    """Tabs, wrong indentation, words for numbers, duplicate keys, 5 MB files, 100,000 keys
    and absurd nesting are each refused with the file, line and field to look at."""
    text, where = MISTAKES[mistake]
    (tmp_path / "payment.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, environ={})
    said = [str(problem) for problem in refused.value.problems]
    assert any(line.startswith(f"{tmp_path}/{where} ") for line in said), said


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    """A 50 MB file is refused as too large at once, and the reason says how large is allowed."""
    with (tmp_path / "payment.yaml").open("w") as file:
        file.write(PAYMENT + "# ")
        file.truncate(50_000_000)  # the rest reads as NUL bytes, and takes no time to write
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, environ={})
    [problem] = refused.value.problems
    assert problem.line == 18
    assert f"larger than {MAX_FILE_BYTES // 1024} KiB" in problem.message


async def test_monitor_validate_reports_real_world_mistakes_without_a_traceback(
    tmp_path: Path,
) -> None:
    """`monitor validate` on the shipped checks plus one broken file per mistake exits 1 and
    prints `file:line: field: ...` on stderr for each of them, never a traceback."""
    checks = tmp_path / "checks"
    shutil.copytree(SHIPPED, checks)
    for mistake, (text, _) in MISTAKES.items():
        (checks / f"{mistake}.yaml").write_text(text, encoding="utf-8")
    code, out, err = await run_cli("validate", "--config", str(checks))
    assert code == 1, (out, err)
    assert "Traceback" not in out + err, err
    said = err.splitlines()
    for mistake, (_, where) in MISTAKES.items():
        expected = f"{checks}/{where.replace('payment.yaml', f'{mistake}.yaml')} "
        assert any(line.startswith(expected) for line in said), (expected, err)


# Customer data in messages ------------------------------------------------------------------

UNICODE = "Zoë 王秀英 Ολυμπία 👩🏽‍💻 ﷽ a\u0301\u0308 "
HOSTILE = {
    "template": "{{ 7*7 }} {% raw %}",
    "script": "<script>alert(1)</script>",
    "header": "Eve\r\nBcc: x@evil.example",
    "unicode": (UNICODE * 400).strip(),
}
HEADER_NAMES = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


def hostile_people(contact: Callable[[int], dict[str, str]]) -> list[Person]:
    return [
        Person(f"p{i}", text, **contact(i), systems=("payment",))
        for i, text in enumerate(HOSTILE.values())
    ]


async def hostile_outage(w: World, people: list[Person]) -> None:
    """Each person reports failing to do their own hostile text, then payment goes down."""
    await w.people(*people)
    for person in people:
        await w.report(person, "payment", person.name, ago=60)
    await w.fail(["payment"])
    await w.wait(120)


def header_names(message: CaughtMessage) -> list[str]:
    head = message.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1].strip()]


async def test_hostile_names_and_actions_arrive_literal_escaped_and_without_new_headers(
    tmp_path: Path,
) -> None:
    """Names and actions that look like template code, HTML, headers or 10 kB of unicode
    reach each person, through SMTP, literally in the text, escaped in the html, in a one-line
    subject, with no header added and no recipient but them."""
    async with world(tmp_path) as w:
        people = hostile_people(lambda i: {"email": f"p{i}@example.com"})
        await hostile_outage(w, people)
        assert len(w.catcher.messages) == len(people)
        for person, (kind, text) in zip(people, HOSTILE.items(), strict=True):
            [mail] = w.mail_to(f"{person.id}@example.com")
            assert mail.rcpt_tos == (f"{person.id}@example.com",), kind
            names = header_names(mail)
            assert set(names) <= HEADER_NAMES, (kind, names)
            assert names.count("subject") == names.count("to") == 1, kind
            subject = str(mail.message["Subject"])
            assert "\r" not in subject, kind
            assert "\n" not in subject, kind
            assert mail.html is not None
            if kind == "header":
                assert "Eve Bcc: x@evil.example" in subject
                assert "couldn't Eve Bcc: x@evil.example at " in mail.text
                assert not re.search(r"^Bcc:", mail.text + mail.html, re.MULTILINE)
            else:
                assert text in subject, kind
                assert text in mail.text, kind
        assert len(HOSTILE["unicode"].encode()) > 10_000
        script = w.mail_to("p1@example.com")[0]
        assert script.html is not None
        assert "<script>" not in script.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script.html


async def test_hostile_names_and_actions_make_one_sms_each_of_at_most_320_characters(
    tmp_path: Path,
) -> None:
    """People with only a phone get one SMS each through the Twilio API: one line of at most
    320 characters, sent to their number alone, with no form field added."""
    async with FakeTwilio() as twilio, aiohttp.ClientSession() as session:
        sms = SmsChannel(
            session, twilio.account_sid, twilio.auth_token, "+15550001111", base_url=twilio.base_url
        )
        async with world(tmp_path, sms=sms) as w:
            people = hostile_people(lambda i: {"phone": f"+44770090000{i}"})
            people.append(Person("p9", "Eve&To=+15559999999&Body=x", phone="+447700900009"))
            await hostile_outage(w, people)
        assert sorted(m.to for m in twilio.messages) == sorted(str(p.phone) for p in people)
        for message in twilio.messages:
            assert set(message.form) == {"To", "From", "Body"}
            assert len(message.body) <= MAX_SMS
            assert "\r" not in message.body
            assert "\n" not in message.body
        [template] = [m for m in twilio.messages if m.to == "+447700900000"]
        assert "{{ 7*7 }}" in template.body


async def test_hostile_names_round_trip_through_the_api_and_never_reach_the_page_as_markup(
    tmp_path: Path,
) -> None:
    """Users and attempts with names that look like code or markup are stored exactly as
    sent, ones with line breaks are refused naming the field, and the status page (showing an
    on-call note with a script tag) escapes it all."""
    async with MailCatcher() as catcher:
        environ = {"MONITOR_API_TOKEN": TOKEN, "MONITOR_SMTP_URL": catcher.url}
        async with running(tmp_path, environ) as w:
            names = {"u0": HOSTILE["template"], "u1": HOSTILE["script"], "u2": UNICODE * 5}
            users = [
                {"id": i, "name": n, "email": f"{i}@example.com", "systems": ["payment"]}
                for i, n in names.items()
            ]
            assert (await w.post("/api/v1/users", users)).status == 200
            attempt = {
                "system": "payment",
                "user": {"id": "u3", "name": HOSTILE["script"], "email": "u3@example.com"},
                "action": HOSTILE["template"] + " " + HOSTILE["script"],
            }
            assert (await w.post("/api/v1/attempts", attempt)).status == 202
            for path, body, field in [
                ("/api/v1/users", [{"id": "u4", "name": HOSTILE["header"]}], "0.name"),
                ("/api/v1/users", [{"id": "u5", "name": HOSTILE["unicode"]}], "0.name"),
                ("/api/v1/attempts", {**attempt, "action": HOSTILE["header"]}, "action"),
            ]:
                refused = await w.post(path, body)
                assert refused.status == 400
                assert (await refused.json())["field"] == field
            for person_id, name in [*names.items(), ("u3", HOSTILE["script"])]:
                person = await w.app.store.person(person_id)
                assert person is not None
                assert person.name == name
            incident = await w.outage()
            await w.delivered(4)
            note = {"text": HOSTILE["script"] + " " + HOSTILE["template"]}
            assert (await w.post(f"/api/v1/incidents/{incident}/note", note)).status == 200
            page = await (await w.client.get("/")).text()
        assert "<script>alert" not in page  # the page's one script is its own (test_statuspage)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in page
        [mail] = [m for m in catcher.messages if m.rcpt_tos == ("u3@example.com",)]
        assert mail.html is not None
        assert "<script>" not in mail.html
        assert HOSTILE["template"] + " " + HOSTILE["script"] in mail.text


# Templates that reach for Python internals --------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ user.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ (user|attr('__class__')).__init__ }}",
    "{{ '{0.__class__}'.format(user) }}",
    "{{ subscription.__class__.__init__ }}",
    "{{ maintenance.__class__.__mro__ }}",
]


# Where each attempt goes: a default template, or a per-system override of its own.
TEMPLATES = [
    "acknowledge.j2",
    "update.j2",
    "resolved.j2",
    "payment/acknowledge.j2",
    "login/update.j2",
    "crm/resolved.j2",
    "payment/update.j2",
    "login/acknowledge.j2",
    "subscribe.j2",
    "maintenance-cancelled.j2",
]
OVERRIDE = """{% extends "_base.j2" %}
{% block subject %}Sorry{% endblock %}
{% block text %}
ESCAPE
{% endblock %}
"""


async def test_monitor_validate_refuses_templates_that_reach_python_internals(
    tmp_path: Path,
) -> None:
    """Each escape attempt, written into its own template of a copy of messages/, makes
    `monitor validate` exit 1 with a sandbox error naming that file and line; no traceback."""
    messages = tmp_path / "messages"
    shutil.copytree(MESSAGES, messages)
    where = {}
    for name, escape in zip(TEMPLATES, ESCAPES, strict=True):
        template = messages / name
        if template.exists():
            lines = template.read_text().splitlines()
            at = lines.index("{% block text %}") + 1
            lines.insert(at, escape)
            text = "\n".join(lines) + "\n"
        else:
            template.parent.mkdir(exist_ok=True)
            text = OVERRIDE.replace("ESCAPE", escape)
        template.write_text(text)
        where[escape] = f"{template}:{text.splitlines().index(escape) + 1}: "
    code, out, err = await run_cli("validate", "--messages", str(messages))
    assert code == 1, (out, err)
    assert "Traceback" not in out + err, err
    for escape, place in where.items():
        said = [line for line in err.splitlines() if line.startswith(place)]
        assert said, (escape, place, err)
        assert all("blocked by the sandbox (security)" in line for line in said), said
