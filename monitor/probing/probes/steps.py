"""Steps probes: a short HTTP journey (sign in, keep the cookie or token, open the account).

Each run has its own cookie jar, so session cookies carry from step to step (redirects
included) and never leak into another run or another probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from urllib.parse import urljoin, urlsplit

import aiohttp

from monitor.config import Step
from monitor.probing.probes.http import MISSING, TlsAwareResponse, fetch, json_path, judge
from monitor.probing.probes.reasons import say_elapsed


class Journey:
    """One run of a steps probe.

    ``current`` names the step under way ("step 2 (GET /account)") and stays set when a step
    fails, so whoever stops the run (a timeout, an error) can say where it stopped.
    """

    def __init__(self, session: aiohttp.ClientSession, steps: Sequence[Step], now: float) -> None:
        self.current: str | None = None
        self.token: str | None = None
        self._session = session
        self._steps = steps
        self._now = now

    async def run(self) -> tuple[bool, str]:
        """Run the steps in order; a failure's reason leaves naming the step to ``current``."""
        shared = self._session
        if shared.connector is None:
            raise RuntimeError("the HTTP session is closed")
        started = perf_counter()
        base = self._steps[0].url
        # A short-lived session on the shared connector: its own cookies, pooled connections.
        async with aiohttp.ClientSession(
            connector=shared.connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers=shared.headers,
            timeout=aiohttp.ClientTimeout(total=None),
            response_class=TlsAwareResponse,
        ) as session:
            for number, step in enumerate(self._steps, start=1):
                failure = await self._run_step(session, number, step, urljoin(base, step.url))
                if failure is not None:
                    return False, failure
        self.current = None
        count = len(self._steps)
        passed = "1 step passed" if count == 1 else f"{count} steps passed"
        return True, f"{passed} in {say_elapsed(perf_counter() - started)}"

    async def _run_step(
        self, session: aiohttp.ClientSession, number: int, step: Step, url: str
    ) -> str | None:
        what = step.name or f"{step.method} {urlsplit(url).path or '/'}"
        self.current = f"step {number} ({what})"
        headers = step.headers
        if self.token is not None and not any(k.lower() == "authorization" for k in headers):
            headers = {**headers, "Authorization": f"Bearer {self.token}"}
        expect = step.expect
        answer = await fetch(
            session,
            step.method,
            url,
            headers=headers,
            expect=expect,
            need_body=(
                expect.body_contains is not None
                or bool(expect.json_fields)
                or step.token is not None
            ),
            data=step.form if step.form is not None else step.body,
            json_body=step.json_body,
        )
        failure = judge(answer, expect, self._now)
        if failure is not None or step.token is None:
            return failure
        try:
            value = json_path(answer.json(), step.token)
        except ValueError:
            return "body is not JSON"
        if value is MISSING or value is None or isinstance(value, dict | list):
            return f"json has no {step.token}"
        self.token = str(value)
        return None
