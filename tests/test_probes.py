"""Probes against real servers on loopback: what on-call reads for each way a system fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import aiohttp
import pytest
import trustme
from targets import BIG_BODY_SIZE, PASSWORD, USERNAME, Mode, Target

from monitor.config import HttpClient, SystemConfig
from monitor.probing.probes import MAX_BODY, Prober, make_session
from monitor.probing.probes.reasons import explain, too_slow, unexpected_status

# `monitor run` probes on uvloop; the tests' own loop is asyncio's.
pytestmark = pytest.mark.every_loop

DAY = 86400.0
ELAPSED = r"(\d+ms|\d+(\.\d+)?s)"  # 12ms, or 1.2s on a very slow machine


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.time = now

    def now(self) -> float:
        return self.time


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def session(ca: trustme.CA) -> AsyncIterator[aiohttp.ClientSession]:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with make_session(HttpClient(), trusting) as session:
        yield session


@pytest.fixture
def prober(session: aiohttp.ClientSession, clock: FakeClock) -> Prober:
    return Prober(session, clock)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    async with Target() as target:
        yield target


def system(probe: dict[str, Any], timeout: str = "2s") -> SystemConfig:
    return SystemConfig.model_validate(
        {"name": "payment", "title": "Online payments", "timeout": timeout, "probe": probe}
    )


def http(url: str, **fields: Any) -> SystemConfig:
    return system({"http": {"url": url, **fields}})


def steps(*steps: dict[str, Any], timeout: str = "2s") -> SystemConfig:
    return system({"steps": list(steps)}, timeout=timeout)


def tls_server_context(ca: trustme.CA, not_after: dt.datetime) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", not_after=not_after).configure_cert(context)
    return context


def sign_in(target: Target, **extra: Any) -> dict[str, Any]:
    credentials = {"username": USERNAME, "password": PASSWORD}
    return {
        "name": "sign in",
        "method": "POST",
        "url": target.url_for("/login"),
        "json": credentials,
        **extra,
    }


ACCOUNT = {"url": "/account", "expect": {"body_contains": "Welcome"}}


# --- http ---------------------------------------------------------------------------------


async def test_healthy_system_passes_with_status_and_latency(
    prober: Prober, target: Target, clock: FakeClock
) -> None:
    """A healthy answer passes, saying its status and how long it took."""
    result = await prober.probe(
        http(target.url_for("/healthz"), expect={"body_contains": "ok", "json": {"status": "up"}})
    )

    assert result.ok
    assert re.fullmatch(rf"status 200 in {ELAPSED}", result.reason)
    assert result.system == "payment"
    assert result.started_at == clock.time
    assert result.duration > 0


async def test_server_error_says_status_and_what_was_expected(
    prober: Prober, target: Target
) -> None:
    """A 500 reads "status 500, expected 200"."""
    await target.set_mode(Mode.ERROR)

    result = await prober.probe(http(target.url_for("/healthz")))

    assert not result.ok
    assert result.reason == "status 500, expected 200"


async def test_several_expected_statuses_are_joined_with_or(prober: Prober, target: Target) -> None:
    """With several acceptable statuses the reason lists them all: "expected 200 or 204"."""
    await target.set_mode(Mode.ERROR)

    result = await prober.probe(http(target.url_for("/healthz"), expect={"status": [200, 204]}))

    assert result.reason == "status 500, expected 200 or 204"


async def test_slow_server_times_out_within_the_timeout(prober: Prober, target: Target) -> None:
    """A server slower than the timeout fails with "timed out after ..." and the probe returns
    promptly."""
    await target.set_mode(Mode.SLOW)
    slow = system({"http": {"url": target.url_for("/healthz")}}, timeout="200ms")

    began = perf_counter()
    result = await prober.probe(slow)
    took = perf_counter() - began

    assert not result.ok
    assert result.reason == "timed out after 200ms"
    assert took < 0.2 + 1.0
    assert result.duration < 0.2 + 1.0


async def test_probes_sharing_a_timeout_each_end_by_their_own(
    prober: Prober, target: Target
) -> None:
    """Probes with the same timeout share one timer (the prober's deadlines): a slow one started
    later still gets its whole timeout, and a fast one among them passes."""
    healthy = Target()
    async with healthy:
        await target.set_mode(Mode.SLOW)
        slow = system({"http": {"url": target.url_for("/healthz")}}, timeout="300ms")
        fast = system({"http": {"url": healthy.url_for("/healthz")}}, timeout="300ms")

        first = asyncio.create_task(prober.probe(slow))
        await asyncio.sleep(0.1)  # the second slow probe starts while the first is running
        later = asyncio.create_task(prober.probe(slow))
        passed = await prober.probe(fast)
        results = await asyncio.gather(first, later)

    assert passed.ok, passed.reason
    assert [r.reason for r in results] == ["timed out after 300ms"] * 2
    # The later one was not cut short by the earlier one's deadline.
    assert results[1].duration > 0.25  # cut by the first deadline it would have had ~0.2 s


async def test_a_probe_cancelled_from_outside_is_not_called_a_timeout(
    prober: Prober, target: Target
) -> None:
    """Shutdown cancels the probes under way: that cancellation goes through, it does not turn
    into a "timed out" result."""
    await target.set_mode(Mode.SLOW)
    slow = system({"http": {"url": target.url_for("/healthz")}}, timeout="5s")

    running = asyncio.create_task(prober.probe(slow))
    await asyncio.sleep(0.1)
    running.cancel()

    with pytest.raises(asyncio.CancelledError):
        await running


async def test_closed_port_is_connection_refused(prober: Prober, target: Target) -> None:
    """Nothing listening reads "connection refused"."""
    await target.set_mode(Mode.REFUSED)

    result = await prober.probe(http(target.url_for("/healthz")))

    assert result.reason == "connection refused"


async def test_system_recovers_after_refusing(prober: Prober, target: Target) -> None:
    """Once the target listens again on the same URL, the probe passes again."""
    check = http(target.url_for("/healthz"))
    await prober.probe(check)
    await target.set_mode(Mode.REFUSED)
    assert (await prober.probe(check)).reason == "connection refused"

    await target.set_mode(Mode.HEALTHY)

    assert (await prober.probe(check)).ok


async def test_unknown_host_says_it_cannot_be_resolved(prober: Prober) -> None:
    """A DNS failure names the host: "cannot resolve host pay.invalid"."""
    result = await prober.probe(http("https://pay.invalid/healthz"))

    assert result.reason == "cannot resolve host pay.invalid"


async def test_missing_text_says_body_lacks_it(prober: Prober, target: Target) -> None:
    """A body without the expected text reads "body lacks 'ok'"."""
    await target.set_mode(Mode.WRONG_BODY)

    result = await prober.probe(http(target.url_for("/healthz"), expect={"body_contains": "ok"}))

    assert result.reason == "body lacks 'ok'"


async def test_text_past_the_read_limit_is_not_searched(prober: Prober, target: Target) -> None:
    """Only the first MiB of a body is read, and the reason says so."""
    assert BIG_BODY_SIZE > MAX_BODY

    result = await prober.probe(http(target.url_for("/big"), expect={"body_contains": "ok"}))

    assert result.reason == "body lacks 'ok' in its first 1 MiB"


async def test_wrong_json_field_says_what_it_is_and_should_be(
    prober: Prober, target: Target
) -> None:
    """A JSON field with the wrong value reads "json status is 'down', expected 'up'"."""
    await target.set_mode(Mode.WRONG_JSON)

    result = await prober.probe(
        http(target.url_for("/healthz"), expect={"body_contains": "ok", "json": {"status": "up"}})
    )

    assert result.reason == "json status is 'down', expected 'up'"


async def test_missing_json_field_says_json_has_no_field(prober: Prober, target: Target) -> None:
    """A dotted path that leads nowhere reads "json has no data.status"."""
    result = await prober.probe(
        http(target.url_for("/healthz"), expect={"json": {"data.status": "up"}})
    )

    assert result.reason == "json has no data.status"


async def test_json_paths_index_into_lists(prober: Prober, target: Target) -> None:
    """``items.1.name`` is the name of the second item; numbers compare as numbers."""
    result = await prober.probe(
        http(
            target.url_for("/healthz"),
            expect={"json": {"items.1.name": "queue", "items.0.latency_ms": 3}},
        )
    )

    assert result.ok, result.reason


async def test_body_that_is_not_json_says_so(prober: Prober, target: Target) -> None:
    """A JSON expectation on a non-JSON body reads "body is not JSON"."""
    await target.set_mode(Mode.WRONG_BODY)

    result = await prober.probe(http(target.url_for("/healthz"), expect={"json": {"status": "up"}}))

    assert result.reason == "body is not JSON"


async def test_slow_answer_over_max_latency_says_how_slow(prober: Prober, target: Target) -> None:
    """An answer slower than max_latency reads "took ..., more than ..."."""
    target.delay = 0.05

    result = await prober.probe(http(target.url_for("/healthz"), expect={"max_latency": "10ms"}))

    assert not result.ok
    assert re.fullmatch(rf"took {ELAPSED}, more than 10ms", result.reason)


def test_latency_reason_rounds_to_what_a_person_reads() -> None:
    """Latencies read like "took 2.4s, more than 2s", never "took 2s, more than 2s"."""
    assert too_slow(2.4312, 2.0) == "took 2.4s, more than 2s"
    assert too_slow(2.04, 2.0) == "took 2.040s, more than 2s"
    assert too_slow(0.7, 0.5) == "took 700ms, more than 500ms"


def test_expected_statuses_read_as_a_list() -> None:
    """Three or more acceptable statuses read "200, 201 or 204"."""
    assert unexpected_status(503, [200, 201, 204]) == "status 503, expected 200, 201 or 204"


async def test_large_body_passes_unread_when_nothing_looks_at_it(
    prober: Prober, target: Target
) -> None:
    """Without body expectations a large answer passes on its status alone."""
    result = await prober.probe(http(target.url_for("/big")))

    assert result.ok, result.reason


async def test_head_request_passes_without_a_body(prober: Prober, target: Target) -> None:
    """A HEAD check passes on status alone."""
    result = await prober.probe(http(target.url_for("/healthz"), method="HEAD"))

    assert result.ok, result.reason


# --- TLS certificates ---------------------------------------------------------------------


async def test_certificate_closer_to_expiry_than_allowed_fails_with_time_left(
    prober: Prober, ca: trustme.CA, clock: FakeClock
) -> None:
    """A certificate expiring within cert_valid_for reads "certificate expires in 3 days"."""
    not_after = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    clock.time = not_after.timestamp() - 3 * DAY
    async with Target(ssl_context=tls_server_context(ca, not_after)) as target:
        check = http(target.url_for("/healthz"), expect={"cert_valid_for": "14d"})

        first = await prober.probe(check)
        again = await prober.probe(check)  # on a reused keep-alive connection

    assert first.reason == "certificate expires in 3 days"
    assert again.reason == "certificate expires in 3 days"


async def test_certificate_valid_long_enough_passes(
    prober: Prober, ca: trustme.CA, clock: FakeClock
) -> None:
    """A certificate valid for longer than cert_valid_for passes."""
    not_after = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    clock.time = not_after.timestamp() - 30 * DAY
    async with Target(ssl_context=tls_server_context(ca, not_after)) as target:
        result = await prober.probe(
            http(target.url_for("/healthz"), expect={"cert_valid_for": "14d"})
        )

    assert result.ok, result.reason


async def test_expired_certificate_is_a_tls_error(prober: Prober, ca: trustme.CA) -> None:
    """An expired certificate fails the handshake: "TLS error: certificate has expired"."""
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    async with Target(ssl_context=tls_server_context(ca, expired)) as target:
        result = await prober.probe(http(target.url_for("/healthz")))

    assert result.reason == "TLS error: certificate has expired"


async def test_untrusted_certificate_is_a_tls_error(prober: Prober) -> None:
    """A certificate from an unknown authority reads as a short TLS error."""
    stranger = trustme.CA()
    in_a_year = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    async with Target(ssl_context=tls_server_context(stranger, in_a_year)) as target:
        result = await prober.probe(http(target.url_for("/healthz")))

    assert result.reason == "TLS error: unable to get local issuer certificate"


async def test_https_to_a_plain_http_port_is_a_tls_error(prober: Prober, target: Target) -> None:
    """Speaking TLS to a plain HTTP port reads "TLS error: wrong version number"."""
    result = await prober.probe(http(target.url.replace("http://", "https://") + "/healthz"))

    assert result.reason == "TLS error: wrong version number"


# --- tcp ----------------------------------------------------------------------------------


async def test_tcp_port_accepting_connections_passes(prober: Prober, target: Target) -> None:
    """A port that accepts a connection passes, saying how long connecting took."""
    port = int(target.url.rsplit(":", 1)[1])

    result = await prober.probe(system({"tcp": {"host": "127.0.0.1", "port": port}}))

    assert result.ok
    assert re.fullmatch(rf"connected in {ELAPSED}", result.reason)


async def test_tcp_closed_port_is_connection_refused(prober: Prober, target: Target) -> None:
    """A closed TCP port reads "connection refused"."""
    port = int(target.url.rsplit(":", 1)[1])
    await target.set_mode(Mode.REFUSED)

    result = await prober.probe(system({"tcp": {"host": "127.0.0.1", "port": port}}))

    assert result.reason == "connection refused"


async def test_tcp_unknown_host_says_it_cannot_be_resolved(prober: Prober) -> None:
    """A TCP probe of an unknown host reads "cannot resolve host db.invalid"."""
    result = await prober.probe(system({"tcp": {"host": "db.invalid", "port": 5432}}))

    assert result.reason == "cannot resolve host db.invalid"


# --- steps --------------------------------------------------------------------------------


async def test_session_cookie_carries_from_sign_in_to_account(
    prober: Prober, target: Target
) -> None:
    """A journey signs in, keeps the session cookie, and opens the account page."""
    result = await prober.probe(steps(sign_in(target), ACCOUNT))

    assert result.ok, result.reason
    assert re.fullmatch(rf"2 steps passed in {ELAPSED}", result.reason)
    assert target.requests == ["POST /login", "GET /account"]


async def test_token_from_json_is_sent_as_bearer_to_later_steps(prober: Prober) -> None:
    """The ``token`` path of one step's JSON answer goes to later steps as a bearer token."""
    async with Target(auth="bearer") as target:
        result = await prober.probe(steps(sign_in(target, token="token"), ACCOUNT))

    assert result.ok, result.reason


async def test_without_the_token_a_bearer_only_account_refuses(prober: Prober) -> None:
    """Without ``token`` the bearer-only account page refuses the journey at step 2."""
    async with Target(auth="bearer") as target:
        result = await prober.probe(steps(sign_in(target), ACCOUNT))

    assert result.reason == "step 2 (GET /account): status 401, expected 200"


async def test_failed_step_is_named_by_method_and_path(prober: Prober, target: Target) -> None:
    """A failing unnamed step reads "step 2 (GET /account): body lacks 'Welcome'"."""
    await target.set_mode(Mode.WRONG_BODY)

    result = await prober.probe(steps(sign_in(target), ACCOUNT))

    assert result.reason == "step 2 (GET /account): body lacks 'Welcome'"


async def test_failed_step_is_named_by_its_name(prober: Prober, target: Target) -> None:
    """A failing named step reads "step 1 (sign in): status 401, expected 200"."""
    wrong = sign_in(target)
    wrong["json"] = {"username": USERNAME, "password": "guess"}

    result = await prober.probe(steps(wrong, ACCOUNT))

    assert result.reason == "step 1 (sign in): status 401, expected 200"


async def test_missing_token_names_the_step(prober: Prober, target: Target) -> None:
    """An answer without the token field reads "step 1 (sign in): json has no token"."""
    await target.set_mode(Mode.WRONG_JSON)

    result = await prober.probe(steps(sign_in(target, token="token"), ACCOUNT))

    assert result.reason == "step 1 (sign in): json has no token"


async def test_connection_failure_names_the_step(prober: Prober, target: Target) -> None:
    """A refused connection during a journey names the step it stopped at."""
    await target.set_mode(Mode.REFUSED)

    result = await prober.probe(steps(sign_in(target), ACCOUNT))

    assert result.reason == "step 1 (sign in): connection refused"


async def test_timeout_covers_the_whole_journey_and_names_the_step(
    prober: Prober, target: Target
) -> None:
    """A journey slower than its timeout stops in time and says where it was."""
    await target.set_mode(Mode.SLOW)

    began = perf_counter()
    result = await prober.probe(steps(sign_in(target), ACCOUNT, timeout="200ms"))

    assert result.reason == "step 1 (sign in): timed out after 200ms"
    assert perf_counter() - began < 0.2 + 1.0


async def test_cookie_set_on_a_redirect_reaches_the_redirect_target(
    prober: Prober, target: Target
) -> None:
    """A sign-in that redirects to the account page carries its cookie along."""
    result = await prober.probe(
        steps(sign_in(target, url=target.url_for("/login?next=/account"), expect=ACCOUNT["expect"]))
    )

    assert result.ok, result.reason
    assert target.requests == ["POST /login", "GET /account"]


async def test_form_bodies_are_sent_as_forms(prober: Prober, target: Target) -> None:
    """A step's ``form`` is sent form-encoded."""
    form = {**sign_in(target), "form": {"username": USERNAME, "password": PASSWORD}}
    del form["json"]

    result = await prober.probe(steps(form, ACCOUNT))

    assert result.ok, result.reason


async def test_cookies_do_not_carry_over_between_runs(prober: Prober, target: Target) -> None:
    """Each run starts without cookies, so a signed-in run does not sign in the next one."""
    assert (await prober.probe(steps(sign_in(target), ACCOUNT))).ok

    result = await prober.probe(steps({**ACCOUNT, "url": target.url_for("/account")}))

    assert result.reason == "step 1 (GET /account): status 401, expected 200"


async def test_http_probes_share_no_cookies(prober: Prober, target: Target) -> None:
    """The shared session keeps no cookies: a journey's sign-in never signs in an http probe."""
    assert (await prober.probe(steps(sign_in(target), ACCOUNT))).ok

    result = await prober.probe(http(target.url_for("/account")))

    assert result.reason == "status 401, expected 200"


# --- never raises, never leaks --------------------------------------------------------------


async def test_probe_on_a_closed_session_fails_instead_of_raising(
    clock: FakeClock, target: Target
) -> None:
    """Whatever goes wrong inside becomes a failed result with a reason."""
    session = make_session(HttpClient())
    await session.close()

    result = await Prober(session, clock).probe(http(target.url_for("/healthz")))

    assert not result.ok
    assert result.reason.startswith("probe failed: RuntimeError")


async def test_reasons_never_show_request_secrets(prober: Prober, target: Target) -> None:
    """Header values and request bodies never appear in a reason, even when failing."""
    await target.set_mode(Mode.ERROR)
    secret = "Bearer s3cr3t-t0ken"

    result = await prober.probe(
        http(target.url_for("/healthz"), headers={"Authorization": secret}, body="pw=hunter22")
    )

    assert result.reason == "status 500, expected 200"
    assert explain(ValueError(f"bad header {secret!r}"), [secret]) == (
        "probe failed: ValueError: bad header '***'"
    )
