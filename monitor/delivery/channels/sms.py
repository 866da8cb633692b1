"""SMS through the Twilio Messages API, or anything that speaks it (``MONITOR_TWILIO_BASE_URL``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar, Literal
from urllib.parse import quote

import aiohttp

from monitor.delivery.channels.errors import DeliveryError
from monitor.store import OutboxItem

TWILIO_BASE_URL = "https://api.twilio.com"
_ENV = {
    "account_sid": "MONITOR_TWILIO_ACCOUNT_SID",
    "auth_token": "MONITOR_TWILIO_AUTH_TOKEN",
    "from_number": "MONITOR_TWILIO_FROM",
}
_BASE_URL_ENV = "MONITOR_TWILIO_BASE_URL"


class SmsChannel:
    """Sends one SMS per call with ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``.

    ``from_number`` is a phone number in E.164 form, or a Messaging Service SID (``MG...``).
    The auth token is sent only as HTTP basic auth and never appears in an error or a repr.
    """

    kind: ClassVar[Literal["sms"]] = "sms"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = TWILIO_BASE_URL,
        timeout: float = 30.0,
    ) -> None:
        self._session = session
        self.account_sid = account_sid
        self._headers = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        self.from_number = from_number
        self.base_url = base_url.rstrip("/")
        self._url = (
            f"{self.base_url}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return (
            f"SmsChannel(account_sid={self.account_sid!r}, from_number={self.from_number!r}, "
            f"base_url={self.base_url!r})"
        )

    async def deliver(self, to: str, item: OutboxItem) -> None:
        """Send the outbox item's SMS text to the number ``to`` (see :meth:`send`)."""
        await self.send(to, item.sms)

    async def close(self) -> None:
        """Nothing to let go of: the aiohttp session is its owner's to close."""

    async def send(self, to: str, body: str) -> None:
        """Return once the API accepted the message (2xx).

        Raises DeliveryError: permanent on a 4xx (invalid or unreachable number, refused body),
        transient on 401 (our credentials: a configuration problem to fix, not a reason to
        give up on the person), 429, 5xx, timeouts and network errors.
        """
        sender = "MessagingServiceSid" if self.from_number.startswith("MG") else "From"
        form = {"To": to, sender: self.from_number, "Body": body}
        try:
            async with self._session.post(
                self._url, data=form, headers=self._headers, timeout=self._timeout
            ) as response:
                if 200 <= response.status < 300:
                    await response.read()
                    return
                status = response.status
                detail = _error_detail(await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(
                f"SMS to {to}: {self.base_url} unreachable: {type(exc).__name__}",
                permanent=False,
            ) from exc
        if status == 401:
            raise DeliveryError(
                f"SMS to {to}: authentication failed (401){detail}", permanent=False
            )
        raise DeliveryError(
            f"SMS to {to}: answered {status}{detail}",
            permanent=400 <= status < 500 and status not in (408, 429),
        )

    @classmethod
    def from_env(
        cls, session: aiohttp.ClientSession, environ: Mapping[str, str]
    ) -> SmsChannel | None:
        """The channel ``MONITOR_TWILIO_*`` describes, or None when none of them is set.

        Raises ValueError naming the missing variables when only some are set.
        """
        values = {key: environ.get(name, "").strip() for key, name in _ENV.items()}
        if not any(values.values()):
            return None
        missing = [_ENV[key] for key, value in values.items() if not value]
        if missing:
            raise ValueError("SMS is half configured: " + ", ".join(missing) + " not set")
        base_url = environ.get(_BASE_URL_ENV, "").strip() or TWILIO_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{_BASE_URL_ENV} must be an http:// or https:// URL")
        return cls(
            session,
            account_sid=values["account_sid"],
            auth_token=values["auth_token"],
            from_number=values["from_number"],
            base_url=base_url,
        )


def from_env(session: aiohttp.ClientSession, environ: Mapping[str, str]) -> SmsChannel | None:
    """Same as :meth:`SmsChannel.from_env`."""
    return SmsChannel.from_env(session, environ)


def _error_detail(raw: bytes) -> str:
    """Twilio's ``code`` and ``message`` from an error answer, if it has them."""
    try:
        data = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return f": {text[:200]}" if text else ""
    if not isinstance(data, dict):
        return ""
    code, message = data.get("code"), data.get("message")
    parts = [str(part) for part in (code, message) if part is not None]
    return (": " + " ".join(parts)) if parts else ""
