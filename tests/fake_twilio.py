"""Loopback stand-ins for services off the machine: Twilio's Messages API and a webhook receiver.

Both are real aiohttp servers on 127.0.0.1 with a free port; tests talk to them over HTTP.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import BasicAuth, web

TWILIO_INVALID_NUMBER = 21211


@dataclass(frozen=True, slots=True)
class SentSms:
    """One message the fake accepted, as Twilio would have queued it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    form: dict[str, str]


@dataclass(frozen=True, slots=True)
class ReceivedHook:
    """One request the webhook receiver got: the raw body and the headers."""

    path: str
    body: bytes
    headers: dict[str, str]


class _LoopbackServer:
    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FakeTwilio(_LoopbackServer):
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth.

    Answers 201 with ``{"sid": ..., "status": "queued", ...}`` and records the message, unless
    told to fail the next calls with :meth:`fail_next`. Wrong credentials get Twilio's 401.
    """

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "tok") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[SentSms] = []
        self.calls = 0
        self._failures: list[tuple[int, dict[str, Any] | None]] = []

    def fail_next(self, status: int, count: int = 1, *, code: int | None = None) -> None:
        """Answer the next ``count`` calls with ``status``: 400 as Twilio's invalid-number
        error (or ``code``), 5xx with Twilio's error JSON too."""
        for _ in range(count):
            self._failures.append((status, self._error(status, code)))

    async def __aenter__(self) -> FakeTwilio:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        return app

    @staticmethod
    def _error(status: int, code: int | None) -> dict[str, Any]:
        if status == 400:
            code = code or TWILIO_INVALID_NUMBER
            message = "The 'To' number is not a valid phone number."
        else:
            code = code or 20500
            message = "Service temporarily unavailable" if status == 503 else "Internal error"
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    async def _create_message(self, request: web.Request) -> web.Response:
        self.calls += 1
        try:
            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        if (
            auth is None
            or auth.login != self.account_sid
            or auth.password != self.auth_token
            or request.match_info["sid"] != self.account_sid
        ):
            body = {"code": 20003, "message": "Authenticate", "status": 401}
            return web.json_response(body, status=401)
        if self._failures:
            status, error = self._failures.pop(0)
            return web.json_response(error, status=status)
        form = {key: str(value) for key, value in (await request.post()).items()}
        sender = form.get("From") or form.get("MessagingServiceSid", "")
        if not form.get("To") or not sender or "Body" not in form:
            return web.json_response(self._error(400, 21604), status=400)
        sms = SentSms(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=form["To"],
            from_=sender,
            body=form["Body"],
            form=form,
        )
        self.messages.append(sms)
        answer = {
            "sid": sms.sid,
            "account_sid": sms.account_sid,
            "to": sms.to,
            "from": sms.from_,
            "body": sms.body,
            "status": "queued",
        }
        return web.json_response(answer, status=201)


class WebhookReceiver(_LoopbackServer):
    """Accepts POSTs on any path, records body and headers, answers ``status`` (200), or the
    statuses queued with :meth:`answer_next` first."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[ReceivedHook] = []
        self.status = 200
        self._queued: list[int] = []

    def answer_next(self, status: int, count: int = 1) -> None:
        self._queued.extend([status] * count)

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(ReceivedHook(request.path, body, dict(request.headers)))
        status = self._queued.pop(0) if self._queued else self.status
        return web.json_response({"ok": 200 <= status < 300}, status=status)
